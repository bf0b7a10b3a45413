import {cp, mkdir, mkdtemp, readdir, readFile, rename, stat} from 'node:fs/promises'
import path from 'node:path'
import YAML from 'yaml'

import type {ChartEntry, PackageRequest, SourceContext} from 'kod'

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
async function pullOci(ctx: SourceContext, args: string[], url: string, insecureHosts: readonly string[]): Promise<void> {
  if (!isInsecure(url, insecureHosts)) {
    await ctx.tools.run('helm', args)
    return
  }
  try {
    await ctx.tools.run('helm', [...args, '--insecure-skip-tls-verify'])
  } catch (error) {
    if (!/HTTP response to HTTPS client/i.test((error as Error).message)) throw error
    await ctx.tools.run('helm', [...args, '--plain-http'])
  }
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

/** The YAML files helm loads from a chart directory, its own and its unpacked subcharts'. */
async function chartYamlFiles(chartDir: string): Promise<string[]> {
  const own = ['Chart.yaml', 'values.yaml', 'requirements.yaml'].map((name) => path.join(chartDir, name))
  const subcharts = await readdir(path.join(chartDir, 'charts'), {withFileTypes: true}).catch(() => [])
  const nested = await Promise.all(subcharts.filter((entry) => entry.isDirectory()).map((entry) => chartYamlFiles(path.join(chartDir, 'charts', entry.name))))
  return [...own, ...nested.flat()]
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

async function onlyArchive(dir: string): Promise<string> {
  const archives = (await readdir(dir)).filter((file) => file.endsWith('.tgz'))
  if (archives.length !== 1) throw new Error(`expected one chart archive in ${dir}, found ${archives.length}`)
  return path.join(dir, archives[0])
}

/** Chart.yaml fields kod records. */
export async function chartMetadata(ctx: SourceContext, archive: string): Promise<{name: string; version: string; appVersion?: string}> {
  const {stdout} = await ctx.tools.run('helm', ['show', 'chart', archive])
  const chart = YAML.parse(stdout) as {name?: unknown; version?: unknown; appVersion?: unknown}
  if (typeof chart?.name !== 'string' || chart.version === undefined) throw new Error(`${archive} has no chart name or version`)
  return {
    name: chart.name,
    version: String(chart.version),
    appVersion: chart.appVersion === undefined || chart.appVersion === null ? undefined : String(chart.appVersion),
  }
}

/**
 * Brings the chart into `chartsDir` as a helm-packaged .tgz with its dependencies, whatever the input:
 * a local chart is copied and packaged (the user's directory is never written to), anything remote
 * is pulled with helm.
 */
export async function fetchChart(ctx: SourceContext, input: ChartInput, request: PackageRequest, chartsDir: string): Promise<ChartEntry> {
  const download = await mkdtemp(path.join(ctx.tmpDir, 'chart-'))
  const version = request.version ? ['--version', request.version] : []
  switch (input.type) {
    case 'directory': {
      const copy = path.join(download, 'src', path.basename(input.path))
      await cp(input.path, copy, {recursive: true})
      if ((await missingDependencies(copy)).length > 0) await ctx.tools.run('helm', ['dependency', 'build', copy])
      await ctx.tools.run('helm', ['package', copy, '--destination', download]).catch((error: unknown) => explainLoadFailure(error, input.path, copy))
      break
    }
    case 'archive': {
      await cp(input.path, path.join(download, path.basename(input.path).replace(/\.tar\.gz$/, '.tgz')))
      break
    }
    case 'url': {
      await ctx.tools.run('helm', ['pull', input.url, '--destination', download, ...insecureFlags(input.url, request.insecureRegistries)])
      break
    }
    case 'oci': {
      await pullOci(ctx, ['pull', input.url, ...version, '--destination', download], input.url, request.insecureRegistries)
      break
    }
    case 'repo': {
      await ctx.tools.run('helm', [
        'pull',
        input.name,
        '--repo',
        input.repo,
        ...version,
        '--destination',
        download,
        ...insecureFlags(input.repo, request.insecureRegistries),
      ])
      break
    }
  }
  const archive = await onlyArchive(download)
  const metadata = await chartMetadata(ctx, archive).catch((error: unknown) =>
    explainLoadFailure(error, input.type === 'archive' ? input.path : input.type === 'directory' ? archive : describeInput(request)),
  )
  const file = `charts/${metadata.name}-${metadata.version}.tgz`
  await mkdir(chartsDir, {recursive: true})
  await rename(archive, path.join(chartsDir, path.basename(file))).catch(async () => {
    await cp(archive, path.join(chartsDir, path.basename(file)))
  })
  return {...metadata, file}
}
