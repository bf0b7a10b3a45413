import {expect} from 'chai'
import {execa} from 'execa'
import {createHash} from 'node:crypto'
import {mkdir, mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import YAML from 'yaml'

import {imagesInManifests} from '../../packages/helm-analysis/src/render.js'
import {oneLineError} from '../support/assertions.js'
import {FIXTURES, kod, toolPath} from '../support/kod.js'
import {seedHello} from '../support/hello-image.js'
import {remoteDigest, startRegistry, type TestRegistry} from '../support/registry.js'

/**
 * Registry-native packages (issue 9, parts 1, 2 and 6), with real skopeo, helm and registries on
 * 127.0.0.1: populate pushes the package's metadata (kodinfo) beside its images and charts; inspect and
 * deploy then work from oci://…/packages/<name>:<version> with the local package and its unpacked
 * directory deleted; a tampered kodinfo is refused; a whole package file travels as one artifact
 * (populate --as-artifact, kod pull).
 */
const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex')

async function skopeo(args: string[]): Promise<string> {
  return String((await execa('skopeo', args, {stdin: 'ignore'})).stdout)
}

describe('registry-native packages: deploy and inspect from oci:// (e2e)', function () {
  this.timeout(240_000)
  let work: string
  let upstream: TestRegistry
  let airgap: TestRegistry
  let kodpkg: string
  let helmEnv: Record<string, string>
  let reference: string
  let digest: string

  before(async function () {
    work = await mkdtemp(path.join(os.tmpdir(), 'kod-registry-native-'))
    upstream = await startRegistry()
    airgap = await startRegistry()
    const memory = path.join(work, 'helm-memory.yaml')
    await writeFile(memory, '[]\n')
    helmEnv = {HELM_DRIVER: 'memory', HELM_MEMORY_DRIVER_DATA: memory, HOME: work}
    const {digest: seeded, values} = await seedHello(work, upstream, {tag: true})
    digest = seeded
    kodpkg = path.join(work, 'out', 'kod-hello-0.1.0.kodpkg')
    const packaged = await kod(['package', '-c', path.join(FIXTURES, 'charts', 'hello'), '-f', values, '-o', kodpkg, '--insecure-registry', upstream.host])
    expect(packaged.exitCode, packaged.stderr).to.equal(0)
    await upstream.stop()

    const site = path.join(work, 'site')
    await mkdir(site)
    const populated = await kod(['populate', '-c', kodpkg, '-r', airgap.host, '--plain-http'], {cwd: site})
    expect(populated.exitCode, populated.stderr).to.equal(0)
    reference = `oci://${airgap.host}/kod/packages/hello:0.1.0`
    expect(populated.stderr).to.include(`deploy from the registry with kod deploy -c ${reference}`)
    // Again, with --json: nothing to push, and the reference in the result.
    const again = await kod(['populate', '-c', kodpkg, '-r', airgap.host, '--plain-http', '--json'], {cwd: site})
    expect(again.exitCode, again.stderr).to.equal(0)
    expect(JSON.parse(again.stdout).package).to.equal(reference)
  })

  after(async function () {
    await upstream?.stop()
    await airgap?.stop()
    if (work) await rm(work, {recursive: true, force: true})
  })

  it('pushes the metadata as an OCI 1.1 artifact: kod artifactType, empty config, one titled layer per file, all in SHA256SUMS', async function () {
    const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${reference.slice('oci://'.length)}`])
    const manifest = JSON.parse(raw)
    expect(manifest.artifactType).to.equal('application/vnd.kod.package.v1')
    expect(manifest.config).to.deep.include({mediaType: 'application/vnd.oci.empty.v1+json', size: 2, data: 'e30='})
    const titles = manifest.layers.map((layer: {annotations: Record<string, string>}) => layer.annotations['org.opencontainers.image.title'])
    expect(titles).to.deep.equal(['kod-package.yaml', 'SHA256SUMS', 'values/01-upstream.yaml'])
    expect(manifest.layers[0].mediaType).to.equal('application/vnd.kod.package.manifest.v1+yaml')
    // Tagged, so no registry garbage-collects it.
    const tags = JSON.parse(await skopeo(['list-tags', '--tls-verify=false', `docker://${airgap.host}/kod/packages/hello`])).Tags
    expect(tags).to.include('0.1.0')
  })

  it('inspect -c oci://… verifies and shows the package with nothing local', async function () {
    const cwd = await mkdtemp(path.join(work, 'inspect-'))
    const tmp = await mkdtemp(path.join(work, 'tmp-'))
    const shown = await kod(['inspect', '-c', reference, '--plain-http', '--json'], {cwd, env: {TMPDIR: tmp}})
    expect(shown.exitCode, shown.stderr).to.equal(0)
    const manifest = JSON.parse(shown.stdout)
    expect(manifest).to.include({name: 'hello', version: '0.1.0'})
    expect(manifest.images[0].digest).to.equal(digest)
    expect(await readdir(cwd)).to.deep.equal([])
    expect(await readdir(tmp)).to.deep.equal([])
  })

  it('deploy -c oci://… --no-install --list-commands, with no local package: checks images by digest, prints helm commands that install the chart from the registry and run as printed', async function () {
    await rm(path.join(work, 'site'), {recursive: true, force: true})
    await rm(path.join(work, 'out'), {recursive: true, force: true})
    const cwd = await mkdtemp(path.join(work, 'deploy-'))
    const result = await kod(['deploy', '--no-install', '--list-commands', '-c', reference, '-r', airgap.host, '--plain-http', '-n', 'shop', '-d', 'greeter'], {cwd, env: helmEnv})
    expect(result.exitCode, result.stderr).to.equal(0)
    const lines = result.stdout.trim().split('\n')
    expect(lines).to.have.length(1)
    const [helmLine] = lines
    expect(helmLine).to.match(new RegExp(`^helm upgrade --install greeter oci://${airgap.host.replaceAll('.', '\\.')}/kod/charts/hello --version 0\\.1\\.0 --plain-http --namespace shop`))
    // Only the metadata, never images: the values helm needs are beside the user.
    const [kept] = await readdir(cwd)
    expect(kept).to.equal('kod-hello-0.1.0-from-registry')
    expect(await readdir(path.join(cwd, kept))).to.not.include('images')
    const ran = await execa('bash', ['-c', `${helmLine} --dry-run=client`], {cwd, env: {...helmEnv, PATH: toolPath()}, stdin: 'ignore'})
    const images = imagesInManifests(String(ran.stdout)).map((found) => found.ref)
    expect(images).to.have.length.above(0)
    for (const image of images) {
      expect(image.startsWith(`${airgap.host}/kod/`), image).to.equal(true)
      expect(await remoteDigest(image)).to.equal(digest)
    }
  })

  it('deploy -c oci://… installs (helm dry run) with only temporary files', async function () {
    const cwd = await mkdtemp(path.join(work, 'install-'))
    const tmp = await mkdtemp(path.join(work, 'tmp-'))
    const result = await kod(['deploy', '-c', reference, '-r', airgap.host, '--plain-http', '-n', 'shop', '--dry-run'], {cwd, env: {...helmEnv, TMPDIR: tmp}})
    expect(result.exitCode, result.stderr).to.equal(0)
    expect(result.stdout).to.match(/Dry run complete|NAME: hello/)
    expect(await readdir(cwd)).to.deep.equal([])
    expect(await readdir(tmp)).to.deep.equal([])
  })

  it('refuses a tampered kodinfo (a values layer changed in the registry) before anything else (exit 5)', async function () {
    // Rebuild the artifact with one changed layer and push it under another tag.
    const layout = path.join(work, 'tampered')
    await skopeo(['copy', '--preserve-digests', '--src-tls-verify=false', `docker://${reference.slice('oci://'.length)}`, `oci:${layout}:t`])
    const index = JSON.parse(await readFile(path.join(layout, 'index.json'), 'utf8'))
    const blob = (hex: string): string => path.join(layout, 'blobs', 'sha256', hex)
    const manifest = JSON.parse(await readFile(blob(index.manifests[0].digest.slice(7)), 'utf8'))
    const values = manifest.layers.find((layer: {annotations: Record<string, string>}) => layer.annotations['org.opencontainers.image.title'].startsWith('values/'))
    const evil = Buffer.from('image:\n  repository: evil.example/steal\n')
    await writeFile(blob(sha256(evil)), evil)
    values.digest = `sha256:${sha256(evil)}`
    values.size = evil.length
    const text = JSON.stringify(manifest)
    await writeFile(blob(sha256(text)), text)
    index.manifests[0].digest = `sha256:${sha256(text)}`
    index.manifests[0].size = Buffer.byteLength(text)
    await writeFile(path.join(layout, 'index.json'), JSON.stringify(index))
    const tampered = `${airgap.host}/kod/packages/hello:tampered`
    await skopeo(['copy', '--preserve-digests', '--dest-tls-verify=false', `oci:${layout}:t`, `docker://${tampered}`])

    for (const args of [
      ['inspect', '-c', `oci://${tampered}`, '--plain-http'],
      ['deploy', '-c', `oci://${tampered}`, '-r', airgap.host, '--plain-http', '--list-commands'],
    ]) {
      const cwd = await mkdtemp(path.join(work, 'tampered-'))
      const refused = await kod(args, {cwd, env: helmEnv})
      expect(refused.exitCode, refused.stderr).to.equal(5)
      oneLineError(refused, /values\/01-upstream\.yaml does not match SHA256SUMS: the package's metadata was changed in the registry/)
      expect(await readdir(cwd)).to.deep.equal([])
    }
  })

  it('says what to do with a reference that holds no package, or that is not a package reference', async function () {
    const missing = await kod(['inspect', '-c', `oci://${airgap.host}/kod/packages/nope:1.0`, '--plain-http'])
    expect(missing.exitCode).to.equal(2)
    oneLineError(missing, /kod\/packages\/nope:1\.0 is not in the registry/)
    const bad = await kod(['deploy', '-c', 'oci://no-tag-here', '-r', airgap.host, '--plain-http'])
    expect(bad.exitCode).to.equal(2)
    oneLineError(bad, /a package in a registry is named oci:\/\/<registry>\/<prefix>\/packages\/<name>:<version>/)
  })

  it('populate --as-artifact pushes the package file as one artifact, and kod pull gets the same bytes back, verified', async function () {
    // The package was deleted above: make it again from the registry's copy of nothing — package anew.
    const upstreamAgain = await startRegistry()
    try {
      const layout = path.join(work, 'build')
      await skopeo(['copy', '--preserve-digests', '--dest-tls-verify=false', `oci:${layout}:hello`, `docker://${upstreamAgain.host}/kodtest/hello:1.0`])
      const values = path.join(work, 'again.yaml')
      await writeFile(values, YAML.stringify({image: {repository: `${upstreamAgain.host}/kodtest/hello`, tag: '1.0'}}))
      const file = path.join(work, 'again', 'hello.kodpkg')
      const packaged = await kod(['package', '-c', path.join(FIXTURES, 'charts', 'hello'), '-f', values, '-o', file, '--insecure-registry', upstreamAgain.host])
      expect(packaged.exitCode, packaged.stderr).to.equal(0)
      // Another build of the same version: its metadata would move the tag; refused before any image is pushed.
      const rebuilt = await kod(['populate', '-c', file, '-r', airgap.host, '--plain-http'], {cwd: await mkdtemp(path.join(work, 'rebuilt-'))})
      expect(rebuilt.exitCode, rebuilt.stderr).to.equal(7)
      oneLineError(rebuilt, /kod\/packages\/hello:0\.1\.0 already holds another build of hello:0\.1\.0: .*another --prefix, or replace it with --force-push$/)
      const catalog = (await (await fetch(`http://${airgap.host}/v2/_catalog`)).json()) as {repositories: string[]}
      expect(catalog.repositories.filter((repository) => repository.includes(upstreamAgain.host.replace(':', '-'))), 'no image pushed').to.deep.equal([])
      // deploy says the same, naming its own flag, which replaces it.
      const deployArgs = ['deploy', '-c', file, '-r', airgap.host, '--plain-http', '--no-install', '-n', 'shop']
      const metadataBefore = await remoteDigest(reference.slice('oci://'.length))
      const refused = await kod(deployArgs, {cwd: await mkdtemp(path.join(work, 'rebuilt-deploy-')), env: helmEnv})
      expect(refused.exitCode, refused.stderr).to.equal(7)
      oneLineError(refused, /already holds another build of hello:0\.1\.0: .*replace it with --force-push$/)
      const replaced = await kod([...deployArgs, '--force-push'], {cwd: await mkdtemp(path.join(work, 'rebuilt-deploy-')), env: helmEnv})
      expect(replaced.exitCode, replaced.stderr).to.equal(0)
      expect(replaced.stderr).to.match(/as --force-push asks/)
      expect(await remoteDigest(reference.slice('oci://'.length)), 'the metadata tag moved to the new build').to.not.equal(metadataBefore)
      const cwd = await mkdtemp(path.join(work, 'artifact-'))
      const pushed = await kod(['populate', '-c', file, '-r', airgap.host, '--plain-http', '--as-artifact'], {cwd})
      expect(pushed.exitCode, pushed.stderr).to.equal(0)
      const to = `oci://${airgap.host}/kod/packages/hello:0.1.0.kodpkg`
      expect(pushed.stderr).to.include(`kod pull -c ${to}`)
      expect(await readdir(cwd), 'nothing unpacked').to.deep.equal([])
      const raw = JSON.parse(await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${to.slice('oci://'.length)}`]))
      expect(raw.artifactType).to.equal('application/vnd.kod.package.archive.v1')
      expect(raw.layers).to.have.length(1)

      const into = path.join(work, 'pulled')
      const pulled = await kod(['pull', '-c', to, '--plain-http', '-o', into])
      expect(pulled.exitCode, pulled.stderr).to.equal(0)
      expect(await readFile(path.join(into, 'kod-hello-0.1.0.kodpkg'))).to.deep.equal(await readFile(file))
      // Pulled again where the file is: said before pulling anything.
      const again = await kod(['pull', '-c', to, '--plain-http', '-o', into])
      expect(again.exitCode).to.equal(2)
      oneLineError(again, new RegExp(`^Error: ${path.join(into, 'kod-hello-0.1.0.kodpkg').replaceAll('.', '\\.')} already exists: remove it or choose another name with -o$`))
      expect(again.stderr, 'nothing pulled').to.not.match(/Pull|Verif/)
      // The metadata reference is no package file, and says where to go instead.
      const wrong = await kod(['pull', '-c', reference, '--plain-http', '-o', path.join(work, 'pulled-wrong')])
      expect(wrong.exitCode).to.equal(2)
      oneLineError(wrong, /holds a populated package's metadata, not a package file: deploy it with kod deploy -c .*\(a package file pushed with populate --as-artifact is at oci:\/\/.*\/packages\/hello:0\.1\.0\.kodpkg\)$/)
      expect(await readdir(work)).to.not.include('pulled-wrong')
    } finally {
      await upstreamAgain.stop()
    }
  })
})
