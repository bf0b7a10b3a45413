import {expect} from 'chai'
import {execa} from 'execa'
import {createHash} from 'node:crypto'
import {mkdir, mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {isRunning, sweepPackageLeftovers, sweepScratch, sweepUnpackLeftovers} from '../../src/lib/leftovers.js'

const quiet = {debug() {}, info() {}}

/** The id of a process that has ended (and, the kernel not reusing ids at once, names no process now). */
async function deadPid(): Promise<number> {
  const child = execa('true')
  const pid = child.pid!
  await child
  return pid
}

async function names(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort()
}

describe('leftovers of interrupted runs', function () {
  let dir: string
  let dead: number

  beforeEach(async function () {
    dir = await mkdtemp(path.join(os.tmpdir(), 'kod-leftovers-test-'))
    dead = await deadPid()
  })

  afterEach(async function () {
    await rm(dir, {recursive: true, force: true})
  })

  it('knows a running process from an ended one', async function () {
    expect(isRunning(process.pid)).to.equal(true)
    expect(isRunning(dead)).to.equal(false)
  })

  it("moves a dead package run's verified blobs into this run's layout and removes the rest of it", async function () {
    const good = 'layer bytes\n'
    const goodHex = createHash('sha256').update(good).digest('hex')
    const badHex = createHash('sha256').update('something else').digest('hex')
    const blobs = path.join(dir, `.kod-staging-${dead}-abc123`, 'images', 'blobs', 'sha256')
    await mkdir(blobs, {recursive: true})
    await writeFile(path.join(blobs, goodHex), good)
    await writeFile(path.join(blobs, badHex), 'truncated or tampered')
    await writeFile(path.join(blobs, 'oci-put-blob123'), 'a temporary file skopeo was writing')
    await writeFile(path.join(dir, `.kod-x-1.0.kodpkg.partial-${dead}`), 'half an archive')
    await writeFile(path.join(dir, `.kod-x-1.0.kodpkg.head.partial-${dead}`), 'half a head')
    // The visible name earlier kod wrote.
    await writeFile(path.join(dir, `kod-w-1.0.kodpkg.partial-${dead}`), 'half an older archive')
    // A live run's staging and partial file, and a user's file, are not touched.
    await mkdir(path.join(dir, `.kod-staging-${process.pid}-live01`))
    await writeFile(path.join(dir, `.kod-y-1.0.kodpkg.partial-${process.pid}`), 'being written')
    await writeFile(path.join(dir, 'notes.partial-x'), 'mine')

    const layout = path.join(dir, `.kod-staging-${process.pid}-live01`, 'images')
    const reused = await sweepPackageLeftovers(dir, layout, quiet)
    expect(reused).to.deep.equal({blobs: 1, bytes: good.length})
    expect(await names(path.join(layout, 'blobs', 'sha256'))).to.deep.equal([goodHex])
    expect(await readFile(path.join(layout, 'blobs', 'sha256', goodHex), 'utf8')).to.equal(good)
    expect(await names(dir)).to.deep.equal([`.kod-staging-${process.pid}-live01`, `.kod-y-1.0.kodpkg.partial-${process.pid}`, 'notes.partial-x'])
  })

  it('removes what dead unpacks left beside the directory, and nothing of live ones or of other directories', async function () {
    const target = path.join(dir, 'kod-hello-0.1.0')
    for (const name of [`kod-hello-0.1.0.extracting-${dead}`, `kod-hello-0.1.0.extracting-${dead}.partial-${dead}`, `kod-hello-0.1.0.discard-${dead}-1a2b3c4d`, `kod-hello-0.1.0.extracting-${process.pid}`, `kod-other-1.0.extracting-${dead}`]) {
      await mkdir(path.join(dir, name, 'images'), {recursive: true})
    }
    await sweepUnpackLeftovers(target, quiet)
    expect(await names(dir)).to.deep.equal([`kod-hello-0.1.0.extracting-${process.pid}`, `kod-other-1.0.extracting-${dead}`])
  })

  it('puts back an earlier unpack that an interrupted replacement had moved aside, or removes it once replaced', async function () {
    const target = path.join(dir, 'kod-hello-0.1.0')
    await mkdir(path.join(dir, `kod-hello-0.1.0.replaced-${dead}`))
    await writeFile(path.join(dir, `kod-hello-0.1.0.replaced-${dead}`, 'kod-package.yaml'), 'the earlier package\n')
    await sweepUnpackLeftovers(target, quiet)
    expect(await names(dir)).to.deep.equal(['kod-hello-0.1.0'])
    expect(await readFile(path.join(target, 'kod-package.yaml'), 'utf8')).to.equal('the earlier package\n')

    await mkdir(path.join(dir, `kod-hello-0.1.0.replaced-${dead}`))
    await sweepUnpackLeftovers(target, quiet)
    expect(await names(dir)).to.deep.equal(['kod-hello-0.1.0'])
  })

  it("removes dead runs' scratch directories (a login file included) from $TMPDIR, and nothing else there", async function () {
    const saved = process.env.TMPDIR
    process.env.TMPDIR = dir
    try {
      await mkdir(path.join(dir, `kod-${dead}-AbC123`))
      await writeFile(path.join(dir, `kod-${dead}-AbC123`, 'target-login'), '{"auths":{}}')
      await mkdir(path.join(dir, `kod-${process.pid}-live01`))
      await mkdir(path.join(dir, 'kod-registry-xyz'))
      await mkdir(path.join(dir, 'kod-e2e-abc'))
      await sweepScratch()
      expect(await names(dir)).to.deep.equal(['kod-e2e-abc', `kod-${process.pid}-live01`, 'kod-registry-xyz'].sort())
    } finally {
      if (saved === undefined) delete process.env.TMPDIR
      else process.env.TMPDIR = saved
    }
  })
})
