import {expect} from 'chai'
import {mkdir, mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import * as tar from 'tar'
import YAML from 'yaml'

import {extractPackage, parseManifest, verifyArchive, verifyDirectory, writePackage} from '../../src/lib/kodpkg.js'
import {demoManifest} from '../support/manifest.js'

const manifest = demoManifest()

async function expectRejection(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (error: unknown) => error as Error,
  )
  expect(error, 'expected a rejection').to.be.instanceOf(Error)
  expect(error!.message).to.match(pattern)
}

describe('the .kodpkg format', function () {
  let dir: string
  let file: string

  beforeEach(async function () {
    dir = await mkdtemp(path.join(os.tmpdir(), 'kod-format-'))
    const staging = path.join(dir, 'staging')
    await mkdir(path.join(staging, 'charts'), {recursive: true})
    await mkdir(path.join(staging, 'values'), {recursive: true})
    await writeFile(path.join(staging, 'charts', 'demo-1.0.0.tgz'), 'not really a chart')
    await writeFile(path.join(staging, 'values', '01-base.yaml'), 'a: 1\n')
    file = path.join(dir, 'kod-demo-1.0.0.kodpkg')
    await writePackage(staging, manifest, file)
  })

  afterEach(async function () {
    await rm(dir, {recursive: true, force: true})
  })

  it('writes a tar with the manifest first and checksums covering every file', async function () {
    const entries: string[] = []
    await tar.list({file, onReadEntry: (entry) => entries.push(entry.path)})
    expect(entries).to.deep.equal(['kod-package.yaml', 'SHA256SUMS', 'charts/demo-1.0.0.tgz', 'values/01-base.yaml'])
    expect((await readdir(dir)).sort()).to.deep.equal(['kod-demo-1.0.0.kodpkg', 'staging'])
    const summary = await verifyArchive(file)
    expect(summary.manifest).to.deep.equal(manifest)
    expect(summary.files).to.equal(4)
  })

  it('round-trips through extraction, and sha256sum-style lines', async function () {
    const out = path.join(dir, 'out')
    expect(await extractPackage(file, out)).to.deep.equal(manifest)
    const sums = await readFile(path.join(out, 'SHA256SUMS'), 'utf8')
    expect(sums).to.match(/^[a-f0-9]{64} {2}charts\/demo-1\.0\.0\.tgz$/m)
    expect(await verifyDirectory(out)).to.deep.equal(manifest)
  })

  it('names the file whose checksum does not match, in a directory and in an archive', async function () {
    const out = path.join(dir, 'out')
    await extractPackage(file, out)
    await writeFile(path.join(out, 'values', '01-base.yaml'), 'a: 2\n')
    await expectRejection(verifyDirectory(out), /checksum mismatch for values\/01-base\.yaml/)

    const repacked = path.join(dir, 'tampered.kodpkg')
    await tar.create({cwd: out, file: repacked}, ['kod-package.yaml', 'SHA256SUMS', 'charts', 'values'])
    await expectRejection(verifyArchive(repacked), /checksum mismatch for values\/01-base\.yaml/)
    await expectRejection(extractPackage(repacked, path.join(dir, 'again')), /checksum mismatch for values\/01-base\.yaml/)
    expect(await readdir(dir)).to.not.include('again')
  })

  it('refuses files the manifest names but the checksums do not cover, and missing files', async function () {
    const out = path.join(dir, 'out')
    await extractPackage(file, out)
    const sums = await readFile(path.join(out, 'SHA256SUMS'), 'utf8')
    await writeFile(path.join(out, 'SHA256SUMS'), sums.split('\n').filter((line) => !line.includes('charts/')).join('\n'))
    await expectRejection(verifyDirectory(out), /charts\/demo-1\.0\.0\.tgz is not covered by SHA256SUMS/)
    await writeFile(path.join(out, 'SHA256SUMS'), sums)
    await rm(path.join(out, 'values', '01-base.yaml'))
    await expectRejection(verifyDirectory(out), /values\/01-base\.yaml is missing/)
  })

  it('validates the manifest against the schema, and names unsupported format versions', function () {
    expect(() => parseManifest(YAML.stringify({...manifest, formatVersion: 5}), 'x')).to.throw(/package format 5 is not supported by this kod \(reads formats 1, 2, 3, 4\)/)
    // Format 3 reads as format 4 without `external`; `external` is true or absent.
    expect(parseManifest(YAML.stringify({...manifest, formatVersion: 3}), 'x').formatVersion).to.equal(3)
    const [first] = manifest.units
    const image = {name: 'docker.io/library/nginx:1', ref: 'nginx:1', values: [], foundIn: ['t'], note: 'hard-coded', external: false}
    expect(() => parseManifest(YAML.stringify({...manifest, units: [{...first, installed: false, images: [image]}]}), 'x')).to.throw(/\/units\/0\/images\/0\/external must be equal to constant/)
    expect(() => parseManifest(YAML.stringify({...manifest, images: [{ref: 'nginx'}]}), 'x')).to.throw(/\/images\/0 must have required property/)
    const [unit] = manifest.units
    expect(() => parseManifest(YAML.stringify({...manifest, units: [{...unit, values: ['../escape']}]}), 'x')).to.throw(/\/units\/0\/values\/0 must match pattern/)
    expect(() => parseManifest('a: [', 'x')).to.throw(/not valid YAML/)
  })

  it('checks what the schema cannot: units, charts and images name each other', function () {
    const [unit] = manifest.units
    const image = {ref: 'nginx:1', name: 'docker.io/library/nginx:1', layoutName: 'nginx+0123456789abcdef', digest: `sha256:${'a'.repeat(64)}`, platforms: [], units: ['demo']}
    const runs = {name: image.name, ref: image.ref, values: [], foundIn: ['t']}
    expect(() => parseManifest(YAML.stringify({...manifest, units: [unit, unit]}), 'x')).to.throw(/unit demo appears twice/)
    expect(() => parseManifest(YAML.stringify({...manifest, units: [{...unit, needs: ['db']}]}), 'x')).to.throw(/needs db, which is not an earlier unit/)
    expect(() => parseManifest(YAML.stringify({...manifest, units: [{...unit, chart: 'charts/other.tgz'}]}), 'x')).to.throw(/not among the charts/)
    // A unit recorded but not installed names its chart as its source did, packaged or not.
    const recorded = {...unit, id: 'off', release: 'off', chart: '../charts/cm2', values: [], installed: false}
    expect(parseManifest(YAML.stringify({...manifest, units: [unit, recorded]}), 'x').units[1].chart).to.equal('../charts/cm2')
    expect(() => parseManifest(YAML.stringify({...manifest, units: [{...unit, images: [runs]}]}), 'x')).to.throw(/not among the images/)
    expect(() => parseManifest(YAML.stringify({...manifest, images: [{...image, units: ['web']}]}), 'x')).to.throw(/names unit web, which does not exist/)
    expect(parseManifest(YAML.stringify({...manifest, units: [{...unit, images: [runs]}], images: [image]}), 'x').images).to.have.length(1)
  })

  it('reads a format-1 or -2 manifest (one chart) as one unit named after the chart', function () {
    const image = {ref: 'nginx:1', name: 'docker.io/library/nginx:1', digest: `sha256:${'a'.repeat(64)}`, platforms: ['linux/amd64'], values: [{path: 'image.repository', value: 'nginx', replace: 0}], foundIn: ['demo/templates/d.yaml'], note: 'partly hard-coded'}
    const legacy = {
      formatVersion: 1,
      kodVersion: '0.1.0',
      created: manifest.created,
      source: manifest.source,
      name: 'demo',
      version: '1.0.0',
      charts: manifest.charts,
      values: ['values/01-base.yaml'],
      hints: [],
      images: [image],
      sourceData: {render: {kubeVersion: '1.30.0'}},
    }
    const read = parseManifest(YAML.stringify(legacy), 'x')
    expect(read.formatVersion).to.equal(1)
    expect(read.units).to.deep.equal([
      {
        id: 'demo',
        release: 'demo',
        chart: 'charts/demo-1.0.0.tgz',
        values: ['values/01-base.yaml'],
        installed: true,
        needs: [],
        images: [{name: image.name, ref: image.ref, values: image.values, foundIn: image.foundIn, note: image.note}],
        data: {render: {kubeVersion: '1.30.0'}},
      },
    ])
    expect(read.images).to.deep.equal([{ref: image.ref, name: image.name, digest: image.digest, platforms: image.platforms, units: ['demo']}])
    expect(read.sourceData).to.equal(undefined)
    const format2 = parseManifest(YAML.stringify({...legacy, formatVersion: 2, images: [{...image, layoutName: 'nginx+0123456789abcdef'}], warnings: ['w']}), 'x')
    expect(format2.images[0].layoutName).to.equal('nginx+0123456789abcdef')
    expect(format2.warnings).to.deep.equal(['w'])
  })

  it('is not a package when it is not a tar', async function () {
    const junk = path.join(dir, 'junk.kodpkg')
    await writeFile(junk, 'hello')
    await expectRejection(verifyArchive(junk), /not a (readable )?kod package/)
  })
})
