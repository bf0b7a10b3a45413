import {expect} from 'chai'
import {execa} from 'execa'
import {existsSync} from 'node:fs'
import {cp, mkdir, mkdtemp, readdir, readFile, rm, stat, truncate, utimes, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import YAML from 'yaml'

import {startChartServer, startSilentServer, type ChartServer} from '../support/chart-server.js'
import {FIXTURES, kod, ROOT, TOOLS_BIN, toolPath} from '../support/kod.js'
import {seedHello} from '../support/hello-image.js'
import {startRegistry, type TestRegistry} from '../support/registry.js'
import {oneLineError} from '../support/assertions.js'

/**
 * Every way to name a chart (directory, .tgz, https:// URL, oci:// URL, repository + name), and the bad
 * inputs: each must end in one line on stderr, a non-zero exit, and nothing left behind.
 */
const HELM = path.join(TOOLS_BIN, 'helm')


describe('chart inputs and bad input (e2e)', function () {
  let work: string
  let upstream: TestRegistry
  let server: ChartServer
  let valuesFile: string
  let chartTgz: string

  before(async function () {
    work = await mkdtemp(path.join(os.tmpdir(), 'kod-inputs-'))
    upstream = await startRegistry()
    valuesFile = (await seedHello(work, upstream)).values

    // The chart as a .tgz, in an https repository (with index.yaml), and in an OCI registry.
    const site = path.join(work, 'site')
    await mkdir(site)
    await execa(HELM, ['package', path.join(FIXTURES, 'charts', 'hello'), '--destination', site])
    chartTgz = path.join(site, 'hello-0.1.0.tgz')
    server = await startChartServer(site)
    await execa(HELM, ['repo', 'index', site, '--url', server.url])
    await execa(HELM, ['push', chartTgz, `oci://${upstream.host}/charts`, '--plain-http'], {env: {HOME: work}})
  })

  after(async function () {
    await upstream?.stop()
    await server?.stop()
    if (work) await rm(work, {recursive: true, force: true})
  })

  const inputs: Array<[string, () => string[]]> = [
    ['a chart directory', () => ['-c', path.join(FIXTURES, 'charts', 'hello')]],
    ['a .tgz', () => ['-c', chartTgz]],
    ['an https:// URL', () => ['-c', `${server.url}/hello-0.1.0.tgz`, '--insecure-registry', server.host]],
    ['an oci:// URL with --version', () => ['-c', `oci://${upstream.host}/charts/hello`, '--version', '0.1.0']],
    ['a repository URL and chart name', () => ['-r', server.url, '-c', 'hello', '--version', '0.1.0', '--insecure-registry', server.host]],
  ]
  for (const [what, args] of inputs) {
    it(`packages ${what}`, async function () {
      const out = await mkdtemp(path.join(work, 'out-'))
      const result = await kod(['package', ...args(), '-f', valuesFile, '-o', out, '--insecure-registry', upstream.host, '--json'], {
        env: {HOME: work},
      })
      expect(result.exitCode, result.stderr).to.equal(0)
      expect(JSON.parse(result.stdout)).to.include({name: 'hello', version: '0.1.0', images: 1})
      expect(await readdir(out)).to.deep.equal(['kod-hello-0.1.0.kodpkg'])
    })
  }

  it('an oci:// chart in a plain-HTTP registry not marked insecure: one line naming --insecure-registry and the host', async function () {
    const out = await mkdtemp(path.join(work, 'out-'))
    const result = await kod(['package', '-c', `oci://${upstream.host}/charts/hello`, '--version', '0.1.0', '-o', out], {env: {HOME: work}})
    expect(result.exitCode).to.equal(4)
    oneLineError(result, new RegExp(`HTTP response to HTTPS client.*; if ${upstream.host.replaceAll('.', '\\.')} is a registry you trust over plain HTTP or without a verified certificate, give --insecure-registry ${upstream.host.replaceAll('.', '\\.')}$`))
    expect(await readdir(out)).to.deep.equal([])
  })

  it('packages the same chart directory as the same chart archive, whatever its files\' times (a fresh checkout)', async function () {
    const chart = path.join(work, 'checkout', 'hello')
    await cp(path.join(FIXTURES, 'charts', 'hello'), chart, {recursive: true})
    const chartSum = async (): Promise<string> => {
      const out = await mkdtemp(path.join(work, 'out-'))
      const made = await kod(['package', '-c', chart, '-f', valuesFile, '-o', out, '--insecure-registry', upstream.host], {env: {HOME: work}})
      expect(made.exitCode, made.stderr).to.equal(0)
      const sums = await execa('tar', ['-xOf', path.join(out, 'kod-hello-0.1.0.kodpkg'), 'SHA256SUMS'])
      return sums.stdout.split('\n').find((line) => line.endsWith('  charts/hello-0.1.0.tgz'))!
    }
    const first = await chartSum()
    const later = new Date(Date.now() + 86_400_000)
    await utimes(path.join(chart, 'values.yaml'), later, later)
    await utimes(path.join(chart, 'Chart.yaml'), later, later)
    expect(await chartSum()).to.equal(first)
  })

  it('replaces an earlier package at -o, even one cut short after its head (an interrupted copy)', async function () {
    const file = path.join(await mkdtemp(path.join(work, 'out-')), 'hello.kodpkg')
    const args = ['package', '-c', path.join(FIXTURES, 'charts', 'hello'), '-f', valuesFile, '-o', file, '--insecure-registry', upstream.host]
    expect((await kod(args, {env: {HOME: work}})).exitCode).to.equal(0)
    await truncate(file, Math.floor((await stat(file)).size * 0.6))
    const again = await kod(args, {env: {HOME: work}})
    expect(again.exitCode, again.stderr).to.equal(0)
    expect((await kod(['inspect', '-c', file])).exitCode, 'the new package is whole').to.equal(0)
  })

  it('pulls through --registry-mirror, recording the original references', async function () {
    const mirror = await startRegistry()
    try {
      const layout = path.join(work, 'build')
      await execa('skopeo', ['copy', '--dest-tls-verify=false', `oci:${layout}:hello`, `docker://${mirror.host}/proxy/kodtest/hello:1.0`])
      const out = await mkdtemp(path.join(work, 'out-'))
      // The chart's own default, registry.invalid, exists nowhere: only the mirror can serve it.
      const args = ['package', '-c', path.join(FIXTURES, 'charts', 'hello'), '-o', out, '--insecure-registry', mirror.host]
      const result = await kod([...args, '--registry-mirror', `registry.invalid=${mirror.host}/proxy`, '--json'])
      expect(result.exitCode, result.stderr).to.equal(0)
      const manifest = JSON.parse((await kod(['inspect', '-c', JSON.parse(result.stdout).file, '--json'])).stdout)
      expect(manifest.images.map((image: {ref: string}) => image.ref)).to.deep.equal(['registry.invalid/kodtest/hello:1.0'])

      // A pinned reference the mirror does not have is refused, naming the mirror.
      const pinned = path.join(work, 'pinned.yaml')
      await writeFile(pinned, YAML.stringify({image: {repository: `registry.invalid/kodtest/hello@sha256:${'0'.repeat(64)}`, tag: 'x'}}))
      const pinnedChart = path.join(work, 'pinned-chart')
      await cp(path.join(FIXTURES, 'charts', 'hello'), pinnedChart, {recursive: true})
      await writeFile(
        path.join(pinnedChart, 'templates', 'deployment.yaml'),
        (await readFile(path.join(pinnedChart, 'templates', 'deployment.yaml'), 'utf8')).replace(
          '"{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"',
          '{{ .Values.image.repository | quote }}',
        ),
      )
      const refused = await kod(['package', '-c', pinnedChart, '-f', pinned, '-o', out, '--insecure-registry', mirror.host, '--registry-mirror', `registry.invalid=${mirror.host}/proxy`])
      expect(refused.exitCode).to.equal(4)
      oneLineError(refused, new RegExp(`cannot pull registry\\.invalid/kodtest/hello@sha256:0+ through mirror ${mirror.host}/proxy`))

      const bad = await kod([...args, '--registry-mirror', 'registry.invalid'])
      expect(bad.exitCode).to.equal(2)
      oneLineError(bad, /--registry-mirror registry\.invalid: use SOURCE=MIRROR/)
    } finally {
      await mirror.stop()
    }
  })

  it('reads private registries with the credentials of the standard auth file', async function () {
    const locked = await startRegistry({auth: {user: 'kod', password: 's3cret'}})
    try {
      const home = await mkdtemp(path.join(work, 'home-'))
      const layout = path.join(work, 'build')
      await execa('skopeo', ['copy', '--dest-tls-verify=false', '--dest-creds', 'kod:s3cret', `oci:${layout}:hello`, `docker://${locked.host}/kodtest/hello:1.0`])
      const values = path.join(home, 'locked.yaml')
      await writeFile(values, YAML.stringify({image: {repository: `${locked.host}/kodtest/hello`}}))
      const args = ['package', '-c', path.join(FIXTURES, 'charts', 'hello'), '-f', values, '-o', home, '--insecure-registry', locked.host]

      const anonymous = await kod(args, {env: {HOME: home}})
      expect(anonymous.exitCode).to.not.equal(0)
      oneLineError(anonymous, /cannot pull 127\.0\.0\.1:\d+\/kodtest\/hello:1\.0: .*(unauthorized|authentication required)/i)
      expect((await readdir(home)).filter((file) => file.endsWith('.kodpkg') || file.startsWith('.kod'))).to.deep.equal([])

      const auth = Buffer.from('kod:s3cret').toString('base64')
      await mkdir(path.join(home, '.docker'))
      await writeFile(path.join(home, '.docker', 'config.json'), JSON.stringify({auths: {[locked.host]: {auth}}}))
      const authorised = await kod(args, {env: {HOME: home}})
      expect(authorised.exitCode, authorised.stderr).to.equal(0)
    } finally {
      await locked.stop()
    }
  })

  it('names a missing chart, exits 2 and creates no output directory', async function () {
    const out = path.join(work, 'never-created')
    const result = await kod(['package', '-c', path.join(work, 'no-such-chart'), '-o', out])
    expect(result.exitCode).to.equal(2)
    oneLineError(result, /chart not found/)
    expect(existsSync(out)).to.equal(false)
  })

  it('names a chart that does not render', async function () {
    const broken = path.join(work, 'broken')
    await cp(path.join(FIXTURES, 'charts', 'hello'), broken, {recursive: true})
    await writeFile(path.join(broken, 'templates', 'bad.yaml'), '{{ .Values.nope.deeper }}\n')
    const out = await mkdtemp(path.join(work, 'out-'))
    const result = await kod(['package', '-c', broken, '-o', out])
    expect(result.exitCode).to.equal(4)
    oneLineError(result, /helm template failed: .*nil pointer/)
    expect(await readdir(out)).to.deep.equal([])
  })

  it('names an unreachable registry and leaves nothing behind', async function () {
    const silent = await startSilentServer()
    await silent.stop()
    const values = path.join(work, 'closed.yaml')
    await writeFile(values, YAML.stringify({image: {repository: `${silent.host}/kodtest/hello`}}))
    const out = await mkdtemp(path.join(work, 'out-'))
    const result = await kod(['package', '-c', path.join(FIXTURES, 'charts', 'hello'), '-f', values, '-o', out, '--insecure-registry', silent.host])
    expect(result.exitCode).to.equal(4)
    oneLineError(result, new RegExp(`cannot pull ${silent.host}/kodtest/hello:1.0: .*connection refused`))
    expect(await readdir(out)).to.deep.equal([])
  })

  it('stops on Ctrl-C with exit 130 and leaves nothing behind', async function () {
    const silent = await startSilentServer()
    try {
      const values = path.join(work, 'hang.yaml')
      await writeFile(values, YAML.stringify({image: {repository: `${silent.host}/kodtest/hello`}}))
      const out = await mkdtemp(path.join(work, 'out-'))
      const child = execa(process.execPath, [path.join(ROOT, 'bin', 'run.js'), 'package', '-c', path.join(FIXTURES, 'charts', 'hello'), '-f', values, '-o', out, '--insecure-registry', silent.host], {
        env: {PATH: toolPath()},
        reject: false,
        stdin: 'ignore',
      })
      // Wait until kod is pulling (the staging directory exists), then interrupt.
      const deadline = Date.now() + 30_000
      while ((await readdir(out)).length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
      await new Promise((resolve) => setTimeout(resolve, 1000))
      child.kill('SIGINT')
      const result = await child
      expect(result.exitCode, String(result.stderr)).to.equal(130)
      expect(String(result.stderr)).to.match(/interrupted/)
      expect(await readdir(out)).to.deep.equal([])
    } finally {
      await silent.stop()
    }
  })

  it('names a missing helm or skopeo and how to get it', async function () {
    const noHelm = await kod(['package', '-c', path.join(FIXTURES, 'charts', 'hello'), '-o', work], {env: {KOD_HELM: path.join(work, 'nope', 'helm')}})
    expect(noHelm.exitCode).to.equal(3)
    oneLineError(noHelm, /helm not found at .*nope\/helm \(KOD_HELM names it\): fix KOD_HELM, or unset it to use helm from PATH$/)
    const noSkopeo = await kod(['package', '-c', path.join(FIXTURES, 'charts', 'hello'), '-f', valuesFile, '-o', work], {
      env: {KOD_SKOPEO: path.join(work, 'nope', 'skopeo')},
    })
    expect(noSkopeo.exitCode).to.equal(3)
    oneLineError(noSkopeo, /skopeo not found at .* \(KOD_SKOPEO names it\): fix KOD_SKOPEO/)
  })

  it('refuses an unknown source kind, a missing package and a bad registry address', async function () {
    const out = await mkdtemp(path.join(work, 'out-'))
    const packaged = await kod(['package', '-c', path.join(FIXTURES, 'charts', 'hello'), '-f', valuesFile, '-o', out, '--insecure-registry', upstream.host])
    expect(packaged.exitCode, packaged.stderr).to.equal(0)
    const dir = path.join(out, 'pkg')
    expect((await kod(['unpack', '-c', path.join(out, 'kod-hello-0.1.0.kodpkg'), '-o', dir])).exitCode).to.equal(0)
    // Rewrite the manifest's kind and its checksum consistently: a well-formed package of a kind no plugin provides.
    const manifestFile = path.join(dir, 'kod-package.yaml')
    const manifest = (await readFile(manifestFile, 'utf8')).replace('kind: helm', 'kind: nope')
    await writeFile(manifestFile, manifest)
    const {stdout: sum} = await execa('sha256sum', ['kod-package.yaml'], {cwd: dir})
    const sums = (await readFile(path.join(dir, 'SHA256SUMS'), 'utf8')).replace(/^[a-f0-9]{64} {2}kod-package\.yaml$/m, String(sum).trim())
    await writeFile(path.join(dir, 'SHA256SUMS'), sums)
    const unknown = await kod(['populate', '-c', dir, '-r', '127.0.0.1:1', '--plain-http'])
    expect(unknown.exitCode).to.equal(1)
    oneLineError(unknown, /unknown source kind "nope": no installed plugin provides it \(known: helm, helmfile\)/)

    const missing = await kod(['deploy', '-c', path.join(work, 'nope.kodpkg'), '-r', '127.0.0.1:1'])
    expect(missing.exitCode).to.equal(2)
    oneLineError(missing, /package not found/)

    const badRegistry = await kod(['deploy', '-c', dir, '-r', 'not a registry'])
    expect(badRegistry.exitCode).to.equal(2)
    oneLineError(badRegistry, /is not a registry address/)
  })
})
