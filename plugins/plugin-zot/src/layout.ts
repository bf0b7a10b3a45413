import path from 'node:path'

/**
 * Where deploy-zot installs zot on a host (docs/zot.md). These are the real paths, written into the
 * config and the unit; with --root DIR the files land at DIR/<path>, the contents unchanged.
 */
export const ZOT_USER = 'zot'
export const ZOT_GROUP = 'zot'
export const SERVICE_NAME = 'zot.service'

export const DEFAULT_ADDRESS = '0.0.0.0'
export const DEFAULT_PORT = 5000
export const DEFAULT_STORAGE = '/var/lib/zot'

export const PATHS = {
  zot: '/usr/local/bin/zot',
  zli: '/usr/local/bin/zli',
  configDir: '/etc/zot',
  config: '/etc/zot/config.json',
  htpasswd: '/etc/zot/htpasswd',
  tlsCert: '/etc/zot/tls/server.crt',
  tlsKey: '/etc/zot/tls/server.key',
  tlsDir: '/etc/zot/tls',
  unit: '/etc/systemd/system/zot.service',
  /** systemd-sysusers and systemd-tmpfiles entries: they make an image built with --root create the user and fix owners at boot. */
  sysusers: '/usr/lib/sysusers.d/kod-zot.conf',
  tmpfiles: '/usr/lib/tmpfiles.d/kod-zot.conf',
} as const

/** A path of the host as written below --root (or itself without it). */
export function underRoot(root: string | undefined, hostPath: string): string {
  return root === undefined ? hostPath : path.join(root, hostPath)
}

/**
 * Paths systemd and zot read as they are: kod allows only these characters in the paths it writes into the
 * unit (no spaces, quotes, `%` specifiers or `$` expansions) so that no quoting is needed anywhere.
 */
export const SAFE_PATH = /^\/[\w./+-]*$/

/** Directories that must not hold the registry's storage: the system's own, or those ProtectHome= hides. */
const FORBIDDEN_STORAGE = ['/bin', '/boot', '/dev', '/etc', '/lib', '/lib64', '/proc', '/run', '/sbin', '/sys', '/usr', '/tmp', '/var/tmp']
const HIDDEN_BY_PROTECT_HOME = ['/home', '/root', '/run/user']

/** What is wrong with a --storage directory, or undefined. */
export function storageProblem(dir: string): string | undefined {
  if (!path.isAbsolute(dir)) return `--storage ${dir} is not an absolute path: give the directory zot keeps its images in, e.g. ${DEFAULT_STORAGE}`
  if (!SAFE_PATH.test(dir)) return `--storage ${JSON.stringify(dir)} has characters kod does not write into a systemd unit (only letters, digits and . _ + - /): choose a plain path`
  const normal = path.normalize(dir).replace(/\/+$/, '')
  if (normal === '' || normal === '/') return '--storage / would make the whole file system writable for zot: give a directory of its own, e.g. /var/lib/zot'
  if (normal.split('/').includes('..')) return `--storage ${dir} has .. in it: give the directory's plain absolute path`
  const hidden = HIDDEN_BY_PROTECT_HOME.find((top) => normal === top || normal.startsWith(`${top}/`))
  if (hidden) return `--storage ${dir} is below ${hidden}, which the unit's ProtectHome=yes hides from zot: choose a directory elsewhere, e.g. /var/lib/zot or /srv/zot`
  const system = FORBIDDEN_STORAGE.find((top) => normal === top || normal.startsWith(`${top}/`))
  if (system) return `--storage ${dir} is below ${system}, a system directory: choose a directory of its own, e.g. /var/lib/zot or /srv/zot`
  if (normal === '/var' || normal === '/var/lib' || normal === '/srv' || normal === '/opt') return `--storage ${dir} is a shared system directory: give zot a directory of its own below it, e.g. ${normal}/zot`
  return undefined
}

/** The storage directory as written into the config and the unit. */
export function normalStorage(dir: string): string {
  return path.normalize(dir).replace(/(.)\/+$/, '$1')
}
