import {readFile} from 'node:fs/promises'
import path from 'node:path'

import {HelmfileError} from './errors.js'
import {exists, isMap, isRemote, parseDocuments, resolveFrom, templateReason} from './files.js'
import {glob} from './glob.js'
import {TEMPLATE_RELEASE_KEYS} from './keys.js'
import {locateHelmfile} from './locate.js'

/**
 * Whether reading this helmfile takes the helmfile binary: some file it reaches (itself, a base, a
 * sub-helmfile, an environment or release values file) is a Go template or holds a vals
 * reference, or a release uses a `…Template` key. The caller then runs
 * `helmfile build --embed-values` when the binary is on PATH, or reports readHelmfile's error.
 * Other problems are left for readHelmfile to report: this answers false for them.
 */
export async function needsHelmfileBinary(fileOrDir: string): Promise<boolean> {
  let file: string
  try {
    file = await locateHelmfile(fileOrDir)
  } catch (error) {
    return error instanceof HelmfileError && error.needsHelmfile
  }
  return visit(file, path.dirname(file), new Set())
}

async function textOf(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8')
  } catch {
    return undefined
  }
}

async function templated(file: string, braces: boolean): Promise<boolean> {
  if (file.endsWith('.gotmpl')) return true
  const text = await textOf(file)
  return text !== undefined && templateReason(file, text, braces) !== undefined
}

async function filesOf(dir: string, entries: unknown): Promise<string[]> {
  if (!Array.isArray(entries)) return []
  const out: string[] = []
  for (const e of entries) if (typeof e === 'string' && !isRemote(e)) out.push(...(await glob(resolveFrom(dir, e))))
  return out
}

/** `dir` is where relative paths resolve: the including helmfile's directory, also for its bases. */
async function visit(file: string, dir: string, seen: Set<string>): Promise<boolean> {
  if (seen.has(file)) return false
  seen.add(file)
  if (await templated(file, true)) return true
  const text = (await textOf(file)) ?? ''
  let docs: unknown[]
  try {
    docs = text.replaceAll('\r\n', '\n').split('\n---\n').flatMap((part) => parseDocuments(file, part))
  } catch {
    return false
  }
  for (const doc of docs) {
    if (!isMap(doc)) continue
    for (const base of await filesOf(dir, doc.bases)) if (await visit(base, dir, seen)) return true
    for (const f of await filesOf(dir, doc.values)) if (await templated(f, true)) return true
    for (const spec of isMap(doc.environments) ? Object.values(doc.environments) : []) {
      if (isMap(spec)) for (const f of await filesOf(dir, spec.values)) if (await templated(f, true)) return true
    }
    for (const release of Array.isArray(doc.releases) ? doc.releases : []) {
      if (!isMap(release)) continue
      if (Object.keys(release).some((k) => TEMPLATE_RELEASE_KEYS.has(k))) return true
      const prefix = typeof release.valuesPathPrefix === 'string' ? release.valuesPathPrefix : ''
      const values = Array.isArray(release.values) ? release.values.map((v) => (typeof v === 'string' ? prefix + v : v)) : []
      for (const f of await filesOf(dir, values)) if (await templated(f, false)) return true
    }
    for (const entry of Array.isArray(doc.helmfiles) ? doc.helmfiles : []) {
      const p = typeof entry === 'string' ? entry : isMap(entry) && typeof entry.path === 'string' ? entry.path : undefined
      for (const m of await filesOf(dir, p === undefined ? [] : [p])) {
        const subs = (await exists(m)) === 'dir' ? await glob(path.join(m, '*.y*ml*')) : [m]
        for (const s of subs) if (await visit(s, path.dirname(s), seen)) return true
      }
    }
  }
  return false
}
