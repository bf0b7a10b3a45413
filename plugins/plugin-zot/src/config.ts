import net from 'node:net'

import {DEFAULT_ADDRESS, DEFAULT_PORT, DEFAULT_STORAGE} from './layout.js'

/**
 * zot's configuration file, in zot's documented format (examples/README.md and examples/config-*.json of
 * project-zot/zot; the Go structures in pkg/api/config/config.go). Only the parts kod writes are typed;
 * docs/zot.md says why each value is what it is.
 */
export interface ZotConfig {
  distSpecVersion: string
  storage: ZotStorage
  http: ZotHttp
  log: {level: ZotLogLevel; output?: string; audit?: string}
  [key: string]: unknown
}

export interface ZotStorage {
  rootDirectory: string
  dedupe?: boolean
  gc?: boolean
  gcDelay?: string
  gcInterval?: string
  retention?: ZotRetention
  [key: string]: unknown
}

export interface ZotRetention {
  dryRun?: boolean
  delay?: string
  policies?: ZotRetentionPolicy[]
}

export interface ZotRetentionPolicy {
  repositories: string[]
  deleteReferrers?: boolean
  deleteUntagged?: boolean
  keepTags?: Array<{patterns?: string[]; pulledWithin?: string; pushedWithin?: string; mostRecentlyPushedCount?: number; mostRecentlyPulledCount?: number}>
  keepUntagged?: {pulledWithin?: string; pushedWithin?: string; mostRecentlyPushedCount?: number; mostRecentlyPulledCount?: number}
}

export interface ZotHttp {
  address: string
  /** A string in zot's format ("8080"), not a number. */
  port: string
  realm?: string
  tls?: {cert: string; key: string; cacert?: string}
  auth?: {htpasswd?: {path: string}; failDelay?: number; [key: string]: unknown}
  [key: string]: unknown
}

export type ZotLogLevel = 'debug' | 'info' | 'warn' | 'error'

/**
 * The distribution-spec version zot 2.x declares in every example config. zot only warns when a config
 * says another one, and then uses its own (examples/README.md, "Top-level Configuration Map").
 */
export const DIST_SPEC_VERSION = '1.1.1'

/**
 * The retention policy kod writes: every repository (`**`) matches it, it deletes no untagged manifest and
 * no referrer, and it keeps every tag. Since zot 2.1.9, garbage collection (on by default) also deletes
 * untagged manifests older than the retention delay when no policy says otherwise; a policy that matches
 * a repository and sets deleteUntagged to false turns that off for the repository (docs/zot.md).
 */
export const KEEP_EVERYTHING: ZotRetentionPolicy = {
  repositories: ['**'],
  deleteReferrers: false,
  deleteUntagged: false,
  keepTags: [{patterns: ['.*']}],
}

/** What deploy-zot sets in the config; the rest comes from the bundle's template. */
export interface ZotSettings {
  address: string
  port: number
  storage: string
  /** The installed certificate and key (both or neither). */
  tls?: {cert: string; key: string}
  /** The installed htpasswd file. */
  htpasswd?: string
}

export const DEFAULT_SETTINGS: ZotSettings = {address: DEFAULT_ADDRESS, port: DEFAULT_PORT, storage: DEFAULT_STORAGE}

/**
 * The config template package-zot puts in the bundle: the defaults deploy-zot starts from. Garbage
 * collection stays on, so blobs no manifest references any more (a deleted image's layers) are removed
 * after gcDelay, while the retention policy keeps every manifest, tagged or not.
 */
export function configTemplate(settings: ZotSettings = DEFAULT_SETTINGS): ZotConfig {
  return applySettings(
    {
      distSpecVersion: DIST_SPEC_VERSION,
      storage: {
        rootDirectory: settings.storage,
        dedupe: true,
        gc: true,
        gcDelay: '1h',
        retention: {dryRun: false, delay: '24h', policies: [structuredClone(KEEP_EVERYTHING)]},
      },
      http: {address: settings.address, port: String(settings.port)},
      log: {level: 'info'},
    },
    settings,
  )
}

