import type {RefHelpers, Target, ValuesBinding} from 'kod'

/** Helm values: plain YAML maps. */
export type Values = Record<string, unknown>

export function isMap(value: unknown): value is Values {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Helm's merge of values files: maps merge key by key, a null deletes, anything else replaces. Never shares structure with its inputs. */
export function mergeValues(base: Values, override: Values): Values {
  const merged: Values = {...base}
  for (const [key, value] of Object.entries(override)) {
    if (value === null) delete merged[key]
    else if (isMap(value)) merged[key] = mergeValues(isMap(merged[key]) ? (merged[key] as Values) : {}, value)
    else merged[key] = Array.isArray(value) ? structuredClone(value) : value
  }
  return merged
}

/** A values path as written in the manifest: keys joined by ".", a "." inside a key escaped as "\.". */
export function joinPath(keys: string[]): string {
  return keys.map((key) => key.replaceAll('\\', '\\\\').replaceAll('.', '\\.')).join('.')
}

export function splitPath(path: string): string[] {
  const keys: string[] = []
  let current = ''
  for (let index = 0; index < path.length; index++) {
    const char = path[index]
    if (char === '\\' && index + 1 < path.length) current += path[++index]
    else if (char === '.') {
      keys.push(current)
      current = ''
    } else current += char
  }
  keys.push(current)
  return keys
}

export function getPath(values: Values, keys: string[]): unknown {
  let node: unknown = values
  for (const key of keys) {
    if (!isMap(node)) return undefined
    node = node[key]
  }
  return node
}

export function setPath(root: Values, keys: string[], value: unknown): void {
  let node = root
  for (const key of keys.slice(0, -1)) {
    if (!isMap(node[key])) node[key] = {}
    node = node[key] as Values
  }
  node[keys.at(-1)!] = value
}

/** The repository part of a reference as written (before :tag and @digest). */
export function nameOf(reference: string): string {
  const withoutDigest = reference.split('@')[0]
  const colon = withoutDigest.lastIndexOf(':')
  return colon > withoutDigest.lastIndexOf('/') ? withoutDigest.slice(0, colon) : withoutDigest
}

/**
 * The value that makes `binding.path` render the image at its relocated location.
 *
 * The binding's value renders at the very start of the reference; its first `replace` characters
 * are the part that names the original location. They are replaced by whatever the relocated
 * repository needs in front of the rest of the name, which stays as the chart renders it.
 */
export function relocatedValue(refs: RefHelpers, binding: ValuesBinding, reference: string, target: Target): string {
  const relocated = refs.relocatedRepository(refs.parse(reference), target)
  const kept = nameOf(reference).slice(binding.replace)
  if (!relocated.endsWith(kept)) {
    throw new Error(`cannot relocate ${reference} through ${binding.path}: ${relocated} does not end with "${kept}"`)
  }
  return relocated.slice(0, relocated.length - kept.length) + binding.value.slice(binding.replace)
}

/**
 * How many leading characters of `value` (which renders at the start of `reference`) to replace so
 * the reference lands at its relocated location; undefined when no choice works.
 */
export function replaceLength(refs: RefHelpers, value: string, reference: string, probe: Target): number | undefined {
  const name = nameOf(reference)
  const relocated = refs.relocatedRepository(refs.parse(reference), probe)
  for (let length = 0; length <= Math.min(value.length, name.length); length++) {
    // Only whole path components are kept, so the value keeps its meaning (a registry stays a registry).
    const boundary = length === 0 || length === name.length || name[length] === '/' || name[length - 1] === '/'
    if (boundary && relocated.endsWith(name.slice(length))) return length
  }
  return undefined
}

/** The values file that relocates every image: each binding's path set to its relocated value. */
export function relocationValues(
  refs: RefHelpers,
  images: Array<{ref: string; values: ValuesBinding[]}>,
  target: Target,
  extra: Values = {},
): Values {
  let values: Values = {}
  for (const image of images) {
    for (const binding of image.values) setPath(values, splitPath(binding.path), relocatedValue(refs, binding, binding.ref ?? image.ref, target))
  }
  if (Object.keys(extra).length > 0) values = mergeValues(values, extra)
  return values
}
