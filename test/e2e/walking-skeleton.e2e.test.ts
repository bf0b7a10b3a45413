import {expect} from 'chai'
import {execa} from 'execa'
import {createHash} from 'node:crypto'
import {chmod, mkdir, mkdtemp, readFile, readdir, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import * as tar from 'tar'
import YAML from 'yaml'
import {gzipSync} from 'node:zlib'

import {imagesInManifests} from '../../packages/helm-analysis/src/render.js'
import {FIXTURES, kod, TOOLS_BIN, toolPath} from '../support/kod.js'
import {buildLayout, tarFiles} from '../support/oci-build.js'
import {remoteDigest, startRegistry, type TestRegistry} from '../support/registry.js'
import {unitImages} from '../support/manifest.js'

/**
 * The whole path with real parts: real helm, skopeo and two distribution registries on 127.0.0.1.
 * Images are built here, served by an "upstream" registry, packaged, the upstream is stopped, and the
 * package is populated and deployed (helm client-side dry run) into an "air-gapped" registry.
 */
const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex')
const base = {files: {'etc/kod-base': 'a layer every image shares\n'}}

async function skopeo(args: string[]): Promise<string> {
  return String((await execa('skopeo', args, {stdin: 'ignore'})).stdout)
}

describe('walking skeleton: package → populate → deploy (e2e)', function () {
  let work: string
  let upstream: TestRegistry
  let airgap: TestRegistry
  let digests: Record<string, string>
  let kodpkg: string
  let helmEnv: Record<string, string>

  before(async function () {
    work = await mkdtemp(path.join(os.tmpdir(), 'kod-e2e-'))
    upstream = await startRegistry()
    airgap = await startRegistry()
    const memory = path.join(work, 'helm-memory.yaml')
    await writeFile(memory, '[]\n')
    helmEnv = {HELM_DRIVER: 'memory', HELM_MEMORY_DRIVER_DATA: memory, HOME: work}

    // Five tiny images; all share one base layer.
    const layout = path.join(work, 'build')
    digests = await buildLayout(
      layout,
      // "am" is a multi-platform image (an OCI index over amd64 and arm64).
      ['web', 'worker', 'job', 'pinned', 'am'].map((name) => ({
        name,
        layers: [base, {files: {[`app/${name}`]: `${name}\n`}}],
        ...(name === 'am' ? {architectures: ['amd64', 'arm64']} : {}),
      })),
    )
    const tags: Record<string, string> = {web: '1.0.0', worker: '1.0.0', job: '2.0', pinned: 'not-used-by-the-chart', am: '0.1'}
    for (const [name, tag] of Object.entries(tags)) {
      await skopeo(['copy', '--all', '--preserve-digests', '--dest-tls-verify=false', `oci:${layout}:${name}`, `docker://${upstream.host}/kodtest/${name}:${tag}`])
    }

    const values = {
      web: {image: {registry: upstream.host}},
      worker: {image: {repository: `${upstream.host}/kodtest/worker`}},
      job: {image: `${upstream.host}/kodtest/job:2.0`},
      pinned: {image: {registry: upstream.host, digest: digests.pinned}},
      alertmanager: {image: {repository: `${upstream.host}/kodtest/am`}},
    }
    await writeFile(path.join(work, 'package-values.yaml'), YAML.stringify(values))

    const out = path.join(work, 'out')
    const packaged = await kod([
      'package',
      '-c',
      path.join(FIXTURES, 'charts', 'shapes'),
      '-f',
      path.join(work, 'package-values.yaml'),
      '-o',
      out,
      '--insecure-registry',
      upstream.host,
      // Every platform of "am", byte for byte: its digest is the one the registry served (platforms.e2e trims).
      '--all-platforms',
    ])
    expect(packaged.stderr, packaged.stderr).to.not.match(/Warning/)
    expect(packaged.exitCode, packaged.stderr).to.equal(0)
    kodpkg = path.join(out, 'kod-shapes-0.1.0.kodpkg')
    expect((await readdir(out)).sort()).to.deep.equal(['kod-shapes-0.1.0.kodpkg'])

    // From here on nothing may come from upstream.
    await upstream.stop()
  })

  after(async function () {
    await upstream?.stop()
    await airgap?.stop()
    if (work) await rm(work, {recursive: true, force: true})
  })

  it('records every image with its digest, platform and values path', async function () {
    const inspected = await kod(['inspect', '-c', kodpkg, '--json'])
    expect(inspected.exitCode, inspected.stderr).to.equal(0)
    const manifest = JSON.parse(inspected.stdout)
    const byRepo = Object.fromEntries(
      unitImages(manifest).map((image) => [image.name.split('/').at(-1)!.split(/[:@]/)[0], image]),
    )
    expect(Object.keys(byRepo).sort()).to.deep.equal(['am', 'job', 'pinned', 'web', 'worker'])
    expect(manifest.platforms).to.equal('all')
    for (const [name, image] of Object.entries(byRepo) as Array<[string, {digest: string; platforms: string[]}]>) {
      expect(image.digest, name).to.equal(digests[name])
      expect(image.platforms, name).to.deep.equal(name === 'am' ? ['linux/amd64', 'linux/arm64'] : ['linux/amd64'])
    }
    // Each image is relocated through the value that renders at the start of its reference.
    const up = upstream.host
    expect(byRepo.web.values).to.deep.equal([{path: 'web.image.registry', value: up, replace: up.length}])
    expect(byRepo.worker.values).to.deep.equal([{path: 'worker.image.repository', value: `${up}/kodtest/worker`, replace: up.length}])
    expect(byRepo.job.values).to.deep.equal([{path: 'job.image', value: `${up}/kodtest/job:2.0`, replace: up.length}])
    expect(byRepo.pinned.values).to.deep.equal([{path: 'pinned.image.registry', value: up, replace: up.length}])
    expect(byRepo.am.values).to.deep.equal([{path: 'alertmanager.image.repository', value: `${up}/kodtest/am`, replace: up.length}])
    expect(byRepo.pinned.ref).to.equal(`${upstream.host}/kodtest/pinned@${digests.pinned}`)
    expect(byRepo.am.foundIn).to.deep.equal(['shapes/templates/alertmanager.yaml'])
    expect(manifest.units.map((unit: {id: string; values: string[]}) => [unit.id, unit.values])).to.deep.equal([['shapes', ['values/01-package-values.yaml']]])
    expect(manifest.charts).to.deep.equal([{name: 'shapes', version: '0.1.0', appVersion: '1.0.0', file: 'charts/shapes-0.1.0.tgz'}])
  })

  it('stores the shared layer once in the archive, referenced by every image', async function () {
    const entries: string[] = []
    const manifests: string[] = []
    await tar.list({
      file: kodpkg,
      onReadEntry(entry) {
        entries.push(entry.path)
        const chunks: Buffer[] = []
        entry.on('data', (chunk: Buffer) => chunks.push(chunk))
        entry.on('end', () => manifests.push(Buffer.concat(chunks).toString('utf8')))
      },
    })
    const sharedDigest = `sha256:${sha256(gzipSync(tarFiles(base.files), {level: 9}))}`
    expect(entries.filter((entry) => entry === `images/blobs/sha256/${sharedDigest.slice(7)}`)).to.have.length(1)
    // Four single-platform images and both platforms of "am" use it.
    const referencing = manifests.filter((text) => text.includes('"layers"') && text.includes(sharedDigest))
    expect(referencing).to.have.length(6)
    // 4 × (manifest + config + own layer), "am": index + 2 manifests + 2 configs + own layer, 1 shared layer
    expect(entries.filter((entry) => entry.startsWith('images/blobs/sha256/'))).to.have.length(19)
  })

  it('populates and deploys: every rendered image comes from the air-gapped registry, with the same digest', async function () {
    const cwd = path.join(work, 'airgap-side')
    await mkdir(cwd, {recursive: true})

    // Shims that record what kod really runs, then run the real tool.
    const shims = path.join(work, 'shims')
    const log = path.join(work, 'commands.log')
    await mkdir(shims, {recursive: true})
    for (const tool of ['helm', 'skopeo']) {
      const real = tool === 'helm' ? path.join(TOOLS_BIN, 'helm') : (await execa('sh', ['-c', 'command -v skopeo'])).stdout
      await writeFile(path.join(shims, tool), `#!/bin/sh\nprintf '%s\\036' ${tool} "$@" >> '${log}'\nprintf '\\n' >> '${log}'\nexec '${real}' "$@"\n`)
      await chmod(path.join(shims, tool), 0o755)
    }
    const env = {...helmEnv, PATH: toolPath([shims])}
    const args = ['deploy', '-c', kodpkg, '-r', airgap.host, '--plain-http', '-n', 'shop', '-d', 'rel', '--dry-run']

    const listed = await kod([...args, '--list-commands'], {cwd, env})
    expect(listed.exitCode, listed.stderr).to.equal(0)
    const deployed = await kod(args, {cwd, env})
    expect(deployed.exitCode, deployed.stderr).to.equal(0)
    expect(deployed.stdout).to.match(/^NAME: rel$/m)
    expect(deployed.stdout).to.match(/Dry run complete/)

    // The commands printed are exactly the pushes and the install that deploy ran.
    const ran = (await readFile(log, 'utf8'))
      .split('\n')
      .filter(Boolean)
      .map((line) => line.split('\u001E').filter(Boolean))
      .filter(([tool, verb, flag]) => (tool === 'skopeo' && verb === 'copy') || (tool === 'helm' && (verb === 'push' || flag === '--install')))
    const printed = listed.stdout.trim().split('\n').map((line) => line.split(' '))
    // Five images, the chart, the package's metadata (kodinfo), the install.
    expect(printed).to.have.length(5 + 1 + 1 + 1)
    expect(listed.stdout).to.not.match(/'/)
    expect(ran).to.deep.equal(printed)

    // Render with the generated values: every image points at the air-gapped registry and is there.
    const dir = path.join(cwd, 'kod-shapes-0.1.0')
    const rendered = await execa(path.join(TOOLS_BIN, 'helm'), [
      'template', 'rel', path.join(dir, 'charts/shapes-0.1.0.tgz'),
      '-f', path.join(dir, 'values/01-package-values.yaml'),
      '-f', path.join(dir, 'kod-values-shapes.yaml'),
    ])
    const images = imagesInManifests(String(rendered.stdout)).map((image) => image.ref)
    expect(images).to.have.length(5)
    for (const image of images) {
      expect(image.startsWith(`${airgap.host}/kod/`), image).to.equal(true)
      const name = image.split('/').at(-1)!.split(/[:@]/)[0]
      const byDigest = image.includes('@') ? image.replace(/:[^:/@]+@/, '@') : image
      expect(await remoteDigest(byDigest), image).to.equal(digests[name])
    }
    const upstreamComponent = upstream.host.replace(':', '-')
    expect(images).to.include(`${airgap.host}/kod/${upstreamComponent}/kodtest/pinned@${digests.pinned}`)
    expect(images).to.include(`${airgap.host}/kod/${upstreamComponent}/kodtest/worker:1.0.0`)

    // The chart is in the registry as an OCI artifact.
    const tags = JSON.parse(await skopeo(['list-tags', '--tls-verify=false', `docker://${airgap.host}/kod/charts/shapes`]))
    expect(tags.Tags).to.deep.equal(['0.1.0'])
  })

  it('refuses a tampered package, naming the file', async function () {
    const cwd = await mkdtemp(path.join(work, 'tamper-'))
    const unpacked = await kod(['unpack', '-c', kodpkg, '-o', path.join(cwd, 'pkg')])
    expect(unpacked.exitCode, unpacked.stderr).to.equal(0)
    const chart = path.join(cwd, 'pkg', 'charts', 'shapes-0.1.0.tgz')
    const bytes = await readFile(chart)
    bytes[bytes.length - 1] ^= 0xff
    await writeFile(chart, bytes)
    const deployed = await kod(['deploy', '-c', path.join(cwd, 'pkg'), '-r', airgap.host, '--plain-http', '--dry-run'], {env: helmEnv})
    expect(deployed.exitCode).to.equal(5)
    expect(deployed.stderr).to.match(/checksum mismatch for charts\/shapes-0\.1\.0\.tgz/)
    expect(deployed.stderr).to.not.match(/\n\s+at /)
  })
})
