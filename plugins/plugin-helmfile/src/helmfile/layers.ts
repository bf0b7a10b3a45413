import {type Doc, isMap} from './files.js'

/**
 * How helmfile merges layers of one helmfile, mimicking mergo on its structs:
 * - `bases` (pkg/state/create.go loadBases): lists are appended (WithAppendSlice), and an
 *   environment's `values` lists are concatenated (mergeEnvironments), base first;
 * - `---` parts (pkg/app/desired_state_file_loader.go load): a non-empty list in a later part
 *   replaces the earlier one (mergo.WithOverride without append: "Helmfile doesn't merge arrays
 *   across layers", docs/writing-helmfile.md).
 * In both, maps merge key by key, and a struct such as `helmDefaults` merges field by field where
 * the later value is not a zero value (false, 0, "" never override: mergo's isEmptyValue).
 */

/** A list item remembers the file it was written in: releases report it, and refusals name it. */
export interface Tagged {
  item: unknown
  file: string
}

const LISTS = ['releases', 'repositories', 'helmfiles', 'hooks', 'values', 'bases', 'apiVersions']

export function tag(doc: Doc, file: string): Doc {
  const out: Doc = {...doc}
  for (const key of ['releases', 'repositories', 'helmfiles', 'hooks']) {
    if (Array.isArray(doc[key])) out[key] = (doc[key] as unknown[]).map((item): Tagged => ({item, file}))
  }
  return out
}

const isZero = (v: unknown): boolean => v === undefined || v === null || v === false || v === 0 || v === ''

function mergeStruct(before: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out = {...before}
  for (const [k, v] of Object.entries(over)) if (!isZero(v) && !(Array.isArray(v) && v.length === 0)) out[k] = v
  return out
}

export function layer(base: Doc, over: Doc, lists: 'append' | 'replace'): Doc {
  const out: Doc = {...base}
  for (const [key, value] of Object.entries(over)) {
    const before = out[key]
    if (key === 'environments' && isMap(before) && isMap(value)) {
      out[key] = lists === 'append' ? concatEnvironments(before, value) : {...before, ...value}
    } else if (LISTS.includes(key) || Array.isArray(value)) {
      const list = Array.isArray(value) ? value : []
      if (lists === 'append') out[key] = [...(Array.isArray(before) ? before : []), ...list]
      else if (list.length > 0 || before === undefined) out[key] = list
    } else if (isMap(before) && isMap(value)) out[key] = mergeStruct(before, value)
    else if (!isZero(value) || before === undefined) out[key] = value
  }
  return out
}

/** pkg/state/create.go mergeEnvironments: same-named environments keep both value lists, base first. */
function concatEnvironments(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out = {...base}
  for (const [name, spec] of Object.entries(over)) {
    const before = out[name]
    if (!isMap(before) || !isMap(spec)) {
      out[name] = spec ?? before
      continue
    }
    const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : [])
    const fallback = (spec.mergeStrategy ?? before.mergeStrategy) === 'fallback'
    out[name] = {
      ...mergeStruct(before, spec),
      values: fallback ? [...list(spec.values), ...list(before.values)] : [...list(before.values), ...list(spec.values)],
      secrets: [...list(before.secrets), ...list(spec.secrets)],
    }
  }
  return out
}
