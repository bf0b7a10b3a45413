import {expect} from 'chai'
import {cp, mkdir, mkdtemp, readdir, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {kod} from '../support/kod.js'

/**
 * Mix-ups a user makes, each said in one line with exit 2 before any work is done (nothing unpacked,
 * nothing written): names helm would refuse late, a kod package given where a chart is expected,
 * contradictory registry flags, a directory kod cannot write into.
 */
describe('mix-ups are bad input, said before any work (e2e)', function () {
  let work: string
  let kodpkg: string

  before(async function () {
    work = await mkdtemp(path.join(os.tmpdir(), 'kod-mixups-'))
    // A chart without images packages without any registry.
    const chart = path.join(work, 'plain')
    await mkdir(path.join(chart, 'templates'), {recursive: true})
    await writeFile(path.join(chart, 'Chart.yaml'), 'apiVersion: v2\nname: plain\nversion: 1.0.0\n')
    await writeFile(path.join(chart, 'templates', 'cm.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: plain}\ndata: {a: b}\n')
    const packaged = await kod(['package', '-c', chart, '-o', path.join(work, 'kod-plain-1.0.0.tgz')])
    expect(packaged.exitCode, packaged.stderr).to.equal(0)
    kodpkg = path.join(work, 'kod-plain-1.0.0.tgz')
  })

  after(async function () {
    if (work) await rm(work, {recursive: true, force: true})
  })

  async function expectUsage(args: string[], message: RegExp, cwd?: string): Promise<void> {
    const dir = cwd ?? (await mkdtemp(path.join(work, 'cwd-')))
    const result = await kod(args, {cwd: dir})
    expect(result.exitCode, result.stderr).to.equal(2)
    expect(result.stderr.trim().split('\n').filter((line) => line.startsWith('Error:'))).to.have.length(1)
    expect(result.stderr).to.match(message)
    if (!cwd) expect(await readdir(dir), 'nothing may be unpacked or written').to.deep.equal([])
  }

  it('-d and -n that helm or Kubernetes would refuse', async function () {
    await expectUsage(['deploy', '-c', kodpkg, '-r', '127.0.0.1:1', '-d', 'Rel;rm'], /-d "Rel;rm" is not a valid release name/)
    await expectUsage(['deploy', '-c', kodpkg, '-r', '127.0.0.1:1', '-n', 'Bad_NS!'], /-n "Bad_NS!" is not a valid namespace/)
  })

  it('--kube-version that is no version', async function () {
    await expectUsage(['package', '-c', kodpkg, '--kube-version', 'abc'], /--kube-version "abc" is not a Kubernetes version/)
  })

  it('a kod package (file of any name, or unpacked) given to kod package', async function () {
    await expectUsage(['package', '-c', kodpkg], /kod-plain-1\.0\.0\.tgz is a kod package already, not a package source: deploy it with kod deploy -c/)
    const unpacked = path.join(work, 'unpacked')
    const result = await kod(['unpack', '-c', kodpkg, '-o', unpacked])
    expect(result.exitCode, result.stderr).to.equal(0)
    await expectUsage(['package', '-c', unpacked], /is a kod package already/)
  })

  it('contradictory registry flags, and credentials in -r (never echoed)', async function () {
    await expectUsage(['populate', '-c', kodpkg, '-r', 'https://127.0.0.1:1/', '--plain-http'], /says https:\/\/, --plain-http says plain HTTP: keep one/)
    const cwd = await mkdtemp(path.join(work, 'cwd-'))
    const result = await kod(['populate', '-c', kodpkg, '-r', 'https://me:s3cr3t@127.0.0.1:1/'], {cwd})
    expect(result.exitCode).to.equal(2)
    expect(result.stderr).to.match(/credentials do not belong in the registry address/)
    expect(result.stderr + result.stdout).to.not.include('s3cr3t')
  })

  it('a current directory kod cannot write into', async function () {
    // Root writes through permission bits; sysfs refuses new directories to everyone.
    const readOnly = '/sys/kernel'
    const copy = path.join(work, 'copy.tgz')
    await cp(kodpkg, copy)
    await expectUsage(['deploy', '--list-commands', '-c', copy, '-r', '127.0.0.1:1'], /cannot unpack .*copy\.tgz into the current directory \(\/sys\/kernel\): it is not writable; run kod from a directory you can write to/, readOnly)
    // unpack -o names the directory it was given, and the flag to change.
    await expectUsage(['unpack', '-c', copy, '-o', '/sys/kernel/pkg'], /cannot unpack .*copy\.tgz into \/sys\/kernel\/pkg: \/sys\/kernel is not writable; give -o a directory you can write to$/)
    await expectUsage(['package', '-c', path.join(work, 'plain')], /cannot write the package into \/sys\/kernel: it is not writable; choose a directory you can write to with -o/, readOnly)
  })
})
