import {expect} from 'chai'
import {execa} from 'execa'
import {generateKeyPairSync, type KeyObject} from 'node:crypto'
import {chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import * as tar from 'tar'
import YAML from 'yaml'

import {type BundleKind, type BundleManifest, ExitCode, KodError, openBundle, readArchiveHead, readBundleHead, writeBundle, writePackage} from '../../src/sdk.js'
import {demoManifest} from '../support/manifest.js'

/** Bundles (docs/plugins.md): the package archive format with kod-bundle.yaml, written and read by kod/sdk. */
type HelloBundle = BundleManifest & {greeting: {file: string}; tool: {file: string}}

const helloBundle: BundleKind<HelloBundle> = {
  kind: 'HelloBundle',
  schema: {
    properties: {
      greeting: {type: 'object', required: ['file'], additionalProperties: false, properties: {file: {type: 'string'}}},
      tool: {type: 'object', required: ['file'], additionalProperties: false, properties: {file: {type: 'string'}}},
    },
    required: ['greeting', 'tool'],
  },
  files: (manifest) => [manifest.greeting.file, manifest.tool.file],
  check: (manifest) => (manifest.greeting.file === manifest.tool.file ? 'greeting and tool are one file' : undefined),
  deployedBy: 'kod deploy-hello',
}

const manifest = (overrides: Partial<HelloBundle> = {}): HelloBundle => ({
  apiVersion: 'kod.dev/v1',
  kind: 'HelloBundle',
  bundleFormat: 1,
  kodVersion: '0.0.0-test',
  created: '2026-01-01T00:00:00.000Z',
  name: 'hello',
  version: '1.0.0',
  greeting: {file: 'share/hello.txt'},
  tool: {file: 'bin/hello'},
  ...overrides,
})

async function failure(promise: Promise<unknown>): Promise<KodError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  )
  expect(error, 'expected a refusal').to.be.instanceOf(KodError)
  return error as KodError
}

