import {expect} from 'chai'
import {createHash} from 'node:crypto'
import {chmod, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import * as tar from 'tar'
import YAML from 'yaml'

import type {PackageManifest} from '../../src/api.js'
import {openPackage} from '../../src/lib/actions/open.js'
import {ExitCode, KodError} from '../../src/lib/errors.js'
import {extractPackage, LIMITS, verifyArchive, verifyDirectory, writePackage} from '../../src/lib/kodpkg.js'
import {demoManifest, toFormat1} from '../support/manifest.js'
import {buildLayout} from '../support/oci-build.js'

/**
 * Complete verification (issue 8, part 2): hostile archives, built entry by entry, are refused with
 * exit 5 naming the entry, by every way in (streaming verify, extraction, opening with -c), before
 * anything of them is written, and nothing is left behind.
 */
const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex')

/** One archive entry, as the tests write it: any path, type and mode, whatever tar would refuse. */
interface Entry {
  path: string
  type: string
  mode: number
  body: Buffer
  linkpath?: string
}

/** Writes entries as a ustar archive (a pax header first when the path is long). */
async function writeArchive(file: string, entries: Entry[]): Promise<void> {
  const blocks: Buffer[] = []
  const pad = (size: number): Buffer => Buffer.alloc((512 - (size % 512)) % 512)
  for (const entry of entries) {
    const fields = {path: entry.path, mode: entry.mode, size: entry.type === 'File' ? entry.body.length : 0, type: entry.type, mtime: new Date(0), ...(entry.linkpath ? {linkpath: entry.linkpath} : {})}
    const header = new tar.Header(fields as ConstructorParameters<typeof tar.Header>[0])
    if (Buffer.byteLength(entry.path) > 99) {
      const pax = new tar.Pax({path: entry.path, mtime: new Date(0)}).encode()
      blocks.push(pax)
    }
    const block = Buffer.alloc(512)
    header.encode(block, 0)
    blocks.push(block)
    if (entry.type === 'File') blocks.push(entry.body, pad(entry.body.length))
  }
  blocks.push(Buffer.alloc(1024))
  await writeFile(file, Buffer.concat(blocks))
}

/** The entries of an archive, bodies in memory (the test packages are tiny). */
async function readEntries(file: string): Promise<Entry[]> {
  const entries: Entry[] = []
  await tar.list({
    file,
    onReadEntry(entry) {
      const chunks: Buffer[] = []
      entry.on('data', (chunk: Buffer) => chunks.push(chunk))
      entry.on('end', () => entries.push({path: entry.path, type: entry.type, mode: entry.mode ?? 0o644, body: Buffer.concat(chunks)}))
    },
  })
  return entries
}

const file = (entryPath: string, body: Buffer | string, mode = 0o644): Entry => ({path: entryPath, type: 'File', mode, body: Buffer.from(body)})

/** SHA256SUMS text for the given files (the sums kod would write for them). */
function sumsFor(entries: Entry[]): string {
  return entries
    .filter((entry) => entry.type === 'File' && entry.path !== 'SHA256SUMS')
    .map((entry) => `${sha256(entry.body)}  ${entry.path}\n`)
    .join('')
}

function withSums(entries: Entry[], sums: string): Entry[] {
  return entries.map((entry) => (entry.path === 'SHA256SUMS' ? file('SHA256SUMS', sums) : entry))
}

async function refusal(promise: Promise<unknown>): Promise<KodError> {
  const error = await promise.then(
    () => undefined,
    (error: unknown) => error as Error,
  )
  expect(error, 'expected a refusal').to.be.instanceOf(KodError)
  expect((error as KodError).message).to.not.include('\n')
  return error as KodError
}

describe('complete verification of a package', function () {
  let work: string
  let good: string
  let entries: Entry[]
  let layerHex: string
  let manifestHex: string
  let manifest: PackageManifest

  /** A package of demo 1.0.0 holding one image (one layer) in its layout. */
  async function makePackage(target: string, pkg: PackageManifest, layoutName: string): Promise<Record<string, string>> {
    const staging = await mkdtemp(path.join(work, 'staging-'))
    await mkdir(path.join(staging, 'charts'))
    await mkdir(path.join(staging, 'values'))
    await writeFile(path.join(staging, 'charts', 'demo-1.0.0.tgz'), 'not really a chart')
    await writeFile(path.join(staging, 'values', '01-base.yaml'), 'a: 1\n')
    const digests = await buildLayout(path.join(staging, 'images'), [{name: layoutName, layers: [{files: {'app/web': 'web\n'}}]}])
    await writePackage(staging, pkg, target)
    return digests
  }

  /** Every way a package file is taken: each refuses it the same way, with exit 5, leaving nothing. */
  async function expectRefused(entriesOrFile: Entry[] | string, pattern: RegExp): Promise<void> {
    const archive = typeof entriesOrFile === 'string' ? entriesOrFile : path.join(work, 'hostile.kodpkg')
    if (typeof entriesOrFile !== 'string') await writeArchive(archive, entriesOrFile)
    const cwd = await mkdtemp(path.join(work, 'cwd-'))
    const before = (await readdir(work)).sort()
    for (const attempt of [
      () => verifyArchive(archive),
      () => extractPackage(archive, path.join(cwd, 'out')),
      () => openPackage(archive, {unpackTo: {parent: cwd}, reuse: true, quiet: true}),
      () => openPackage(archive, {unpackTo: {parent: cwd}, quiet: true}),
    ]) {
      const error = await refusal(attempt())
      expect(error.message).to.match(pattern)
      expect(error.exit, error.message).to.equal(ExitCode.badPackage)
      expect(await readdir(cwd), 'nothing left behind').to.deep.equal([])
      expect((await readdir(work)).sort(), 'nothing written beside').to.deep.equal(before)
    }
    await rm(cwd, {recursive: true})
  }

  before(async function () {
    work = await mkdtemp(path.join(os.tmpdir(), 'kod-verify-'))
  })

  after(async function () {
    await rm(work, {recursive: true, force: true})
  })

  beforeEach(async function () {
    await rm(work, {recursive: true, force: true})
    await mkdir(work)
    good = path.join(work, 'good.kodpkg')
    const base = demoManifest()
    // The layout's digest is only known once it is built: build it once to learn it, then for real.
    const probe = path.join(work, 'probe.kodpkg')
    const digest = (await makePackage(probe, base, 'web+0123456789abcdef'))['web+0123456789abcdef']
    await rm(probe)
    const image = {ref: 'example.org/web:1', name: 'example.org/web:1', layoutName: 'web+0123456789abcdef', digest, platforms: ['linux/amd64'], units: ['demo']}
    manifest = {...base, units: [{...base.units[0], images: [{name: image.name, ref: image.ref, values: [], foundIn: ['demo/templates/web.yaml']}]}], images: [image]}
    await makePackage(good, manifest, image.layoutName)
    entries = await readEntries(good)
    manifestHex = digest.slice('sha256:'.length)
    const top = JSON.parse(entries.find((entry) => entry.path === `images/blobs/sha256/${manifestHex}`)!.body.toString()) as {layers: Array<{digest: string}>}
    layerHex = top.layers[0].digest.slice('sha256:'.length)
  })

  it('accepts the package as written, with directory entries (re-tarred), and with SHA256SUMS.sig', async function () {
    expect((await verifyArchive(good)).manifest).to.deep.equal(manifest)
    const directories = ['charts/', 'images/', 'images/blobs/', 'images/blobs/sha256/', 'values/'].map((dir) => ({path: dir, type: 'Directory', mode: 0o755, body: Buffer.alloc(0)}))
    const retarred = path.join(work, 'retarred.kodpkg')
    await writeArchive(retarred, [{path: './', type: 'Directory', mode: 0o755, body: Buffer.alloc(0)}, ...directories, ...entries.map((entry) => ({...entry, path: `./${entry.path}`})), file('SHA256SUMS.sig', 'a signature')])
    expect((await verifyArchive(retarred)).files).to.equal(entries.length + 1)
    const out = path.join(work, 'out')
    expect(await extractPackage(retarred, out)).to.deep.equal(manifest)
    expect(await verifyDirectory(out)).to.deep.equal(manifest)
  })

  it('refuses a ".." entry placed first, before writing anything', async function () {
    await expectRefused([file('../evil', 'x'), ...entries], /entry \.\.\/evil climbs out of the package/)
    expect(await readdir(path.dirname(work))).to.not.include('evil')
  })

  it('refuses an absolute path', async function () {
    await expectRefused([...entries, file('/tmp/kod-evil', 'x')], /entry \/tmp\/kod-evil is an absolute path/)
  })

  it('refuses a symbolic link, a hard link, a FIFO and a device, listed or not', async function () {
    const link = {path: 'charts/link', type: 'SymbolicLink', mode: 0o777, body: Buffer.alloc(0), linkpath: '/etc/passwd'}
    await expectRefused([...entries, link], /charts\/link is a symbolic link; a package holds only regular files and directories/)
    const hard = {path: 'charts/hard', type: 'Link', mode: 0o644, body: Buffer.alloc(0), linkpath: 'charts/demo-1.0.0.tgz'}
    await expectRefused([...entries, hard], /charts\/hard is a hard link/)
    await expectRefused([...entries, {path: 'fifo', type: 'FIFO', mode: 0o644, body: Buffer.alloc(0)}], /fifo is a FIFO/)
    await expectRefused([...entries, {path: 'dev', type: 'CharacterDevice', mode: 0o644, body: Buffer.alloc(0)}], /dev is a character device/)
  })

  it('refuses setuid, setgid and sticky bits', async function () {
    const chart = (mode: number): Entry[] => entries.map((entry) => (entry.path === 'charts/demo-1.0.0.tgz' ? {...entry, mode} : entry))
    await expectRefused(chart(0o4755), /charts\/demo-1\.0\.0\.tgz has the setuid bit set \(mode 4755\)/)
    await expectRefused(chart(0o2755), /has the setgid bit set/)
    await expectRefused([{path: 'values/', type: 'Directory', mode: 0o1777, body: Buffer.alloc(0)}, ...entries], /values has the sticky bit set/)
  })

  it('refuses a file SHA256SUMS does not list (an added evil.sh)', async function () {
    await expectRefused([...entries, file('evil.sh', '#!/bin/sh\nrm -rf /\n', 0o755)], /evil\.sh is not listed in SHA256SUMS/)
    // A directory that leads to no listed file is something the package does not account for, too.
    await expectRefused([...entries, {path: 'extra/', type: 'Directory', mode: 0o755, body: Buffer.alloc(0)}], /directory extra holds no file listed in SHA256SUMS/)
  })

  it('refuses an entry that appears twice, and a listed file that is missing', async function () {
    const values = entries.find((entry) => entry.path === 'values/01-base.yaml')!
    await expectRefused([...entries, {...values, body: Buffer.from('a: 2\n')}], /values\/01-base\.yaml appears twice/)
    await expectRefused(
      entries.filter((entry) => entry.path !== 'values/01-base.yaml'),
      /values\/01-base\.yaml is missing; the package is incomplete/,
    )
  })

  it('refuses absurd depth, long names, control characters and non-plain paths', async function () {
    const deep = `${Array.from({length: LIMITS.depth + 1}, (_, index) => `d${index}`).join('/')}/f`
    await expectRefused([...entries, file(deep, 'x')], /directories deep \(at most 32\)/)
    await expectRefused([...entries, file(`${'n'.repeat(300)}`, 'x')], /has a name longer than/)
    await expectRefused([...entries, file('evil\nname', 'x')], /holds a control character/)
    await expectRefused([...entries, file('charts//x', 'x')], /is not a plain path/)
  })

  it('refuses a blob that does not hash to its name, even with SHA256SUMS rewritten to match', async function () {
    const blob = `images/blobs/sha256/${layerHex}`
    const tampered = entries.map((entry) => (entry.path === blob ? {...entry, body: Buffer.from('tampered layer')} : entry))
    await expectRefused(withSums(tampered, sumsFor(tampered)), new RegExp(`${blob} does not hash to its name`))
  })

  it('refuses a tampered blob whose SHA256SUMS line was deleted', async function () {
    const blob = `images/blobs/sha256/${layerHex}`
    const tampered = entries.map((entry) => (entry.path === blob ? {...entry, body: Buffer.from('tampered layer')} : entry))
    const sums = sumsFor(tampered)
      .split('\n')
      .filter((line) => !line.endsWith(blob))
      .join('\n')
    await expectRefused(withSums(tampered, sums), new RegExp(`${blob} is not listed in SHA256SUMS`))
  })

  it('refuses a blob a manifest names that is not in the package', async function () {
    const blob = `images/blobs/sha256/${layerHex}`
    const without = entries.filter((entry) => entry.path !== blob)
    await expectRefused(withSums(without, sumsFor(without)), new RegExp(`names blob sha256:${layerHex}, which is not in the package \\(${blob} is missing\\)`))
  })

  it('refuses an index.json naming an absent manifest, or another digest than kod-package.yaml records', async function () {
    const absent = 'f'.repeat(64)
    const index = (change: (index: {manifests: Array<Record<string, unknown>>}) => void): Entry[] => {
      const changed = entries.map((entry) => {
        if (entry.path !== 'images/index.json') return entry
        const parsed = JSON.parse(entry.body.toString()) as {manifests: Array<Record<string, unknown>>}
        change(parsed)
        return {...entry, body: Buffer.from(JSON.stringify(parsed))}
      })
      return withSums(changed, sumsFor(changed))
    }
    await expectRefused(
      index((parsed) => parsed.manifests.push({mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${absent}`, size: 10})),
      new RegExp(`images/index\\.json names manifest sha256:${absent}, which is not in the package`),
    )
    await expectRefused(
      index((parsed) => (parsed.manifests[0].size = 1)),
      new RegExp(`images/blobs/sha256/${manifestHex} is \\d+ bytes, but images/index\\.json says 1`),
    )
    await expectRefused(
      index((parsed) => (parsed.manifests[0].annotations = {'org.opencontainers.image.ref.name': 'other'})),
      /images\/index\.json has no image named web\+0123456789abcdef, which kod-package\.yaml lists/,
    )
  })

  it('refuses a file under images/blobs that is not a sha256 blob', async function () {
    const odd = [...entries, file('images/blobs/sha512/abc', 'x')]
    await expectRefused(withSums(odd, sumsFor(odd)), /images\/blobs\/sha512\/abc is not a blob kod reads/)
  })

  it('verifies a format-1 package (older kod) by the same rules', async function () {
    const {manifest: legacy, layoutNames} = toFormat1(YAML.parse(YAML.stringify(manifest)) as Record<string, unknown>)
    const old = path.join(work, 'format1.kodpkg')
    const staging = await mkdtemp(path.join(work, 'staging-'))
    await mkdir(path.join(staging, 'charts'))
    await mkdir(path.join(staging, 'values'))
    await writeFile(path.join(staging, 'charts', 'demo-1.0.0.tgz'), 'not really a chart')
    await writeFile(path.join(staging, 'values', '01-base.yaml'), 'a: 1\n')
    await buildLayout(path.join(staging, 'images'), [{name: layoutNames.get('web+0123456789abcdef')!, layers: [{files: {'app/web': 'web\n'}}]}])
    await writePackage(staging, manifest, old)
    // writePackage writes format 3: put the format-1 manifest in its place, with its checksum.
    const written = (await readEntries(old)).map((entry) => (entry.path === 'kod-package.yaml' ? file('kod-package.yaml', YAML.stringify(legacy)) : entry))
    const format1 = withSums(written, sumsFor(written))
    await writeArchive(old, format1)
    expect((await verifyArchive(old)).manifest.formatVersion).to.equal(1)
    await expectRefused([...format1, file('evil.sh', 'x')], /evil\.sh is not listed in SHA256SUMS/)
  })

  describe('an unpacked directory', function () {
    let dir: string

    beforeEach(async function () {
      dir = path.join(work, 'kod-demo-1.0.0')
      await extractPackage(good, dir)
    })

    async function expectDirectoryRefused(pattern: RegExp): Promise<void> {
      const error = await refusal(verifyDirectory(dir))
      expect(error.message).to.match(pattern)
      expect(error.exit, error.message).to.equal(ExitCode.badPackage)
    }

    it('holds the files deploy writes, and SHA256SUMS.sig, and nothing else', async function () {
      await writeFile(path.join(dir, 'kod-values-demo.yaml'), 'x: 1\n')
      await writeFile(path.join(dir, 'SHA256SUMS.sig'), 'sig')
      expect(await verifyDirectory(dir)).to.deep.equal(manifest)
      await writeFile(path.join(dir, 'evil.sh'), 'x')
      await expectDirectoryRefused(/evil\.sh is not listed in SHA256SUMS/)
    })

    it('refuses a symbolic link and a setuid file', async function () {
      await symlink('/etc/passwd', path.join(dir, 'charts', 'link'))
      await expectDirectoryRefused(/charts\/link is a symbolic link/)
      await rm(path.join(dir, 'charts', 'link'))
      await chmod(path.join(dir, 'charts', 'demo-1.0.0.tgz'), 0o4755)
      await expectDirectoryRefused(/charts\/demo-1\.0\.0\.tgz has the setuid bit set/)
    })

    it('refuses a tampered blob whose SHA256SUMS line was deleted, and a missing blob', async function () {
      const blob = `images/blobs/sha256/${layerHex}`
      const sums = await readFile(path.join(dir, 'SHA256SUMS'), 'utf8')
      await writeFile(path.join(dir, blob), 'tampered')
      await writeFile(path.join(dir, 'SHA256SUMS'), sums.split('\n').filter((line) => !line.endsWith(blob)).join('\n'))
      await expectDirectoryRefused(new RegExp(`${blob} is not listed in SHA256SUMS`))
      await rm(path.join(dir, blob))
      await expectDirectoryRefused(new RegExp(`names blob sha256:${layerHex}, which is not in the package`))
    })
  })

  it('stops when interrupted', async function () {
    const controller = new AbortController()
    controller.abort()
    const error = await verifyArchive(good, controller.signal).then(
      () => undefined,
      (error: unknown) => error as Error,
    )
    expect(error?.name).to.equal('AbortError')
  })
})
