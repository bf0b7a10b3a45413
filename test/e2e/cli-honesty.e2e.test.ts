import {expect} from 'chai'
import {execa} from 'execa'
import {cp, mkdir, mkdtemp, readdir, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {stripVTControlCharacters} from 'node:util'
import YAML from 'yaml'

import {FIXTURES, kod} from '../support/kod.js'
import {buildLayout} from '../support/oci-build.js'
import {startRegistry, type TestRegistry} from '../support/registry.js'

/**
 * What kod's help, README and messages promise, checked against what it does: DEBUG=kod* shows the tool
 * commands; local plugin paths install from the disk; a bad --set and oclif's flag-parsing errors are usage
 * errors (exit 2) in one Error: line; each command's help says what that command does with the shared flags;
 * hint references that hold quoted strings render.
 */
const ACME = path.join(FIXTURES, 'charts', 'acme')
const PLUGIN = path.join(FIXTURES, 'plugins', 'acme-hints')

interface Row {
  ref: string
  values: string[]
  foundIn: string[]
}

describe('kod does what it says (e2e)', function () {
  let work: string
  let env: Record<string, string>

  before(async function () {
    work = await mkdtemp(path.join(os.tmpdir(), 'kod-honesty-'))
    // A user of its own: plugins installed here are not seen by anyone else, npm's cache is in here too.
    env = {
      HOME: work,
      XDG_DATA_HOME: path.join(work, 'data'),
      XDG_CONFIG_HOME: path.join(work, 'config'),
      XDG_CACHE_HOME: path.join(work, 'cache'),
      DEBUG: '',
    }
  })

  after(async function () {
    if (work) await rm(work, {recursive: true, force: true})
  })

  async function imageRows(args: string[]): Promise<Row[]> {
    const result = await kod(['images', '-c', ACME, '--json', ...args], {env})
    expect(result.exitCode, result.stderr).to.equal(0)
    return JSON.parse(result.stdout).images as Row[]
  }

  it('kod --version, answered before oclif loads, says what oclif says', async function () {
    const {Config} = await import('@oclif/core')
    const config = await Config.load(path.resolve(FIXTURES, '..', '..'))
    const result = await kod(['--version'], {env})
    expect(result.exitCode, result.stderr).to.equal(0)
    expect(result.stdout.trim()).to.equal(config.userAgent)
    expect(result.stderr).to.equal('')
  })

  describe('DEBUG=kod*', function () {
    let upstream: TestRegistry
    let values: string

    before(async function () {
      upstream = await startRegistry()
      const layout = path.join(work, 'debug-build')
      await buildLayout(layout, [{name: 'app', layers: [{files: {app: 'app\n'}}]}])
      await execa('skopeo', ['copy', '--dest-tls-verify=false', `oci:${layout}:app`, `docker://${upstream.host}/acme/app:2.1.0`])
      values = path.join(work, 'debug-values.yaml')
      await writeFile(values, YAML.stringify({image: {repository: `${upstream.host}/acme/app`}}))
    })

    after(async function () {
      await upstream?.stop()
    })

    it('shows every helm and skopeo command kod runs, on stderr; nothing without it', async function () {
      const out = path.join(work, 'debug-out')
      await mkdir(out)
      const args = ['package', '-c', ACME, '-f', values, '-o', out, '--insecure-registry', upstream.host]
      const quiet = await kod(args, {env})
      expect(quiet.exitCode, quiet.stderr).to.equal(0)
      expect(quiet.stderr).to.not.match(/run: /)

      await rm(out, {recursive: true, force: true})
      await mkdir(out)
      const debug = await kod(args, {env: {...env, DEBUG: 'kod*'}})
      expect(debug.exitCode, debug.stderr).to.equal(0)
      const lines = debug.stderr.split('\n')
      expect(lines.some((line) => /^kod:package run: helm template kod \S+acme(?:-2\.1\.0\.tgz)? --namespace default -f \S+debug-values\.yaml/.test(line)), debug.stderr).to.equal(true)
      expect(lines.some((line) => line.startsWith('kod:package run: skopeo copy ') && line.includes(`docker://${upstream.host}/acme/app:2.1.0`)), debug.stderr).to.equal(true)
      expect(debug.stdout).to.not.match(/run: /)
    })

    it('follows the debug package syntax: kod:<command>, exclusions', async function () {
      const only = await kod(['images', '-c', ACME], {env: {...env, DEBUG: 'kod:images'}})
      expect(only.exitCode, only.stderr).to.equal(0)
      expect(only.stderr).to.match(/^kod:images run: helm template /m)
      const excluded = await kod(['images', '-c', ACME], {env: {...env, DEBUG: 'kod*,-kod:images'}})
      expect(excluded.exitCode, excluded.stderr).to.equal(0)
      expect(excluded.stderr).to.equal('')
    })
  })

  describe('plugins from local paths', function () {
    let tarball: string

    before(async function () {
      const packed = path.join(work, 'packed')
      await mkdir(packed)
      // npm pack reads the directory only: no registry.
      await execa('npm', ['pack', PLUGIN, '--pack-destination', packed], {env: {...process.env, ...env, npm_config_offline: 'true'}})
      const [file] = await readdir(packed)
      tarball = path.join(packed, file!)
    })

    async function expectInstalled(): Promise<void> {
      const listed = await kod(['plugins'], {env})
      // plugin-plugins colours the version whenever it thinks colour is supported (CI=true is enough).
      expect(stripVTControlCharacters(listed.stdout)).to.match(/kod-plugin-acme-hints 1\.0\.0/)
      const worker = (await imageRows([])).find((row) => row.ref === 'registry.invalid/acme/worker:2.1.0')
      expect(worker?.foundIn).to.deep.equal(['hint acme.yaml (kod-plugin-acme-hints (acme charts))'])
    }

    async function uninstall(): Promise<void> {
      const removed = await kod(['plugins', 'uninstall', 'kod-plugin-acme-hints'], {env})
      expect(removed.exitCode, removed.stderr).to.equal(0)
      expect((await imageRows([])).map((row) => row.ref)).to.deep.equal(['registry.invalid/acme/app:2.1.0'])
    }

    it('installs a tarball given as ./file.tgz, from the file, with no network', async function () {
      const here = await mkdtemp(path.join(work, 'cwd-'))
      await cp(tarball, path.join(here, 'plugin.tgz'))
      const installed = await kod(['plugins', 'install', './plugin.tgz'], {env: {...env, npm_config_offline: 'true'}, cwd: here})
      expect(installed.exitCode, installed.stderr).to.equal(0)
      expect(installed.stderr).to.include(`file:${path.join(here, 'plugin.tgz')}`)
      expect(installed.stderr).to.not.match(/github/)
      // The tarball was extracted: the plugin works without it.
      await rm(path.join(here, 'plugin.tgz'))
      await expectInstalled()
      await uninstall()
    })

    it('installs a tarball given by absolute path, and a directory (plugins add)', async function () {
      const installed = await kod(['plugins', 'install', tarball], {env: {...env, npm_config_offline: 'true'}})
      expect(installed.exitCode, installed.stderr).to.equal(0)
      await expectInstalled()
      await uninstall()

      const relative = path.relative(work, PLUGIN)
      const added = await kod(['plugins', 'add', `./${relative}`], {env: {...env, npm_config_offline: 'true'}, cwd: work})
      expect(added.exitCode, added.stderr).to.equal(0)
      await expectInstalled()
      await uninstall()
    })

    it('refuses a local path that does not exist, in one line, exit 2', async function () {
      const result = await kod(['plugins', 'install', './missing.tgz'], {env, cwd: work})
      expect(result.exitCode).to.equal(2)
      expect(result.stderr).to.equal(`Error: plugin not found: ${path.join(work, 'missing.tgz')}`)
    })
  })

  describe('a --set helm refuses is bad input', function () {
    for (const command of ['images', 'package']) {
      it(`${command}: exit 2, one line naming the --set`, async function () {
        const out = await mkdtemp(path.join(work, 'set-'))
        const args = command === 'package' ? ['-o', out] : []
        const result = await kod([command, '-c', ACME, ...args, '--set', 'image.tag=1', '--set', 'a[x]=1'], {env})
        expect(result.exitCode, result.stderr).to.equal(2)
        expect(result.stderr).to.equal('Error: bad --set "a[x]=1": error parsing index: strconv.Atoi: parsing "x": invalid syntax')
        expect(await readdir(out)).to.deep.equal([])
      })
    }

    it('names a key without a value', async function () {
      const result = await kod(['images', '-c', ACME, '--set', 'image.tag'], {env})
      expect(result.exitCode).to.equal(2)
      expect(result.stderr).to.equal('Error: bad --set "image.tag": key "tag" has no value')
    })
  })

  describe("oclif's flag-parsing errors: one Error: line, exit 2", function () {
    const cases: Array<[string, string[], string]> = [
      ['an unknown flag', ['images', '-c', ACME, '--bogus'], 'Error: Nonexistent flag: --bogus\nTry: kod images --help'],
      ['a missing required flag', ['images'], 'Error: Missing required flag chart\nTry: kod images --help'],
      ['a flag without its value', ['deploy', '-c', 'x', '-r', 'y', '--kube-version'], 'Error: Flag --kube-version expects a value\nTry: kod deploy --help'],
      [
        'exclusive flags',
        ['populate', '-c', 'x', '-r', 'y', '--plain-http', '--insecure-skip-tls-verify'],
        'Error: --insecure-skip-tls-verify=true cannot also be provided when using --plain-http\nTry: kod populate --help',
      ],
      ['a flag that needs another', ['images', '-c', ACME, '-o', 'x.yaml'], 'Error: All of the following must be provided when using --output: --relocate-to\nTry: kod images --help'],
      ['an unexpected argument', ['inspect', '-c', 'x', 'extra'], 'Error: Unexpected argument: extra\nTry: kod inspect --help'],
    ]
    for (const [name, args, stderr] of cases) {
      it(name, async function () {
        const result = await kod(args, {env})
        expect(result.exitCode).to.equal(2)
        expect(result.stderr).to.equal(stderr)
        expect(result.stdout).to.equal('')
      })
    }

    it('under --json: the error as JSON on stdout, exit 2 still', async function () {
      const result = await kod(['images', '-c', ACME, '--bogus', '--json'], {env})
      expect(result.exitCode).to.equal(2)
      expect(JSON.parse(result.stdout).error).to.include({message: 'Nonexistent flag: --bogus'})
      const missing = await kod(['images', '-c', path.join(work, 'no-such-chart'), '--json'], {env})
      expect(missing.exitCode).to.equal(2)
      expect(JSON.parse(missing.stdout).error.message).to.match(/^chart not found/)
    })
  })

  describe('help says what each command does with the shared flags', function () {
    async function help(command: string): Promise<string> {
      const result = await kod([command, '--help'], {env: {...env, COLUMNS: '400'}})
      expect(result.exitCode, result.stderr).to.equal(0)
      return result.stdout.replaceAll(/\s+/g, ' ')
    }

    it('package records them', async function () {
      const text = await help('package')
      expect(text).to.match(/--set=<value>\.\.\. helm's --set for every render \(repeatable; with a helmfile, of every release\); recorded in the package/)
      expect(text).to.match(/--kube-version=<value> helm's --kube-version for every render \(e\.g\. 1\.30\.0\); recorded in the package/)
      expect(text).to.match(/carried in the package/)
      expect(text).to.match(/stored in the package/)
    })

    it('images only renders with them', async function () {
      const text = await help('images')
      expect(text).to.not.match(/(recorded|carried|stored) in the package/)
      expect(text).to.match(/--set=<value>\.\.\. helm's --set for every render \(repeatable\)\./)
    })

    it('deploy replaces what package recorded', async function () {
      const text = await help('deploy')
      expect(text).to.not.match(/(recorded|carried|stored) in the package/)
      expect(text).to.match(/--kube-version=<value> helm's --kube-version for the render check \(e\.g\. 1\.30\.0\), instead of the one recorded at package time/)
      expect(text).to.match(/--set=<value>\.\.\. Passed to helm as --set/)
    })
  })

  describe('hint references holding quoted strings', function () {
    it('render through helm and are found, relocated where a value builds them', async function () {
      const hints = path.join(work, 'quoted-hints.yaml')
      await writeFile(
        hints,
        YAML.stringify({
          apiVersion: 'kod.dev/v1',
          kind: 'ImageHints',
          hints: [
            {
              chart: 'acme',
              images: [
                {ref: '{{ .Values.workers.registry | default "docker.io" }}/acme/worker:{{ .Chart.AppVersion | default "latest" }}'},
                {ref: '{{ printf "%s/acme/%s" .Values.workers.registry "printed" }}:{{ "1.0" }}'},
                {ref: '{{ .Values.workers.missing | default "registry.invalid:5000/acme/fallback:1.0" }}'},
              ],
            },
          ],
        }),
      )
      const rows = await imageRows(['--hints', hints])
      const byRef = new Map(rows.map((row) => [row.ref, row]))
      expect([...byRef.keys()].sort(), JSON.stringify(rows)).to.deep.equal([
        'registry.invalid/acme/app:2.1.0',
        'registry.invalid/acme/printed:1.0',
        'registry.invalid/acme/worker:2.1.0',
        'registry.invalid:5000/acme/fallback:1.0',
      ])
      expect(byRef.get('registry.invalid/acme/worker:2.1.0')?.values).to.deep.equal(['workers.registry'])
      expect(byRef.get('registry.invalid/acme/printed:1.0')?.values).to.deep.equal(['workers.registry'])
      expect(byRef.get('registry.invalid:5000/acme/fallback:1.0')?.foundIn).to.deep.equal(['hint quoted-hints.yaml (--hints)'])
    })
  })
})
