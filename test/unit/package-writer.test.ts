import {expect} from 'chai'
import {execFile} from 'node:child_process'
import {mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {promisify} from 'node:util'
import * as tar from 'tar'

import {extractPackage, listFiles, packageHead, readArchiveHead, verifyArchive} from '../../src/lib/kodpkg.js'
import {headRoom, padding, StreamingArchive} from '../../src/lib/package-writer.js'
import {demoManifest} from '../support/manifest.js'
import {buildLayout} from '../support/oci-build.js'

const run = promisify(execFile)

/** Entry names (and pax records) as node-tar reads them. */
async function entries(file: string): Promise<Array<{path: string; comment?: string}>> {
  const found: Array<{path: string; comment?: string}> = []
  await tar.list({file, onReadEntry: (entry) => found.push({path: entry.path, ...((entry as {comment?: string}).comment ? {comment: (entry as {comment?: string}).comment} : {})})})
  return found
}

describe('the package archive written while images are pulled', function () {
  let dir: string
  let staging: string
  let file: string
  let digests: Record<string, string>

  const manifest = (): ReturnType<typeof demoManifest> =>
    demoManifest({
      images: Object.entries(digests).map(([name, digest]) => ({ref: `${name}:1`, name: `docker.io/library/${name}:1`, layoutName: name, digest, platforms: ['linux/amd64'], units: ['demo']})),
    })

  /** The blobs of the layout, as staging paths. */
  async function blobs(): Promise<string[]> {
    return (await listFiles(staging)).filter((name) => name.startsWith('images/blobs/'))
  }

  /** Files as add() takes them: with the size each has. */
  async function sized(files: string[]): Promise<Array<{file: string; size: number}>> {
    return Promise.all(files.map(async (file) => ({file, size: (await stat(path.join(staging, file))).size})))
  }

  beforeEach(async function () {
    dir = await mkdtemp(path.join(os.tmpdir(), 'kod-writer-'))
    staging = path.join(dir, 'staging')
    await mkdir(path.join(staging, 'charts'), {recursive: true})
    await mkdir(path.join(staging, 'values'), {recursive: true})
    await writeFile(path.join(staging, 'charts', 'demo-1.0.0.tgz'), 'not really a chart')
    await writeFile(path.join(staging, 'values', '01-base.yaml'), 'a: 1\n')
    digests = await buildLayout(path.join(staging, 'images'), [
      {name: 'web', layers: [{files: {'index.html': 'hello'}}, {files: {'app.js': 'x'.repeat(3000)}}]},
      {name: 'db', layers: [{files: {'db.conf': 'size=1'}}]},
    ])
    file = path.join(dir, 'kod-demo-1.0.0.kodpkg')
  })

  afterEach(async function () {
    await rm(dir, {recursive: true, force: true})
  })

  it('writes the head first, then the blobs in the order they came, then the rest; kod, GNU tar and sha256sum read it', async function () {
    const archive = await StreamingArchive.start(staging, file, 2)
    const all = await blobs()
    const firstTwo = all.slice(0, 2)
    archive.add(await sized(firstTwo))
    archive.add(await sized([...all].reverse()))
    expect((await readdir(dir)).filter((name) => name.includes('.partial-'))).to.have.length(1)
    const written = await archive.finish(packageHead(manifest()))
    const listed = await entries(file)
    const names = listed.map((entry) => entry.path)
    expect(names.slice(0, 4)).to.deep.equal(['kod-package.yaml', 'SHA256SUMS', 'images/oci-layout', 'images/index.json'])
    expect(names.slice(4, 4 + all.length)).to.deep.equal([...firstTwo, ...all.filter((name) => !firstTwo.includes(name)).reverse()])
    expect(names.slice(4 + all.length)).to.deep.equal(['charts/demo-1.0.0.tgz', 'values/01-base.yaml'])
    expect(written.files).to.equal(names.length)
    // The room the head did not fill is a global comment before the first blob, which no reader takes for a file.
    expect(listed[4].comment).to.match(/^kod: room kept for this package's head/)
    expect(listed.slice(0, 4).filter((entry) => entry.comment)).to.deep.equal([])
    expect(written.bytes).to.equal((await stat(file)).size)
    expect((await readdir(dir)).sort()).to.deep.equal(['kod-demo-1.0.0.kodpkg', 'staging'])

    expect((await readArchiveHead(file)).manifest).to.deep.equal(manifest())
    expect((await verifyArchive(file)).files).to.equal(names.length)
    const out = path.join(dir, 'out')
    expect(await extractPackage(file, out)).to.deep.equal(manifest())
    const gnu = path.join(dir, 'gnu')
    await mkdir(gnu)
    await run('tar', ['-xf', file, '-C', gnu])
    expect((await listFiles(gnu)).sort()).to.deep.equal([...names].sort())
    expect((await run('tar', ['-tf', file])).stdout.trim().split('\n')).to.deep.equal(names)
    await run('sha256sum', ['--quiet', '--strict', '-c', 'SHA256SUMS'], {cwd: gnu})
    for (const name of names) expect(await readFile(path.join(gnu, name)), name).to.deep.equal(await readFile(path.join(staging, name)))
  })

  it('writes the archive again, head first, when the head outgrows its room', async function () {
    const archive = await StreamingArchive.start(staging, file, 0, 1024)
    archive.add(await sized(await blobs()))
    await archive.finish(packageHead(manifest()))
    const names = (await entries(file)).map((entry) => entry.path)
    expect(names.slice(0, 4)).to.deep.equal(['kod-package.yaml', 'SHA256SUMS', 'images/oci-layout', 'images/index.json'])
    expect((await entries(file)).filter((entry) => entry.comment)).to.deep.equal([])
    expect((await readdir(dir)).sort()).to.deep.equal(['kod-demo-1.0.0.kodpkg', 'staging'])
    expect(await extractPackage(file, path.join(dir, 'out'))).to.deep.equal(manifest())
  })

  it('leaves nothing when aborted, and refuses to finish when a file it wrote is gone', async function () {
    const aborted = await StreamingArchive.start(staging, file, 2)
    aborted.add(await sized(await blobs()))
    await aborted.abort()
    expect((await readdir(dir)).sort()).to.deep.equal(['staging'])

    const archive = await StreamingArchive.start(staging, file, 2)
    const [first] = await blobs()
    archive.add(await sized([first]))
    await rm(path.join(staging, first))
    const error = await archive.finish(packageHead(manifest())).then(
      () => undefined,
      (error: unknown) => error as Error,
    )
    expect(error?.message).to.equal(`${first} was written into the package and then removed from its staging directory`)
    await archive.abort()
    expect((await readdir(dir)).sort()).to.deep.equal(['staging'])
  })

  it('leaves a file whose size is not the one given to the end, where it is written as it then is, and skips one that is not there', async function () {
    const archive = await StreamingArchive.start(staging, file, 2)
    const all = await blobs()
    const [odd, ...others] = await sized(all)
    // A layer the layout does not hold (skopeo leaves non-distributable ones out) is not written at all.
    const absent = `images/blobs/sha256/${'f'.repeat(64)}`
    archive.add([{...odd, size: odd.size + 1}, {file: absent, size: 5}, ...others])
    await archive.finish(packageHead(manifest()))
    const names = (await entries(file)).map((entry) => entry.path)
    expect(names.slice(4, 4 + others.length)).to.deep.equal(others.map((entry) => entry.file))
    expect(names.slice(4 + others.length)).to.deep.equal(['charts/demo-1.0.0.tgz', odd.file, 'values/01-base.yaml'])
    expect(names).to.not.include(absent)
    expect(await extractPackage(file, path.join(dir, 'out'))).to.deep.equal(manifest())
  })

  it('bsdtar reads it too, also when the entry after the room has a pax header of its own (a long name)', async function () {
    const long = `charts/${'c'.repeat(120)}.tgz`
    await writeFile(path.join(staging, long), 'a chart with a long name')
    await rm(path.join(staging, 'images'), {recursive: true})
    digests = {}
    const archive = await StreamingArchive.start(staging, file, 0)
    // Appended as a blob is: a pax header (its name is longer than a ustar header holds), then its own header.
    archive.add(await sized([long]))
    await archive.finish(packageHead(manifest()))
    const listed = await run('bsdtar', ['-tf', file])
    expect(listed.stderr).to.equal('')
    expect(listed.stdout.trim().split('\n')).to.deep.equal(['kod-package.yaml', 'SHA256SUMS', long, 'charts/demo-1.0.0.tgz', 'values/01-base.yaml'])
    expect((await run('tar', ['-tf', file])).stdout.trim().split('\n')).to.deep.equal(['kod-package.yaml', 'SHA256SUMS', long, 'charts/demo-1.0.0.tgz', 'values/01-base.yaml'])
  })

  it('pads with one pax global header of exactly the size asked, which tar readers skip', async function () {
    for (const size of [1024, 1536, 8192, 960 * 1024]) {
      const pad = padding(size)
      expect(pad.length).to.equal(size)
      expect(String.fromCharCode(pad[156])).to.equal('g')
    }
    expect(padding(0).length).to.equal(0)
    expect(() => padding(700)).to.throw(/cannot pad 700 bytes/)
    expect(headRoom(0)).to.equal(32 * 1024)
    expect(headRoom(30)).to.equal(152 * 1024)
    expect(headRoom(100_000)).to.equal(960 * 1024)
  })
})
