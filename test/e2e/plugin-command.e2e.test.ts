import {expect} from 'chai'
import {execa} from 'execa'
import {mkdtemp, readdir, readFile, rm, stat} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {oneLineError} from '../support/assertions.js'
import {FIXTURES, kod, type KodResult} from '../support/kod.js'

/**
 * A plugin that adds a command (docs/plugins.md), built on kod/sdk: the fixture plugin hello-command,
 * installed with `kod plugins link` for a user of its own. Its command extends kod's base command, runs
 * the tool it declares (hello-tool, KOD_HELLO_TOOL, its own hint and time limit), and installs on the host
 * through planned steps that --list-commands prints and a failure rolls back.
 */
const PLUGIN = path.join(FIXTURES, 'plugins', 'hello-command')
const TOOL = path.join(PLUGIN, 'bin', 'hello-tool')

describe('a plugin that adds a command, on kod/sdk (e2e)', function () {
  let work: string
  let env: Record<string, string>

  const hello = (args: string[], extra: Record<string, string> = {}): Promise<KodResult> => kod(['hello', ...args], {env: {...env, ...extra}, cwd: work})

  before(async function () {
    work = await mkdtemp(path.join(os.tmpdir(), 'kod-plugin-command-'))
    env = {HOME: work, XDG_DATA_HOME: path.join(work, 'data'), XDG_CONFIG_HOME: path.join(work, 'config'), XDG_CACHE_HOME: path.join(work, 'cache')}
    const linked = await kod(['plugins', 'link', PLUGIN, '--no-install'], {env})
    expect(linked.exitCode, linked.stderr).to.equal(0)
  })

  after(async function () {
    if (work) {
      await kod(['plugins', 'unlink', 'kod-plugin-hello-command'], {env})
      await rm(work, {recursive: true, force: true})
    }
  })

  it('is listed, and its command runs the tool it declares', async function () {
    expect((await kod(['plugins'], {env})).stdout).to.match(/kod-plugin-hello-command/)
    expect((await kod(['--help'], {env})).stdout).to.match(/hello\s+Greet someone with hello-tool/)
    const result = await hello(['--name', 'Ada'], {KOD_HELLO_TOOL: TOOL})
    expect(result.exitCode, result.stderr).to.equal(0)
    expect(result.stdout.trim()).to.equal('Hello, Ada')
    // Progress from kod's runSteps: a plain line on stderr for the finished step.
    expect(result.stderr).to.match(/^Greeted Ada$/m)
    const json = await hello(['--name', 'Ada', '--json'], {KOD_HELLO_TOOL: TOOL})
    expect(JSON.parse(json.stdout)).to.deep.equal({sdk: 'kod.sdk/v1', greeting: 'Hello, Ada'})
    // Found on PATH as well as through its variable.
    const onPath = await kod(['hello'], {env: {...env, PATH: `${path.dirname(TOOL)}${path.delimiter}${process.env.PATH}`}, cwd: work})
    expect(onPath.stdout.trim(), onPath.stderr).to.equal('Hello, world')
  })

  it('a missing tool is exit 3 with the hint the plugin declared, one line', async function () {
    const result = await hello([])
    expect(result.exitCode).to.equal(3)
    oneLineError(result, /^Error: hello-tool not found on PATH: put hello-tool \(test\/fixtures\/plugins\/hello-command\/bin\) on PATH or set KOD_HELLO_TOOL to its path$/)
    const elsewhere = await hello([], {KOD_HELLO_TOOL: path.join(work, 'no-such-tool')})
    expect(elsewhere.exitCode).to.equal(3)
    oneLineError(elsewhere, /^Error: hello-tool not found at .*no-such-tool \(KOD_HELLO_TOOL names it\): fix KOD_HELLO_TOOL, or unset it to use hello-tool from PATH$/)
  })

  it('the time limit the plugin declared stops a call that hangs (exit 4, named)', async function () {
    const started = Date.now()
    const result = await hello(['--name', 'slow'], {KOD_HELLO_TOOL: TOOL})
    expect(Date.now() - started).to.be.below(20_000)
    expect(result.exitCode).to.equal(4)
    oneLineError(result, /^Error: hello-tool greet timed out after 3s waiting for it to finish/)
  })

  it("kod's base command turns the plugin's errors and bad flags into one line with their exit code", async function () {
    const empty = await hello(['--name', ' '], {KOD_HELLO_TOOL: TOOL})
    expect(empty.exitCode).to.equal(2)
    oneLineError(empty, /^Error: --name is empty: say whom to greet$/)
    const unknown = await hello(['--nope'], {KOD_HELLO_TOOL: TOOL})
    expect(unknown.exitCode).to.equal(2)
    oneLineError(unknown, /Nonexistent flag: --nope/)
  })

  it('--list-commands prints every host step as a shell command and changes nothing; run by a shell they do what kod does', async function () {
    const into = path.join(work, 'listed', 'greeting')
    const listed = await hello(['--into', into, '--list-commands'], {KOD_HELLO_TOOL: TOOL})
    expect(listed.exitCode, listed.stderr).to.equal(0)
    expect(listed.stdout.trim().split('\n')).to.deep.equal([
      `install -d -m 0755 ${into}`,
      `install -m 0644 ${path.join(PLUGIN, 'files', 'hello.txt')} ${path.join(into, 'hello.txt')}`,
      `${TOOL} stamp ${path.join(into, 'stamp')}`,
    ])
    expect(await readdir(work), 'nothing created').to.not.include('listed')
    await execa('sh', ['-e', '-c', listed.stdout])
    expect(await readFile(path.join(into, 'hello.txt'), 'utf8')).to.equal('hello from the hello-command plugin\n')
    expect(await readFile(path.join(into, 'stamp'), 'utf8')).to.equal('stamped by hello-tool\n')
  })

  it('runs the host steps in order, with the modes asked for', async function () {
    const into = path.join(work, 'ran', 'greeting')
    const result = await hello(['--into', into, '--name', 'Ada'], {KOD_HELLO_TOOL: TOOL})
    expect(result.exitCode, result.stderr).to.equal(0)
    expect(result.stderr).to.match(new RegExp(`^Created ${into}\\nInstalled hello.txt into ${path.join(into, 'hello.txt')}\\nStamped it\\n`, 'm'))
    expect((await stat(into)).mode & 0o777).to.equal(0o755)
    expect((await stat(path.join(into, 'hello.txt'))).mode & 0o777).to.equal(0o644)
    expect(await readFile(path.join(into, 'stamp'), 'utf8')).to.equal('stamped by hello-tool\n')
  })

  it('a step that fails rolls back the steps before it: nothing is left half-installed', async function () {
    const parent = path.join(work, 'failed')
    const into = path.join(parent, 'greeting')
    const result = await hello(['--into', into, '--name', 'fail'], {KOD_HELLO_TOOL: TOOL})
    expect(result.exitCode).to.equal(4)
    oneLineError(result, /^Error: hello-tool stamp failed: stamp: cannot stamp .*fail-stamp: refused on purpose$/)
    expect(await readdir(work), 'the directories it made are gone').to.not.include('failed')
  })
})
