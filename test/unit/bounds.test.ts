import {expect} from 'chai'
import {chmod, mkdtemp, rm, stat, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {
  ANSWER_MS,
  defaultTimeoutMs,
  formatDuration,
  goDurationMs,
  inspectFlags,
  LOCAL_HELM_MS,
  makeDirectories,
  NETWORK_HELM_MS,
  registryHosts,
  TRANSFER_BASE_MS,
  transferTimeoutMs,
  UNKNOWN_SIZE_MS,
} from '../../src/lib/bounds.js'
import {KodError} from '../../src/lib/errors.js'
import {transferBytes} from '../../src/lib/oci.js'
import {createToolRunner, ToolTimeout} from '../../src/lib/tools.js'

const MiB = 1024 * 1024

describe('bounded waits', function () {
  it('gives a copy a base plus its bytes at 1 MiB/s, and a generous bound when the size is unknown', function () {
    expect(transferTimeoutMs(0)).to.equal(TRANSFER_BASE_MS)
    expect(transferTimeoutMs(100 * MiB)).to.equal(TRANSFER_BASE_MS + 100_000)
    expect(transferTimeoutMs(undefined)).to.equal(UNKNOWN_SIZE_MS)
    expect(transferTimeoutMs(Number.NaN)).to.equal(UNKNOWN_SIZE_MS)
  })

  it('bounds every call by what it does when the caller gives no limit', function () {
    expect(defaultTimeoutMs('helm', ['template', 'kod', '/chart'])).to.equal(LOCAL_HELM_MS)
    expect(defaultTimeoutMs('helm', ['show', 'chart', 'x.tgz'])).to.equal(LOCAL_HELM_MS)
    expect(defaultTimeoutMs('helm', ['pull', 'oci://r/c'])).to.equal(NETWORK_HELM_MS)
    expect(defaultTimeoutMs('helm', ['dependency', 'build', '/chart'])).to.equal(NETWORK_HELM_MS)
    expect(defaultTimeoutMs('skopeo', ['inspect', '--raw', 'docker://r/i:1'])).to.equal(ANSWER_MS)
    expect(defaultTimeoutMs('skopeo', ['copy', 'docker://r/i:1', 'oci:/l:i'])).to.equal(UNKNOWN_SIZE_MS)
    // helm's own --timeout (default 5m) plus a margin: kod never cuts helm's wait short.
    expect(defaultTimeoutMs('helm', ['upgrade', '--install', 'r', 'c'])).to.equal(10 * 60_000)
    expect(defaultTimeoutMs('helm', ['upgrade', '--install', 'r', 'c', '--timeout', '20m'])).to.equal(25 * 60_000)
  })

  it('reads Go durations as helm takes them', function () {
    expect(goDurationMs('5m0s')).to.equal(300_000)
    expect(goDurationMs('1h30m')).to.equal(5_400_000)
    expect(goDurationMs('90')).to.equal(90_000)
    expect(goDurationMs('soon')).to.equal(undefined)
  })

  it('says durations as a user reads them', function () {
    expect(formatDuration(30_000)).to.equal('30s')
    expect(formatDuration(65_000)).to.equal('1m05s')
    expect(formatDuration(3_720_000)).to.equal('1h02m')
  })

  it('names the registries a call talks to, never their credentials', function () {
    expect(registryHosts(['copy', 'docker://127.0.0.1:5000/a/b:1', 'oci:/tmp/l:x'])).to.deep.equal(['127.0.0.1:5000'])
    expect(registryHosts(['push', 'c.tgz', 'oci://user:pw@Reg.Lab:5000/kod/charts'])).to.deep.equal(['reg.lab:5000'])
  })

  it('asks the same registry the same way as the copy would (its side of the flags)', function () {
    const copy = ['copy', '--all', '--src-tls-verify=false', '--src-authfile', '/a.json', '--dest-tls-verify=false', '--dest-creds=u', 'oci:/l:x', 'docker://r/i:1']
    expect(inspectFlags(copy, '--src-')).to.deep.equal(['--tls-verify=false', '--authfile', '/a.json'])
    expect(inspectFlags(copy, '--dest-')).to.deep.equal(['--tls-verify=false', '--creds=u'])
  })

  it('counts what copying a manifest or an index moves', function () {
    const manifest = JSON.stringify({config: {digest: 'sha256:c', size: 100}, layers: [{digest: 'sha256:a', size: 2 * MiB}, {digest: 'sha256:b', size: 1000}]})
    expect(transferBytes(manifest)).to.deep.equal({bytes: Buffer.byteLength(manifest) + 100 + 2 * MiB + 1000, platforms: []})
    const index = JSON.stringify({
      manifests: [
        {digest: 'sha256:amd', size: 500, platform: {os: 'linux', architecture: 'amd64'}},
        {digest: 'sha256:arm', size: 500, platform: {os: 'linux', architecture: 'arm64'}},
        {digest: 'sha256:att', size: 400, platform: {os: 'unknown', architecture: 'unknown'}},
      ],
    })
    const counted = transferBytes(index)!
    expect(counted.platforms).to.deep.equal(['sha256:amd', 'sha256:arm'])
    expect(counted.bytes).to.equal(Buffer.byteLength(index) + 1400 + MiB)
    expect(transferBytes('not json')).to.equal(undefined)
    expect(transferBytes('{"schemaVersion": 2}')).to.equal(undefined)
  })

  describe('makeDirectories', function () {
    let work: string
    before(async function () {
      work = await mkdtemp(path.join(os.tmpdir(), 'kod-bounds-'))
    })
    after(async function () {
      await rm(work, {recursive: true, force: true})
    })

    it('creates every missing level and says which was first, like mkdir -p', async function () {
      expect(await makeDirectories(path.join(work, 'a', 'b', 'c'))).to.equal(path.join(work, 'a'))
      expect((await stat(path.join(work, 'a', 'b', 'c'))).isDirectory()).to.equal(true)
      expect(await makeDirectories(path.join(work, 'a', 'b'))).to.equal(undefined)
    })

    it('refuses a file in the way with the error mkdir -p gives', async function () {
      await writeFile(path.join(work, 'file'), 'x')
      const inTheWay = await makeDirectories(path.join(work, 'file')).catch((error: NodeJS.ErrnoException) => error)
      expect((inTheWay as NodeJS.ErrnoException).code).to.equal('EEXIST')
      const under = await makeDirectories(path.join(work, 'file', 'x')).catch((error: NodeJS.ErrnoException) => error)
      expect((under as NodeJS.ErrnoException).code).to.equal('ENOTDIR')
    })

    it('ends where Node\'s recursive mkdir spins forever (/proc/x)', async function () {
      this.timeout(5000)
      const error = await makeDirectories('/proc/kod-test/x').catch((error_: unknown) => error_)
      expect(error).to.be.instanceOf(KodError)
      expect((error as KodError).message).to.match(/^cannot create a directory in \/proc: it takes no new directories/)
    })
  })

  describe('the tool runner', function () {
    let work: string
    let slow: string
    before(async function () {
      work = await mkdtemp(path.join(os.tmpdir(), 'kod-runner-'))
      slow = path.join(work, 'helm')
      await writeFile(slow, '#!/bin/sh\nexec sleep 30\n')
      await chmod(slow, 0o755)
    })
    after(async function () {
      await rm(work, {recursive: true, force: true})
    })

    for (const setpriv of [undefined, false] as const) {
      it(`stops a tool at its limit and says how long and for what${setpriv === false ? ' (without setpriv)' : ''}`, async function () {
        const previous = process.env.KOD_HELM
        process.env.KOD_HELM = slow
        const lines: string[] = []
        try {
          const runner = createToolRunner({onRun: (line) => lines.push(line), setpriv})
          const started = Date.now()
          const error = await runner.run('helm', ['pull', 'oci://127.0.0.1:9/charts/x'], {timeoutMs: 300}).catch((error_: unknown) => error_)
          expect(Date.now() - started).to.be.below(10_000)
          expect(error).to.be.instanceOf(ToolTimeout)
          expect((error as KodError).exit).to.equal(4)
          expect((error as KodError).message).to.match(/^helm pull timed out after \ds waiting for registry 127\.0\.0\.1:9; check that the registry is up and answering$/)
          // DEBUG shows the command as the user would paste it, then what wraps and bounds it.
          expect(lines[0]).to.match(new RegExp(`^\\S*helm pull oci://127.0.0.1:9/charts/x  # ${setpriv === false ? '' : 'via setpriv --pdeathsig KILL, '}killed after 0s$`))
        } finally {
          if (previous === undefined) delete process.env.KOD_HELM
          else process.env.KOD_HELM = previous
        }
      })
    }

    it('says a missing tool is missing (exit 3), through setpriv too', async function () {
      const previous = process.env.KOD_SKOPEO
      process.env.KOD_SKOPEO = path.join(work, 'nope', 'skopeo')
      try {
        const error = await createToolRunner().run('skopeo', ['inspect', 'docker://x/y']).catch((error_: unknown) => error_)
        expect((error as KodError).exit).to.equal(3)
        // KOD_SKOPEO named it: that is what to fix.
        expect((error as KodError).message).to.match(/^skopeo not found at .*nope\/skopeo \(KOD_SKOPEO names it\): fix KOD_SKOPEO, or unset it to use skopeo from PATH$/)
        const named = await createToolRunner({binaries: {skopeo: path.join(work, 'elsewhere', 'skopeo')}}).run('skopeo', ['inspect', 'docker://x/y']).catch((error_: unknown) => error_)
        expect((named as KodError).message, 'a path not from KOD_SKOPEO').to.match(/^skopeo not found at .*elsewhere\/skopeo: install skopeo/)
      } finally {
        if (previous === undefined) delete process.env.KOD_SKOPEO
        else process.env.KOD_SKOPEO = previous
      }
    })
  })
})
