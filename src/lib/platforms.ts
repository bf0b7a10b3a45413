import {endianness} from 'node:os'

import {usageError} from './errors.js'

/**
 * Platform selection for `kod package` (docs/kodpkg.md, "Platforms"): which platforms of a
 * multi-platform image (an OCI image index or a Docker manifest list) the package keeps.
 */
export interface Platform {
  os: string
  architecture: string
  variant?: string
}

/** What kod package keeps: every platform, or these (from --platform, or the packaging host's by default). */
export type PlatformChoice = {all: true} | {all?: false; platforms: Platform[]; fromHost: boolean}

/** Architecture names other tools use, as OCI spells them (uname -m, Debian). */
const ARCHITECTURE_ALIASES: Record<string, Platform['architecture'] | [string, string]> = {
  x86_64: 'amd64',
  'x86-64': 'amd64',
  x64: 'amd64',
  aarch64: 'arm64',
  armhf: ['arm', 'v7'],
  armel: ['arm', 'v6'],
  i386: '386',
  i686: '386',
  ppc64el: 'ppc64le',
}

const COMPONENT = /^[a-z0-9][a-z0-9._-]*$/

export function formatPlatform(platform: Platform): string {
  return [platform.os, platform.architecture, platform.variant].filter(Boolean).join('/')
}

/** Operating systems images are built for (GOOS values): a --platform of one of these alone lacks its architecture. */
const KNOWN_OS = new Set(['linux', 'windows', 'darwin', 'freebsd', 'netbsd', 'openbsd', 'solaris', 'illumos', 'aix', 'plan9'])

/** `os/arch[/variant]` as --platform takes it (linux/amd64, linux/arm64/v8, linux/arm/v7); a bad one is a usage error. */
export function parsePlatform(spec: string): Platform {
  const parts = spec.trim().toLowerCase().split('/')
  const bad = (why: string): Error => usageError(`--platform ${spec}: ${why}; use os/arch[/variant], e.g. linux/amd64, linux/arm64 or linux/arm/v7`)
  if (parts.length === 1 && KNOWN_OS.has(parts[0])) throw bad(`no architecture given (${parts[0]}/${hostPlatform().architecture}?)`)
  if (parts.length === 1 && COMPONENT.test(parts[0])) throw bad(`no operating system given (linux/${parts[0]}?)`)
  if (parts.length < 2 || parts.length > 3 || !parts.every((part) => COMPONENT.test(part))) throw bad('not a platform')
  const [os, given, variant] = parts
  const alias = ARCHITECTURE_ALIASES[given]
  if (Array.isArray(alias)) {
    if (variant && variant !== alias[1]) throw bad(`${given} is ${alias[0]}/${alias[1]}`)
    return {os, architecture: alias[0], variant: alias[1]}
  }
  return {os, architecture: alias ?? given, ...(variant ? {variant} : {})}
}

/** The variant a platform has when it names none (OCI's image-index spec and containerd's defaults). */
function canonicalVariant(platform: Platform): string | undefined {
  const variant = platform.variant || undefined
  if (platform.architecture === 'arm64') return variant === 'v8' ? undefined : variant
  if (platform.architecture === 'arm') return variant ?? 'v7'
  if (platform.architecture === 'amd64') return variant === 'v1' ? undefined : variant
  return variant
}

/**
 * Whether an image built for `offered` serves a request for `wanted`: same os and architecture; a
 * requested variant must match too (arm64 is arm64/v8, arm is arm/v7, amd64 is amd64/v1 when no
 * variant is written); no requested variant takes every variant of that os and architecture.
 */
export function platformMatches(wanted: Platform, offered: Platform): boolean {
  if (wanted.os !== offered.os.toLowerCase() || wanted.architecture !== offered.architecture.toLowerCase()) return false
  return wanted.variant === undefined || canonicalVariant(wanted) === canonicalVariant({...offered, variant: offered.variant?.toLowerCase()})
}

/**
 * The packaging host's platform in OCI's names, the default when neither --platform nor --all-platforms
 * is given: Node's process.arch mapped (x64 → amd64, ia32 → 386, arm → arm/v7 or the ARM version Node
 * was built for, …). The os is linux unless this is Windows: container images for a Mac are Linux images.
 */
export function hostPlatform(
  arch: string = process.arch,
  os: string = process.platform,
  armVersion: unknown = (process.config.variables as Record<string, unknown>).arm_version,
  littleEndian = endianness() === 'LE',
): Platform {
  const platformOs = os === 'win32' ? 'windows' : 'linux'
  const names: Record<string, string> = {
    x64: 'amd64',
    ia32: '386',
    arm64: 'arm64',
    ppc64: littleEndian ? 'ppc64le' : 'ppc64',
    s390x: 's390x',
    riscv64: 'riscv64',
    loong64: 'loong64',
    mips: 'mips',
    mipsel: 'mipsle',
    mips64el: 'mips64le',
  }
  if (arch === 'arm') {
    const version = Number(armVersion)
    return {os: platformOs, architecture: 'arm', variant: Number.isInteger(version) && version >= 5 && version <= 8 ? `v${version}` : 'v7'}
  }
  return {os: platformOs, architecture: names[arch] ?? arch}
}

