import {copyFile, mkdir, readFile, writeFile} from 'node:fs/promises'
import path from 'node:path'
import YAML from 'yaml'

import type {SourceContext} from 'kod'

import {type ChartInput, setValues} from '@kod/helm-analysis'

import type {ChartRef, Release, SetEntry, Values} from './helmfile/model.js'

/**
 * What one release carries into the package: its values files, in the order helmfile passes them to helm
 * (values, then set and setString), as files under values/<unit>/.
 */

/** Where helm fetches a helmfile chart from, as @kod/helm-analysis reads chart inputs. */
export function chartInput(chart: ChartRef): ChartInput {
  switch (chart.kind) {
    case 'local':
      return /\.(tgz|tar\.gz)$/.test(chart.path) ? {type: 'archive', path: chart.path} : {type: 'directory', path: chart.path}
    case 'oci':
      return {type: 'oci', url: chart.url}
    case 'repo':
      // An OCI repository's chart: url is the chart's own oci://…/name already (chart.ts).
      return chart.oci ? {type: 'oci', url: chart.url} : {type: 'repo', repo: chart.url, name: chart.name}
  }
}

/** The chart as the helmfile names it, for a release that is recorded but not packaged. */
export function chartLabel(chart: ChartRef, helmfileDir: string): string {
  switch (chart.kind) {
    case 'local':
      return path.relative(helmfileDir, chart.path) || '.'
    case 'oci':
      return chart.url
    case 'repo':
      return `${chart.repository}/${chart.name}`
  }
}

/** Same chart, same version: fetched once however many releases install it. */
export function chartKey(release: Release): string {
  return JSON.stringify([chartInput(release.chart), release.version ?? ''])
}

/**
 * A --set value as helm types it (strvals typedVal): true, false and null in any case, and base-10
 * integers not starting with 0 (but "0" itself); everything else stays text. Not YAML: "1.10", "010",
 * "0x1F" or "{a: 1}" are strings to helm, and an image tag "1.10" must not become the number 1.1.
 */
export function helmTyped(text: string): unknown {
  const lower = text.toLowerCase()
  if (lower === 'true') return true
  if (lower === 'false') return false
  if (lower === 'null') return null
  if (text === '0') return 0
  if (text === '' || text.startsWith('0') || !/^[+-]?\d+$/.test(text)) return text
  // strconv.ParseInt(text, 10, 64): outside int64 it fails, and helm keeps the text.
  const big = BigInt(text)
  if (big > 9223372036854775807n || big < -9223372036854775808n) return text
  return Number.isSafeInteger(Number(big)) ? Number(big) : big
}

/** The text helm would give a set entry: the value, a file's content, or a list. */
async function setEntryValue(entry: SetEntry, asString: boolean): Promise<unknown> {
  // helm types --set values (true, 1, null) and keeps --set-string values as text.
  const typed = (text: string): unknown => (asString ? text : helmTyped(text))
  if ('value' in entry) return typed(entry.value)
  if ('file' in entry) return readFile(entry.file, 'utf8')
  return entry.values.map((value) => typed(value))
}

/**
 * A release's set and setString as one values file: helm parses the names (paths, list indices) from
 * placeholder --set flags, and the placeholders are replaced by the values, typed as helm would.
 */
async function setAsValues(ctx: SourceContext, release: Release): Promise<Values | undefined> {
  const entries = [...release.set.map((entry) => ({entry, asString: false})), ...release.setString.map((entry) => ({entry, asString: true}))]
  if (entries.length === 0) return undefined
  const placeholder = (index: number): string => `kodsetvalue${index}x`
  const skeleton = await setValues(
    ctx,
    entries.map(({entry}, index) => `${entry.name}=${placeholder(index)}`),
  )
  const values = await Promise.all(entries.map(({entry, asString}) => setEntryValue(entry, asString)))
  const fill = (node: unknown): unknown => {
    if (typeof node === 'string') {
      const match = /^kodsetvalue(\d+)x$/.exec(node)
      return match ? values[Number(match[1])] : node
    }
    if (Array.isArray(node)) return node.map(fill)
    if (typeof node === 'object' && node !== null) return Object.fromEntries(Object.entries(node).map(([key, value]) => [key, fill(value)]))
    return node
  }
  return fill(skeleton) as Values
}

/** Copies (or writes) a release's values into the staging directory; paths inside the package, in order. */
export async function stageReleaseValues(ctx: SourceContext, release: Release, unitId: string, stagingDir: string): Promise<string[]> {
  const dir = `values/${unitId.replace('/', '_')}`
  const inside: string[] = []
  const next = (name: string): string => `${dir}/${String(inside.length + 1).padStart(2, '0')}-${name}`
  const files: Array<{name: string; write: (to: string) => Promise<void>}> = release.values.map((entry) =>
    entry.kind === 'file'
      ? {name: path.basename(entry.path), write: (to) => copyFile(entry.path, to)}
      : {name: 'inline.yaml', write: (to) => writeFile(to, YAML.stringify(entry.values, {lineWidth: 0}))},
  )
  const set = await setAsValues(ctx, release)
  if (set) files.push({name: 'set.yaml', write: (to) => writeFile(to, `# set and setString of release ${release.name}, as helm reads them\n${YAML.stringify(set, {lineWidth: 0})}`)})
  if (files.length > 0) await mkdir(path.join(stagingDir, dir), {recursive: true})
  for (const file of files) {
    const name = next(file.name)
    await file.write(path.join(stagingDir, name))
    inside.push(name)
  }
  return inside
}
