import {expect} from 'chai'
import {execa} from 'execa'
import {randomBytes} from 'node:crypto'
import {chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import YAML from 'yaml'

import {startChartServer, type ChartServer} from '../support/chart-server.js'
import {FIXTURES, kod, type KodResult, TOOLS_BIN, toolPath} from '../support/kod.js'
import {seedHello} from '../support/hello-image.js'
import {startRegistry, type TestRegistry} from '../support/registry.js'

/**
 * Credentials never enter a package, a log, an argument list or an error (docs/security.md): a chart
 * repository, an OCI chart registry and a target registry that all need a login, every command run with
 * a sentinel password and DEBUG=kod*, and the sentinel searched for in stdout, stderr, every file kod
 * wrote, and the argument lists of every helm and skopeo kod started (recorded by PATH shims, and
 * /proc/<pid>/cmdline sampled while kod runs).
 */
const HELM = path.join(TOOLS_BIN, 'helm')
const SENTINEL = `kod-S3ntinel-pw-${randomBytes(6).toString('hex')}`
const CHART_USER = 'chartreader'
const TARGET_USER = 'pusher'

/** What the sentinel looks like in an auth file: base64 of user:password. */
function encoded(user: string): string {
  return Buffer.from(`${user}:${SENTINEL}`).toString('base64')
}

function expectClean(where: string, text: string): void {
  expect(text.includes(SENTINEL), `${where} holds the password`).to.equal(false)
  for (const user of [CHART_USER, TARGET_USER]) expect(text.includes(encoded(user)), `${where} holds the encoded login`).to.equal(false)
}

/** Every regular file below dir, read whole (tar archives are searched as bytes: kod's are not compressed). */
async function filesBelow(dir: string): Promise<string[]> {
  const found: string[] = []
  const entries = await readdir(dir, {withFileTypes: true}).catch(() => [])
  for (const entry of entries) {
    const file = path.join(dir, entry.name)
    if (entry.isDirectory()) found.push(...(await filesBelow(file)))
    else if (entry.isFile()) found.push(file)
  }
  return found
}

/** A PATH directory whose helm and skopeo log their argument lists, then run the real tool. */
async function argvShims(dir: string, log: string): Promise<void> {
  await mkdir(dir, {recursive: true})
  const {stdout: skopeo} = await execa('sh', ['-c', 'command -v skopeo'])
  for (const [name, real] of [['helm', HELM], ['skopeo', String(skopeo).trim()]]) {
    const file = path.join(dir, name)
    await writeFile(file, `#!/bin/sh\nprintf '%s' ${name} >> '${log}'\nfor arg in "$@"; do printf ' %s' "$arg" >> '${log}'; done\nprintf '\\n' >> '${log}'\nexec '${real}' "$@"\n`)
    await chmod(file, 0o755)
  }
}

/** Samples /proc/<pid>/cmdline of every process while `run` runs; returns what run returned and every cmdline seen. */
async function sampled<T>(run: () => Promise<T>): Promise<{result: T; cmdlines: Set<string>}> {
  const cmdlines = new Set<string>()
  let done = false
  const sampler = (async () => {
    while (!done) {
      const pids = (await readdir('/proc').catch(() => [] as string[])).filter((name) => /^\d+$/.test(name))
      await Promise.all(pids.map(async (pid) => {
        const text = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
        if (text) cmdlines.add(text.replaceAll('\0', ' '))
      }))
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  })()
  try {
    return {result: await run(), cmdlines}
  } finally {
    done = true
    await sampler
  }
}

describe('credentials (e2e)', function () {
  let work: string
  let home: string
  let tmp: string
  let shims: string
  let argvLog: string
  let upstream: TestRegistry
  let chartRegistry: TestRegistry
  let target: TestRegistry
  let server: ChartServer
  let values: string
  let env: Record<string, string>
  const results: Array<[string, KodResult]> = []
  const cmdlines = new Set<string>()

  /** kod with the sentinel run's environment, its stdin, the /proc sampler, and its output kept for the final search. */
  async function run(label: string, args: string[], options: {input?: string; cwd?: string} = {}): Promise<KodResult> {
    const {result, cmdlines: seen} = await sampled(() => kod(args, {env, cwd: options.cwd ?? work, input: options.input}))
    for (const line of seen) cmdlines.add(line)
    results.push([label, result])
    return result
  }

  before(async function () {
    work = await mkdtemp(path.join(os.tmpdir(), 'kod-credentials-'))
    home = path.join(work, 'home')
    tmp = path.join(work, 'tmp')
    shims = path.join(work, 'shims')
    argvLog = path.join(work, 'argv.log')
    await mkdir(home)
    await mkdir(tmp)
    await argvShims(shims, argvLog)
    env = {HOME: home, TMPDIR: tmp, DEBUG: 'kod*', PATH: toolPath([shims]), HELM_DRIVER: 'memory', HELM_MEMORY_DRIVER_DATA: path.join(work, 'releases.json')}
    await writeFile(env.HELM_MEMORY_DRIVER_DATA, '[]')

    upstream = await startRegistry()
    chartRegistry = await startRegistry({auth: {user: CHART_USER, password: SENTINEL}})
    target = await startRegistry({auth: {user: TARGET_USER, password: SENTINEL}})
    values = (await seedHello(work, upstream, {tag: true})).values

    // The chart in an HTTPS repository and an OCI registry, both behind the sentinel login (set up outside kod's HOME).
    const site = path.join(work, 'site')
    await mkdir(site)
    await execa(HELM, ['package', path.join(FIXTURES, 'charts', 'hello'), '--destination', site])
    server = await startChartServer(site, {auth: {user: CHART_USER, password: SENTINEL}})
    await execa(HELM, ['repo', 'index', site, '--url', server.url])
    const setup = path.join(work, 'setup-auth.json')
    await writeFile(setup, JSON.stringify({auths: {[chartRegistry.host]: {auth: encoded(CHART_USER)}}}))
    await execa(HELM, ['push', path.join(site, 'hello-0.1.0.tgz'), `oci://${chartRegistry.host}/charts`, '--plain-http'], {env: {HOME: work, HELM_REGISTRY_CONFIG: setup}})
    await rm(setup)
  })

  after(async function () {
    await upstream?.stop()
    await chartRegistry?.stop()
    await target?.stop()
    await server?.stop()
    if (work) await rm(work, {recursive: true, force: true})
  })

  const chartLogin = ['--username', CHART_USER, '--password-stdin']
  const targetLogin = ['--registry-username', TARGET_USER, '--registry-password-stdin']

  it('packages a chart from an HTTPS repository that needs a login, and refuses without one', async function () {
    const base = ['package', '-r', server.url, '-c', 'hello', '--version', '0.1.0', '-f', values, '--insecure-registry', server.host, '--insecure-registry', upstream.host]
    const anonymous = await run('package -r without login', [...base, '-o', path.join(work, 'never')])
    expect(anonymous.exitCode, anonymous.stderr).to.equal(4)
    expect(anonymous.stderr).to.match(/^Error: .*(401|unauthorized).*it needs a login: add --username USER --password-stdin/im)
    const wrong = await run('package -r wrong password', [...base, '-o', path.join(work, 'never'), ...chartLogin], {input: 'not-the-password'})
    expect(wrong.exitCode, wrong.stderr).to.equal(4)
    expect(wrong.stderr).to.match(/the --username login was refused: check the user and the password/)

    const result = await run('package -r', [...base, '-o', path.join(work, 'out-repo'), ...chartLogin], {input: `${SENTINEL}\n`})
    expect(result.exitCode, result.stderr).to.equal(0)
    const manifest = YAML.parse((await execa('tar', ['-xOf', path.join(work, 'out-repo', 'kod-hello-0.1.0.kodpkg'), 'kod-package.yaml'])).stdout) as {source: {repo?: string}}
    expect(manifest.source.repo).to.equal(server.url)

    const listed = await run('images -r', ['images', '-r', server.url, '-c', 'hello', '--version', '0.1.0', '-f', values, '--insecure-registry', server.host, ...chartLogin, '--json'], {input: SENTINEL})
    expect(listed.exitCode, listed.stderr).to.equal(0)
    expect(listed.stdout).to.include(`${upstream.host}/kodtest/hello:1.0`)
  })

  it('packages an oci:// chart from a registry that needs a login', async function () {
    const result = await run(
      'package oci://',
      ['package', '-c', `oci://${chartRegistry.host}/charts/hello`, '--version', '0.1.0', '-f', values, '--insecure-registry', chartRegistry.host, '--insecure-registry', upstream.host, '-o', path.join(work, 'out-oci'), ...chartLogin],
      {input: SENTINEL},
    )
    expect(result.exitCode, result.stderr).to.equal(0)
    const anonymous = await run('package oci:// without login', ['package', '-c', `oci://${chartRegistry.host}/charts/hello`, '--version', '0.1.0', '--insecure-registry', chartRegistry.host, '-o', path.join(work, 'never')])
    expect(anonymous.exitCode, anonymous.stderr).to.equal(4)
    expect(anonymous.stderr).to.match(/it needs a login: add --username USER --password-stdin/)
  })

  it('refuses credentials in a URL, half a login, and a login with no host, without echoing them', async function () {
    const inUrl = await run('package -r user:pw@', ['package', '-r', `https://${CHART_USER}:${SENTINEL}@${server.host}`, '-c', 'hello'])
    expect(inUrl.exitCode).to.equal(2)
    expect(inUrl.stderr).to.match(/credentials do not belong in the URL.*--username USER --password-stdin/)
    const target401 = await run('populate -r user:pw@', ['populate', '-c', path.join(work, 'out-repo', 'kod-hello-0.1.0.kodpkg'), '-r', `${TARGET_USER}:${SENTINEL}@${target.host}`])
    expect(target401.exitCode).to.equal(2)
    const half = await run('package --username alone', ['package', '-r', server.url, '-c', 'hello', '--username', CHART_USER])
    expect(half.exitCode).to.equal(2)
    expect(half.stderr).to.match(/--username needs --password-stdin/)
    const noHost = await run('package local --username', ['package', '-c', path.join(FIXTURES, 'charts', 'hello'), ...chartLogin], {input: SENTINEL})
    expect(noHost.exitCode).to.equal(2)
    expect(noHost.stderr).to.match(/--username is the login for a chart repository/)
    // A helmfile is carried in the package byte for byte: a repository or oci:// chart URL with a login is refused.
    for (const [name, helmfile] of [
      ['repository', {repositories: [{name: 'locked', url: `https://${CHART_USER}:${SENTINEL}@${server.host}`}], releases: [{name: 'web', chart: 'locked/hello'}]}],
      ['oci chart', {releases: [{name: 'web', chart: `oci://${CHART_USER}:${SENTINEL}@${chartRegistry.host}/charts/hello`}]}],
    ] as const) {
      const dir = path.join(work, `helmfile-${name.replace(' ', '-')}`)
      await mkdir(dir)
      await writeFile(path.join(dir, 'helmfile.yaml'), YAML.stringify(helmfile))
      const refused = await run(`package helmfile ${name} with user:pw@`, ['package', '-c', path.join(dir, 'helmfile.yaml'), '-o', path.join(work, 'never')])
      expect(refused.exitCode, refused.stderr).to.equal(2)
      expect(refused.stderr).to.match(/credentials do not belong in its URL/)
      await rm(dir, {recursive: true})
    }
    const empty = await run('populate empty stdin', ['populate', '-c', path.join(work, 'out-repo', 'kod-hello-0.1.0.kodpkg'), '-r', target.host, '--plain-http', ...targetLogin])
    expect(empty.exitCode).to.equal(2)
    expect(empty.stderr).to.match(/--registry-password-stdin: stdin held no password/)
  })

  it('populates and deploys into a target that needs a login: images and the chart', async function () {
    const pkg = path.join(work, 'out-repo', 'kod-hello-0.1.0.kodpkg')
    const anonymous = await run('populate without login', ['populate', '-c', pkg, '-r', target.host, '--plain-http'])
    expect(anonymous.exitCode).to.equal(4)
    expect(anonymous.stderr).to.match(new RegExp(`Try: log in to ${target.host.replaceAll('.', '\\.')}: add --registry-username USER --registry-password-stdin`))

    const populated = await run('populate', ['populate', '-c', pkg, '-r', target.host, '--plain-http', ...targetLogin], {input: `${SENTINEL}\n`})
    expect(populated.exitCode, populated.stderr).to.equal(0)
    expect(populated.stderr).to.match(/pushed 1 image\(s\) and 1 chart\(s\)/)

    const cwd = path.join(work, 'deploy')
    await mkdir(cwd)
    const deployed = await run('deploy', ['deploy', '-c', pkg, '-r', target.host, '--plain-http', '-n', 'demo', '--dry-run', ...targetLogin], {input: SENTINEL, cwd})
    expect(deployed.exitCode, deployed.stderr).to.equal(0)

    const listed = await run('deploy --list-commands', ['deploy', '-c', pkg, '-r', target.host, '--plain-http', '-n', 'demo', '--list-commands', ...targetLogin], {input: SENTINEL, cwd})
    expect(listed.exitCode, listed.stderr).to.equal(0)
    expect(listed.stdout).to.match(/skopeo copy/)
    expect(listed.stdout).to.not.match(/authfile|REGISTRY_AUTH_FILE|HELM_REGISTRY_CONFIG/)
  })

  it('leaves the password nowhere: output, debug logs, files, argument lists', async function () {
    expect(results.length).to.be.greaterThan(5)
    for (const [label, result] of results) {
      expectClean(`stdout of ${label}`, result.stdout)
      expectClean(`stderr of ${label}`, result.stderr)
    }
    // DEBUG=kod* was on: the commands kod ran were logged.
    expect(results.some(([, result]) => /kod:package run: .*helm pull/.test(result.stderr))).to.equal(true)

    // Every helm and skopeo kod started went through the shims; none had the password in its arguments.
    const argv = await readFile(argvLog, 'utf8')
    expect(argv).to.match(/^helm pull kod-login\/hello/m)
    expect(argv).to.match(/^helm pull oci:/m)
    expect(argv).to.match(/^skopeo copy .*docker:\/\/127\.0\.0\.1/m)
    expect(argv).to.match(/^helm push /m)
    expectClean('argument lists of helm and skopeo', argv)
    // kod's own command line holds what the refusal test gave it on purpose; every process it started is checked.
    const started = [...cmdlines].filter((line) => !line.includes(path.join('bin', 'run.js')))
    expect(started.some((line) => /\b(helm|skopeo) /.test(line))).to.equal(true)
    for (const line of started) expectClean(`/proc cmdline ${line.slice(0, 80)}`, line)

    // Files: the packages, the unpacked package, HOME (.config, .cache) and the temporary directory.
    for (const dir of [path.join(work, 'out-repo'), path.join(work, 'out-oci'), path.join(work, 'deploy'), home, tmp]) {
      for (const file of await filesBelow(dir)) expectClean(file, (await readFile(file)).toString('latin1'))
    }
    // The temporary auth files went with kod's scratch directory.
    expect(await readdir(tmp)).to.deep.equal([])
    expect((await stat(path.join(work, 'deploy'))).isDirectory()).to.equal(true)
  })
})
