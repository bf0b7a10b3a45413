import {mkdtemp, readdir, readFile} from 'node:fs/promises'
import path from 'node:path'
import * as tar from 'tar'
import YAML from 'yaml'

import {isMap, mergeValues, type Values} from './values.js'

/**
 * A chart archive read as files: its values with every subchart's defaults under the key the parent
 * sets them by (alias or name), and the `.Values…` paths its templates read. helm renders; this only
 * tells kod which values exist, so it can ask helm what each one does.
 */
export interface ChartFiles {
  /** The chart's directory at the top of the archive (its name, as helm packaged it). */
  top: string
  name: string
  /** Values as the parent chart sees them: values.yaml, with each subchart's values.yaml under its key. */
  values: Values
  /** Template sources of the chart and all subcharts, keyed by path inside the archive. */
  templates: Map<string, string>
}

/** A chart's files and the chart helm renders for them. */
export interface ChartTree extends ChartFiles {
  /**
   * What helm renders: the unpacked chart (scratch space, so kod may add analysis-only templates to it),
   * or the archive itself when kod adds nothing to it.
   */
  dir: string
}

interface ChartYaml {
  name?: string
  dependencies?: Array<{name?: string; alias?: string}>
}

/** A YAML file's values, or undefined when it does not parse. */
function parseYaml(text: string): unknown {
  try {
    // Duplicate keys as helm takes them (the last one wins), in linear time: the yaml library's own
    // check of unique keys is quadratic in a map's size (a values.yaml with 10,000 keys).
    return YAML.parse(text, {uniqueKeys: false}) ?? undefined
  } catch {
    return undefined
  }
}

/**
 * Values files parsed ahead, by their text: a local chart's are parsed while `helm package` runs, and
 * each is taken (once) when the archive helm wrote is read and holds the very same text.
 */
const parsedAhead = new Map<string, unknown>()
/** How many parsed files wait to be taken at most (a package that failed leaves its own behind). */
const PARSED_AHEAD_MAX = 32

function parsedYaml(text: string): unknown {
  if (parsedAhead.has(text)) {
    const values = parsedAhead.get(text)
    parsedAhead.delete(text)
    return values
  }
  return parseYaml(text)
}

/**
 * Parses the values.yaml of a chart directory and of its unpacked subcharts, to be taken by
 * readChartFiles when the archive packaged from that directory holds the same text: work done while
 * `helm package` runs instead of after it. Unreadable files are left to readChartFiles.
 */
export async function parseValuesAhead(chartDir: string): Promise<void> {
  const subcharts = await readdir(path.join(chartDir, 'charts'), {withFileTypes: true}).catch(() => [])
  const dirs = [chartDir, ...subcharts.filter((entry) => entry.isDirectory()).map((entry) => path.join(chartDir, 'charts', entry.name))]
  for (const dir of dirs) {
    const text = await readFile(path.join(dir, 'values.yaml'), 'utf8').catch(() => undefined)
    if (text === undefined || parsedAhead.has(text)) continue
    parsedAhead.set(text, parseYaml(text))
    while (parsedAhead.size > PARSED_AHEAD_MAX) parsedAhead.delete(parsedAhead.keys().next().value!)
  }
}

/** The files of a chart archive (a .tgz, or the bytes of one), by their path inside it. */
async function archiveFiles(archive: string | Buffer): Promise<Map<string, Buffer>> {
  const bytes = typeof archive === 'string' ? await readFile(archive) : archive
  const files = new Map<string, Buffer>()
  await new Promise<void>((resolve, reject) => {
    const parser = new tar.Parser({
      onReadEntry(entry) {
        if (entry.type !== 'File' && entry.type !== 'OldFile' && entry.type !== 'ContiguousFile') {
          entry.resume()
          return
        }
        const chunks: Buffer[] = []
        entry.on('data', (chunk: Buffer) => chunks.push(chunk))
        entry.on('end', () => files.set(entry.path.replace(/^(?:\.\/)+/, ''), Buffer.concat(chunks)))
      },
    })
    parser.on('error', reject)
    parser.on('abort', reject)
    parser.on('end', () => resolve())
    parser.end(bytes)
  })
  return files
}

/** A chart's files as read from its archive; `dir` is a directory inside it ("mychart", "mychart/charts/sub"). */
class ArchiveDir {
  constructor(
    private readonly files: Map<string, Buffer>,
    readonly dir: string,
  ) {}

  text(name: string): string | undefined {
    return this.files.get(`${this.dir}/${name}`)?.toString('utf8')
  }

  yaml<T>(name: string): T | undefined {
    const text = this.text(name)
    return text === undefined ? undefined : (parsedYaml(text) as T | undefined)
  }

  /** Paths below `sub`, relative to it. */
  below(sub: string): string[] {
    const prefix = `${this.dir}/${sub}/`
    return [...this.files.keys()].filter((file) => file.startsWith(prefix)).map((file) => file.slice(prefix.length))
  }

  at(sub: string): ArchiveDir {
    return new ArchiveDir(this.files, `${this.dir}/${sub}`)
  }

  bytes(name: string): Buffer | undefined {
    return this.files.get(`${this.dir}/${name}`)
  }
}