/**
 * The template with deploy-zot's settings applied: address, port, storage directory, TLS and htpasswd.
 * TLS and htpasswd are removed when not given, so a template never points zot at files kod did not install.
 */
export function applySettings(template: ZotConfig, settings: ZotSettings): ZotConfig {
  const config = structuredClone(template)
  config.storage.rootDirectory = settings.storage
  const http: ZotHttp = {...config.http, address: settings.address, port: String(settings.port)}
  delete http.tls
  if (settings.tls) http.tls = {cert: settings.tls.cert, key: settings.tls.key}
  const auth = {...(http.auth ?? {})}
  delete auth.htpasswd
  if (settings.htpasswd) auth.htpasswd = {path: settings.htpasswd}
  if (Object.keys(auth).length > 0) http.auth = auth
  else delete http.auth
  config.http = http
  return config
}

/** The config as zot reads it: JSON, two-space indented, with a final newline. */
export function stringifyConfig(config: ZotConfig): string {
  return `${JSON.stringify(config, null, 2)}\n`
}

/** What is wrong with --address, or undefined: an IPv4 or IPv6 address, or a host name. */
export function addressProblem(address: string): string | undefined {
  if (net.isIP(address) !== 0) return undefined
  if (/^[a-z\d](?:[a-z\d-]{0,61}[a-z\d])?(?:\.[a-z\d](?:[a-z\d-]{0,61}[a-z\d])?)*$/i.test(address) && address.length <= 253) return undefined
  return `--address ${JSON.stringify(address)} is no IP address or host name: give the address zot listens on, e.g. 0.0.0.0 (every IPv4 address), :: or 10.0.0.5`
}

/** What is wrong with --port, or undefined. */
export function portProblem(port: number): string | undefined {
  if (Number.isInteger(port) && port >= 1 && port <= 65_535) return undefined
  return `--port ${port} is out of range: give a TCP port from 1 to 65535`
}

// --- checking a config against zot's documented format ------------------------------------------------

type Check = (value: unknown, at: string, problems: string[]) => void

const GO_DURATION = /^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$/

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)

const str: Check = (value, at, problems) => {
  if (typeof value !== 'string') problems.push(`${at} must be a string`)
}
const bool: Check = (value, at, problems) => {
  if (typeof value !== 'boolean') problems.push(`${at} must be true or false`)
}
const int: Check = (value, at, problems) => {
  if (!Number.isInteger(value)) problems.push(`${at} must be an integer`)
}
const duration: Check = (value, at, problems) => {
  if (typeof value !== 'string' || !GO_DURATION.test(value)) problems.push(`${at} must be a Go duration such as "24h" or "90m"`)
}
const absolutePath: Check = (value, at, problems) => {
  if (typeof value !== 'string' || !value.startsWith('/')) problems.push(`${at} must be an absolute path`)
}
const strings: Check = (value, at, problems) => {
  if (!Array.isArray(value) || value.some((item) => typeof item !== 'string')) problems.push(`${at} must be a list of strings`)
}
const oneOf =
  (...allowed: string[]): Check =>
  (value, at, problems) => {
    if (typeof value !== 'string' || !allowed.includes(value)) problems.push(`${at} must be one of ${allowed.join(', ')}`)
  }
const port: Check = (value, at, problems) => {
  if (typeof value !== 'string' || !/^\d{1,5}$/.test(value) || Number(value) < 1 || Number(value) > 65_535) problems.push(`${at} must be a port number in a string, e.g. "5000"`)
}
/** Any JSON value: the parts of zot's format kod does not write (extensions, accessControl, …) are left to zot verify. */
const any: Check = () => {}

function object(fields: Record<string, Check>, required: string[] = []): Check {
  return (value, at, problems) => {
    if (!isObject(value)) {
      problems.push(`${at} must be an object`)
      return
    }
    for (const key of required) if (!(key in value)) problems.push(`${at}.${key} is missing`)
    for (const [key, item] of Object.entries(value)) {
      // zot reads its config with viper, whose keys are case-insensitive.
      const known = Object.keys(fields).find((name) => name.toLowerCase() === key.toLowerCase())
      if (known === undefined) problems.push(`${at}.${key} is not a key zot knows here`)
      else fields[known](item, `${at}.${key}`, problems)
    }
  }
}