describe('kod/sdk bundles', function () {
  let dir: string
  let file: string
  let key: {privateKey: KeyObject; publicKey: KeyObject}

  async function staged(name = 'staging'): Promise<string> {
    const staging = path.join(dir, name)
    await mkdir(path.join(staging, 'share'), {recursive: true})
    await mkdir(path.join(staging, 'bin'), {recursive: true})
    await writeFile(path.join(staging, 'share', 'hello.txt'), 'hello\n')
    await writeFile(path.join(staging, 'bin', 'hello'), '#!/bin/sh\necho hello\n')
    await chmod(path.join(staging, 'bin', 'hello'), 0o755)
    return staging
  }

  beforeEach(async function () {
    dir = await mkdtemp(path.join(os.tmpdir(), 'kod-sdk-bundle-'))
    file = path.join(dir, 'hello.kodbundle')
    key = generateKeyPairSync('ed25519')
  })

  afterEach(async function () {
    await rm(dir, {recursive: true, force: true})
  })

  it('writes the manifest first, then SHA256SUMS and the signature, then the files; reads it back verified', async function () {
    const staging = await staged()
    await symlink('hello.txt', path.join(staging, 'share', 'link'))
    const written = await writeBundle(helloBundle, staging, manifest(), file, {signingKey: key.privateKey})
    expect(written.files).to.equal(5)
    const entries: Array<{path: string; mode: number}> = []
    await tar.list({file, onReadEntry: (entry) => entries.push({path: entry.path, mode: entry.mode ?? 0})})
    expect(entries.map((entry) => entry.path), 'links are not bundled').to.deep.equal(['kod-bundle.yaml', 'SHA256SUMS', 'SHA256SUMS.sig', 'bin/hello', 'share/hello.txt'])
    expect(entries.find((entry) => entry.path === 'bin/hello')!.mode & 0o777).to.equal(0o755)
    const head = await readBundleHead(helloBundle, file)
    expect(head.manifest).to.deep.equal(manifest())
    expect(YAML.parse(head.manifestText).kind).to.equal('HelloBundle')

    const verified = await openBundle(helloBundle, file, {verifyKey: key.publicKey})
    expect(verified).to.include({dir: file, files: 5})
    const into = path.join(dir, 'out')
    const opened = await openBundle(helloBundle, file, {into, verifyKey: key.publicKey})
    expect(opened.manifest).to.deep.equal(manifest())
    expect((await stat(path.join(into, 'bin', 'hello'))).mode & 0o111, 'an executable stays one').to.not.equal(0)
    expect(await readFile(path.join(into, 'share', 'hello.txt'), 'utf8')).to.equal('hello\n')
    // The unpacked directory is a bundle too.
    expect((await openBundle(helloBundle, into, {verifyKey: key.publicKey})).manifest).to.deep.equal(manifest())
  })

  it('removes what a bundle run killed outright was writing beside it, and nothing a live run or the user has', async function () {
    const exited = execa('true')
    const dead = exited.pid!
    await exited
    const base = path.basename(file)
    const leftovers = [`.${base}.partial-${dead}`, `${base}.partial-${dead}`]
    // A live process of ours (not this one, whose own partial file is the bundle being written).
    const kept = [`.${base}.partial-${process.ppid}`, 'notes.partial-x']
    for (const name of [...leftovers, ...kept]) await writeFile(path.join(path.dirname(file), name), 'x')
    await writeBundle(helloBundle, await staged(), manifest(), file)
    const left = await readdir(path.dirname(file))
    for (const name of leftovers) expect(left, name).to.not.include(name)
    for (const name of kept) expect(left, name).to.include(name)
  })

  it('refuses a bundle not signed with --verify-key, before reading further (exit 5)', async function () {
    await writeBundle(helloBundle, await staged(), manifest(), file)
    const unsigned = await failure(openBundle(helloBundle, file, {verifyKey: key.publicKey, into: path.join(dir, 'out')}))
    expect(unsigned.exit).to.equal(ExitCode.badPackage)
    expect(unsigned.message).to.equal(`${file} is not signed (no SHA256SUMS.sig); --verify-key accepts only bundles signed with its key`)
    await writeBundle(helloBundle, await staged('other'), manifest(), file, {signingKey: generateKeyPairSync('ed25519').privateKey})
    const other = await failure(openBundle(helloBundle, file, {verifyKey: key.publicKey, into: path.join(dir, 'out')}))
    expect(other.message).to.match(/the signature does not match --verify-key/)
    expect(await readdir(dir)).to.not.include('out')
  })

  it('refuses a flipped byte, naming the file, and extracts nothing', async function () {
    await writeBundle(helloBundle, await staged(), manifest(), file)
    const bytes = await readFile(file)
    const at = bytes.indexOf('echo hello')
    bytes[at] ^= 0x20
    await writeFile(file, bytes)
    const error = await failure(openBundle(helloBundle, file, {into: path.join(dir, 'out')}))
    expect(error.exit).to.equal(ExitCode.badPackage)
    expect(error.message).to.equal(`${file}: checksum mismatch for bin/hello: the bundle was changed or damaged after it was written; get a fresh copy`)
    expect((await readdir(dir)).filter((name) => name.startsWith('out'))).to.deep.equal([])
  })

  it('refuses what the manifest names but SHA256SUMS does not list, and files it does not account for', async function () {
    const staging = await staged()
    await writeBundle(helloBundle, staging, manifest(), file)
    // Re-tarred by hand with one more file.
    await writeFile(path.join(staging, 'extra'), 'x')
    const retarred = path.join(dir, 'retarred.kodbundle')
    await tar.create({cwd: staging, file: retarred, portable: true}, ['kod-bundle.yaml', 'SHA256SUMS', 'bin', 'share', 'extra'])
    const extra = await failure(openBundle(helloBundle, retarred))
    expect(extra.message).to.match(/extra is not listed in SHA256SUMS: the bundle holds a file it does not account for/)
    // A manifest naming a file outside the checksums.
    await rm(path.join(staging, 'extra'))
    const sums = (await readFile(path.join(staging, 'SHA256SUMS'), 'utf8')).split('\n').filter((line) => !line.endsWith('share/hello.txt')).join('\n')
    await writeFile(path.join(staging, 'SHA256SUMS'), sums)
    await rm(path.join(staging, 'share'), {recursive: true})
    const uncovered = await failure(openBundle(helloBundle, staging))
    expect(uncovered.exit).to.equal(ExitCode.badPackage)
    expect(uncovered.message).to.match(/share\/hello\.txt is not covered by SHA256SUMS; the bundle is incomplete or was tampered with/)
  })

  it('tells a package from a bundle, and one bundle kind from another (exit 2)', async function () {
    const packageStaging = path.join(dir, 'pkg')
    await mkdir(path.join(packageStaging, 'charts'), {recursive: true})
    await mkdir(path.join(packageStaging, 'values'), {recursive: true})
    await writeFile(path.join(packageStaging, 'charts', 'demo-1.0.0.tgz'), 'chart')
    await writeFile(path.join(packageStaging, 'values', '01-base.yaml'), 'a: 1\n')
    const kodpkg = path.join(dir, 'demo.kodpkg')
    await writePackage(packageStaging, demoManifest(), kodpkg)
    const aPackage = await failure(openBundle(helloBundle, kodpkg))
    expect(aPackage.exit).to.equal(ExitCode.usage)
    expect(aPackage.message).to.equal(`${kodpkg} is not a kod bundle: it is a kod package (kod-package.yaml), not a bundle: inspect it with kod inspect -c ${kodpkg}, deploy it with kod deploy`)

    await writeBundle(helloBundle, await staged(), manifest(), file)
    const aBundle = await failure(readArchiveHead(file))
    expect(aBundle.exit).to.equal(ExitCode.usage)
    expect(aBundle.message).to.match(/is not a kod package: it is a kod bundle \(kod-bundle\.yaml\), not a package/)

    const otherKind: BundleKind<HelloBundle> = {...helloBundle, kind: 'OtherBundle'}
    const wrong = await failure(openBundle(otherKind, file))
    expect(wrong.exit).to.equal(ExitCode.usage)
    expect(wrong.message).to.equal(`${file} is a HelloBundle bundle, not a OtherBundle: give it to the command that deploys HelloBundle bundles`)
  })

  it('refuses a manifest its kind does not accept, and never writes one', async function () {
    const staging = await staged()
    const unknown = {...manifest(), extra: true} as HelloBundle
    let error = await failure(writeBundle(helloBundle, staging, unknown, file).catch((caught: Error) => {
      throw new KodError(caught.message)
    }))
    expect(error.message).to.match(/internal: the bundle kod is writing: kod-bundle\.yaml is invalid: \/extra is a field this kod does not know/)
    error = await failure(writeBundle(helloBundle, staging, manifest({tool: {file: 'share/hello.txt'}}), file))
    expect(error.message).to.match(/kod-bundle\.yaml is invalid: greeting and tool are one file/)
    expect(await readdir(dir)).to.not.include('hello.kodbundle')

    // A newer format, read by this kod.
    await writeBundle(helloBundle, staging, manifest(), file)
    const text = (await readFile(path.join(staging, 'kod-bundle.yaml'), 'utf8')).replace('bundleFormat: 1', 'bundleFormat: 2')
    await writeFile(path.join(staging, 'kod-bundle.yaml'), text)
    error = await failure(openBundle(helloBundle, staging))
    expect(error.exit).to.equal(ExitCode.badPackage)
    expect(error.message).to.equal(`${staging}: bundle format 2 is not supported by this kod (reads format 1); use a matching kod version`)
  })

  it('says what a file that is no bundle is', async function () {
    const empty = path.join(dir, 'empty')
    await writeFile(empty, '')
    expect((await failure(openBundle(helloBundle, empty))).message).to.equal(`${empty} is not a kod bundle: it is empty`)
    expect((await failure(openBundle(helloBundle, path.join(dir, 'none')))).message).to.equal(`bundle not found: ${path.join(dir, 'none')}`)
  })
})
