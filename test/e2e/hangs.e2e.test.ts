import {expect} from 'chai'
import {chmod, mkdtemp, readdir, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import YAML from 'yaml'

import {startSilentServer} from '../support/chart-server.js'
import {FIXTURES, kod, startKod, TOOLS_BIN, toolPath} from '../support/kod.js'
import {seedHello} from '../support/hello-image.js'
import {childrenOf, type ProcInfo, processesNaming, waitFor} from '../support/processes.js'
import {startRegistry, type TestRegistry} from '../support/registry.js'

/**
 * Nothing hangs (docs/security.md, Bounded waits): a registry that accepts connections and never answers
 * fails in well under a minute, named; a slow step keeps saying what it waits for; Ctrl-C and SIGTERM are
 * honoured; the tools kod runs die with it, even when it is SIGKILLed.
 */

/** What kod promises for a registry that never answers: well under a minute. Measured with slack for a shared CPU. */
const SILENT_REGISTRY_BOUND_MS = 60_000

function oneLineError(stderr: string, pattern: RegExp): void {
  const errors = stderr.split('\n').filter((line) => line.startsWith('Error: '))
  expect(errors, stderr).to.have.length(1)
  expect(errors[0], stderr).to.match(pattern)
}

describe('bounded waits: nothing hangs (e2e)', function () {
  this.timeout(180_000)
  let work: string
  let upstream: TestRegistry
  let silent: {host: string; stop(): Promise<void>}
  let hangValues: string
  let kodpkg: string

  before(async function () {
    work = await mkdtemp(path.join(os.tmpdir(), 'kod-hangs-'))
    silent = await startSilentServer()
    hangValues = path.join(work, 'hang.yaml')
    await writeFile(hangValues, YAML.stringify({image: {repository: `${silent.host}/kodtest/hello`}}))
    // A real package, for populate to push to the silent registry.
    upstream = await startRegistry()
    const {values} = await seedHello(work, upstream)
    kodpkg = path.join(work, 'hello.kodpkg')
    const packaged = await kod(['package', '-c', path.join(FIXTURES, 'charts', 'hello'), '-f', values, '-o', kodpkg, '--insecure-registry', upstream.host])
    expect(packaged.exitCode, packaged.stderr).to.equal(0)
    await upstream.stop()
  })

  /** kod's children that talk to the silent registry, or undefined while there are none. */
  async function toolsOf(pid: number): Promise<ProcInfo[] | undefined> {
    const tools = (await childrenOf(pid)).filter((info) => info.cmdline.includes(silent.host))
    return tools.length > 0 ? tools : undefined
  }

  after(async function () {
    await silent?.stop()
    await upstream?.stop()
    if (work) await rm(work, {recursive: true, force: true})
  })

  it('package: an image on a registry that never answers fails in well under a minute, naming the registry, and keeps saying what it waits for', async function () {
    const out = await mkdtemp(path.join(work, 'out-'))
    const started = Date.now()
    const result = await kod(['package', '-c', path.join(FIXTURES, 'charts', 'hello'), '-f', hangValues, '-o', out, '--insecure-registry', silent.host])
    const elapsed = Date.now() - started
    expect(result.exitCode, result.stderr).to.equal(4)
    expect(elapsed, result.stderr).to.be.below(SILENT_REGISTRY_BOUND_MS)
    oneLineError(result.stderr, new RegExp(`^Error: cannot pull ${silent.host}/kodtest/hello:1.0: skopeo inspect timed out after \\d+s waiting for registry ${silent.host}`))
    // The voice: the slow step said, while it waited, what it was still doing (plain lines: stderr is no terminal).
    expect(result.stderr).to.match(new RegExp(`^1/1 ${silent.host}/kodtest/hello:1.0: still pulling, \\d+s$`, 'm'))
    expect(await readdir(out)).to.deep.equal([])
  })

  it('package: a slow fetch and render keeps saying so', async function () {
    // helm that takes 12 s to package the chart, then does.
    const shims = await mkdtemp(path.join(work, 'shims-'))
    await writeFile(path.join(shims, 'helm'), `#!/bin/sh\nif [ "$1" = package ]; then sleep 12; fi\nexec '${path.join(TOOLS_BIN, 'helm')}' "$@"\n`)
    await chmod(path.join(shims, 'helm'), 0o755)
    const closed = await startSilentServer()
    await closed.stop()
    const values = path.join(work, 'closed.yaml')
    await writeFile(values, YAML.stringify({image: {repository: `${closed.host}/kodtest/hello`}}))
    const out = await mkdtemp(path.join(work, 'out-'))
    const result = await kod(['package', '-c', path.join(FIXTURES, 'charts', 'hello'), '-f', values, '-o', out, '--insecure-registry', closed.host], {env: {PATH: toolPath([shims])}})
    expect(result.stderr).to.match(/^Fetch and render \S+hello: still fetching and rendering, 1\ds$/m)
    // What it was waiting for ended: the run goes on (here to the pull, from a registry that is gone).
    expect(result.exitCode, result.stderr).to.equal(4)
    oneLineError(result.stderr, new RegExp(`^Error: cannot pull ${closed.host}/kodtest/hello:1.0: .*connection refused`))
  })

  it('populate: a target registry that never answers fails in well under a minute, naming the registry', async function () {
    const started = Date.now()
    const result = await kod(['populate', '-c', kodpkg, '-r', silent.host, '--plain-http'], {cwd: work})
    const elapsed = Date.now() - started
    expect(result.exitCode, result.stderr).to.equal(4)
    expect(elapsed, result.stderr).to.be.below(SILENT_REGISTRY_BOUND_MS)
    // The looks at the image, the chart and the package's metadata go out together: whichever times out first is named.
    oneLineError(result.stderr, new RegExp(`^Error: cannot push .+?: skopeo inspect timed out after \\d+s waiting for registry ${silent.host}`))
  })

  it('package -o /proc/x: refused at once (Node\'s recursive mkdir would spin there forever, deaf to Ctrl-C)', async function () {
    const started = Date.now()
    const result = await kod(['package', '-c', path.join(FIXTURES, 'charts', 'hello'), '-o', '/proc/x'])
    expect(Date.now() - started, result.stderr).to.be.below(20_000)
    expect(result.exitCode, result.stderr).to.equal(2)
    oneLineError(result.stderr, /^Error: cannot create a directory in \/proc: it takes no new directories; choose a directory you can write to$/)
  })

  it('unpack -o /proc/x: refused at once', async function () {
    const started = Date.now()
    const result = await kod(['unpack', '-c', kodpkg, '-o', '/proc/x'])
    expect(Date.now() - started, result.stderr).to.be.below(20_000)
    expect(result.exitCode, result.stderr).to.equal(2)
    oneLineError(result.stderr, /^Error: cannot create a directory in \/proc: it takes no new directories; choose a directory you can write to$/)
  })

  it('SIGTERM during a pull: exit 130 at once, nothing left behind, no tool left running', async function () {
    const out = await mkdtemp(path.join(work, 'out-'))
    const child = startKod(['package', '-c', path.join(FIXTURES, 'charts', 'hello'), '-f', hangValues, '-o', out, '--insecure-registry', silent.host])
    const tools = await waitFor(async () => toolsOf(child.pid!), 30_000)
    expect(tools, 'kod started skopeo against the silent registry').to.have.length.above(0)
    const signalled = Date.now()
    child.kill('SIGTERM')
    const result = await child
    expect(Date.now() - signalled).to.be.below(15_000)
    expect(result.exitCode, String(result.stderr)).to.equal(130)
    expect(await readdir(out)).to.deep.equal([])
    expect((await processesNaming(silent.host)).filter((info) => tools!.some((tool) => tool.pid === info.pid))).to.deep.equal([])
  })

  for (const [what, args] of [
    ['pulling', (out: string) => ['package', '-c', path.join(FIXTURES, 'charts', 'hello'), '-f', hangValues, '-o', out, '--insecure-registry', silent.host]],
    ['pushing', () => ['populate', '-c', kodpkg, '-r', silent.host, '--plain-http']],
  ] as const) {
    it(`a SIGKILLed kod leaves no skopeo ${what}`, async function () {
      const out = await mkdtemp(path.join(work, 'killed-'))
      const child = startKod(args(out), {cwd: out})
      const pid = child.pid!
      const started = (await waitFor(async () => toolsOf(pid), 30_000)) ?? []
      expect(started, 'kod started skopeo against the silent registry').to.have.length.above(0)
      child.kill('SIGKILL')
      await child
      // The kernel kills each tool as its parent dies (setpriv --pdeathsig KILL): give it a moment.
      const survivors = await waitFor(async () => {
        const alive = (await processesNaming(silent.host)).filter((info) => started.some((tool) => tool.pid === info.pid))
        return alive.length === 0 ? [] : undefined
      }, 5000)
      expect(survivors, JSON.stringify(await processesNaming(silent.host))).to.deep.equal([])
    })
  }
})
