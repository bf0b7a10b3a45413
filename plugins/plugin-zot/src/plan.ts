import {applySettings, stringifyConfig, type ZotConfig, type ZotSettings} from './config.js'
import {PATHS, SERVICE_NAME, ZOT_GROUP, ZOT_USER} from './layout.js'
import {type Owned, renderSysusers, renderTmpfiles, renderUnit} from './unit.js'

/**
 * What deploy-zot installs, as data (docs/zot.md): the files with their owners and modes, in the order
 * they are installed, then the commands that make the service run. Pure: the command turns it into host
 * steps, run or printed.
 */
export interface InstallRequest {
  settings: ZotSettings
  /** The bundle holds zli. */
  zli: boolean
  /** Start the service (not --no-start). */
  start: boolean
}

/** Where an installed file's content comes from. */
export type Source =
  | {kind: 'bundle'; file: string}
  | {kind: 'generated'; name: string; content: string}
  | {kind: 'given'; flag: '--htpasswd' | '--tls-cert' | '--tls-key'; file: string}

export interface InstallFile extends Owned {
  source: Source
  what: string
}

export interface InstallDirectory extends Owned {
  directory: true
  what: string
  /** An existing directory is kept as it is (its mode and owner too) rather than changed. */
  keepExisting?: boolean
}

export type ServiceStep =
  | {kind: 'useradd'; user: string; group: string; home: string}
  | {kind: 'systemctl'; args: string[]}

export interface InstallPlan {
  config: ZotConfig
  configText: string
  unitText: string
  directories: InstallDirectory[]
  files: InstallFile[]
  /** Before the files: the user. */
  before: ServiceStep[]
  /** After the files: systemd. */
  after: ServiceStep[]
}

const root = (path: string, mode: number, what: string, keepExisting = false): InstallDirectory => ({path, mode, user: 'root', group: 'root', directory: true, what, ...(keepExisting ? {keepExisting} : {})})

/**
 * The plan for a template and settings. `given` holds the user's --htpasswd and --tls-cert/--tls-key files
 * (already checked); `bundleFiles` the bundle's binaries.
 */
export function planInstall(template: ZotConfig, request: InstallRequest, given: {htpasswd?: string; tlsCert?: string; tlsKey?: string}): InstallPlan {
  const {settings} = request
  const config = applySettings(template, {
    address: settings.address,
    port: settings.port,
    storage: settings.storage,
    ...(given.tlsCert && given.tlsKey ? {tls: {cert: PATHS.tlsCert, key: PATHS.tlsKey}} : {}),
    ...(given.htpasswd ? {htpasswd: PATHS.htpasswd} : {}),
  })
  const configText = stringifyConfig(config)
  const unitText = renderUnit({binary: PATHS.zot, config: PATHS.config, storage: settings.storage, port: settings.port})

  const directories: InstallDirectory[] = [
    root('/usr/local/bin', 0o755, 'binaries', true),
    {path: PATHS.configDir, mode: 0o750, user: 'root', group: ZOT_GROUP, directory: true, what: "zot's configuration"},
    ...(given.tlsCert ? [{path: PATHS.tlsDir, mode: 0o750, user: 'root', group: ZOT_GROUP, directory: true as const, what: "zot's certificate and key"}] : []),
    {path: settings.storage, mode: 0o750, user: ZOT_USER, group: ZOT_GROUP, directory: true, what: "zot's storage (the only directory zot may write)"},
    root('/etc/systemd/system', 0o755, 'systemd units', true),
    root('/usr/lib/sysusers.d', 0o755, 'systemd-sysusers entries', true),
    root('/usr/lib/tmpfiles.d', 0o755, 'systemd-tmpfiles entries', true),
  ]
  const zotReads = (path: string, mode: number, source: Source, what: string): InstallFile => ({path, mode, user: 'root', group: ZOT_GROUP, source, what})
  const files: InstallFile[] = [
    {path: PATHS.zot, mode: 0o755, user: 'root', group: 'root', source: {kind: 'bundle', file: 'bin/zot'}, what: 'zot'},
    ...(request.zli ? [{path: PATHS.zli, mode: 0o755, user: 'root', group: 'root', source: {kind: 'bundle', file: 'bin/zli'} as Source, what: 'zli'}] : []),
    zotReads(PATHS.config, 0o640, {kind: 'generated', name: 'config.json', content: configText}, "zot's config"),
    ...(given.htpasswd ? [zotReads(PATHS.htpasswd, 0o640, {kind: 'given', flag: '--htpasswd', file: given.htpasswd}, 'htpasswd (bcrypt)')] : []),
    ...(given.tlsCert ? [zotReads(PATHS.tlsCert, 0o644, {kind: 'given', flag: '--tls-cert', file: given.tlsCert}, 'TLS certificate')] : []),
    ...(given.tlsKey ? [zotReads(PATHS.tlsKey, 0o640, {kind: 'given', flag: '--tls-key', file: given.tlsKey}, 'TLS private key')] : []),
    {path: PATHS.unit, mode: 0o644, user: 'root', group: 'root', source: {kind: 'generated', name: SERVICE_NAME, content: unitText}, what: 'systemd unit'},
  ]
  // The owners kod sets on a host, said again for systemd at boot (what makes an image built with --root right).
  const zotOwned: Owned[] = [...directories, ...files].filter((entry) => entry.user === ZOT_USER || entry.group === ZOT_GROUP)
  files.push(
    {path: PATHS.sysusers, mode: 0o644, user: 'root', group: 'root', source: {kind: 'generated', name: 'kod-zot.sysusers.conf', content: renderSysusers(settings.storage)}, what: "systemd-sysusers entry for zot's user"},
    {path: PATHS.tmpfiles, mode: 0o644, user: 'root', group: 'root', source: {kind: 'generated', name: 'kod-zot.tmpfiles.conf', content: renderTmpfiles(zotOwned)}, what: "systemd-tmpfiles entry for zot's owners"},
  )
  return {
    config,
    configText,
    unitText,
    directories,
    files,
    before: [{kind: 'useradd', user: ZOT_USER, group: ZOT_GROUP, home: settings.storage}],
    after: [{kind: 'systemctl', args: ['daemon-reload']}, ...(request.start ? [{kind: 'systemctl' as const, args: ['enable', '--now', SERVICE_NAME]}] : [])],
  }
}

/** The useradd that makes zot's user: a system user with its own group, no login, no home directory made. */
export function useraddArgs(step: {user: string; home: string}): string[] {
  return ['useradd', '--system', '--user-group', '--home-dir', step.home, '--no-create-home', '--shell', '/usr/sbin/nologin', '--comment', 'zot OCI registry', step.user]
}
