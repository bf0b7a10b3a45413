import {expect} from 'chai'
import {execa} from 'execa'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {launcherScript, toolsBundleFiles, toolsBundleProblem} from '../src/bundle-kind.js'
import {collectKod, visibleFrom} from '../src/kod-tree.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..')

/** plugin-tools' pure parts: kod's self-contained install (its run-time packages, as Node finds them), the bundle manifest's own rules, the launcher. */
describe('plugin-tools: kod as a self-contained install', function () {
  it('takes exactly the packages npm installs without devDependencies, each where Node finds it', async function () {
    const tree = await collectKod(ROOT)
    const {stdout} = await execa('npm', ['ls', '--omit=dev', '--parseable', '--all'], {cwd: ROOT, reject: false})
    const expected = stdout
      .split('\n')
      .filter((line) => line.startsWith(ROOT + path.sep))
      .map((line) => path.relative(ROOT, line).split(path.sep).join('/'))
      .sort()
    expect(tree.packages.map((pkg) => pkg.location).sort()).to.deep.equal(expected)
    const names = new Set(tree.packages.map((pkg) => pkg.name))
    for (const dev of ['typescript', 'mocha', 'chai', 'eslint', 'tsx', '@aws-cdk/lambda-layer-kubectl-v35']) expect(names.has(dev), dev).to.equal(false)
    for (const needed of ['@oclif/core', '@kod/plugin-helm', '@kod/plugin-tools', '@kod/helm-analysis', 'yaml', 'tar']) expect(names.has(needed), needed).to.equal(true)
  })

  it("takes kod's and its workspace plugins' published files only, with their run-time files", async function () {
    const targets = new Set((await collectKod(ROOT)).files.map((file) => file.target))
    for (const needed of ['package.json', 'bin/run.js', 'bin/sdk-hooks.js', 'bin/register-sdk.js', 'dist/sdk.js', 'oclif.manifest.json', 'node_modules/@kod/plugin-tools/dist/commands/deploy-tools.js', 'node_modules/@kod/plugin-helm/hints/istiod.yaml', 'node_modules/@oclif/core/package.json']) {
      expect(targets.has(needed), needed).to.equal(true)
    }
    for (const target of targets) {
      expect(target, 'no sources, tests or build caches of kod or its workspaces').to.not.match(/^(src|test|scripts|plugins|packages)\/|^node_modules\/@kod\/[^/]+\/(src|test)\/|\.tsbuildinfo$|^node_modules\/\.bin\//)
    }
  })

  it('Node finds a package in node_modules of its dependent or of a directory above it', function () {
    expect(visibleFrom('', 'node_modules/yaml', 'yaml')).to.equal(true)
    expect(visibleFrom('node_modules/@kod/plugin-helm', 'node_modules/yaml', 'yaml')).to.equal(true)
    expect(visibleFrom('node_modules/npm', 'node_modules/npm/node_modules/diff', 'diff')).to.equal(true)
    expect(visibleFrom('node_modules/a', 'node_modules/b/node_modules/x', 'x')).to.equal(false)
    expect(visibleFrom('', 'plugins/node_modules/x', 'x')).to.equal(false)
    expect(visibleFrom('node_modules/@kod/plugin-helm', 'node_modules/@kod/plugin-helm/node_modules/@scope/y', '@scope/y')).to.equal(true)
  })
})

describe('plugin-tools: the bundle manifest and the launcher', function () {
  const tool = (name: string, file = `bin/${name}`) => ({name, file, sha256: '0'.repeat(64), size: 1, version: '1.0.0', versionCommand: [name, '--version'], versionOutput: '1.0.0', from: `/usr/bin/${name}`})
  const fields = (tools: ReturnType<typeof tool>[]) => ({
    platform: 'linux/amd64',
    tools,
    kod: {version: '0.1.0', launcher: {file: 'bin/kod', sha256: '1'.repeat(64)}, dir: 'lib/kod', files: 1, bytes: 1, treeSha256: '2'.repeat(64), node: {file: 'lib/kod/node/bin/node', sha256: '3'.repeat(64), size: 1, version: 'v20.0.0'}, plugins: [], packages: 0},
  })

  it('each tool once, at bin/<name>, none named kod; the files SHA256SUMS must list', function () {
    expect(toolsBundleProblem(fields([tool('helm'), tool('skopeo')]))).to.equal(undefined)
    expect(toolsBundleProblem(fields([tool('helm'), tool('helm')]))).to.equal('tool helm is listed twice')
    expect(toolsBundleProblem(fields([tool('helm', 'bin/other')]))).to.equal('tool helm is at bin/other, not bin/helm')
    expect(toolsBundleProblem(fields([tool('kod')]))).to.match(/named kod/)
    expect(toolsBundleFiles(fields([tool('helm')]))).to.deep.equal(['bin/helm', 'bin/kod', 'lib/kod/node/bin/node'])
  })

  it('the launcher is a POSIX shell script that runs ../lib/kod with its node and puts its own directory first on PATH', async function () {
    const script = launcherScript('0.1.0')
    expect(script.startsWith('#!/bin/sh\n')).to.equal(true)
    await execa('sh', ['-n', '-c', script])
    expect(script).to.match(/exec "\$lib\/node\/bin\/node" "\$lib\/bin\/run\.js" "\$@"/)
    expect(script).to.match(/PATH="\$here\$\{PATH:\+:\$PATH\}"/)
  })
})
