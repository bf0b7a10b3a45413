import {expect} from 'chai'
import {execa} from 'execa'
import {mkdir, mkdtemp, readdir, readFile, rm, truncate, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import * as tar from 'tar'
import {gzipSync} from 'node:zlib'

import type {PackageManifest} from '../../src/api.js'
import {openPackage, packageWarnings} from '../../src/lib/actions/open.js'
import {ExitCode, KodError} from '../../src/lib/errors.js'
import {readArchiveHead, verifyArchive, verifyDirectory, writePackage} from '../../src/lib/kodpkg.js'
import {demoManifest} from '../support/manifest.js'

/**
 * Opening a package given with -c: recognised by its content whatever its name, unpacked beside the
 * user, an unchanged earlier unpack of another build of the same version replaced, anything else in
 * the way refused with exit 2 and left exactly as it was.
 */
const base = demoManifest()

async function rejection(promise: Promise<unknown>): Promise<KodError> {
  const error = await promise.then(
    () => undefined,
    (error: unknown) => error as Error,
  )
  expect(error, 'expected a rejection').to.be.instanceOf(KodError)
  return error as KodError
}

async function expectKodError(promise: Promise<unknown>, exit: number, pattern: RegExp): Promise<void> {
  const error = await rejection(promise)
  expect(error.message).to.match(pattern)
  expect(error.message).to.not.include('\n')
  expect(error.exit, error.message).to.equal(exit)
}

describe('opening a package (-c)', function () {
  let work: string
  let cwd: string
  let previous: string

  /** A package of demo 1.0.0; `created` and the values file tell builds apart. */
  async function makePackage(name: string, created: string, values = 'a: 1\n'): Promise<string> {
    const staging = await mkdtemp(path.join(work, 'staging-'))
    await mkdir(path.join(staging, 'charts'))
    await mkdir(path.join(staging, 'values'))
    await writeFile(path.join(staging, 'charts', 'demo-1.0.0.tgz'), 'not really a chart')
    await writeFile(path.join(staging, 'values', '01-base.yaml'), values)
    const file = path.join(work, name)
    await writePackage(staging, {...base, created}, file)
    return file
  }

  const unpackTo = (): {parent: string} => ({parent: cwd})
  const open = (file: string, reuse = true): ReturnType<typeof openPackage> => openPackage(file, {unpackTo: unpackTo(), reuse, quiet: true})
  const unpacked = (): string => path.join(cwd, 'kod-demo-1.0.0')

  beforeEach(async function () {
    work = await mkdtemp(path.join(os.tmpdir(), 'kod-open-'))
    cwd = path.join(work, 'cwd')
    await mkdir(cwd)
    previous = process.cwd()
    process.chdir(cwd)
  })

  afterEach(async function () {
    process.chdir(previous)
    await rm(work, {recursive: true, force: true})
  })

  describe('recognises a package by its content, not its name', function () {
    for (const name of ['kod-demo-1.0.0.tgz', 'kod-demo-1.0.0', 'whatever.bin']) {
      it(`opens a package named ${name}`, async function () {
        const file = await makePackage(name, base.created)
        const opened = await open(file)
        expect(opened.manifest.name).to.equal('demo')
        expect(opened.dir).to.equal(unpacked())
        expect(opened.note).to.equal(`unpacked ${file} into kod-demo-1.0.0`)
        expect((await verifyArchive(file)).manifest.name).to.equal('demo')
      })
    }

    it('opens a package re-tarred by hand (entries in another order, with ./ and directories)', async function () {
      const file = await makePackage('kod-demo-1.0.0.kodpkg', base.created)
      const dir = path.join(work, 'x')
      await mkdir(dir)
      await tar.extract({file, cwd: dir})
      const retarred = path.join(work, 'retarred.tar')
      await execa('tar', ['cf', retarred, '-C', dir, '.'])
      expect((await readArchiveHead(retarred)).manifest.name).to.equal('demo')
      expect((await open(retarred)).manifest.name).to.equal('demo')
    })

    it('reads a gzip-compressed package as it is', async function () {
      const file = await makePackage('kod-demo-1.0.0.kodpkg', base.created)
      const gz = path.join(work, 'kod-demo-1.0.0.kodpkg.gz')
      await writeFile(gz, gzipSync(await readFile(file)))
      expect((await verifyArchive(gz)).manifest.name).to.equal('demo')
      expect((await open(gz)).manifest.name).to.equal('demo')
    })

    it('reads only the head of the archive to recognise it, and tells a copy cut short after it by its end; verification finds the damage too', async function () {
      const file = await makePackage('kod-demo-1.0.0.kodpkg', base.created)
      expect((await readArchiveHead(file)).manifest.name).to.equal('demo')
      await truncate(file, 3000)
      await expectKodError(readArchiveHead(file), ExitCode.badPackage, /is damaged or truncated \(it does not end as a whole tar archive does\); get a fresh copy$/)
      await expectKodError(verifyArchive(file), ExitCode.badPackage, /is damaged or truncated/)
      await expectKodError(open(file), ExitCode.badPackage, /is damaged or truncated|is missing/)
      expect(await readdir(cwd)).to.deep.equal([])
    })

    it('says what a file that is no package is instead (exit 2)', async function () {
      const cases: Array<[string, Buffer | string, RegExp]> = [
        ['empty.kodpkg', '', /empty\.kodpkg is not a kod package: it is empty$/],
        ['notes.txt', 'hello, not a tar\n'.repeat(64), /notes\.txt is not a kod package: it is not a tar archive$/],
        ['x.zip', Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04]), Buffer.alloc(600)]), /it is a zip archive/],
        ['x.xz', Buffer.concat([Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), Buffer.alloc(600)]), /it is xz-compressed: decompress it \(xz -d\)/],
        ['x.gz', gzipSync('just text\n'.repeat(100)), /it is gzip-compressed data with no tar archive inside/],
      ]
      for (const [name, content, pattern] of cases) {
        const file = path.join(work, name)
        await writeFile(file, content)
        await expectKodError(open(file), ExitCode.usage, pattern)
        await expectKodError(verifyArchive(file), ExitCode.usage, pattern)
      }
      expect(await readdir(cwd)).to.deep.equal([])
    })

    it('names a Helm chart given where a package belongs, file or directory', async function () {
      const chart = path.join(work, 'mychart')
      await mkdir(chart)
      await writeFile(path.join(chart, 'Chart.yaml'), 'apiVersion: v2\nname: mychart\nversion: 1.2.3\n')
      const tgz = path.join(work, 'mychart-1.2.3.tgz')
      await tar.create({cwd: work, file: tgz, gzip: true}, ['mychart'])
      await expectKodError(open(tgz), ExitCode.usage, /mychart-1\.2\.3\.tgz is not a kod package: it is a Helm chart archive \(mychart\/Chart\.yaml\); make a package from it with kod package -c /)
      await expectKodError(open(chart), ExitCode.usage, /mychart is not a kod package: it is a Helm chart directory; make a package from it with kod package -c /)
      await expectKodError(verifyDirectory(work), ExitCode.usage, /is not a kod package: it holds no kod-package\.yaml$/)
      const plain = path.join(work, 'plain.tar')
      await tar.create({cwd: chart, file: plain}, ['Chart.yaml'])
      await expectKodError(open(plain), ExitCode.usage, /plain\.tar is not a kod package: it is a tar archive without kod-package\.yaml$/)
    })
  })

  describe('an existing unpack directory', function () {
    it('is reused when it holds the same package, and refused by unpack', async function () {
      const file = await makePackage('kod-demo-1.0.0.kodpkg', base.created)
      await open(file)
      await writeFile(path.join(unpacked(), 'kod-values-demo.yaml'), 'x: 1\n')
      const again = await open(file)
      expect(again.unpacked).to.equal(false)
      expect(again.note).to.equal(`using kod-demo-1.0.0, which already holds ${file} (checksums verified)`)
      await expectKodError(open(file, false), ExitCode.usage, /^kod-demo-1\.0\.0 already exists and holds this same package \(use it as it is with -c kod-demo-1\.0\.0\): remove it or choose another directory with -o$/)
    })

    it('refuses the same package with a changed file, naming it, and leaves it as it is', async function () {
      const file = await makePackage('kod-demo-1.0.0.kodpkg', base.created)
      await open(file)
      await writeFile(path.join(unpacked(), 'values', '01-base.yaml'), 'a: 2\n')
      await expectKodError(
        open(file),
        ExitCode.usage,
        new RegExp(`^kod-demo-1\\.0\\.0 holds this package, but its values/01-base\\.yaml was changed since it was unpacked: remove kod-demo-1\\.0\\.0 to unpack .* afresh$`),
      )
      expect(await readFile(path.join(unpacked(), 'values', '01-base.yaml'), 'utf8')).to.equal('a: 2\n')
    })

    it('is replaced when it is an unchanged unpack of another build of the same version (deploy files included)', async function () {
      const old = await makePackage('old.kodpkg', '2026-01-01T00:00:00.000Z', 'a: old\n')
      const remade = await makePackage('new.kodpkg', '2026-02-02T00:00:00.000Z', 'a: new\n')
      await open(old)
      await writeFile(path.join(unpacked(), 'kod-values-demo.yaml'), 'x: 1\n')
      await writeFile(path.join(unpacked(), 'kod-set-demo.yaml'), 'y: 1\n')
      const opened = await open(remade)
      expect(opened.unpacked).to.equal(true)
      expect(opened.manifest.created).to.equal('2026-02-02T00:00:00.000Z')
      expect(opened.note).to.equal(`replaced kod-demo-1.0.0, an unchanged unpack of another demo 1.0.0 package (created 2026-01-01T00:00:00.000Z), with ${remade}`)
      expect(await readFile(path.join(unpacked(), 'values', '01-base.yaml'), 'utf8')).to.equal('a: new\n')
      expect(await readdir(unpacked())).to.not.include('kod-values-demo.yaml')
      expect(await verifyDirectory(unpacked())).to.deep.include({created: '2026-02-02T00:00:00.000Z'})
      expect(await readdir(cwd)).to.deep.equal(['kod-demo-1.0.0'])
    })

    it('is refused (exit 2) with the way out when something was changed or added, and left exactly as it was', async function () {
      const old = await makePackage('old.kodpkg', '2026-01-01T00:00:00.000Z', 'a: old\n')
      const remade = await makePackage('new.kodpkg', '2026-02-02T00:00:00.000Z', 'a: new\n')
      await open(old)
      await writeFile(path.join(unpacked(), 'notes.txt'), 'mine\n')
      await expectKodError(
        open(remade),
        ExitCode.usage,
        new RegExp(
          '^kod-demo-1\\.0\\.0 holds another demo 1\\.0\\.0 package \\(created 2026-01-01T00:00:00\\.000Z\\) and also notes\\.txt, which is not part of it, ' +
            `so kod will not replace it with ${remade}: move notes\\.txt out and run again, remove kod-demo-1\\.0\\.0, or unpack it elsewhere with kod unpack -c ${remade} -o OTHERDIR and use -c OTHERDIR$`,
        ),
      )
      await rm(path.join(unpacked(), 'notes.txt'))
      await mkdir(path.join(unpacked(), 'mine'))
      await expectKodError(open(remade), ExitCode.usage, /and also mine, which is not part of it/)
      await rm(path.join(unpacked(), 'mine'), {recursive: true})
      await writeFile(path.join(unpacked(), 'values', '01-base.yaml'), 'a: edited\n')
      await expectKodError(open(remade), ExitCode.usage, /holds another demo 1\.0\.0 package \(created .*\) whose values\/01-base\.yaml was changed since it was unpacked, so kod will not replace it/)
      expect(await readFile(path.join(unpacked(), 'values', '01-base.yaml'), 'utf8')).to.equal('a: edited\n')
      expect(await readdir(cwd)).to.deep.equal(['kod-demo-1.0.0'])

      await expectKodError(open(remade, false), ExitCode.usage, /^kod-demo-1\.0\.0 already exists and holds another demo 1\.0\.0 package \(created 2026-01-01T00:00:00\.000Z\): remove it or choose another directory with -o$/)
    })

    it('is refused when it is not a kod package', async function () {
      const file = await makePackage('kod-demo-1.0.0.kodpkg', base.created)
      await mkdir(unpacked())
      await writeFile(path.join(unpacked(), 'x'), '')
      await expectKodError(open(file), ExitCode.usage, /^kod-demo-1\.0\.0 already exists and is not an unpacked kod package \(no kod-package\.yaml\): remove it, or unpack it elsewhere/)
      await rm(unpacked(), {recursive: true})
      await writeFile(unpacked(), '')
      await expectKodError(open(file), ExitCode.usage, /^kod-demo-1\.0\.0 already exists and is not a plain directory/)
    })
  })

  it('leaves nothing behind when interrupted', async function () {
    const file = await makePackage('kod-demo-1.0.0.kodpkg', base.created)
    let interrupted = 0
    // -1: aborted before the call, so at least one run is surely interrupted.
    for (const delay of [-1, 0, 1, 5, 20]) {
      const controller = new AbortController()
      if (delay < 0) controller.abort()
      else setTimeout(() => controller.abort(), delay)
      await openPackage(file, {unpackTo: unpackTo(), reuse: true, quiet: true, signal: controller.signal}).then(
        () => undefined,
        () => interrupted++,
      )
      const left = await readdir(cwd)
      expect(left.filter((name) => name !== 'kod-demo-1.0.0'), `after ${delay} ms`).to.deep.equal([])
      await rm(unpacked(), {recursive: true, force: true})
    }
    expect(interrupted).to.be.greaterThan(0)
  })

  it('lists every warning the package records, each image note once', function () {
    const image = {ref: 'busybox:1.28', name: 'docker.io/library/busybox:1.28', values: [], foundIn: ['t']}
    const manifest: PackageManifest = {
      ...base,
      units: [
        {
          ...base.units[0],
          images: [
            {...image, note: 'hard-coded in a template'},
            {...image, ref: 'nginx', name: 'docker.io/library/nginx', note: 'built at run time'},
          ],
        },
      ],
      warnings: ['nginx cannot be relocated through values: built at run time; deploy refuses it', 'one image was not packaged'],
    }
    expect(packageWarnings(manifest)).to.deep.equal([
      'nginx cannot be relocated through values: built at run time; deploy refuses it',
      'one image was not packaged',
      'busybox:1.28 cannot be relocated through values: hard-coded in a template',
    ])
    expect(packageWarnings(base)).to.deep.equal([])
  })

  it('copies nothing for a directory: it is verified in place', async function () {
    const file = await makePackage('kod-demo-1.0.0.kodpkg', base.created)
    await open(file)
    await rm(file)
    const before = await readdir(cwd)
    const opened = await open(unpacked())
    expect(opened).to.deep.include({dir: unpacked(), unpacked: false})
    expect(opened.note).to.equal(undefined)
    expect(await readdir(cwd)).to.deep.equal(before)
  })
})
