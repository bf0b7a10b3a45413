import {readFile} from 'node:fs/promises'
import YAML from 'yaml'

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

/** One step of a values path: a map key, or an index into a list. */
export type PathKey = string | number

/**
 * A values path as written in the manifest: keys joined by ".", list indices as "[n]" after their key
 * (sidecars[0].image); ".", "[" and "\\" inside a key are escaped with "\\".
 */
export function joinPath(keys: PathKey[]): string {
  let path = ''
  for (const key of keys) {
    if (typeof key === 'number') path += `[${key}]`
    else path += `${path ? '.' : ''}${key.replaceAll(/[\\.[]/g, '\\$&')}`
  }
  return path
}

export function splitPath(path: string): PathKey[] {
  const keys: PathKey[] = []
  let current = ''
  let pending = false
  for (let index = 0; index < path.length; index++) {
    const char = path[index]
    if (char === '\\' && index + 1 < path.length) {
      current += path[++index]
      pending = true
    } else if (char === '.') {
      if (pending || current) keys.push(current)
      current = ''
      pending = false
    } else if (char === '[') {
      if (pending || current) keys.push(current)
      const end = path.indexOf(']', index)
      keys.push(Number(path.slice(index + 1, end)))
      index = end
      current = ''
      pending = false
    } else {
      current += char
      pending = true
    }
  }
  if (pending || current) keys.push(current)
  return keys
}

export function getPath(values: unknown, keys: PathKey[]): unknown {
  let node: unknown = values
  for (const key of keys) {
    if (typeof key === 'number' ? !Array.isArray(node) : !isMap(node)) return undefined
    node = (node as Record<string | number, unknown>)[key]
  }
  return node
}

/**
 * Sets a value at a path. Helm replaces lists wholesale, so a path into a list first copies the whole
 * list from `source` (the effective values) and changes the one element.
 */
export function setPath(root: Values, keys: PathKey[], value: unknown, source?: Values): void {
  let node: Values | unknown[] = root
  for (const [index, key] of keys.slice(0, -1).entries()) {
    const nextIsIndex = typeof keys[index + 1] === 'number'
    const container = node as Record<string | number, unknown>
    if (nextIsIndex && !Array.isArray(container[key])) {
      const original = source ? getPath(source, keys.slice(0, index + 1)) : undefined
      container[key] = Array.isArray(original) ? structuredClone(original) : []
    } else if (!nextIsIndex && !isMap(container[key])) {
      container[key] = {}
    }
    node = container[key] as Values | unknown[]
  }
  ;(node as Record<string | number, unknown>)[keys.at(-1)!] = value
}

/** The repository part of a reference as written (before :tag and @digest). */
export function nameOf(reference: string): string {
  const withoutDigest = reference.split('@')[0]
  const colon = withoutDigest.lastIndexOf(':')
  return colon > withoutDigest.lastIndexOf('/') ? withoutDigest.slice(0, colon) : withoutDigest
}

/** Whether a reference carries a tag or a digest after its name (`registry.local:5000/app` does not). */
export function hasTagOrDigest(reference: string): boolean {
  return reference.length > nameOf(reference).length
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

/**
 * The values file that relocates every image: each binding's path set to its relocated value. `lists`
 * holds the lists (by path) that bindings point into, as the chart had them: they are written whole.
 */
export function relocationValues(
  refs: RefHelpers,
  images: Array<{ref: string; values: ValuesBinding[]}>,
  target: Target,
  extra: Values = {},
  lists: Values = {},
): Values {
  let values: Values = {}
  const source: Values = {}
  for (const [path, list] of Object.entries(lists)) setPath(source, splitPath(path), list)
  for (const image of images) {
    for (const binding of image.values) {
      setPath(values, splitPath(binding.path), relocatedValue(refs, binding, binding.ref ?? image.ref, target), source)
    }
  }
  if (Object.keys(extra).length > 0) values = mergeValues(values, extra)
  return values
}

/** Bad input from a library: an Error with `exit: 2`, which kod reports as a usage error. */
export function badInput(message: string): Error {
  return Object.assign(new Error(message), {exit: 2})
}

/**
 * What is wrong with a YAML text, on one line with its line and column, or undefined when it parses.
 * Duplicate keys are allowed, as helm allows them in values (the last one wins).
 */
export function yamlProblem(text: string): string | undefined {
  return problemIn(YAML.parseAllDocuments(text, {uniqueKeys: false}))
}

function problemIn(documents: ReturnType<typeof YAML.parseAllDocuments>): string | undefined {
  for (const document of documents) {
    const [error] = document.errors
    if (error) return error.message.split('\n')[0].replace(/:\s*$/, '')
  }
  return undefined
}

/** A values file as helm reads it (its first document); a bad one is bad input naming the file, line and column. */
export async function readValuesYaml(file: string, what = 'values file'): Promise<unknown> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'EISDIR') throw badInput(`${what} ${file} is a directory: give a YAML file`)
    if (code === 'ENOENT') throw badInput(`${what} not found: ${file}`)
    throw badInput(`cannot read ${what} ${file} (${code ?? String(error)})`)
  }
  // Parsed once: checked, then read.
  const documents = YAML.parseAllDocuments(text, {uniqueKeys: false})
  const problem = problemIn(documents)
  if (problem) throw badInput(`${what} ${file} is not valid YAML: ${problem}`)
  return documents[0]?.toJS() as unknown
}