/** The directory at the top of an archive's files (a chart archive has one). */
function topOf(files: Map<string, Buffer>): string | undefined {
  return [...new Set([...files.keys()].filter((file) => file.includes('/')).map((file) => file.slice(0, file.indexOf('/'))))].sort()[0]
}

/** The subcharts in charts/: unpacked directories with a Chart.yaml, and .tgz archives (read in memory). */
async function subcharts(chart: ArchiveDir): Promise<ArchiveDir[]> {
  const entries = [...new Set(chart.below('charts').map((file) => file.split('/')[0]))].sort()
  const found: ArchiveDir[] = []
  for (const entry of entries) {
    const archive = entry.endsWith('.tgz') ? chart.bytes(`charts/${entry}`) : undefined
    if (archive) {
      const files = await archiveFiles(archive)
      const top = topOf(files)
      if (top) found.push(new ArchiveDir(files, top))
    } else if (chart.at(`charts/${entry}`).yaml<ChartYaml>('Chart.yaml') !== undefined) {
      found.push(chart.at(`charts/${entry}`))
    }
  }
  return found
}

function collectTemplates(chart: ArchiveDir, prefix: string, into: Map<string, string>): void {
  for (const entry of chart.below('templates').sort()) {
    if (!/\.(ya?ml|tpl|txt|json)$/.test(entry)) continue
    into.set(`${prefix}/templates/${entry}`, chart.text(`templates/${entry}`) ?? '')
  }
}

async function loadChart(chart: ArchiveDir, prefix: string, templates: Map<string, string>): Promise<{name: string; values: Values}> {
  const metadata = chart.yaml<ChartYaml>('Chart.yaml') ?? {}
  const name = metadata.name ?? path.basename(chart.dir)
  let values = chart.yaml<Values>('values.yaml') ?? {}
  if (!isMap(values)) values = {}
  collectTemplates(chart, prefix, templates)
  const subValues = new Map<string, Values>()
  for (const sub of await subcharts(chart)) {
    const loaded = await loadChart(sub, `${prefix}/charts/${path.basename(sub.dir)}`, templates)
    subValues.set(loaded.name, loaded.values)
  }
  // Dependencies from Chart.yaml, or requirements.yaml (apiVersion v1); a subchart in charts/ that no
  // dependency names is rendered by helm all the same, under its own name.
  const requirements = chart.yaml<ChartYaml>('requirements.yaml')?.dependencies ?? []
  const dependencies = [...(metadata.dependencies ?? []), ...requirements]
  for (const name of subValues.keys()) {
    if (!dependencies.some((dependency) => dependency.name === name)) dependencies.push({name})
  }
  for (const dependency of dependencies) {
    const own = dependency.name ? subValues.get(dependency.name) : undefined
    if (!own) continue
    const key = dependency.alias ?? dependency.name!
    const {global, ...rest} = own
    // A subchart's globals are defaults of the parent's global section.
    if (isMap(global)) values = {...values, global: mergeValues(global, isMap(values.global) ? values.global : {})}
    values = {...values, [key]: mergeValues(rest, isMap(values[key]) ? (values[key] as Values) : {})}
  }
  return {name, values}
}

/** Reads a chart archive in memory (its subcharts' archives too): nothing is written to disk. */
export async function readChartFiles(archive: string): Promise<ChartFiles> {
  const files = await archiveFiles(archive)
  const top = topOf(files)
  if (top === undefined) throw new Error(`${archive} holds no chart`)
  const templates = new Map<string, string>()
  const {name, values} = await loadChart(new ArchiveDir(files, top), top, templates)
  return {top, name, values, templates}
}

/** The Chart.yaml at the top of a chart archive, as text (undefined when it has none). */
export async function archivedChartYaml(archive: string): Promise<string | undefined> {
  const files = await archiveFiles(archive)
  const top = topOf(files)
  return top === undefined ? undefined : new ArchiveDir(files, top).text('Chart.yaml')
}

/** Unpacks a chart archive into scratch space; the chart's directory there. */
export async function unpackChart(archive: string, scratch: string): Promise<string> {
  const out = await mkdtemp(path.join(scratch, 'tree-'))
  await tar.extract({file: archive, cwd: out})
  const [top] = await readdir(out)
  return path.join(out, top)
}

/** A chart archive's files, and the archive unpacked into scratch space (`dir`). */
export async function readChartTree(archive: string, scratch: string): Promise<ChartTree> {
  const [files, dir] = await Promise.all([readChartFiles(archive), unpackChart(archive, scratch)])
  return {...files, dir}
}

/**
 * `.Values.a.b.c` paths the templates read that are the parent chart's to set: every path the parent's
 * own templates read, and the `global.*` paths any template reads.
 */
export function valuesPathsInTemplates(templates: Map<string, string>, chartName?: string): string[][] {
  const paths = new Map<string, string[]>()
  for (const [file, text] of templates) {
    const own = chartName === undefined || file.startsWith(`${chartName}/templates/`)
    for (const match of text.matchAll(/\.Values((?:\.[A-Za-z_][\w-]*)+)/g)) {
      const segments = match[1].slice(1).split('.')
      if (own || segments[0] === 'global') paths.set(segments.join('.'), segments)
    }
  }
  return [...paths.values()]
}
