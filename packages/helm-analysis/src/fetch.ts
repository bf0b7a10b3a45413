import {cp, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, utimes, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {gunzipSync} from 'node:zlib'
import YAML from 'yaml'

import type {ChartCredentials, ChartEntry, PackageRequest, SourceContext} from 'kod'

import {archivedChartYaml, parseValuesAhead} from './chart-files.js'
import {badInput, readValuesYaml, yamlProblem} from './values.js'

/** What a chart reference is. */
export type ChartInput =
  | {type: 'directory'; path: string}
  | {type: 'archive'; path: string}
  | {type: 'url'; url: string}
  | {type: 'oci'; url: string}
  | {type: 'repo'; repo: string; name: string}

async function kindOf(file: string): Promise<'directory' | 'file' | undefined> {
  try {
    const info = await stat(file)
    return info.isDirectory() ? 'directory' : info.isFile() ? 'file' : undefined
  } catch {
    return undefined
  }
}

export async function classify(request: PackageRequest): Promise<ChartInput | undefined> {
  const {ref, repo} = request
  if (repo) return {type: 'repo', repo, name: ref}
  if (ref.startsWith('oci://')) return {type: 'oci', url: ref}
  if (/^https?:\/\//.test(ref)) return {type: 'url', url: ref}
  const kind = await kindOf(ref)
  if (kind === 'directory' && (await kindOf(path.join(ref, 'Chart.yaml'))) === 'file') return {type: 'directory', path: path.resolve(ref)}
  if (kind === 'file' && /\.(tgz|tar\.gz)$/.test(ref)) return {type: 'archive', path: path.resolve(ref)}
  return undefined
}

export function describeInput(request: PackageRequest): string {
  return request.repo ? `${request.ref} from ${request.repo}` : request.ref
}

/** Whether the user marked the URL's host insecure (--insecure-registry). */
function isInsecure(url: string, insecureHosts: readonly string[]): boolean {
  try {
    return insecureHosts.includes(new URL(url.replace(/^oci:/, 'https:')).host)
  } catch {
    return false
  }
}

function insecureFlags(url: string, insecureHosts: readonly string[]): string[] {
  return isInsecure(url, insecureHosts) ? ['--insecure-skip-tls-verify'] : []
}

/**
 * helm pull from an OCI registry; an insecure one is tried with unverified TLS, then over plain HTTP
 * when it turns out to speak no TLS at all.
 */
async function pullOci(ctx: SourceContext, args: string[], url: string, insecureHosts: readonly string[], env?: Record<string, string>): Promise<void> {
  if (!isInsecure(url, insecureHosts)) {
    await ctx.tools.run('helm', args, {env}).catch((error: unknown) => {
      // A registry that speaks plain HTTP (or has a certificate helm does not trust): say which flag lets kod in.
      const failure = error as Error
      if (/HTTP response to HTTPS client|x509|certificate/i.test(failure.message)) {
        const host = urlHost(url) ?? 'HOST'
        failure.message = `${failure.message}; if ${host} is a registry you trust over plain HTTP or without a verified certificate, give --insecure-registry ${host}`
      }
      throw failure
    })
    return
  }
  try {
    await ctx.tools.run('helm', [...args, '--insecure-skip-tls-verify'], {env})
  } catch (error) {
    if (!/HTTP response to HTTPS client/i.test((error as Error).message)) throw error
    await ctx.tools.run('helm', [...args, '--plain-http'], {env})
  }
}

/** The host[:port] of an https:// or oci:// URL, lower-case (undefined when it is no URL). */
export function urlHost(url: string): string | undefined {
  try {
    return new URL(url.replace(/^oci:/i, 'https:')).host.toLowerCase() || undefined
  } catch {
    return undefined
  }
}

/** The login to use for a URL: only the one given for its very host (a password is never sent elsewhere). */
function credentialsFor(url: string, credentials: ChartCredentials | undefined): ChartCredentials | undefined {
  return credentials && urlHost(url) === credentials.host ? credentials : undefined
}

/** The name the scratch repository configuration gives a repository that needs a login. */
const LOGIN_REPO = 'kod-login'

/**
 * helm's own configuration files holding the login, in a private scratch directory (mode 0700, files
 * 0600), handed to helm through its environment: for an OCI registry a registry config (docker's
 * config.json, what `helm registry login` writes, read through HELM_REGISTRY_CONFIG); for a chart
 * repository a repositories.yaml with the repository under LOGIN_REPO (what `helm repo add` writes,
 * HELM_REPOSITORY_CONFIG) and its own index cache. helm's --username/--password would put the password
 * in its argument list, visible to every process on the machine.
 */
async function loginEnvironment(dir: string, kind: 'oci' | 'repo', url: string, login: ChartCredentials, insecure: boolean): Promise<Record<string, string>> {
  await mkdir(dir, {recursive: true, mode: 0o700})
  if (kind === 'oci') {
    const file = path.join(dir, 'registry.json')
    const auth = Buffer.from(`${login.username}:${login.password}`).toString('base64')
    await writeFile(file, JSON.stringify({auths: {[login.host]: {auth}}}), {mode: 0o600})
    return {HELM_REGISTRY_CONFIG: file}
  }
  const file = path.join(dir, 'repositories.yaml')
  const entry = {name: LOGIN_REPO, url, username: login.username, password: login.password, insecure_skip_tls_verify: insecure, pass_credentials_all: false}
  await writeFile(file, YAML.stringify({apiVersion: '', generated: new Date(0).toISOString(), repositories: [entry]}), {mode: 0o600})
  return {HELM_REPOSITORY_CONFIG: file, HELM_REPOSITORY_CACHE: path.join(dir, 'cache')}
}

/** Dependencies named in Chart.yaml that charts/ does not hold (as a directory or a .tgz). */
export async function missingDependencies(chartDir: string): Promise<string[]> {
  const chart = (await readValuesYaml(path.join(chartDir, 'Chart.yaml'), 'chart file')) as {dependencies?: Array<{name?: string}>} | null
  const wanted = (chart?.dependencies ?? []).map((dependency) => dependency.name).filter((name): name is string => Boolean(name))
  if (wanted.length === 0) return []
  const present = new Set<string>()
  const entries = await readdir(path.join(chartDir, 'charts')).catch(() => [] as string[])
  for (const entry of entries) {
    if (entry.endsWith('.tgz')) {
      present.add(entry.replace(/-\d[^-]*(?:-[^-]+)*\.tgz$/, ''))
      continue
    }
    const text = await readFile(path.join(chartDir, 'charts', entry, 'Chart.yaml'), 'utf8').catch(() => 'null')
    const sub = (yamlProblem(text) ? null : YAML.parse(text, {uniqueKeys: false})) as {name?: string} | null
    if (sub?.name) present.add(sub.name)
  }
  return wanted.filter((name) => !present.has(name))
}

/** SemVer 2 as helm requires of a chart's version (a leading "v" allowed, as helm allows it). */
const SEMVER = /^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[\da-z-]+(?:\.[\da-z-]+)*)?(?:\+[\da-z-]+(?:\.[\da-z-]+)*)?$/i

/**
 * The chart directory's Chart.yaml, checked before anything is copied or run: valid YAML with apiVersion,
 * name and a SemVer version, as helm requires; a problem is bad input naming the user's file and field.
 */
export async function checkChartYaml(chartDir: string): Promise<void> {
  const file = path.join(chartDir, 'Chart.yaml')
  const text = await readFile(file, 'utf8').catch(() => undefined)
  if (text === undefined) return
  const problem = yamlProblem(text)
  if (problem) throw badInput(`${file} is not valid YAML: ${problem}`)
  const chart = YAML.parse(text, {uniqueKeys: false}) as Record<string, unknown> | null
  if (!chart || typeof chart !== 'object' || Array.isArray(chart)) throw badInput(`${file} is not a chart's Chart.yaml: it holds no fields; it needs apiVersion, name and version`)
  for (const field of ['apiVersion', 'name', 'version']) {
    const value = chart[field]
    if (value === undefined || value === null || String(value).trim() === '') throw badInput(`${file} has no ${field}: helm needs apiVersion, name and version in Chart.yaml`)
  }
  if (!SEMVER.test(String(chart.version))) throw badInput(`${file}: version "${String(chart.version)}" is not SemVer (e.g. 1.2.3), which helm requires of a chart's version`)
}

/**
 * A chart archive given as -c, checked before helm reads it: empty, not gzip, damaged or truncated, or
 * gzip holding no tar archive are bad input naming the file.
 */
export async function checkChartArchive(file: string): Promise<void> {
  const bytes = await readFile(file)
  if (bytes.length === 0) throw badInput(`${file} is empty: a chart archive is a .tgz as helm package writes it`)
  if (bytes[0] !== 0x1f || bytes[1] !== 0x8b) throw badInput(`${file} is not a chart archive: it is not gzip-compressed (a chart .tgz is what helm package writes)`)
  let tar: Buffer
  try {
    tar = gunzipSync(bytes)
  } catch (error) {
    throw badInput(`${file} is damaged or truncated: ${(error as Error).message}; get a fresh copy of the chart`)
  }
  if (tar.length < 512 || tar.subarray(257, 262).toString('latin1') !== 'ustar') throw badInput(`${file} is gzip-compressed but holds no tar archive: it is not a chart archive`)
}

/** The YAML files helm loads from a chart directory, its own and its unpacked subcharts'. */
async function chartYamlFiles(chartDir: string): Promise<string[]> {
  const own = ['Chart.yaml', 'values.yaml', 'requirements.yaml'].map((name) => path.join(chartDir, name))
  const subcharts = await readdir(path.join(chartDir, 'charts'), {withFileTypes: true}).catch(() => [])
  const nested = await Promise.all(subcharts.filter((entry) => entry.isDirectory()).map((entry) => chartYamlFiles(path.join(chartDir, 'charts', entry.name))))
  return [...own, ...nested.flat()]
}

/** The time every file of a chart is packaged with: SOURCE_DATE_EPOCH when set (reproducible builds), else 2000-01-01. */
function packagedTime(): Date {
  const epoch = Number(process.env.SOURCE_DATE_EPOCH)
  return Number.isSafeInteger(epoch) && epoch >= 0 ? new Date(epoch * 1000) : new Date('2000-01-01T00:00:00Z')
}

/** Gives `dir` and every file and directory below it the same modification time (packagedTime). */
async function settleTimes(dir: string, time = packagedTime()): Promise<void> {
  for (const entry of await readdir(dir, {withFileTypes: true})) {
    const at = path.join(dir, entry.name)
    if (entry.isDirectory()) await settleTimes(at, time)
    else if (entry.isFile()) await utimes(at, time, time)
  }
  await utimes(dir, time, time)
}

/**
 * Why helm could not load a chart, as bad input naming the file, when the reason is a YAML file that
 * is not valid: for a directory the file is found and its problem given with line and column; for an
 * archive helm's own words are kept. Anything else is rethrown as it is.
 */
async function explainLoadFailure(error: unknown, chart: string, dir?: string): Promise<never> {
  const message = error instanceof Error ? error.message : String(error)
  const load = /cannot load ([\w./-]+\.ya?ml): (?:cannot unmarshal yaml document: )?(?:error converting YAML to JSON: )?(.*)$/.exec(message)
  if (dir) {
    for (const file of await chartYamlFiles(dir)) {
      const text = await readFile(file, 'utf8').catch(() => undefined)
      const problem = text === undefined ? undefined : yamlProblem(text)
      if (problem) throw badInput(`${path.join(chart, path.relative(dir, file))} is not valid YAML: ${problem}`)
    }
  }
  if (load) throw badInput(`${chart}: ${load[1]} is not valid YAML: ${load[2]}`)
  throw error
}

/**
 * helm pull of a chart from a repository that needs a login: the repository is added under LOGIN_REPO
 * to a scratch repository configuration holding the login (loginEnvironment), its index fetched with
 * `helm repo update`, and the chart pulled as LOGIN_REPO/<name>. The scratch files go when it is done.
 */
async function pullWithLogin(
  ctx: SourceContext,
  input: {repo: string; name: string},
  login: ChartCredentials,
  args: string[],
  dir: string,
  insecure: boolean,
): Promise<void> {
  try {
    const env = await loginEnvironment(dir, 'repo', input.repo, login, insecure)
    await ctx.tools.run('helm', ['repo', 'update', LOGIN_REPO], {env}).catch((error: unknown) => {
      // helm says why on stdout ("failed to fetch <url>/index.yaml : 401 Unauthorized"); its error names only the repository.
      const said = String((error as {cause?: {stdout?: unknown}}).cause?.stdout ?? '')
      const why = /failed to fetch \S+ : (.+)$/m.exec(said)?.[1]
      if (error instanceof Error && why) error.message += `: ${why.trim()}`
      throw error
    })
    await ctx.tools.run('helm', ['pull', `${LOGIN_REPO}/${input.name}`, ...args], {env})
  } finally {
    await rm(dir, {recursive: true, force: true})
  }
}

/** The words helm uses when a repository or registry wants a login it did not get. */
const UNAUTHORIZED = /\b401\b|unauthorized|authentication required|basic (?:credential|\*\*\*) not found/i

/**
 * A pull of the chart named by -r or -c oci:// that was refused for want of a login says how to give
 * one, or that the login given was refused. The error keeps its kind and exit code.
 */
function loginHint(loggedIn: boolean): (error: unknown) => never {
  return (error) => {
    if (error instanceof Error && UNAUTHORIZED.test(error.message)) {
      error.message += loggedIn
        ? ' (the --username login was refused: check the user and the password)'
        : ' (it needs a login: add --username USER --password-stdin, with the password piped into kod)'
    }
    throw error
  }
}

/** Whether the user named this remote chart directly (-r, or -c oci://), so --username could log in to it. */
function namedDirectly(input: ChartInput, request: PackageRequest): boolean {
  return (input.type === 'repo' && input.repo === request.repo) || (input.type === 'oci' && input.url === request.ref)
}

async function onlyArchive(dir: string): Promise<string> {
  const archives = (await readdir(dir)).filter((file) => file.endsWith('.tgz'))
  if (archives.length !== 1) throw new Error(`expected one chart archive in ${dir}, found ${archives.length}`)
  return path.join(dir, archives[0])
}

/** Chart.yaml fields kod records. */
export async function chartMetadata(ctx: SourceContext, archive: string): Promise<{name: string; version: string; appVersion?: string}> {
  const {stdout} = await ctx.tools.run('helm', ['show', 'chart', archive])
  return metadataOf(stdout, archive)
}

/**
 * Chart.yaml fields kod records, of an archive `helm package` has just written: helm loaded and checked the
 * chart, and wrote its Chart.yaml from what it loaded, which is what `helm show chart` would print.
 */
async function packagedMetadata(archive: string): Promise<{name: string; version: string; appVersion?: string}> {
  return metadataOf((await archivedChartYaml(archive)) ?? '', archive)
}

function metadataOf(text: string, archive: string): {name: string; version: string; appVersion?: string} {
  const chart = YAML.parse(text) as {name?: unknown; version?: unknown; appVersion?: unknown}
  if (typeof chart?.name !== 'string' || chart.version === undefined) throw new Error(`${archive} has no chart name or version`)
  return {
    name: chart.name,
    version: String(chart.version),
    appVersion: chart.appVersion === undefined || chart.appVersion === null ? undefined : String(chart.appVersion),
  }
}

/**
 * Brings the chart into `chartsDir` as a helm-packaged .tgz with its dependencies, whatever the input:
 * a local chart is packaged from a copy (so that `helm dependency build`, for a chart missing dependencies,
 * never writes into the user's directory, and every file has the same time: the same chart, the same
 * archive), anything remote is pulled with helm.
 */
export async function fetchChart(ctx: SourceContext, input: ChartInput, request: PackageRequest, chartsDir: string): Promise<ChartEntry> {
  const download = await mkdtemp(path.join(ctx.tmpDir, 'chart-'))
  const version = request.version ? ['--version', request.version] : []
  switch (input.type) {
    case 'directory': {
      await checkChartYaml(input.path)
      // helm's archive carries each file's modification time: packaged from a copy whose times are all one,
      // the same chart makes the same archive (the same digest in the registry) from any checkout of it.
      const copy = path.join(download, 'src', path.basename(input.path))
      await cp(input.path, copy, {recursive: true})
      const chartDir = copy
      if ((await missingDependencies(input.path)).length > 0) {
        await ctx.tools.run('helm', ['dependency', 'build', copy]).catch(async (error: unknown) => {
          // helm names its cache; the user needs the dependencies and where they come from.
          const chart = (await readValuesYaml(path.join(copy, 'Chart.yaml'), 'chart file')) as {dependencies?: Array<{name?: string; repository?: string}>} | null
          const missing = await missingDependencies(copy)
          const named = (chart?.dependencies ?? []).filter((dependency) => dependency.name && missing.includes(dependency.name))
          if (error instanceof Error && named.length > 0) {
            error.message = `cannot fetch ${named.map((dependency) => `dependency ${dependency.name} from ${dependency.repository ?? 'no repository'}`).join(', ')} of ${input.path}: ${error.message.replace(/^helm dependency failed: /, '')}; check the repository in Chart.yaml, or put the chart in charts/`
          }
          throw error
        })
      }
      // After helm dependency build, whose downloads are files of the chart too.
      await settleTimes(chartDir)
      // The chart's values are parsed while helm packages it (readChartFiles takes them if the archive holds the same).
      await Promise.all([
        ctx.tools.run('helm', ['package', chartDir, '--destination', download]).catch((error: unknown) => explainLoadFailure(error, input.path, chartDir)),
        parseValuesAhead(chartDir),
      ])
      break
    }
    case 'archive': {
      await checkChartArchive(input.path)
      await cp(input.path, path.join(download, path.basename(input.path).replace(/\.tar\.gz$/, '.tgz')))
      break
    }
    case 'url': {
      await ctx.tools.run('helm', ['pull', input.url, '--destination', download, ...insecureFlags(input.url, request.insecureRegistries)])
      break
    }
    case 'oci': {
      const login = credentialsFor(input.url, request.credentials)
      const env = login ? await loginEnvironment(path.join(download, '.login'), 'oci', input.url, login, false) : undefined
      try {
        const pulled = pullOci(ctx, ['pull', input.url, ...version, '--destination', download], input.url, request.insecureRegistries, env)
        await (namedDirectly(input, request) ? pulled.catch(loginHint(Boolean(login))) : pulled)
      } finally {
        await rm(path.join(download, '.login'), {recursive: true, force: true})
      }
      break
    }
    case 'repo': {
      const login = credentialsFor(input.repo, request.credentials)
      const args = [...version, '--destination', download, ...insecureFlags(input.repo, request.insecureRegistries)]
      const pulled = login
        ? pullWithLogin(ctx, input, login, args, path.join(download, '.login'), isInsecure(input.repo, request.insecureRegistries))
        : ctx.tools.run('helm', ['pull', input.name, '--repo', input.repo, ...args]).then(() => undefined)
      await (namedDirectly(input, request) ? pulled.catch(loginHint(Boolean(login))) : pulled)
      break
    }
  }
  const archive = await onlyArchive(download)
  // helm package has loaded and checked a local chart already: no `helm show chart` to run again.
  const metadata = await (input.type === 'directory' ? packagedMetadata(archive) : chartMetadata(ctx, archive)).catch((error: unknown) =>
    explainLoadFailure(error, input.type === 'archive' ? input.path : input.type === 'directory' ? archive : describeInput(request)),
  )
  const file = `charts/${metadata.name}-${metadata.version}.tgz`
  await mkdir(chartsDir, {recursive: true})
  await rename(archive, path.join(chartsDir, path.basename(file))).catch(async () => {
    await cp(archive, path.join(chartsDir, path.basename(file)))
  })
  return {...metadata, file}
}
