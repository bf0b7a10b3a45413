import {expect} from 'chai'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

// @ts-expect-error bin/ is plain JavaScript, run before oclif loads
import {localPluginArgs} from '../../bin/local-plugins.js'

/** kod plugins install PATH: which arguments become file:<absolute path> before plugin-plugins reads them. */
describe('local plugin paths (bin/local-plugins.js)', function () {
  let cwd: string

  before(async function () {
    cwd = await mkdtemp(path.join(os.tmpdir(), 'kod-local-plugins-'))
    await writeFile(path.join(cwd, 'x.tgz'), '')
    await writeFile(path.join(cwd, 'plugin.tar'), '')
  })

  after(async function () {
    await rm(cwd, {recursive: true, force: true})
  })

  const run = (...argv: string[]): {args: string[]; missing?: string} => localPluginArgs(argv, cwd)

  it('turns what npm reads as a path into an absolute file: spec', function () {
    expect(run('plugins', 'install', './x.tgz').args).to.deep.equal(['plugins', 'install', `file:${path.join(cwd, 'x.tgz')}`])
    expect(run('plugins', 'install', 'x.tgz').args).to.deep.equal(['plugins', 'install', `file:${path.join(cwd, 'x.tgz')}`])
    expect(run('plugins', 'add', 'plugin.tar').args).to.deep.equal(['plugins', 'add', `file:${path.join(cwd, 'plugin.tar')}`])
    expect(run('plugins:install', 'file:x.tgz').args).to.deep.equal(['plugins:install', `file:${path.join(cwd, 'x.tgz')}`])
    expect(run('plugins', 'install', cwd).args).to.deep.equal(['plugins', 'install', `file:${cwd}`])
  })

  it('leaves npm names, GitHub specs, URLs, flags and other commands alone', function () {
    for (const spec of ['@scope/x', 'user/repo', 'github:user/repo', 'https://example.invalid/x.tgz', 'file://host/x', 'kod-plugin-x']) {
      expect(run('plugins', 'install', spec).args, spec).to.deep.equal(['plugins', 'install', spec])
    }
    expect(run('plugins', 'install', '--force', './x.tgz').args).to.deep.equal(['plugins', 'install', '--force', `file:${path.join(cwd, 'x.tgz')}`])
    expect(run('package', '-c', './x.tgz').args).to.deep.equal(['package', '-c', './x.tgz'])
  })

  it('names the first local path that does not exist', function () {
    expect(run('plugins', 'install', './nope.tgz', './x.tgz').missing).to.equal(path.join(cwd, 'nope.tgz'))
    expect(run('plugins', 'install', './x.tgz').missing).to.equal(undefined)
  })
})
