import type {ImageRef, RefHelpers, Target, ValuesBinding} from 'kod'

/**
 * Which values set which image, and the values that relocate it.
 *
 * Candidates are read from the chart's effective values (values.yaml merged with the -f files): a
 * string under a key named like "image", or a map with a "repository" key (plus optional "registry",
 * "tag", "digest"). Each candidate is composed into the reference(s) it would render to — the tag
 * defaulting to the chart's appVersion — and matched against the images the chart really renders.
 */
export type Values = Record<string, unknown>

export function isMap(value: unknown): value is Values {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Helm's merge of values files: maps merge key by key, a null deletes, anything else replaces. */
export function mergeValues(base: Values, override: Values): Values {
  const merged: Values = {...base}
  for (const [key, value] of Object.entries(override)) {
    if (value === null) delete merged[key]
    else if (isMap(value) && isMap(merged[key])) merged[key] = mergeValues(merged[key] as Values, value)
    else merged[key] = value
  }
  return merged
}

const IMAGE_KEY = /image$/i
const SCALAR = (value: unknown): string | undefined =>
  typeof value === 'string' ? value.trim() : typeof value === 'number' ? String(value) : undefined

export interface Candidate {
  binding: ValuesBinding
  /** Normalised references this candidate can render to. */
  renders: string[]
}

function tryNormalize(refs: RefHelpers, reference: string): string | undefined {
  try {
    return refs.normalize(reference)
  } catch {
    return undefined
  }
}

function mapCandidate(refs: RefHelpers, node: Values, path: string, appVersion: string | undefined): Candidate | undefined {
  const repository = SCALAR(node.repository)
  if (!repository) return undefined
  const registry = SCALAR(node.registry)
  const tag = SCALAR(node.tag)
  const digest = SCALAR(node.digest)
  const keys: NonNullable<ValuesBinding['keys']> = {repository: 'repository'}
  if ('registry' in node) keys.registry = 'registry'
  if ('tag' in node) keys.tag = 'tag'
  if ('digest' in node) keys.digest = 'digest'
  const name = registry ? `${registry}/${repository}` : repository
  // An empty tag usually means "the chart's appVersion", sometimes with a "v" in front.
  const tags = tag ? [tag] : appVersion ? [appVersion, `v${appVersion.replace(/^v/, '')}`] : []
  const forms = new Set<string>()
  for (const candidateTag of [...tags, undefined]) {
    for (const candidateDigest of digest ? [digest, undefined] : [undefined]) {
      const suffix = `${candidateTag ? `:${candidateTag}` : ''}${candidateDigest ? `@${candidateDigest}` : ''}`
      const normalized = tryNormalize(refs, `${name}${suffix}`)
      if (normalized) forms.add(normalized)
    }
  }
  return forms.size > 0 ? {binding: {path, form: 'map', keys}, renders: [...forms]} : undefined
}

/** Every place in the values that could set an image. */
export function findCandidates(refs: RefHelpers, values: Values, appVersion?: string): Candidate[] {
  const found: Candidate[] = []
  const walk = (node: Values, prefix: string): void => {
    for (const [key, value] of Object.entries(node)) {
      const path = prefix ? `${prefix}.${key}` : key
      if (typeof value === 'string' && IMAGE_KEY.test(key) && value.trim()) {
        const normalized = tryNormalize(refs, value)
        if (normalized) found.push({binding: {path, form: 'string'}, renders: [normalized]})
      } else if (isMap(value)) {
        const candidate = mapCandidate(refs, value, path, appVersion)
        if (candidate) found.push(candidate)
        walk(value, path)
      }
    }
  }
  walk(values, '')
  return found
}

/** The values bindings that produce a rendered reference. */
export function bindingsFor(refs: RefHelpers, candidates: Candidate[], rendered: string): ValuesBinding[] {
  const normalized = tryNormalize(refs, rendered)
  if (!normalized) return []
  return candidates.filter((candidate) => candidate.renders.includes(normalized)).map((candidate) => candidate.binding)
}

function setPath(root: Values, path: string, key: string | undefined, value: string): void {
  const parts = key ? [...path.split('.'), key] : path.split('.')
  let node = root
  for (const part of parts.slice(0, -1)) {
    if (!isMap(node[part])) node[part] = {}
    node = node[part] as Values
  }
  node[parts.at(-1)!] = value
}

/** Adds to `values` what points one image, set through `binding`, at the target registry. */
export function relocate(refs: RefHelpers, values: Values, binding: ValuesBinding, ref: ImageRef, target: Target): void {
  const repository = refs.relocatedRepository(ref, target)
  if (binding.form === 'string') {
    setPath(values, binding.path, undefined, `${repository}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`)
    return
  }
  const keys = binding.keys!
  if (keys.registry) {
    setPath(values, binding.path, keys.registry, target.registry)
    setPath(values, binding.path, keys.repository, repository.slice(target.registry.length + 1))
  } else {
    setPath(values, binding.path, keys.repository, repository)
  }
}
