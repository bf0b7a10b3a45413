import {expect} from 'chai'
import {execa} from 'execa'
import {createHash} from 'node:crypto'
import {mkdir, mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import * as tar from 'tar'
import YAML from 'yaml'

import {kod} from '../support/kod.js'
import {buildLayout} from '../support/oci-build.js'
import {remoteDigest, startRegistry, type TestRegistry} from '../support/registry.js'
import {toFormat1} from '../support/manifest.js'

/**
 * Every reference Docker accepts can be packaged (issue 6, part 2): tags the OCI layout's ref.name
 * grammar refuses (`_-`, `__`, a leading `_`, 128 characters), upper case, digest only, tag plus
 * digest, a registry with a port, repositories with `__` and `---`. They are pulled from a registry on
 * 127.0.0.1, packaged, the upstream is stopped, and they are populated into a second registry with
 * tag and digest intact. A format-1 package (no layoutName) still populates and deploys.
 */
const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex')
const OCI_REF_NAME = /^[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*(?:\/[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*)*$/
const TAG_128 = `v${'1_2.3-'.repeat(21)}Z`

interface Case {
  /** values key and template name */
  key: string
  repository: string
  tag?: string
  /** reference the chart by digest */
  pinned?: boolean
}

const CASES: Case[] = [
  {key: 'agent', repository: 'inbound-agent', tag: '3385.vf1123fb_515da_-1'},
  {key: 'underscores', repository: 'under', tag: 'a__b'},
  {key: 'mixed', repository: 'mixed', tag: 'x-_-y'},
  {key: 'long', repository: 'long', tag: TAG_128},
  {key: 'upper', repository: 'upper', tag: 'UPPER_Case-1.0'},
  {key: 'digestOnly', repository: 'pinned', pinned: true},
  {key: 'tagAndDigest', repository: 'both', tag: '_lead_', pinned: true},
  {key: 'oddRepository', repository: 'snake__case---dash', tag: '1.0'},
]

async function skopeo(args: string[]): Promise<void> {
  await execa('skopeo', args, {stdin: 'ignore'})
}

/** A chart with one Pod per image, each image a whole reference in `<key>.image`. */
async function writeChart(dir: string, name: string, images: Record<string, string>): Promise<void> {
  await mkdir(path.join(dir, 'templates'), {recursive: true})
  await writeFile(path.join(dir, 'Chart.yaml'), `apiVersion: v2\nname: ${name}\nversion: 0.1.0\n`)
  await writeFile(path.join(dir, 'values.yaml'), YAML.stringify(Object.fromEntries(Object.entries(images).map(([key, image]) => [key, {image}]))))
  for (const key of Object.keys(images)) {
    await writeFile(
      path.join(dir, 'templates', `${key}.yaml`),
      `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${key.toLowerCase()}\nspec:\n  containers:\n    - name: main\n      image: {{ .Values.${key}.image | quote }}\n`,
    )
  }
}

describe('every reference Docker accepts packages, populates and keeps tag and digest (e2e)', function () {
  let work: string
  let upstream: TestRegistry
  let airgap: TestRegistry
  let digests: Record<string, string>
  let kodpkg: string
  let plainPkg: string
  const reference = (item: Case, host = upstream.host): string =>
    `${host}/kodtest/${item.repository}${item.tag ? `:${item.tag}` : ''}${item.pinned ? `@${digests[item.key]}` : ''}`

  before(async function () {
    work = await mkdtemp(path.join(os.tmpdir(), 'kod-refs-'))
    upstream = await startRegistry()
    airgap = await startRegistry()
    const layout = path.join(work, 'build')
    digests = await buildLayout(layout, [
      ...CASES.map((item) => ({name: item.key, layers: [{files: {[`app/${item.key}`]: `${item.key}\n`}}]})),
      {name: 'plain', layers: [{files: {'app/plain': 'plain\n'}}]},
    ])
    for (const item of CASES) {
      const destination = `${upstream.host}/kodtest/${item.repository}:${item.tag ?? 'unused-by-the-chart'}`
      await skopeo(['copy', '--preserve-digests', '--dest-tls-verify=false', `oci:${layout}:${item.key}`, `docker://${destination}`])
    }
    await skopeo(['copy', '--preserve-digests', '--dest-tls-verify=false', `oci:${layout}:plain`, `docker://${upstream.host}/kodtest/plain:1.0`])

    const chart = path.join(work, 'refs')
    await writeChart(chart, 'refs', Object.fromEntries(CASES.map((item) => [item.key, reference(item)])))
    // -o FILE.kodpkg names the file; its directory is created.
    kodpkg = path.join(work, 'out', 'weird-references.kodpkg')
    const packaged = await kod(['package', '-c', chart, '-o', kodpkg, '--insecure-registry', upstream.host])
    expect(packaged.exitCode, packaged.stderr).to.equal(0)
    expect(packaged.stdout.trim()).to.match(/^.*weird-references\.kodpkg: refs 0\.1\.0, 8 image\(s\), /)

    // The format-1 case: plain references only (format 1 could not store the others).
    const plainChart = path.join(work, 'plain')
    await writeChart(plainChart, 'plain', {plain: `${upstream.host}/kodtest/plain:1.0`, pinned: `${upstream.host}/kodtest/pinned@${digests.digestOnly}`})
    const plainPackaged = await kod(['package', '-c', plainChart, '-o', path.join(work, 'out'), '--insecure-registry', upstream.host])
    expect(plainPackaged.exitCode, plainPackaged.stderr).to.equal(0)
    plainPkg = path.join(work, 'out', 'kod-plain-0.1.0.kodpkg')

    // From here on nothing may come from upstream.
    await upstream.stop()
  })

  after(async function () {
    await upstream?.stop()
    await airgap?.stop()
    if (work) await rm(work, {recursive: true, force: true})
  })

  it('-o FILE.kodpkg writes exactly that file', async function () {
    expect((await readdir(path.join(work, 'out'))).sort()).to.deep.equal(['kod-plain-0.1.0.kodpkg', 'weird-references.kodpkg'])
  })

  it('records each image with a valid layout name, its normalised name and the digest the registry served', async function () {
    const inspected = await kod(['inspect', '-c', kodpkg, '--json'])
    expect(inspected.exitCode, inspected.stderr).to.equal(0)
    const manifest = JSON.parse(inspected.stdout) as {formatVersion: number; images: Array<{ref: string; name: string; layoutName: string; digest: string}>}
    expect(manifest.formatVersion).to.equal(4)
    const byRef = new Map(manifest.images.map((image) => [image.ref, image]))
    for (const item of CASES) {
      const image = byRef.get(reference(item))
      expect(image, reference(item)).to.not.equal(undefined)
      expect(image!.name).to.equal(reference(item))
      expect(image!.digest, item.key).to.equal(digests[item.key])
      expect(image!.layoutName, item.key).to.match(OCI_REF_NAME)
    }
    // images/index.json names each image by its layoutName.
    const dir = path.join(work, 'extracted')
    await mkdir(dir)
    await tar.extract({file: kodpkg, cwd: dir})
    const index = JSON.parse(await readFile(path.join(dir, 'images', 'index.json'), 'utf8')) as {
      manifests: Array<{digest: string; annotations: Record<string, string>}>
    }
    const stored = index.manifests.map((entry) => [entry.annotations['org.opencontainers.image.ref.name'], entry.digest]).sort()
    expect(stored).to.deep.equal(manifest.images.map((image) => [image.layoutName, image.digest]).sort())
  })

  it('populates a second registry under the original tags, digests intact', async function () {
    const populated = await kod(['populate', '-c', kodpkg, '-r', airgap.host, '--plain-http'], {cwd: work})
    expect(populated.exitCode, populated.stderr).to.equal(0)
    const relocated = (item: Case): string => `${airgap.host}/kod/${upstream.host.replace(':', '-')}/kodtest/${item.repository}`
    for (const item of CASES) {
      if (item.tag) expect(await remoteDigest(`${relocated(item)}:${item.tag}`), item.key).to.equal(digests[item.key])
      expect(await remoteDigest(`${relocated(item)}@${digests[item.key]}`), item.key).to.equal(digests[item.key])
      if (item.tag) {
        const {stdout} = await execa('skopeo', ['list-tags', '--tls-verify=false', `docker://${relocated(item)}`], {stdin: 'ignore'})
        expect((JSON.parse(String(stdout)) as {Tags: string[]}).Tags, item.key).to.deep.equal([item.tag])
      }
    }
  })

  it('a format-1 package (one chart, no layoutName, images named by their normalised name) still populates and deploys', async function () {
    const dir = path.join(work, 'format-1')
    await mkdir(dir)
    await tar.extract({file: plainPkg, cwd: dir})
    const manifestFile = path.join(dir, 'kod-package.yaml')
    const {manifest, layoutNames: names} = toFormat1(YAML.parse(await readFile(manifestFile, 'utf8')) as Record<string, unknown>)
    await writeFile(manifestFile, YAML.stringify(manifest))
    const indexFile = path.join(dir, 'images', 'index.json')
    const index = JSON.parse(await readFile(indexFile, 'utf8')) as {manifests: Array<{annotations: Record<string, string>}>}
    for (const entry of index.manifests) {
      const key = 'org.opencontainers.image.ref.name'
      entry.annotations[key] = names.get(entry.annotations[key])!
    }
    await writeFile(indexFile, JSON.stringify(index))
    // The two files changed: their checksums follow, as a format-1 kod would have written them.
    const sumsFile = path.join(dir, 'SHA256SUMS')
    const sums = (await readFile(sumsFile, 'utf8')).split('\n').filter(Boolean)
    const fresh = await Promise.all(
      sums.map(async (line) => {
        const file = line.slice(66)
        return ['kod-package.yaml', 'images/index.json'].includes(file) ? `${sha256(await readFile(path.join(dir, file)))}  ${file}` : line
      }),
    )
    await writeFile(sumsFile, `${fresh.join('\n')}\n`)

    const inspected = await kod(['inspect', '-c', dir, '--json'])
    expect(inspected.exitCode, inspected.stderr).to.equal(0)
    expect(JSON.parse(inspected.stdout).formatVersion).to.equal(1)

    // Under a prefix of its own: what the format-3 package pushed above cannot stand in for it.
    const base = `${airgap.host}/format1/${upstream.host.replace(':', '-')}/kodtest`
    expect(await remoteDigest(`${base}/plain:1.0`).then(() => 'there', () => 'absent')).to.equal('absent')
    const populated = await kod(['populate', '-c', dir, '-r', airgap.host, '--plain-http', '--prefix', 'format1'])
    expect(populated.exitCode, populated.stderr).to.equal(0)
    const listed = await kod(['populate', '-c', dir, '-r', airgap.host, '--plain-http', '--prefix', 'format1', '--list-commands'])
    expect(listed.stdout).to.include(`oci:${path.join(dir, 'images')}:${upstream.host}/kodtest/plain:1.0 `)
    expect(await remoteDigest(`${base}/plain:1.0`)).to.equal(digests.plain)
    expect(await remoteDigest(`${base}/pinned@${digests.digestOnly}`)).to.equal(digests.digestOnly)

    const memory = path.join(work, 'helm-memory.yaml')
    await writeFile(memory, '[]\n')
    const env = {HELM_DRIVER: 'memory', HELM_MEMORY_DRIVER_DATA: memory, HOME: work}
    const deployed = await kod(['deploy', '-c', dir, '-r', airgap.host, '--plain-http', '--prefix', 'format1', '-n', 'ns', '-d', 'rel', '--dry-run'], {env})
    expect(deployed.exitCode, deployed.stderr).to.equal(0)
    expect(deployed.stdout).to.match(/^NAME: rel$/m)
  })
})
