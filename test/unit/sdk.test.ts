import {expect} from 'chai'
import {chmod, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import * as sdk from '../../src/sdk.js'

/** kod/sdk (docs/plugins.md): its surface, and the tool registry plugins declare their tools in. */
describe('kod/sdk', function () {
  let dir: string

  before(async function () {
    dir = await mkdtemp(path.join(os.tmpdir(), 'kod-sdk-'))
  })

  after(async function () {
    await rm(dir, {recursive: true, force: true})
  })

  it('is versioned and exports what plugin commands build on', async function () {
    expect(sdk.SDK_API).to.equal('kod.sdk/v1')
    for (const name of ['KodCommand', 'Flags', 'Args', 'createToolRunner', 'formatCommand', 'missingTool', 'toolAvailable', 'registerTool', 'runSteps', 'step', 'KodError', 'ExitCode', 'usageError', 'targetFlags', 'targetFrom', 'listCommandsFlag', 'hostSteps', 'runHostSteps', 'writeBundle', 'openBundle', 'readBundleHead', 'loadSigningKey', 'loadVerifyKey', 'defaultTimeoutMs', 'formatDuration']) {
      expect(sdk, name).to.have.property(name)
    }
    const manifest = JSON.parse(await readFile(path.join(import.meta.dirname, '..', '..', 'package.json'), 'utf8')) as {exports: Record<string, string>}
    expect(manifest.exports['./sdk']).to.equal('./dist/sdk.js')
  })

  it("keeps kod's own tools as they were: PATH or KOD_<TOOL>, the same hints", function () {
    expect(sdk.toolBinary('helm', {KOD_HELM: '/opt/helm'})).to.equal('/opt/helm')
    expect(sdk.toolBinary('skopeo', {})).to.equal('skopeo')
    expect(sdk.toolDefinition('skopeo').installHint).to.equal('install skopeo (apt-get install skopeo) or set KOD_SKOPEO to its path')
    expect(sdk.defaultTimeoutMs('kubectl', ['apply'])).to.equal(2 * 60 * 1000)
    expect(sdk.registeredTools().map((tool) => tool.name)).to.include.members(['helm', 'helmfile', 'skopeo', 'regctl', 'kubectl'])
  })

  it('lets a plugin declare a tool: its variable, its hint, its time limit', async function () {
    sdk.registerTool({name: 'hello-sdk-tool', installHint: 'get hello-sdk-tool from the hello team', env: 'KOD_HELLO', timeoutMs: 1500})
    expect(sdk.isRegisteredTool('hello-sdk-tool')).to.equal(true)
    expect(sdk.toolBinary('hello-sdk-tool', {KOD_HELLO: '/x/hello'})).to.equal('/x/hello')
    expect(sdk.defaultTimeoutMs('hello-sdk-tool', [])).to.equal(1500)
    const runner = sdk.createToolRunner({setpriv: false, binaries: {'hello-sdk-tool': path.join(dir, 'nope')}})
    expect(await sdk.toolAvailable(runner, 'hello-sdk-tool')).to.equal(false)
    const missing = sdk.missingTool(runner, 'hello-sdk-tool')
    expect(missing.exit).to.equal(sdk.ExitCode.toolMissing)
    expect(missing.message).to.equal(`hello-sdk-tool not found at ${path.join(dir, 'nope')}: get hello-sdk-tool from the hello team`)

    // The declared limit holds: a call that outlives it is stopped, said in one line (exit 4).
    const slow = path.join(dir, 'slow')
    await writeFile(slow, '#!/bin/sh\nexec sleep 30\n')
    await chmod(slow, 0o755)
    const started = Date.now()
    const error = await sdk.createToolRunner({setpriv: false, binaries: {'hello-sdk-tool': slow}}).run('hello-sdk-tool', ['wait']).then(() => undefined, (caught: unknown) => caught as InstanceType<typeof sdk.KodError>)
    expect(Date.now() - started).to.be.below(10_000)
    expect(error?.exit).to.equal(sdk.ExitCode.toolFailed)
    expect(error?.message).to.match(/^hello-sdk-tool wait timed out after 2s waiting for it to finish/)
  })

  it('a tool nobody declared still gets a hint naming KOD_<TOOL>', function () {
    expect(sdk.toolDefinition('some-thing').installHint).to.equal('install some-thing or set KOD_SOME_THING to its path')
    expect(sdk.toolBinary('some-thing', {KOD_SOME_THING: '/a'})).to.equal('/a')
  })

  it('refuses a declaration that cannot work', function () {
    expect(() => sdk.registerTool({name: 'Bad Name', installHint: 'x'})).to.throw(/not a tool name/)
    expect(() => sdk.registerTool({name: 'ok', installHint: 'x', env: 'lower'})).to.throw(/not an environment variable name/)
    expect(() => sdk.registerTool({name: 'ok', installHint: 'x', timeoutMs: 0})).to.throw(/positive/)
  })
})
