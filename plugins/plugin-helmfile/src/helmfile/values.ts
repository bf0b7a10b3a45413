import YAML from 'yaml'

import {needsHelmfile, refuse} from './errors.js'
import {isMap, isRemote, readText, readValuesFile, resolveFrom, templateReason} from './files.js'
import {glob} from './glob.js'
import {type Values, type ValuesEntry} from './model.js'

/**
 * Values as helmfile layers them: maps merge key by key, anything else is replaced by the later
 * layer (pkg/maputil MergeMaps; a null on the later side does not erase).
 */
export function mergeValues(base: Values, over: Values): Values {
  const out: Values = {...base}
  for (const [key, value] of Object.entries(over)) {
    if (value === null || value === undefined) {
      if (!(key in out)) out[key] = value
      continue
    }
    const before = out[key]
    out[key] = isMap(before) && isMap(value) ? mergeValues(before, value) : value
  }
  return out
}

/** helmfile's missingFileHandler: Error (default) refuses, Warn/Info/Debug skip the file. */
export type MissingFileHandler = 'Error' | 'Warn' | 'Info' | 'Debug'

export function missingFileHandler(file: string, value: unknown): MissingFileHandler {
  if (value === undefined || value === null) return 'Error'
  if (value === 'Error' || value === 'Warn' || value === 'Info' || value === 'Debug') return value
  refuse(file, `missingFileHandler "${String(value)}" must be one of Error, Warn, Info, Debug`)
}

export interface LoadContext {
  /** The helmfile whose entries these are: named in messages. */
  file: string
  /** Directory relative paths resolve against. */
  dir: string
  handler: MissingFileHandler
  warnings: string[]
}

async function expand(ctx: LoadContext, entry: string, what: string): Promise<string[]> {
  if (isRemote(entry)) refuse(ctx.file, `${what} "${entry}" is remote; kod reads only local files (download it and reference the copy)`)
  const files = await glob(resolveFrom(ctx.dir, entry))
  if (files.length === 0) {
    if (ctx.handler === 'Error') refuse(ctx.file, `${what} matching "${entry}" does not exist in ${ctx.dir}`)
    ctx.warnings.push(`${ctx.file}: skipping missing ${what} matching "${entry}" (missingFileHandler: ${ctx.handler})`)
  }
  return files
}

/**
 * Environment values and top-level `values:` (pkg/state/envvals_loader.go LoadEnvironmentValues):
 * files (globs allowed) and inline maps, merged in order; `fallback` lets earlier entries win.
 */
export async function loadValues(ctx: LoadContext, entries: unknown, strategy: 'override' | 'fallback', what: string): Promise<Values> {
  let result: Values = {}
  const add = (m: Values): void => {
    result = strategy === 'fallback' ? mergeValues(m, result) : mergeValues(result, m)
  }
  for (const entry of asList(ctx.file, entries, what)) {
    if (typeof entry === 'string') {
      for (const f of await expand(ctx, entry, what)) {
        if (f.endsWith('.hcl')) refuse(f, `HCL ${what} are evaluated by helmfile; convert it to YAML`)
        add(await readValuesFile(f, what))
      }
    } else if (isMap(entry)) add(entry)
    else refuse(ctx.file, `each ${what} entry must be a file path or a map`)
  }
  return result
}

/**
 * A release's `values:` kept as a list, since helm layers them itself: each file path resolved to
 * one local file (helmfile refuses globs matching several), each map kept inline.
 */
export async function releaseValues(ctx: LoadContext, entries: unknown, prefix: string, release: string): Promise<ValuesEntry[]> {
  const out: ValuesEntry[] = []
  const what = `values file of release "${release}"`
  for (const entry of asList(ctx.file, entries, `values of release "${release}"`)) {
    if (typeof entry === 'string') {
      const files = await expand(ctx, prefix + entry, what)
      if (files.length > 1) refuse(ctx.file, `${what} "${entry}" matches ${files.length} files; helmfile does not allow globs in release values`)
      for (const f of files) {
        const text = await readText(f, what, false)
        // helm reads it (duplicate keys allowed, the last wins); a broken one is refused here, naming the user's file.
        const documents = YAML.parseAllDocuments(text, {uniqueKeys: false})
        const broken = documents.find((doc) => doc.errors.length > 0)
        if (broken) refuse(f, `not valid YAML: ${broken.errors[0].message.split('\n')[0].replace(/:\s*$/, '')}`)
        // helm takes a map (or nothing): a list or a scalar fails in helm, naming kod's staged copy instead.
        const notMap = documents.map((doc) => doc.toJS() as unknown).find((value) => value !== null && value !== undefined && !isMap(value))
        if (notMap !== undefined) refuse(f, `${what} holds ${Array.isArray(notMap) ? 'a list' : 'a single value'}, not a map of values`)
        if (text.includes('{{')) ctx.warnings.push(`${f}: contains "{{"; helmfile passes it to helm unrendered (only .gotmpl values files are templates), so only the chart's tpl can render it`)
        out.push({kind: 'file', path: f})
      }
    } else if (isMap(entry)) {
      const reason = templateReason(ctx.file, JSON.stringify(entry), false)
      if (reason) needsHelmfile(ctx.file, `inline values of release "${release}": ${reason}`)
      out.push({kind: 'inline', values: entry})
    } else refuse(ctx.file, `each values entry of release "${release}" must be a file path or a map`)
  }
  return out
}

export function asList(file: string, value: unknown, what: string): unknown[] {
  if (value === undefined || value === null) return []
  if (!Array.isArray(value)) refuse(file, `${what} must be a list`)
  return value
}
