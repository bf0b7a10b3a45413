import {expect} from 'chai'
import {execa} from 'execa'
import {mkdir, mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import * as tar from 'tar'
import YAML from 'yaml'

import {FIXTURES, kod} from '../support/kod.js'
import {buildLayout} from '../support/oci-build.js'
import {startRegistry, type TestRegistry} from '../support/registry.js'

/**
 * A tampered image blob whose line was deleted from SHA256SUMS (so that `sha256sum -c` alone passes) is
 * refused by populate before anything reaches the registry: real kod, skopeo and a registry on 127.0.0.1.
 */
describe('a tampered package is refused before the first push (e2e)', function () {
  let work: string
  let upstream: TestRegistry
  let airgap: TestRegistry
  let tampered: string
  let blob: string

  before(async function () {
    work = await mkdtemp(path.join(os.tmpdir(), 'kod-tampered-'))
    upstream = await startRegistry()
    airgap = await startRegistry()
    const layout = path.join(work, 'build')
    await buildLayout(layout, [{name: 'hello', layers: [{files: {'etc/base': 'base\n'}}, {files: {'app/hello': 'hello\n'}}]}])
    await execa('skopeo', ['copy', '--all', '--preserve-digests', '--dest-tls-verify=false', `oci:${layout}:hello`, `docker://${upstream.host}/kodtest/hello:1.0`], {stdin: 'ignore'})
    await writeFile(path.join(work, 'values.yaml'), YAML.stringify({image: {repository: `${upstream.host}/kodtest/hello`}}))
    const out = path.join(work, 'out')
    const packaged = await kod(['package', '-c', path.join(FIXTURES, 'charts', 'hello'), '-f', path.join(work, 'values.yaml'), '-o', out, '--insecure-registry', upstream.host])
    expect(packaged.exitCode, packaged.stderr).to.equal(0)
    await upstream.stop()

    // Tamper with the last layer of the image and delete its line from SHA256SUMS, then tar it up as kod does.
    const unpacked = path.join(work, 'unpacked')
    await mkdir(unpacked)
    const original = path.join(out, 'kod-hello-0.1.0.kodpkg')
    const order: string[] = []
    await tar.extract({file: original, cwd: unpacked, onReadEntry: (entry) => void order.push(entry.path)})
    const index = JSON.parse(await readFile(path.join(unpacked, 'images', 'index.json'), 'utf8')) as {manifests: Array<{digest: string}>}
    const top = JSON.parse(await readFile(path.join(unpacked, 'images', 'blobs', 'sha256', index.manifests[0].digest.slice(7)), 'utf8')) as {layers: Array<{digest: string}>}
    blob = `images/blobs/sha256/${top.layers.at(-1)!.digest.slice(7)}`
    await writeFile(path.join(unpacked, blob), 'not the layer that was packaged')
    const sums = await readFile(path.join(unpacked, 'SHA256SUMS'), 'utf8')
    await writeFile(path.join(unpacked, 'SHA256SUMS'), sums.split('\n').filter((line) => !line.endsWith(`  ${blob}`)).join('\n'))
    tampered = path.join(work, 'kod-hello-0.1.0.kodpkg')
    await tar.create({cwd: unpacked, file: tampered, portable: true, noDirRecurse: true}, order)
  })

  after(async function () {
    await upstream?.stop()
    await airgap?.stop()
    if (work) await rm(work, {recursive: true, force: true})
  })

  it('populate exits 5 naming the blob, pushes nothing and leaves nothing behind; inspect refuses it alike', async function () {
    const cwd = path.join(work, 'run')
    await mkdir(cwd)
    const result = await kod(['populate', '-c', tampered, '-r', airgap.host, '--plain-http'], {cwd, env: {HOME: work}})
    expect(result.exitCode, result.stderr).to.equal(5)
    expect(result.stderr).to.include(`${blob} is not listed in SHA256SUMS`)
    expect(result.stderr).to.not.match(/Copying|Pushed|Writing manifest/)
    const catalog = (await (await fetch(`http://${airgap.host}/v2/_catalog`)).json()) as {repositories: string[]}
    expect(catalog.repositories).to.deep.equal([])
    expect(await readdir(cwd)).to.deep.equal([])

    const inspected = await kod(['inspect', '-c', tampered])
    expect(inspected.exitCode, inspected.stderr).to.equal(5)
    expect(inspected.stderr).to.include(`${blob} is not listed in SHA256SUMS`)
    expect(inspected.stdout).to.not.include('verified')
  })
})
