import {expect} from 'chai'
import {execa} from 'execa'
import {cp, mkdir, mkdtemp, readdir, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {FIXTURES, kod, TOOLS_BIN} from '../support/kod.js'
import {seedHello} from '../support/hello-image.js'
import {startRegistry, type TestRegistry} from '../support/registry.js'
import {oneLineError as oneErrorLine} from '../support/assertions.js'

/**
 * Issue 8, part 6: every error is one line that names the file or host and says what to do, with the
 * README's exit code: YAML errors name the file, a missing skopeo exits 3 everywhere, --insecure-registry
 * takes a URL, --version is refused for a local chart, and no raw EISDIR/EEXIST/ENOENT/ENOTDIR reaches the user.
 */
const HELM = path.join(TOOLS_BIN, 'helm')
const HELLO = path.join(FIXTURES, 'charts', 'hello')
const BAD_YAML = 'image:\n  repository: [unclosed\n  tag: "1.0"\n'
const RAW_FS_CODE = /\b(EISDIR|EEXIST|ENOENT|ENOTDIR)\b/

/** The shared one-line promise, plus: the right exit code and no raw file-system error code. */
function oneLineError(result: {stderr: string; exitCode: number}, exit: number, pattern: RegExp): void {
  oneErrorLine(result, pattern)
  expect(result.stderr, 'no raw file-system error code').to.not.match(RAW_FS_CODE)
  expect(result.exitCode, result.stderr).to.equal(exit)
}

describe('errors: one line naming the file or host, with the right exit code (e2e)', function () {
  let work: string
  let upstream: TestRegistry
  let valuesFile: string
  let badValues: string
  let pkg: string

  before(async function () {
    work = await mkdtemp(path.join(os.tmpdir(), 'kod-errors-'))
    upstream = await startRegistry()
    valuesFile = (await seedHello(work, upstream)).values
    badValues = path.join(work, 'bad-values.yaml')
    await writeFile(badValues, BAD_YAML)
    const out = path.join(work, 'pkg')
    const packaged = await kod(['package', '-c', HELLO, '-f', valuesFile, '-o', out, '--insecure-registry', upstream.host], {env: {HOME: work}})
    expect(packaged.exitCode, packaged.stderr).to.equal(0)
    pkg = path.join(out, 'kod-hello-0.1.0.kodpkg')
  })

  after(async function () {
    await upstream?.stop()
    if (work) await rm(work, {recursive: true, force: true})
  })

  describe('YAML errors name the file, line and column (exit 2)', function () {
    const named = (file: string): RegExp => new RegExp(`${file.replaceAll(/[.*+?^${}()|[\]\\]/g, '\\$&')}.*not valid YAML: .*line 3, column \\d+`)

    it('a -f values file, for package, images and deploy', async function () {
      const out = await mkdtemp(path.join(work, 'out-'))
      oneLineError(await kod(['package', '-c', HELLO, '-f', badValues, '-o', out], {env: {HOME: work}}), 2, named(badValues))
      expect(await readdir(out)).to.deep.equal([])
      oneLineError(await kod(['images', '-c', HELLO, '-f', badValues], {env: {HOME: work}}), 2, named(badValues))
      oneLineError(await kod(['deploy', '-c', pkg, '-r', 'localhost:1', '--plain-http', '-f', badValues], {cwd: work, env: {HOME: work}}), 2, named(badValues))
    })

    it("a chart directory's values.yaml", async function () {
      const chart = path.join(work, 'bad-chart')
      await cp(HELLO, chart, {recursive: true})
      await writeFile(path.join(chart, 'values.yaml'), BAD_YAML)
      oneLineError(await kod(['images', '-c', chart], {env: {HOME: work}}), 2, named(path.join(chart, 'values.yaml')))
    })

    it("a chart archive's values.yaml (helm's words: the archive, the file and the line)", async function () {
      const dir = path.join(work, 'tgz-src')
      await cp(HELLO, path.join(dir, 'hello'), {recursive: true})
      await writeFile(path.join(dir, 'hello', 'values.yaml'), BAD_YAML)
      const archive = path.join(work, 'hello-bad-0.1.0.tgz')
      await execa('tar', ['-czf', archive, '-C', dir, 'hello'])
      oneLineError(await kod(['images', '-c', archive], {env: {HOME: work}}), 2, new RegExp(`${archive}: values.yaml is not valid YAML: .*line \\d`))
    })

    it('a --hints file', async function () {
      const result = await kod(['images', '-c', HELLO, '--hints', badValues], {env: {HOME: work}})
      oneLineError(result, 2, named(badValues))
      expect(result.stderr, 'the message is not followed by the YAML excerpt').to.not.include('^')
    })

    it("a helmfile release's values file", async function () {
      const project = path.join(work, 'helmfile-project')
      await cp(HELLO, path.join(project, 'charts', 'hello'), {recursive: true})
      await writeFile(path.join(project, 'bad.yaml'), BAD_YAML)
      await writeFile(path.join(project, 'helmfile.yaml'), 'releases:\n  - name: web\n    chart: ./charts/hello\n    values:\n      - bad.yaml\n')
      oneLineError(await kod(['images', '-c', path.join(project, 'helmfile.yaml')], {env: {HOME: work}}), 2, named(path.join(project, 'bad.yaml')))
    })
  })

  describe('a missing skopeo exits 3 everywhere, with the install hint', function () {
    const noSkopeo = {KOD_SKOPEO: '/nonexistent/skopeo'}
    const hint = /skopeo not found at \/nonexistent\/skopeo \(KOD_SKOPEO names it\): fix KOD_SKOPEO/

    it('package', async function () {
      const out = await mkdtemp(path.join(work, 'out-'))
      oneLineError(await kod(['package', '-c', HELLO, '-f', valuesFile, '-o', out, '--insecure-registry', upstream.host], {env: {HOME: work, ...noSkopeo}}), 3, hint)
      expect(await readdir(out)).to.deep.equal([])
    })

    it('populate', async function () {
      oneLineError(await kod(['populate', '-c', pkg, '-r', upstream.host, '--plain-http'], {cwd: work, env: {HOME: work, ...noSkopeo}}), 3, hint)
    })

    it('deploy', async function () {
      const dir = await mkdtemp(path.join(work, 'deploy-'))
      oneLineError(await kod(['deploy', '-c', pkg, '-r', upstream.host, '--plain-http', '--no-install'], {cwd: dir, env: {HOME: work, ...noSkopeo}}), 3, hint)
    })

    it('populate, with a PATH that holds no skopeo', async function () {
      oneLineError(
        await kod(['populate', '-c', pkg, '-r', upstream.host, '--plain-http'], {cwd: work, env: {HOME: work, PATH: TOOLS_BIN}}),
        3,
        /skopeo not found on PATH: install skopeo/,
      )
    })

    it('inspect and unpack do not need skopeo', async function () {
      expect((await kod(['inspect', '-c', pkg], {env: {HOME: work, ...noSkopeo}})).exitCode).to.equal(0)
      const dir = await mkdtemp(path.join(work, 'unpack-'))
      const unpacked = await kod(['unpack', '-c', pkg, '-o', path.join(dir, 'x')], {env: {HOME: work, ...noSkopeo}})
      expect(unpacked.exitCode, unpacked.stderr).to.equal(0)
    })
  })

  describe('--insecure-registry', function () {
    for (const spelling of [(host: string) => `http://${host}`, (host: string) => `https://${host}/`, (host: string) => `${host}/`]) {
      it(`takes ${spelling('host:port')} as host:port`, async function () {
        const out = await mkdtemp(path.join(work, 'out-'))
        const result = await kod(['package', '-c', HELLO, '-f', valuesFile, '-o', out, '--insecure-registry', spelling(upstream.host), '--json'], {env: {HOME: work}})
        expect(result.exitCode, result.stderr).to.equal(0)
        expect(await readdir(out)).to.deep.equal(['kod-hello-0.1.0.kodpkg'])
      })
    }

    for (const bad of ['registry.lab:5000/some/path', 'not a host', 'registry.lab:99999', 'http://user:pw@registry.lab']) {
      it(`refuses ${bad} (exit 2)`, async function () {
        const result = await kod(['images', '-c', HELLO, '--insecure-registry', bad], {env: {HOME: work}})
        oneLineError(result, 2, /--insecure-registry .*host\[:port\]/)
        expect(result.stderr).to.not.include(':pw@')
      })
    }
  })

  describe('--version with a chart that is not in a repository', function () {
    it('is refused for a chart directory (exit 2)', async function () {
      oneLineError(
        await kod(['images', '-c', HELLO, '--version', '9.9.9'], {env: {HOME: work}}),
        2,
        /--version applies to charts from a repository or oci:\/\/; .*hello is a local chart \(its version is what Chart.yaml says\)/,
      )
    })

    it('is refused for a local .tgz (exit 2)', async function () {
      const site = await mkdtemp(path.join(work, 'site-'))
      await execa(HELM, ['package', HELLO, '--destination', site])
      const out = await mkdtemp(path.join(work, 'out-'))
      oneLineError(await kod(['package', '-c', path.join(site, 'hello-0.1.0.tgz'), '--version', '0.1.0', '-o', out], {env: {HOME: work}}), 2, /is a local chart/)
      expect(await readdir(out)).to.deep.equal([])
    })
  })

  describe('--version with a helmfile', function () {
    it('still names the package version', async function () {
      const project = path.join(work, 'helmfile-version')
      await cp(HELLO, path.join(project, 'charts', 'hello'), {recursive: true})
      await cp(valuesFile, path.join(project, 'upstream.yaml'))
      await writeFile(path.join(project, 'helmfile.yaml'), 'releases:\n  - name: web\n    chart: ./charts/hello\n    values:\n      - upstream.yaml\n')
      const out = await mkdtemp(path.join(work, 'out-'))
      const result = await kod(['package', '-c', path.join(project, 'helmfile.yaml'), '--version', '2026.11', '-o', out, '--insecure-registry', upstream.host, '--json'], {
        env: {HOME: work},
      })
      expect(result.exitCode, result.stderr).to.equal(0)
      expect(JSON.parse(result.stdout)).to.include({version: '2026.11'})
    })
  })

  describe('no raw file-system errors', function () {
    it('-f naming a directory', async function () {
      oneLineError(await kod(['images', '-c', HELLO, '-f', work], {env: {HOME: work}}), 2, new RegExp(`values file ${work} is a directory`))
      oneLineError(await kod(['package', '-c', HELLO, '-f', work, '-o', path.join(work, 'never')], {env: {HOME: work}}), 2, /is a directory/)
    })

    it('--hints naming a directory', async function () {
      oneLineError(await kod(['images', '-c', HELLO, '--hints', work], {env: {HOME: work}}), 2, new RegExp(`hint file ${work} is a directory`))
    })

    it('package -o naming an existing file', async function () {
      const file = path.join(work, 'a-file')
      await writeFile(file, 'x')
      oneLineError(await kod(['package', '-c', HELLO, '-f', valuesFile, '-o', file], {env: {HOME: work}}), 2, new RegExp(`-o ${file} is an existing file, not a directory`))
    })

    it('package -o below a file', async function () {
      const file = path.join(work, 'another-file')
      await writeFile(file, 'x')
      oneLineError(await kod(['package', '-c', HELLO, '-f', valuesFile, '-o', path.join(file, 'out.kodpkg')], {env: {HOME: work}}), 2, new RegExp(`${file} is a file, not a directory`))
    })

    it('unpack -o below a file', async function () {
      const file = path.join(work, 'third-file')
      await writeFile(file, 'x')
      oneLineError(await kod(['unpack', '-c', pkg, '-o', path.join(file, 'sub')], {env: {HOME: work}}), 2, new RegExp(`${file} is a file, not a directory`))
    })

    it('images --relocate-to -o naming a directory, or below a missing one', async function () {
      const relocate = ['images', '-c', HELLO, '--relocate-to', 'air.local:5000']
      oneLineError(await kod([...relocate, '-o', work], {env: {HOME: work}}), 2, new RegExp(`-o ${work} is a directory: give -o the name of the values file`))
      oneLineError(await kod([...relocate, '-o', path.join(work, 'missing', 'v.yaml')], {env: {HOME: work}}), 2, /missing is not a directory; create it first/)
    })

    it('a chart directory whose Chart.yaml is a directory', async function () {
      const chart = path.join(work, 'odd-chart')
      await mkdir(path.join(chart, 'Chart.yaml'), {recursive: true})
      const result = await kod(['images', '-c', chart], {env: {HOME: work}})
      expect(result.exitCode, result.stderr).to.equal(2)
      expect(result.stderr).to.not.match(RAW_FS_CODE)
    })
  })
})
