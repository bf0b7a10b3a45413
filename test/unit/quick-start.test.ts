import {expect} from 'chai'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

// @ts-expect-error bin/quick.js is plain JavaScript, checked by its JSDoc
import {needsSdkHooks, userPluginsFile} from '../../bin/quick.js'

/** kod's start-up: the SDK's module hooks are registered whenever a plugin may need them, and only then. */
describe('start-up: when the SDK module hooks are needed (bin/quick.js)', function () {
  let data: string
  let env: Record<string, string>

  before(async function () {
    data = await mkdtemp(path.join(os.tmpdir(), 'kod-quick-'))
    env = {HOME: data, KOD_DATA_DIR: path.join(data, 'kod-data')}
  })

  after(async function () {
    await rm(data, {recursive: true, force: true})
  })

  it('finds the user plugins file where oclif does: KOD_DATA_DIR, XDG_DATA_HOME/kod, ~/.local/share/kod', function () {
    expect(userPluginsFile({HOME: '/home/u', KOD_DATA_DIR: '/d'})).to.equal('/d/package.json')
    expect(userPluginsFile({HOME: '/home/u', XDG_DATA_HOME: '/x'})).to.equal('/x/kod/package.json')
    expect(userPluginsFile({HOME: '/home/u'})).to.equal('/home/u/.local/share/kod/package.json')
  })

  it("kod's own commands do without them when no plugin is installed; other commands need them", function () {
    for (const argv of [['images', '-c', 'x'], ['package'], ['populate', '--help'], ['--help'], []]) expect(needsSdkHooks(argv, env), argv.join(' ')).to.equal(false)
    for (const argv of [['package-zot'], ['deploy-tools', '--help'], ['plugins', 'link', 'x'], ['hello'], ['help', 'package-zot'], ['--help', 'package']]) {
      expect(needsSdkHooks(argv, env), argv.join(' ')).to.equal(true)
    }
  })

  it('every command needs them once a plugin is installed or linked (its hooks run in kod\'s own commands)', async function () {
    const withPlugins = {HOME: data, KOD_DATA_DIR: data}
    await writeFile(path.join(data, 'package.json'), '{"oclif":{"plugins":[]}}')
    expect(needsSdkHooks(['images', '-c', 'x'], withPlugins)).to.equal(true)
    expect(needsSdkHooks(['package'], withPlugins)).to.equal(true)
  })
})
