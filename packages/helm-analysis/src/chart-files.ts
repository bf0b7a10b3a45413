import {mkdir, mkdtemp, readdir, readFile} from 'node:fs/promises'
import path from 'node:path'
import * as tar from 'tar'
import YAML from 'yaml'

import {isMap, mergeValues, type Values} from './values.js'

/**
 * A chart archive read as files: its values with every subchart's defaults under the key the parent
 * sets them by (alias or name), and the `.Values…` paths its templates read. helm renders; this only
 * tells kod which values exist, so it can ask helm what each one does.
 */
export interface ChartTree {
  /** The unpacked chart: scratch space, so kod may add analysis-only templates to it. */
  dir: string
  name: string
  /** Values as the parent chart sees them: values.yaml, with each subchart's values.yaml under its key. */
  values: Values
  /** Template sources of the chart and all subcharts, keyed by path inside the archive. */
  templates: Map<string, string>
}

interface ChartYaml {
  name?: string
  dependencies?: Array<{name?: string; alias?: string}>
}

async function readYaml<T>(file: string): Promise<T | undefined> {
  try {
    return (YAML.parse(await readFile(file, 'utf8')) as T) ?? undefined
  } catch {
    return undefined
  }
}

async function subchartDirs(chartDir: string, scratch: string): Promise<string[]> {
  const dir = path.join(chartDir, 'charts')
  let entries: string[]
  try {
    entries = await readdir(dir)
  } catch {
    return []
  }
  const found: string[] = []
  for (const entry of entries.sort()) {
    const full = path.join(dir, entry)
    if (entry.endsWith('.tgz')) {
      const out = await mkdtemp(path.join(scratch, 'sub-'))
      await tar.extract({file: full, cwd: out})
      const [top] = await readdir(out)
      if (top) found.push(path.join(out, top))
    } else if ((await readYaml<ChartYaml>(path.join(full, 'Chart.yaml'))) !== undefined) {
      found.push(full)
    }
  }
  return found
}

async function collectTemplates(chartDir: string, prefix: string, into: Map<string, string>): Promise<void> {
  const dir = path.join(chartDir, 'templates')
  let entries: string[]
  try {
    entries = (await readdir(dir, {recursive: true})) as string[]
  } catch {
    return
  }
  for (const entry of entries) {
    if (!/\.(ya?ml|tpl|txt|json)$/.test(entry)) continue
    into.set(`${prefix}/templates/${entry}`, await readFile(path.join(dir, entry), 'utf8').catch(() => ''))
  }
}

async function loadChart(chartDir: string, scratch: string, prefix: string, templates: Map<string, string>): Promise<{name: string; values: Values}> {
  const chart = (await readYaml<ChartYaml>(path.join(chartDir, 'Chart.yaml'))) ?? {}
  const name = chart.name ?? path.basename(chartDir)
  let values = (await readYaml<Values>(path.join(chartDir, 'values.yaml'))) ?? {}
  if (!isMap(values)) values = {}
  await collectTemplates(chartDir, prefix, templates)
  const subcharts = new Map<string, Values>()
  for (const dir of await subchartDirs(chartDir, scratch)) {
    const sub = await loadChart(dir, scratch, `${prefix}/charts/${path.basename(dir)}`, templates)
    subcharts.set(sub.name, sub.values)
  }
  // Dependencies from Chart.yaml, or requirements.yaml (apiVersion v1); a subchart in charts/ that no
  // dependency names is rendered by helm all the same, under its own name.
  const requirements = (await readYaml<ChartYaml>(path.join(chartDir, 'requirements.yaml')))?.dependencies ?? []
  const dependencies = [...(chart.dependencies ?? []), ...requirements]
  for (const name of subcharts.keys()) {
    if (!dependencies.some((dependency) => dependency.name === name)) dependencies.push({name})
  }
  for (const dependency of dependencies) {
    const subValues = dependency.name ? subcharts.get(dependency.name) : undefined
    if (!subValues) continue
    const key = dependency.alias ?? dependency.name!
    const {global, ...own} = subValues
    // A subchart's globals are defaults of the parent's global section.
    if (isMap(global)) values = {...values, global: mergeValues(global, isMap(values.global) ? values.global : {})}
    values = {...values, [key]: mergeValues(own, isMap(values[key]) ? (values[key] as Values) : {})}
  }
  return {name, values}
}

export async function readChartTree(archive: string, scratch: string): Promise<ChartTree> {
  const out = await mkdtemp(path.join(scratch, 'tree-'))
  await mkdir(out, {recursive: true})
  await tar.extract({file: archive, cwd: out})
  const [top] = await readdir(out)
  const templates = new Map<string, string>()
  const dir = path.join(out, top)
  const {name, values} = await loadChart(dir, scratch, top, templates)
  return {dir, name, values, templates}
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
