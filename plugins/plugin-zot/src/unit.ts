import {PATHS, SAFE_PATH, ZOT_GROUP, ZOT_USER} from './layout.js'

export interface UnitSettings {
  /** The installed zot binary. */
  binary: string
  /** The installed config. */
  config: string
  /** The storage directory: the only path zot may write. */
  storage: string
  /** zot's port: one below 1024 needs CAP_NET_BIND_SERVICE, which the unit then grants and nothing else. */
  port: number
}

export const DEFAULT_UNIT: UnitSettings = {binary: PATHS.zot, config: PATHS.config, storage: '/var/lib/zot', port: 5000}

/**
 * How many files zot may keep open: the value of zot's own example unit (examples/zot.service of
 * project-zot/zot). Every blob of every image being pushed or pulled is an open file.
 */
export const LIMIT_NOFILE = 500_000

/**
 * The hardened systemd unit deploy-zot installs as /etc/systemd/system/zot.service (docs/zot.md): zot runs
 * as its own user, cannot gain privileges, sees the file system read-only except its storage directory,
 * has its own /tmp, no home directories and no devices, and holds no capability (CAP_NET_BIND_SERVICE only
 * for a port below 1024).
 */
export function renderUnit(settings: UnitSettings): string {
  for (const [name, value] of Object.entries({binary: settings.binary, config: settings.config, storage: settings.storage})) {
    if (!SAFE_PATH.test(value)) throw new Error(`unit ${name} path ${JSON.stringify(value)} needs quoting, which kod does not write`)
  }
  const privileged = settings.port < 1024
  return [
    '# Installed by kod deploy-zot (docs/zot.md). Runs the zot OCI registry as its own user, hardened.',
    '[Unit]',
    'Description=zot OCI registry (kod)',
    'Documentation=https://zotregistry.dev',
    'Wants=network-online.target',
    'After=network-online.target',
    '',
    '[Service]',
    'Type=simple',
    `User=${ZOT_USER}`,
    `Group=${ZOT_GROUP}`,
    `ExecStart=${settings.binary} serve ${settings.config}`,
    'Restart=on-failure',
    'RestartSec=5s',
    `LimitNOFILE=${LIMIT_NOFILE}`,
    'UMask=0027',
    'NoNewPrivileges=yes',
    'ProtectSystem=strict',
    `ReadWritePaths=${settings.storage}`,
    'ProtectHome=yes',
    'PrivateTmp=yes',
    'PrivateDevices=yes',
    'ProtectKernelTunables=yes',
    'ProtectKernelModules=yes',
    'ProtectKernelLogs=yes',
    'ProtectControlGroups=yes',
    'ProtectClock=yes',
    'ProtectHostname=yes',
    'RestrictSUIDSGID=yes',
    'RestrictRealtime=yes',
    'RestrictNamespaces=yes',
    'LockPersonality=yes',
    'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK',
    ...(privileged ? ['CapabilityBoundingSet=CAP_NET_BIND_SERVICE', 'AmbientCapabilities=CAP_NET_BIND_SERVICE'] : ['CapabilityBoundingSet=']),
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n')
}

/**
 * A systemd-sysusers entry for zot's user and group: with --root (an image being built) the user cannot be
 * made with useradd, and systemd creates it at boot from this file instead. On a host kod runs useradd,
 * which this entry then finds done.
 */
export function renderSysusers(storage: string): string {
  return [
    '# Installed by kod deploy-zot (docs/zot.md): the zot registry user, made at boot if missing.',
    `u ${ZOT_USER} - "zot OCI registry" ${storage} /usr/sbin/nologin`,
    '',
  ].join('\n')
}

/** A file or directory deploy-zot installs, with the owner and mode it gets. */
export interface Owned {
  path: string
  mode: number
  user: string
  group: string
  directory?: boolean
}

/**
 * A systemd-tmpfiles entry that creates the storage directory owned by zot and gives the files zot reads
 * their group and mode: at boot, after systemd-sysusers, in an image built with --root; on a host, where
 * kod sets the owners itself, it changes nothing.
 */
export function renderTmpfiles(entries: Owned[]): string {
  const mode = (entry: Owned) => entry.mode.toString(8).padStart(4, '0')
  return [
    '# Installed by kod deploy-zot (docs/zot.md): zot owns its storage and reads its config.',
    ...entries.map((entry) => `${entry.directory && entry.user === ZOT_USER ? 'd' : 'z'} ${entry.path} ${mode(entry)} ${entry.user} ${entry.group} -`),
    '',
  ].join('\n')
}
