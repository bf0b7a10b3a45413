import {expect} from 'chai'
import {mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {createToolRunner, ExitCode, hostCommand, hostStepCommands, hostSteps, KodError, runHostSteps} from '../../src/sdk.js'

/** Host steps (docs/plugins.md): printed as shell commands, or run in order with real coreutils and rolled back on failure. */
describe('kod/sdk host steps', function () {
  let dir: string
  const tools = createToolRunner({setpriv: false})

  beforeEach(async function () {
    dir = await mkdtemp(path.join(os.tmpdir(), 'kod-sdk-steps-'))
  })

  afterEach(async function () {
    await rm(dir, {recursive: true, force: true})
  })

  it('prints each step as the command it runs, quoted for a shell', function () {
    const steps = [
      hostSteps.makeDirectory('/opt/my tools', {mode: 0o750, owner: 'root', group: 'zot'}),
      hostSteps.copyFile('/b/zot', '/opt/my tools/zot', {mode: 0o755}),
      hostSteps.copyTree('/b/lib/kod', '/usr/local/lib/kod'),
      hostSteps.readableTree('/usr/local/lib/kod'),
      hostSteps.remove('/usr/local/lib/kod'),
      hostSteps.addSystemUser('zot', {home: '/var/lib/zot', comment: 'zot OCI registry'}),
      hostSteps.systemctl(['enable', '--now', 'zot.service']),
    ]
    expect(hostStepCommands(steps, tools)).to.deep.equal([
      "install -d -m 0750 -o root -g zot '/opt/my tools'",
      "install -m 0755 /b/zot '/opt/my tools/zot'",
      'cp -R /b/lib/kod /usr/local/lib/kod',
      'chmod -R u=rwX,go=rX /usr/local/lib/kod',
      'rm -rf /usr/local/lib/kod',
      "useradd --system --user-group --no-create-home --home-dir /var/lib/zot --shell /usr/sbin/nologin --comment 'zot OCI registry' zot",
      'systemctl enable --now zot.service',
    ])
    expect(hostSteps.addSystemUser('zot', {home: '/x'}).undo).to.deep.equal({tool: 'userdel', args: ['zot']})
  })

  it('runs the steps in order', async function () {
    const source = path.join(dir, 'source')
    await writeFile(source, 'new\n')
    const target = path.join(dir, 'a', 'b')
    await runHostSteps([hostSteps.makeDirectory(target, {mode: 0o700}), hostSteps.copyFile(source, path.join(target, 'file'), {mode: 0o640})], {tools, quiet: true})
    expect((await stat(target)).mode & 0o777).to.equal(0o700)
    expect((await stat(path.join(target, 'file'))).mode & 0o777).to.equal(0o640)
    expect(await readFile(path.join(target, 'file'), 'utf8')).to.equal('new\n')
  })

  it('rolls back on failure: made directories removed, replaced files and trees put back, undo run; nothing moved aside is left', async function () {
    const source = path.join(dir, 'source')
    await writeFile(source, 'new\n')
    const existing = path.join(dir, 'kept')
    await writeFile(existing, 'old\n')
    const tree = path.join(dir, 'tree')
    await mkdir(tree)
    await writeFile(path.join(tree, 'inside'), 'tree\n')
    const marker = path.join(dir, 'marker')
    const made = path.join(dir, 'made', 'deeper')
    const steps = [
      hostSteps.makeDirectory(made, {mode: 0o755}),
      hostSteps.copyFile(source, existing, {mode: 0o644}),
      hostSteps.remove(tree),
      hostSteps.copyTree(path.join(dir, 'made'), tree),
      hostCommand('touch', [marker], {undo: {tool: 'rm', args: ['-f', marker]}}),
      hostCommand('cp', [path.join(dir, 'no-such-file'), path.join(dir, 'x')]),
    ]
    const error = await runHostSteps(steps, {tools, quiet: true}).then(
      () => undefined,
      (caught: unknown) => caught as KodError,
    )
    expect(error).to.be.instanceOf(KodError)
    expect(error!.exit).to.equal(ExitCode.toolFailed)
    expect(error!.message).to.match(/^cp .* failed: .*no-such-file/)
    expect(await readFile(existing, 'utf8')).to.equal('old\n')
    expect(await readFile(path.join(tree, 'inside'), 'utf8')).to.equal('tree\n')
    expect((await readdir(dir)).sort(), 'made/ removed, marker undone, no backups left').to.deep.equal(['kept', 'source', 'tree'])
  })

  it('a step without its command is exit 3, and the run before it is rolled back', async function () {
    const made = path.join(dir, 'made')
    const error = await runHostSteps([hostSteps.makeDirectory(made, {mode: 0o755}), hostCommand('no-such-command-kod', [])], {tools, quiet: true}).then(
      () => undefined,
      (caught: unknown) => caught as KodError,
    )
    expect(error?.exit).to.equal(ExitCode.toolMissing)
    expect(error?.message).to.equal('no-such-command-kod not found on PATH: install no-such-command-kod or set KOD_NO_SUCH_COMMAND_KOD to its path')
    expect(await readdir(dir)).to.deep.equal([])
  })

  it('an interrupt stops before the next step and rolls back', async function () {
    const abort = new AbortController()
    const made = path.join(dir, 'made')
    const steps = [hostSteps.makeDirectory(made, {mode: 0o755}), hostCommand('true', [], {did: 'aborted'}), hostSteps.makeDirectory(path.join(dir, 'never'), {mode: 0o755})]
    const runner = {...tools, run: async (...args: Parameters<typeof tools.run>) => {
      const result = await tools.run(...args)
      if (args[0] === 'true') abort.abort()
      return result
    }}
    const error = await runHostSteps(steps, {tools: runner, quiet: true, signal: abort.signal}).then(
      () => undefined,
      (caught: unknown) => caught,
    )
    expect(error).to.not.equal(undefined)
    expect(await readdir(dir)).to.deep.equal([])
  })
})
