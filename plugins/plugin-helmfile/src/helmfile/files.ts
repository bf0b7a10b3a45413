import {readFile, stat} from 'node:fs/promises'
import path from 'node:path'
import YAML from 'yaml'

import {needsHelmfile, refuse} from './errors.js'

/**
 * Reading the files a helmfile refers to. Every file goes through `templateReason` first: helmfile
 * renders `.gotmpl` files as Go templates and resolves `ref+…://` secrets with vals, and kod does
 * neither, so such a file is refused here (the caller may then use the helmfile binary).
 */

export type Doc = Record<string, unknown>

export const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** A vals reference (`ref+vault://…`, `ref+awssecrets://…`) that helmfile resolves at run time. */
const VALS_REF = /ref\+[a-z0-9]+:\/\//i

/** Why the helmfile binary is needed to read this file as helmfile would, or undefined. */
export function templateReason(file: string, text: string, braces = true): string | undefined {
  if (file.endsWith('.gotmpl')) return 'it is a Go template (.gotmpl)'
  if (braces && text.includes('{{')) return 'it contains "{{" (a Go template; helmfile v1 renders only .gotmpl files, so it probably wants the .gotmpl extension)'
  if (VALS_REF.test(text)) return 'it contains a vals reference (ref+…://) that helmfile resolves at run time'
  return undefined
}

/** Read a file the helmfile names, refusing templates. */
export async function readText(file: string, what: string, braces = true): Promise<string> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    refuse(file, code === 'ENOENT' ? `${what} does not exist` : `cannot read ${what} (${code ?? String(error)})`)
  }
  const reason = templateReason(file, text, braces)
  if (reason) needsHelmfile(file, reason)
  return text
}

export function parseDocuments(file: string, text: string): unknown[] {
  // helmfile's YAML (go-yaml v3) honours merge keys and refuses duplicate keys; so does this.
  const docs = YAML.parseAllDocuments(text, {merge: true, uniqueKeys: true})
  const out: unknown[] = []
  for (const doc of docs) {
    if (doc.errors.length > 0) refuse(file, `not valid YAML: ${doc.errors[0].message.split('\n')[0]}`)
    out.push(doc.toJS({maxAliasCount: 10_000}))
  }
  return out
}

/**
 * A helmfile read as helmfile v1 reads it: split into parts on lines that are exactly `---`
 * (pkg/app/desired_state_file_loader.go `load`), each part then decoded document by document and
 * the documents merged with appended lists (pkg/state/create.go `Parse`, mergo.WithAppendSlice).
 */
export async function readHelmfileParts(file: string): Promise<Doc[]> {
  const text = (await readText(file, 'helmfile')).replaceAll('\r\n', '\n')
  return text.split('\n---\n').map((part) => {
    const merged: Doc = {}
    for (const doc of parseDocuments(file, part)) {
      if (doc === null || doc === undefined) continue
      if (!isMap(doc)) refuse(file, 'a helmfile document must be a YAML map')
      for (const [key, value] of Object.entries(doc)) {
        const before = merged[key]
        if (Array.isArray(before) && Array.isArray(value)) merged[key] = [...before, ...value]
        else if (isMap(before) && isMap(value)) merged[key] = {...before, ...value}
        else if (value !== null && value !== undefined) merged[key] = value
      }
    }
    return merged
  })
}

/** A values file: a YAML map (an empty file is an empty map). */
export async function readValuesFile(file: string, what: string): Promise<Record<string, unknown>> {
  const docs = parseDocuments(file, await readText(file, what))
  const first = docs.find((d) => d !== null && d !== undefined) ?? {}
  if (!isMap(first)) refuse(file, `${what} must be a YAML map`)
  return first
}

export async function exists(p: string): Promise<'file' | 'dir' | undefined> {
  try {
    const s = await stat(p)
    return s.isDirectory() ? 'dir' : 'file'
  } catch {
    return undefined
  }
}

/** Remote references helmfile fetches with go-getter (`git::`, `s3::`, `https://…`): kod reads only local files. */
export function isRemote(ref: string): boolean {
  return /^[a-z0-9]+::/i.test(ref) || /^[a-z][a-z0-9+.-]*:\/\//i.test(ref)
}

/** Relative to the helmfile's directory, as helmfile's Storage.normalizePath does. */
export const resolveFrom = (dir: string, p: string): string => (path.isAbsolute(p) ? p : path.join(dir, p))
