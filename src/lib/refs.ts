import type {ImageRef, RefHelpers, Target} from '../api.js'
import {usageError} from './errors.js'

/**
 * Image references, parsed the way the distribution reference grammar and Docker resolve them:
 * a first component with a dot or a port, or "localhost", is a registry host; otherwise Docker Hub,
 * where single-component names live under library/.
 */
const DIGEST = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-fA-F0-9]{32,}$/
const TAG = /^\w[\w.-]{0,127}$/
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/
const HOST = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::\d+)?$|^\[[0-9a-fA-F:]+\](?::\d+)?$/

export const DOCKER_HUB = 'docker.io'

export function parseRef(reference: string): ImageRef {
  const input = reference.trim()
  if (!input || /\s/.test(input)) throw usageError(`invalid image reference "${reference}"`)
  let rest = input
  let digest: string | undefined
  const at = rest.indexOf('@')
  if (at !== -1) {
    digest = rest.slice(at + 1)
    rest = rest.slice(0, at)
    if (!DIGEST.test(digest)) throw usageError(`invalid digest in image reference "${reference}"`)
  }
  let tag: string | undefined
  const colon = rest.lastIndexOf(':')
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1)
    rest = rest.slice(0, colon)
    if (!TAG.test(tag)) throw usageError(`invalid tag in image reference "${reference}"`)
  }
  let host = DOCKER_HUB
  let path = rest
  const slash = rest.indexOf('/')
  if (slash !== -1) {
    const first = rest.slice(0, slash)
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase()) {
      host = first
      path = rest.slice(slash + 1)
    }
  }
  if (host === 'index.docker.io' || host === 'registry-1.docker.io') host = DOCKER_HUB
  if (host === DOCKER_HUB && !path.includes('/')) path = `library/${path}`
  if (!HOST.test(host) || !path.split('/').every((component) => PATH_COMPONENT.test(component))) {
    throw usageError(`invalid image reference "${reference}"`)
  }
  return {host, path, tag, digest}
}

export function formatRef(ref: ImageRef): string {
  return `${ref.host}/${ref.path}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`
}

export function normalizeRef(reference: string): string {
  const ref = parseRef(reference)
  if (!ref.tag && !ref.digest) ref.tag = 'latest'
  return formatRef(ref)
}

/** A registry host as one valid repository path component: lower case, ":" → "-", IPv6 brackets dropped. */
/** Same image, however spelled (nginx, docker.io/library/nginx:latest); unparsable ones compare as written. */
export function sameImage(a: string, b: string): boolean {
  const canonical = (ref: string): string => {
    try {
      return normalizeRef(ref)
    } catch {
      return ref
    }
  }
  return canonical(a) === canonical(b)
}

export function hostComponent(host: string): string {
  return host
    .toLowerCase()
    .replaceAll(/[[\]]/g, '')
    .replaceAll(':', '-')
    .replace(/^[^a-z0-9]+/, '')
    .replace(/[^a-z0-9]+$/, '')
}

export function relocatedRepository(ref: ImageRef, target: Pick<Target, 'registry' | 'prefix'>): string {
  return [target.registry, target.prefix, hostComponent(ref.host), ref.path].filter(Boolean).join('/')
}

export function isValidRepositoryPath(path: string): boolean {
  return path.split('/').every((component) => PATH_COMPONENT.test(component))
}

export const refHelpers: RefHelpers = {
  parse: parseRef,
  normalize: normalizeRef,
  format: formatRef,
  relocatedRepository,
}