function list(item: Check): Check {
  return (value, at, problems) => {
    if (!Array.isArray(value)) {
      problems.push(`${at} must be a list`)
      return
    }
    value.forEach((entry, index) => item(entry, `${at}[${index}]`, problems))
  }
}

const keepRules = {pulledWithin: duration, pushedWithin: duration, mostRecentlyPushedCount: int, mostRecentlyPulledCount: int}

const retention = object({
  dryRun: bool,
  delay: duration,
  policies: list(
    object(
      {
        repositories: strings,
        deleteReferrers: bool,
        deleteUntagged: bool,
        keepTags: list(object({patterns: strings, ...keepRules})),
        keepUntagged: object(keepRules),
      },
      ['repositories'],
    ),
  ),
})

const storageFields = {
  rootDirectory: absolutePath,
  dedupe: bool,
  gc: bool,
  gcDelay: duration,
  gcInterval: duration,
  gcTimeWindow: str,
  commit: bool,
  remoteCache: bool,
  redirectBlobURL: bool,
  maxRepos: int,
  retention,
  storageDriver: any,
  cacheDriver: any,
}

/**
 * The top-level keys and the storage, http and log keys of zot's documented format, with their types.
 * Sections kod never writes (extensions, scheduler, cluster, http.accessControl, …) are accepted as they
 * are: zot verify checks them when the bundle's zot answers it.
 */
const configCheck = object(
  {
    distSpecVersion: str,
    storage: object({...storageFields, subPaths: any, fastRestart: bool}, ['rootDirectory']),
    http: object(
      {
        address: str,
        externalURL: str,
        port,
        realm: str,
        allowOrigin: str,
        readTimeout: duration,
        writeTimeout: duration,
        tls: object({cert: absolutePath, key: absolutePath, cacert: absolutePath}, ['cert', 'key']),
        auth: object({htpasswd: object({path: absolutePath}, ['path']), failDelay: int, ldap: any, bearer: any, openid: any, apikey: bool, sessionKeysFile: str, sessionDriver: any, mtls: any, sessionHashKey: str, sessionEncryptKey: str}),
        accessControl: any,
        ratelimit: any,
        compat: any,
      },
      ['address', 'port'],
    ),
    log: object({level: oneOf('debug', 'info', 'warn', 'error'), output: absolutePath, audit: absolutePath}),
    extensions: any,
    scheduler: any,
    cluster: any,
  },
  ['distSpecVersion', 'storage', 'http'],
)

/** Every way a config departs from zot's documented format (keys and types), as `config.<path> …` lines. */
export function configProblems(config: unknown): string[] {
  const problems: string[] = []
  configCheck(config, 'config', problems)
  return problems
}

/**
 * Whether zot, run with this config, keeps every untagged manifest: garbage collection off, or every
 * retention policy (zot applies the first whose repositories match) says deleteUntagged: false and one of
 * them matches every repository (`**`). A policy that does not say deleteUntagged deletes them: zot
 * defaults it to true.
 */
export function keepsUntagged(config: ZotConfig): boolean {
  const {storage} = config
  if (storage.gc === false) return true
  const policies = storage.retention?.policies ?? []
  if (policies.length === 0) return false
  return policies.every((policy) => policy.deleteUntagged === false) && policies.some((policy) => policy.repositories.includes('**'))
}

/** configProblems, and the one thing kod insists on beyond zot's format: no untagged manifest is ever deleted. */
export function checkConfig(config: unknown): string[] {
  const problems = configProblems(config)
  if (problems.length === 0 && !keepsUntagged(config as ZotConfig)) {
    problems.push('config.storage.retention would let zot garbage-collect untagged manifests: kod needs a policy for "**" with "deleteUntagged": false (or "gc": false)')
  }
  const subPaths = (config as {storage?: {subPaths?: unknown}}).storage?.subPaths
  if (problems.length === 0 && subPaths !== undefined) problems.push('config.storage.subPaths: kod does not write or check sub-path storage; remove it from the template')
  return problems
}
