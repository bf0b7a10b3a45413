import type {Target} from '../api.js'
import {usageError} from './errors.js'
import {isValidRepositoryPath, parseRef} from './refs.js'

export const DEFAULT_PREFIX = 'kod'

export interface TargetFlags {
  registry: string
  prefix?: string
  plainHttp?: boolean
  insecureSkipTlsVerify?: boolean
}

/**
 * The -r registry: host[:port][/path], with an optional http:// or https:// scheme and trailing slash.
 * http:// implies --plain-http.
 */
export function parseTarget(flags: TargetFlags): Target {
  let value = flags.registry.trim()
  let plainHttp = Boolean(flags.plainHttp)
  const shown = redactUserinfo(flags.registry)
  if (/^([a-z]+:\/\/)?[^/@]*@/i.test(value)) {
    throw usageError(`-r ${shown}: credentials do not belong in the registry address: give them with --registry-username USER --registry-password-stdin, or log in with skopeo login and helm registry login`)
  }
  const scheme = /^([a-z]+):\/\//i.exec(value)
  if (scheme) {
    const name = scheme[1].toLowerCase()
    if (name === 'http') {
      if (flags.insecureSkipTlsVerify) throw usageError(`-r ${shown} is plain HTTP, which has no TLS to verify: drop --insecure-skip-tls-verify`)
      plainHttp = true
    } else if (name === 'https') {
      if (flags.plainHttp) throw usageError(`-r ${shown} says https://, --plain-http says plain HTTP: keep one`)
    } else {
      throw usageError(`-r ${shown}: use host[:port][/path], optionally with http:// or https://`)
    }
    value = value.slice(scheme[0].length)
  }
  value = value.replace(/\/+$/, '')
  const port = /^[^/]*:(\d+)(?:\/|$)/.exec(value)?.[1]
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65_535)) throw usageError(`-r ${shown}: port ${port} is out of range (1-65535); use host[:port][/path], e.g. registry.local:5000`)
  try {
    // A registry is valid when an image can be named below it.
    const probe = parseRef(`${value}/kod-probe:tag`)
    if (probe.host === 'docker.io' && !value.startsWith('docker.io')) throw new Error('no host')
  } catch {
    throw usageError(`-r ${shown} is not a registry address: use host[:port][/path], e.g. registry.local:5000`)
  }
  const prefix = (flags.prefix ?? DEFAULT_PREFIX).replace(/^\/+|\/+$/g, '')
  if (prefix && !isValidRepositoryPath(prefix)) {
    throw usageError(`--prefix ${flags.prefix}: use lower-case path components like "kod" or "team/mirror"`)
  }
  return {registry: value, prefix, plainHttp, insecureSkipTlsVerify: Boolean(flags.insecureSkipTlsVerify)}
}

/** An address as it may be printed: any user:password@ replaced by ***@. */
export function redactUserinfo(address: string): string {
  return address.replace(/^([a-z]+:\/\/)?[^/@]*@/i, '$1***@')
}

/** True when kod should talk to this registry without verified TLS. */
export function isInsecure(target: Target): boolean {
  return target.plainHttp || target.insecureSkipTlsVerify
}