/** The choice the package flags make: --all-platforms, the --platform list (duplicates dropped), or the host's. */
export function platformChoice(specs: readonly string[] | undefined, all: boolean | undefined, host: Platform = hostPlatform()): PlatformChoice {
  if (all && specs?.length) throw usageError('--all-platforms keeps every platform: give it or --platform, not both')
  if (all) return {all: true}
  if (!specs?.length) return {platforms: [host], fromHost: true}
  const platforms: Platform[] = []
  for (const platform of specs.map((spec) => parsePlatform(spec))) {
    if (!platforms.some((known) => formatPlatform(known) === formatPlatform(platform))) platforms.push(platform)
  }
  return {platforms, fromHost: false}
}

/** The choice as the manifest records it: `all`, or the platforms. */
export function recordedPlatforms(choice: PlatformChoice): string[] | 'all' {
  return choice.all ? 'all' : choice.platforms.map((platform) => formatPlatform(platform))
}

/** An entry of an image index (manifest list). */
export interface IndexEntry {
  mediaType?: string
  digest: string
  size: number
  platform?: {os?: string; architecture?: string; variant?: string; [key: string]: unknown}
  annotations?: Record<string, string>
  [key: string]: unknown
}

/** BuildKit's attestation manifests sit in the index as platform unknown/unknown, naming the manifest they describe. */
const REFERENCE_TYPE = 'vnd.docker.reference.type'
const REFERENCE_DIGEST = 'vnd.docker.reference.digest'

function entryPlatform(entry: IndexEntry): Platform | undefined {
  const {os, architecture, variant} = entry.platform ?? {}
  if (typeof os !== 'string' || typeof architecture !== 'string' || !os || !architecture) return undefined
  if (os === 'unknown' && architecture === 'unknown') return undefined
  return {os, architecture, ...(typeof variant === 'string' && variant ? {variant} : {})}
}

/** What a platform choice keeps of one image index. */
export interface IndexSelection {
  /** The entries kept, in the index's order: matching platforms, attestations of those, entries of no platform. */
  kept: IndexEntry[]
  /** Platforms of the index that are kept and dropped, as os/arch[/variant]. */
  keptPlatforms: string[]
  droppedPlatforms: string[]
  /** Every platform the index offers. */
  available: string[]
}

/**
 * Which entries of an index a choice of platforms keeps. Entries for a platform are kept when a wanted
 * platform matches; an attestation (platform unknown/unknown with vnd.docker.reference.digest) follows
 * the manifest it describes; an entry that names no platform is kept. Undefined when the index names no
 * platform at all (nothing to choose from: it is kept whole).
 */
export function selectPlatforms(entries: readonly IndexEntry[], wanted: readonly Platform[]): IndexSelection | undefined {
  const available = entries.map((entry) => entryPlatform(entry)).filter((platform): platform is Platform => platform !== undefined)
  if (available.length === 0) return undefined
  const keep = new Set<IndexEntry>()
  for (const entry of entries) {
    const platform = entryPlatform(entry)
    if (platform && wanted.some((want) => platformMatches(want, platform))) keep.add(entry)
  }
  const keptDigests = new Set([...keep].map((entry) => entry.digest))
  for (const entry of entries) {
    if (entryPlatform(entry)) continue
    const describes = entry.annotations?.[REFERENCE_DIGEST]
    if (entry.annotations?.[REFERENCE_TYPE] === 'attestation-manifest' || describes) {
      if (describes && keptDigests.has(describes)) keep.add(entry)
    } else {
      keep.add(entry)
    }
  }
  const kept = entries.filter((entry) => keep.has(entry))
  const platformsOf = (list: readonly IndexEntry[]): string[] => [
    ...new Set(list.map((entry) => entryPlatform(entry)).filter((platform): platform is Platform => platform !== undefined).map((platform) => formatPlatform(platform))),
  ]
  const keptPlatforms = platformsOf(kept)
  return {
    kept,
    keptPlatforms,
    droppedPlatforms: platformsOf(entries.filter((entry) => !keep.has(entry))).filter((platform) => !keptPlatforms.includes(platform)),
    available: platformsOf(entries),
  }
}

/** The one-line refusal of an image none of whose platforms was asked for. */
export function noPlatformMessage(ref: string, available: readonly string[], wanted: readonly Platform[], fromHost: boolean): string {
  const asked = wanted.map((platform) => formatPlatform(platform)).join(', ')
  return `${ref} has no image for ${asked}${fromHost ? " (this machine's platform, the default)" : ''}: it is built for ${available.join(', ')}; choose with --platform ${available[0]} (repeatable), or keep every platform with --all-platforms`
}

/** A platform as kod records it (os/arch[/variant]), read back without aliases. */
export function platformOf(recorded: string): Platform {
  const [os = '', architecture = '', variant] = recorded.split('/')
  return {os, architecture, ...(variant ? {variant} : {})}
}

/** Whether any of `offered` (as recorded, os/arch[/variant]) serves one of the wanted platforms. */
export function servesAny(offered: readonly string[], wanted: readonly Platform[]): boolean {
  return offered.some((platform) => wanted.some((want) => platformMatches(want, platformOf(platform))))
}
