import {expect} from 'chai'
import {execa} from 'execa'
import {createHash} from 'node:crypto'
import {chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import * as tar from 'tar'
import YAML from 'yaml'

import {imagesInManifests} from '../../packages/helm-analysis/src/render.js'
import {formatPlatform, hostPlatform} from '../../src/lib/platforms.js'
import {oneLineError} from '../support/assertions.js'
import {kod, TOOLS_BIN, toolPath} from '../support/kod.js'
import {buildLayout} from '../support/oci-build.js'
import {startRegistry, type TestRegistry} from '../support/registry.js'

/**
 * Platforms (issue 9, part 4) and a tag for every pushed manifest (part 3), with real skopeo, helm and
 * registries on 127.0.0.1. Two-platform images (an OCI index over linux/amd64 and linux/arm64) are
 * packaged for one platform: the stored index holds exactly that one, the manifest records the source's
 * digest and what was dropped, and after populate and deploy the rendered reference of an image the chart
 * pins by its index digest names a digest the private registry serves: the trimmed index.
 */
const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex')

interface StoredImage {
  ref: string
  name: string
  layoutName: string
  digest: string
  platforms: string[]
  sourceDigest?: string
  droppedPlatforms?: string[]
}

interface Manifest {
  formatVersion: number
  platforms?: string[] | 'all'
  platformsFromHost?: boolean
  warnings?: string[]
  units: Array<{images: Array<{name: string; ref: string; values: Array<{path: string; value: string; replace: number}>}>}>
  images: StoredImage[]
}

/** A raw manifest or index as the registry serves it, and the digest of its bytes. */
async function remote(reference: string): Promise<{digest: string; json: {manifests?: Array<{digest: string; platform?: {os: string; architecture: string}}>; config?: unknown}}> {
  const raw = await execa('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reference}`], {stdin: 'ignore', encoding: 'buffer'})
  const bytes = Buffer.from(raw.stdout)
  return {digest: `sha256:${sha256(bytes)}`, json: JSON.parse(bytes.toString('utf8'))}
}

async function tags(repository: string): Promise<string[]> {
  const {stdout} = await execa('skopeo', ['list-tags', '--tls-verify=false', `docker://${repository}`], {stdin: 'ignore'})
  return (JSON.parse(String(stdout)) as {Tags: string[]}).Tags
}

/** A chart with one Pod per image: `<key>.image` a whole reference, or (split) registry, repository and digest apart. */
async function writeChart(dir: string, images: Record<string, string | {registry: string; repository: string; digest: string}>): Promise<void> {
  await mkdir(path.join(dir, 'templates'), {recursive: true})
  await writeFile(path.join(dir, 'Chart.yaml'), 'apiVersion: v2\nname: plat\nversion: 0.1.0\n')
  await writeFile(path.join(dir, 'values.yaml'), YAML.stringify(Object.fromEntries(Object.entries(images).map(([key, image]) => [key, {image}]))))
  for (const [key, image] of Object.entries(images)) {
    const reference =
      typeof image === 'string'
        ? `{{ .Values.${key}.image | quote }}`
        : `{{ printf "%s/%s@%s" .Values.${key}.image.registry .Values.${key}.image.repository .Values.${key}.image.digest | quote }}`
    await writeFile(
      path.join(dir, 'templates', `${key}.yaml`),
      `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${key.toLowerCase()}\nspec:\n  containers:\n    - name: main\n      image: ${reference}\n`,
    )
  }
}

describe('platforms: a two-platform image packaged for one, relocated and served at the referenced digest (e2e)', function () {
  let work: string
  let upstream: TestRegistry
  let airgap: TestRegistry
  let digests: Record<string, string>
  let chart: string
  const packages: Record<string, {file: string; manifest: Manifest; stdout: string; stderr: string}> = {}
  let refused: {exitCode: number; stdout: string; stderr: string}
  let refusedOut: string
  let defaulted: {exitCode: number; stdout: string; stderr: string}
  const host = formatPlatform(hostPlatform())
  const ref = (name: string, tail: string): string => `${upstream.host}/kodtest/${name}${tail}`
  const image = (manifest: Manifest, name: string): StoredImage => {
    const found = manifest.images.find((candidate) => candidate.name.includes(`/kodtest/${name}`))
    if (!found) throw new Error(`no image ${name} in ${JSON.stringify(manifest.images)}`)
    return found
  }

  /** Packages the chart with these flags into a directory of its own; the manifest as inspect --json prints it. */
  async function packageWith(key: string, flags: string[], env?: Record<string, string>, from = chart): Promise<void> {
    const out = path.join(work, `out-${key}`)
    const result = await kod(['package', '-c', from, '-o', out, '--insecure-registry', upstream.host, ...flags], {env})
    expect(result.exitCode, result.stderr).to.equal(0)
    const file = path.join(out, (await readdir(out))[0])
    const inspected = await kod(['inspect', '-c', file, '--json'])
    expect(inspected.exitCode, inspected.stderr).to.equal(0)
    packages[key] = {file, manifest: JSON.parse(inspected.stdout) as Manifest, stdout: result.stdout, stderr: result.stderr}
  }

  before(async function () {
    work = await mkdtemp(path.join(os.tmpdir(), 'kod-platforms-'))
    upstream = await startRegistry()
    airgap = await startRegistry()
    const layout = path.join(work, 'build')
    digests = await buildLayout(layout, [
      {name: 'multi', layers: [{files: {'app/multi': 'multi\n'}}], architectures: ['amd64', 'arm64']},
      {name: 'other', layers: [{files: {'app/other': 'other\n'}}], architectures: ['amd64', 'arm64']},
      {name: 'split', layers: [{files: {'app/split': 'split\n'}}], architectures: ['amd64', 'arm64']},
      {name: 'single', layers: [{files: {'app/single': 'single\n'}}]},
      {name: 'armonly', layers: [{files: {'app/armonly': 'armonly\n'}}], architectures: ['arm64', 's390x']},
    ])
    const pushes: Record<string, string> = {multi: 'unused-by-the-chart', other: '2.0', split: 'unused-by-the-chart', single: 'unused-by-the-chart', armonly: '1.0'}
    for (const [name, tag] of Object.entries(pushes)) {
      await execa('skopeo', ['copy', '--all', '--preserve-digests', '--dest-tls-verify=false', `oci:${layout}:${name}`, `docker://${ref(name, `:${tag}`)}`], {stdin: 'ignore'})
    }
    chart = path.join(work, 'plat')
    await writeChart(chart, {
      // Pinned by the digest of its two-platform index, in the value that relocates it.
      pinned: ref('multi', `@${digests.multi}`),
      // By tag.
      tagged: ref('other', ':2.0'),
      // Pinned by index digest through a value of its own: kod cannot point it at a trimmed index.
      split: {registry: upstream.host, repository: 'kodtest/split', digest: digests.split},
      // A single-platform (amd64) image pinned by digest: it gets a tag when pushed.
      single: ref('single', `@${digests.single}`),
    })

    await packageWith('arm64', ['--platform', 'linux/arm64'])
    // A source that will not show its manifest before the pull (skopeo inspect fails; the copy works): kod
    // chooses from what the copy stored, trimming it in the layout.
    const shims = path.join(work, 'shims')
    await mkdir(shims)
    const realSkopeo = String((await execa('sh', ['-c', 'command -v skopeo'])).stdout).trim()
    await writeFile(path.join(shims, 'skopeo'), `#!/bin/sh\nif [ "$1" = inspect ]; then echo 'simulated: no manifest for you' >&2; exit 1; fi\nexec '${realSkopeo}' "$@"\n`)
    await chmod(path.join(shims, 'skopeo'), 0o755)
    const taggedOnly = path.join(work, 'tagged-only')
    await writeChart(taggedOnly, {tagged: ref('other', ':2.0')})
    await packageWith('late', ['--platform', 'linux/arm64'], {PATH: toolPath([shims])}, taggedOnly)
    await packageWith('all', ['--all-platforms'])
    defaulted = await kod(['package', '-c', chart, '-o', path.join(work, 'out-default'), '--insecure-registry', upstream.host, '--json'])

    // An image whose index lacks the platform asked for.
    const lacking = path.join(work, 'lacking')
    await writeChart(lacking, {tagged: ref('other', ':2.0'), arm: ref('armonly', ':1.0')})
    refusedOut = path.join(work, 'out-refused')
    refused = await kod(['package', '-c', lacking, '-o', refusedOut, '--insecure-registry', upstream.host, '--platform', 'linux/amd64'])

    // From here on nothing may come from upstream.
    await upstream.stop()
  })

  after(async function () {
    await upstream?.stop()
    await airgap?.stop()
    if (work) await rm(work, {recursive: true, force: true})
  })

  it('--platform linux/arm64: the stored index holds exactly that platform; the manifest records the source digest and what was dropped', async function () {
    const {manifest, file, stderr} = packages.arm64
    expect(manifest.formatVersion).to.equal(4)
    expect(manifest.platforms).to.deep.equal(['linux/arm64'])
    expect(manifest.platformsFromHost).to.equal(undefined)
    const dir = path.join(work, 'extracted-arm64')
    await mkdir(dir)
    await tar.extract({file, cwd: dir})
    const blob = async (digest: string): Promise<Buffer> => readFile(path.join(dir, 'images', 'blobs', 'sha256', digest.slice('sha256:'.length)))

    for (const name of ['multi', 'other']) {
      const stored = image(manifest, name)
      expect(stored.sourceDigest, name).to.equal(digests[name])
      expect(stored.digest, name).to.not.equal(digests[name])
      expect(stored.platforms, name).to.deep.equal(['linux/arm64'])
      expect(stored.droppedPlatforms, name).to.deep.equal(['linux/amd64'])
      const bytes = await blob(stored.digest)
      expect(`sha256:${sha256(bytes)}`).to.equal(stored.digest)
      const index = JSON.parse(bytes.toString('utf8')) as {mediaType: string; manifests: Array<{digest: string; platform: {architecture: string}}>}
      // The source's media type, and only the arm64 entry of the source's index, as the source has it.
      const source = JSON.parse(await readFile(path.join(work, 'build', 'blobs', 'sha256', digests[name].slice('sha256:'.length)), 'utf8')) as typeof index
      expect(index.mediaType).to.equal('application/vnd.oci.image.index.v1+json')
      expect(index).to.deep.equal({...source, manifests: source.manifests.filter((entry) => entry.platform.architecture === 'arm64')})
      // The kept platform's manifest is in the package; the dropped one's is not.
      expect(`sha256:${sha256(await blob(index.manifests[0].digest))}`).to.equal(index.manifests[0].digest)
      const dropped = source.manifests.find((entry) => entry.platform.architecture === 'amd64')!
      expect(await blob(dropped.digest).then(() => 'there', () => 'absent')).to.equal('absent')
      // The dropped platform's manifest is not in the package.
      const layoutIndex = JSON.parse(await readFile(path.join(dir, 'images', 'index.json'), 'utf8')) as {manifests: Array<{digest: string; annotations: Record<string, string>}>}
      expect(layoutIndex.manifests.find((entry) => entry.annotations['org.opencontainers.image.ref.name'] === stored.layoutName)?.digest).to.equal(stored.digest)
      // Exactly the four images, none of the names their platforms were pulled under.
      expect(layoutIndex.manifests).to.have.length(4)
    }
    const blobs = await readdir(path.join(dir, 'images', 'blobs', 'sha256'))
    // multi, other: index + arm64 manifest, config, layer; split: index + 2 × (manifest, config) + 1 layer; single: manifest, config, layer
    expect(blobs).to.have.length(4 + 4 + 6 + 3)

    // The pinned value now carries the stored index's digest, after the location deploy replaces.
    const pinned = manifest.units[0].images.find((entry) => entry.name.includes('/kodtest/multi'))!
    expect(pinned.ref).to.equal(ref('multi', `@${digests.multi}`))
    expect(pinned.values).to.deep.equal([{path: 'pinned.image', value: ref('multi', `@${image(manifest, 'multi').digest}`), replace: upstream.host.length}])

    // The digest is set apart from the value that relocates "split": all its platforms are kept, said.
    const split = image(manifest, 'split')
    expect(split.digest).to.equal(digests.split)
    expect(split.platforms).to.deep.equal(['linux/amd64', 'linux/arm64'])
    expect(split.sourceDigest).to.equal(undefined)
    expect(stderr).to.match(/Warning: \S+kodtest\/split@sha256:\S+ is pinned to the digest of a multi-platform index .* kept all its platforms \(linux\/amd64, linux\/arm64\)/)

    // A single-platform image for another platform is kept as it is, said and recorded.
    expect(image(manifest, 'single').platforms).to.deep.equal(['linux/amd64'])
    expect(image(manifest, 'single').digest).to.equal(digests.single)
    const mismatch = `${ref('single', `@${digests.single}`)} is built for linux/amd64 only, not for linux/arm64: packaged as it is`
    expect(stderr).to.include(`Warning: ${mismatch}`)
    expect(manifest.warnings).to.deep.equal([mismatch])
  })

  it('when the source shows no manifest before the pull, trims what the copy stored: the same index, the dropped blobs gone', async function () {
    const {manifest, file} = packages.late
    const stored = image(manifest, 'other')
    expect(stored.digest).to.equal(image(packages.arm64.manifest, 'other').digest)
    expect(stored.sourceDigest).to.equal(digests.other)
    expect(stored.droppedPlatforms).to.deep.equal(['linux/amd64'])
    const dir = path.join(work, 'extracted-late')
    await mkdir(dir)
    await tar.extract({file, cwd: dir})
    // The trimmed index, the arm64 manifest, its config, the layer: the source index and amd64's blobs were removed.
    expect(await readdir(path.join(dir, 'images', 'blobs', 'sha256'))).to.have.length(4)
    const verified = await kod(['inspect', '-c', file])
    expect(verified.exitCode, verified.stderr).to.equal(0)
  })

  it('kod inspect shows the platforms kept, per image, and those dropped', async function () {
    const shown = await kod(['inspect', '-c', packages.arm64.file])
    expect(shown.exitCode, shown.stderr).to.equal(0)
    expect(shown.stdout).to.include('Platforms: linux/arm64 (--platform)')
    expect(shown.stdout).to.match(/kodtest\/other:2\.0\s+sha256:\S+\s+linux\/arm64 \(dropped linux\/amd64\)/)
    expect(shown.stdout).to.match(/kodtest\/split@sha256:\S+\s+sha256:\S+\s+linux\/amd64,linux\/arm64\s/)
    const multi = image(packages.arm64.manifest, 'multi')
    expect(shown.stdout).to.include(`stored as ${multi.digest} (linux/arm64), from the source's ${digests.multi} (dropped linux/amd64)`)
    const all = await kod(['inspect', '-c', packages.all.file])
    expect(all.stdout).to.include('Platforms: all (--all-platforms)')
  })

  it('--all-platforms keeps every platform, byte for byte', function () {
    const {manifest} = packages.all
    expect(manifest.platforms).to.equal('all')
    for (const name of ['multi', 'other', 'split']) {
      const stored = image(manifest, name)
      expect(stored.digest, name).to.equal(digests[name])
      expect(stored.platforms, name).to.deep.equal(['linux/amd64', 'linux/arm64'])
      expect(stored.sourceDigest, name).to.equal(undefined)
      expect(stored.droppedPlatforms, name).to.equal(undefined)
    }
    expect(manifest.warnings ?? []).to.deep.equal([])
    expect(packages.all.stderr).to.not.match(/Warning|Platform /)
  })

  it('by default keeps the packaging machine\'s platform, and says so (on stderr, and in --json)', async function () {
    expect(defaulted.exitCode, defaulted.stderr).to.equal(0)
    const result = JSON.parse(defaulted.stdout) as {platforms: string[]; platformsFromHost: boolean; file: string}
    expect(result.platforms).to.deep.equal([host])
    expect(result.platformsFromHost).to.equal(true)
    const inspected = JSON.parse((await kod(['inspect', '-c', result.file, '--json'])).stdout) as Manifest
    expect(inspected.platforms).to.deep.equal([host])
    expect(inspected.platformsFromHost).to.equal(true)
    expect((await kod(['inspect', '-c', result.file])).stdout).to.include(`Platforms: ${host} (the packaging machine's, by default)`)
  })

  it('says the default on stderr before pulling', async function () {
    // The upstream is gone: the pull fails, but only after kod said which platform it keeps.
    const result = await kod(['package', '-c', chart, '-o', path.join(work, 'out-gone'), '--insecure-registry', upstream.host])
    expect(result.exitCode).to.equal(4)
    expect(result.stderr).to.include(`Platform ${host}: this machine's, the default (kod cannot know the cluster's); multi-platform images keep only it. Choose with --platform os/arch (repeatable) or --all-platforms`)
    expect(await readdir(path.join(work, 'out-gone')).catch(() => [])).to.deep.equal([])
  })

  it('refuses an index that has none of the platforms asked for, with one line naming it, its platforms and the flag; nothing is left', async function () {
    expect(refused.exitCode, refused.stderr).to.equal(2)
    oneLineError(
      refused,
      new RegExp(`^Error: ${ref('armonly', ':1.0').replaceAll('.', '\\.')} has no image for linux/amd64: it is built for linux/arm64, linux/s390x; choose with --platform linux/arm64 \\(repeatable\\), or keep every platform with --all-platforms$`),
    )
    expect(await readdir(refusedOut).catch(() => [])).to.deep.equal([])
  })

  it('populates and deploys: the pinned reference names the trimmed index, which the private registry serves; digest-pinned images are tagged', async function () {
    const cwd = path.join(work, 'airgap-side')
    await mkdir(cwd)
    const {file, manifest} = packages.arm64
    const memory = path.join(work, 'helm-memory.yaml')
    await writeFile(memory, '[]\n')
    const env = {HELM_DRIVER: 'memory', HELM_MEMORY_DRIVER_DATA: memory, HOME: work}
    const listed = await kod(['deploy', '-c', file, '-r', airgap.host, '--plain-http', '-n', 'ns', '-d', 'rel', '--no-install', '--list-commands'], {cwd, env})
    expect(listed.exitCode, listed.stderr).to.equal(0)
    const helm = listed.stdout.trim().split('\n')
    expect(helm).to.have.length(1)
    const [binary, ...args] = helm[0].split(' ')
    expect(binary).to.equal('helm')
    expect(args.slice(0, 2)).to.deep.equal(['upgrade', '--install'])
    const rendered = await execa(path.join(TOOLS_BIN, binary), [...args, '--dry-run=client'], {env: {...process.env, ...env}, stdin: 'ignore'})
    const images = imagesInManifests(String(rendered.stdout)).map((entry) => entry.ref)
    expect(images).to.have.length(4)
    const relocated = `${airgap.host}/kod/${upstream.host.replace(':', '-')}/kodtest`
    const multi = image(manifest, 'multi')
    expect(images).to.include(`${relocated}/multi@${multi.digest}`)
    expect(images).to.include(`${relocated}/split@${digests.split}`)
    expect(images).to.include(`${relocated}/single@${digests.single}`)
    expect(images).to.include(`${relocated}/other:2.0`)
    for (const reference of images.filter((entry) => entry.includes('@'))) {
      expect((await remote(reference)).digest, reference).to.equal(reference.slice(reference.indexOf('@') + 1))
    }
    // The pinned image, as the cluster pulls it: the trimmed index, holding only the kept platform.
    const served = await remote(`${relocated}/multi@${multi.digest}`)
    expect(served.json.manifests?.map((entry) => `${entry.platform?.os}/${entry.platform?.architecture}`)).to.deep.equal(['linux/arm64'])
    const child = await remote(`${relocated}/multi@${served.json.manifests![0].digest}`)
    expect(child.json.config).to.not.equal(undefined)
    // The tag by tag: the trimmed index too.
    expect((await remote(`${relocated}/other:2.0`)).digest).to.equal(image(manifest, 'other').digest)

    // Every image pinned by digest alone has a tag: kod-<hex of the digest stored>.
    expect(await tags(`${relocated}/multi`)).to.deep.equal([`kod-${multi.digest.slice('sha256:'.length)}`])
    expect(await tags(`${relocated}/single`)).to.deep.equal([`kod-${digests.single.slice('sha256:'.length)}`])
    expect(await tags(`${relocated}/split`)).to.deep.equal([`kod-${digests.split.slice('sha256:'.length)}`])
    expect((await remote(`${relocated}/single:kod-${digests.single.slice('sha256:'.length)}`)).digest).to.equal(digests.single)

    // A second populate finds every tag holding its image (by the digests the package records) and pushes nothing.
    const again = await kod(['populate', '-c', file, '-r', airgap.host, '--plain-http'], {cwd})
    expect(again.exitCode, again.stderr).to.equal(0)
    expect(again.stderr).to.match(/holds every image and chart of .* already, with the same digests.*nothing to push, nothing unpacked/)
    // From the unpacked directory (no head to read), the same is found tag by tag.
    const [unpacked] = (await readdir(cwd)).filter((name) => name.startsWith('kod-'))
    const fromDir = await kod(['populate', '-c', path.join(cwd, unpacked), '-r', airgap.host, '--plain-http'], {cwd})
    expect(fromDir.exitCode, fromDir.stderr).to.equal(0)
    expect(fromDir.stderr).to.match(/pushed 0 image\(s\) .*; 4 image\(s\) and \d+ chart\(s\) were there already/)
  })

  it('refuses to move a kod- tag that holds another image (exit 7), as any tag', async function () {
    const {file, manifest} = packages.arm64
    const single = image(manifest, 'single')
    const tag = `kod-${single.digest.slice('sha256:'.length)}`
    const squatted = `${airgap.host}/squat/${upstream.host.replace(':', '-')}/kodtest/single:${tag}`
    const layout = path.join(work, 'squatter')
    await buildLayout(layout, [{name: 'squatter', layers: [{files: {'app/squatter': 'not the same\n'}}]}])
    await execa('skopeo', ['copy', '--dest-tls-verify=false', `oci:${layout}:squatter`, `docker://${squatted}`], {stdin: 'ignore'})
    const result = await kod(['populate', '-c', file, '-r', airgap.host, '--plain-http', '--prefix', 'squat'], {cwd: path.join(work, 'airgap-side')})
    expect(result.exitCode, result.stderr).to.equal(7)
    oneLineError(result, new RegExp(`${squatted.replaceAll('.', '\\.')} already holds something other than`))
  })
})
