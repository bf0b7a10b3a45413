/**
 * The zot bundle's manifest (docs/zot.md): what package-zot put in the bundle, so deploy-zot and a reader
 * without kod know what each file is. Every file it names is also in the bundle's SHA256SUMS; the sha256
 * here is checked against the file as well.
 */
export const BUNDLE_KIND = 'kod.zot-bundle/v1'

/** Where each file sits in the bundle. */
export const BUNDLE_FILES = {
  zot: 'bin/zot',
  zli: 'bin/zli',
  config: 'zot/config.json',
  unit: 'zot/zot.service',
} as const

export type BinaryName = 'zot' | 'zli'

export interface BundledBinary {
  name: BinaryName
  /** Its path in the bundle. */
  file: string
  sha256: string
  size: number
  /** linux/amd64, …: from the ELF header; absent when the file is no ELF executable kod knows (see note). */
  platform?: string
  /** The version `<binary> -v` reported; absent when it reported none (a stand-in, or no answer within the time limit). */
  version?: string
  /** Why platform or version is absent. */
  note?: string
  /** zot only: whether `zot verify --help` answered, so deploy-zot runs `zot verify` on the config it writes. */
  verify?: boolean
}

export interface BundledFile {
  file: string
  sha256: string
}

export interface ZotBundleManifest {
  kind: typeof BUNDLE_KIND
  /** kod's version that wrote the bundle. */
  createdBy: string
  binaries: BundledBinary[]
  /** The config template deploy-zot starts from (zot's JSON format, with kod's defaults). */
  config: BundledFile
  /** The systemd unit with the default settings, for review: deploy-zot renders it for its flags. */
  unit: BundledFile
}

const SHA256 = /^[\da-f]{64}$/

/** The manifest's problems (one line each), or none. */
export function manifestProblems(data: unknown): string[] {
  const problems: string[] = []
  const record = data as Record<string, unknown> | null
  if (typeof record !== 'object' || record === null || Array.isArray(record)) return ['it is not a mapping']
  if (record.kind !== BUNDLE_KIND) problems.push(`kind is ${JSON.stringify(record.kind)}, not ${BUNDLE_KIND}`)
  if (typeof record.createdBy !== 'string') problems.push('createdBy is missing')
  const file = (value: unknown, at: string, expected: string): void => {
    const entry = value as Partial<BundledFile> | undefined
    if (typeof entry !== 'object' || entry === null) {
      problems.push(`${at} is missing`)
      return
    }
    if (entry.file !== expected) problems.push(`${at}.file is ${JSON.stringify(entry.file)}, not ${expected}`)
    if (typeof entry.sha256 !== 'string' || !SHA256.test(entry.sha256)) problems.push(`${at}.sha256 is no sha256`)
  }
  file(record.config, 'config', BUNDLE_FILES.config)
  file(record.unit, 'unit', BUNDLE_FILES.unit)
  if (!Array.isArray(record.binaries)) {
    problems.push('binaries is missing')
    return problems
  }
  const names = new Set<string>()
  record.binaries.forEach((value: unknown, index) => {
    const binary = value as Partial<BundledBinary>
    const at = `binaries[${index}]`
    if (binary?.name !== 'zot' && binary?.name !== 'zli') {
      problems.push(`${at}.name is ${JSON.stringify(binary?.name)}, not zot or zli`)
      return
    }
    if (names.has(binary.name)) problems.push(`${at}: ${binary.name} is listed twice`)
    names.add(binary.name)
    file(binary, at, BUNDLE_FILES[binary.name])
    if (!Number.isInteger(binary.size) || (binary.size as number) < 0) problems.push(`${at}.size is no byte count`)
    for (const key of ['platform', 'version', 'note'] as const) {
      if (binary[key] !== undefined && typeof binary[key] !== 'string') problems.push(`${at}.${key} is no string`)
    }
    if (binary.verify !== undefined && typeof binary.verify !== 'boolean') problems.push(`${at}.verify is not true or false`)
  })
  if (!names.has('zot')) problems.push('binaries holds no zot')
  return problems
}

export function binaryOf(manifest: ZotBundleManifest, name: BinaryName): BundledBinary | undefined {
  return manifest.binaries.find((binary) => binary.name === name)
}
