import {expect} from 'chai'
import {mkdir, mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import * as tar from 'tar'
import YAML from 'yaml'

import type {PackageManifest} from '../../src/api.js'
import {extractPackage, parseManifest, verifyArchive, verifyDirectory, writePackage} from '../../src/lib/kodpkg.js'

const manifest: PackageManifest = {
  formatVersion: 1,
  kodVersion: '0.0.0-test',
  created: '2026-01-01T00:00:00.000Z',
  source: {kind: 'helm', ref: './chart'},
  name: 'demo',
  version: '1.0.0',
  charts: [{name: 'demo', version: '1.0.0', file: 'charts/demo-1.0.0.tgz'}],
  values: ['values/01-base.yaml'],
  hints: [],
  images: [],
}

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
    expect(() => parseManifest(YAML.stringify({...manifest, formatVersion: 3}), 'x')).to.throw(/package format 3 is not supported/)
    expect(() => parseManifest(YAML.stringify({...manifest, images: [{ref: 'nginx'}]}), 'x')).to.throw(/\/images\/0 must have required property/)
    expect(() => parseManifest(YAML.stringify({...manifest, values: ['../escape']}), 'x')).to.throw(/\/values\/0 must match pattern/)
    expect(() => parseManifest('a: [', 'x')).to.throw(/not valid YAML/)
  })

  it('is not a package when it is not a tar', async function () {
    const junk = path.join(dir, 'junk.kodpkg')
    await writeFile(junk, 'hello')
    await expectRejection(verifyArchive(junk), /not a (readable )?kod package/)
  })
})
