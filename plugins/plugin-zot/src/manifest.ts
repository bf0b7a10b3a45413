/**
 * The zot bundle's manifest, kod-bundle.yaml (docs/zot.md): the fields every kod bundle has (apiVersion,
 * kind, bundleFormat, kodVersion, created, name, version: kod/sdk's bundles) and the zot bundle's own,
 * which say what each file is, so deploy-zot and a reader without kod know. Every file it names is also in
 * the bundle's SHA256SUMS, and the sha256 here is checked against the file as well.
 */
export const ZOT_BUNDLE_KIND = 'ZotBundle'

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

/** The zot bundle's own fields. */
export interface ZotBundleFields {
  binaries: BundledBinary[]
  /** The config template deploy-zot starts from (zot's JSON format, with kod's defaults). */
  config: BundledFile
  /** The systemd unit with the default settings, for review: deploy-zot renders it for its flags. */
  unit: BundledFile
}

const sha256 = {type: 'string', pattern: '^[0-9a-f]{64}$'}
const file = (path: string) => ({type: 'object', required: ['file', 'sha256'], additionalProperties: false, properties: {file: {const: path}, sha256}})

/** The JSON Schema (draft-07) of the zot bundle's own fields. */
export const zotBundleSchema = {
  properties: {
    binaries: {
      type: 'array',
      minItems: 1,
      maxItems: 2,
      items: {
        type: 'object',
        required: ['name', 'file', 'sha256', 'size'],
        additionalProperties: false,
        properties: {
          name: {enum: ['zot', 'zli']},
          file: {enum: [BUNDLE_FILES.zot, BUNDLE_FILES.zli]},
          sha256,
          size: {type: 'integer', minimum: 0},
          platform: {type: 'string', pattern: '^[a-z0-9]+/[a-z0-9]+$'},
          version: {type: 'string', minLength: 1},
          note: {type: 'string'},
          verify: {type: 'boolean'},
        },
      },
    },
    config: file(BUNDLE_FILES.config),
    unit: file(BUNDLE_FILES.unit),
  },
  required: ['binaries', 'config', 'unit'],
}

/** What the schema cannot say: zot is there, once, and each binary sits where its name says. */
export function zotBundleProblem(manifest: ZotBundleFields): string | undefined {
  const names = manifest.binaries.map((binary) => binary.name)
  if (!names.includes('zot')) return 'binaries holds no zot'
  if (new Set(names).size !== names.length) return 'a binary is listed twice'
  const misplaced = manifest.binaries.find((binary) => binary.file !== BUNDLE_FILES[binary.name])
  if (misplaced) return `binary ${misplaced.name} is at ${misplaced.file}, not ${BUNDLE_FILES[misplaced.name]}`
  const verifying = manifest.binaries.find((binary) => binary.verify !== undefined && binary.name !== 'zot')
  if (verifying) return `verify is said of ${verifying.name}; only zot has zot verify`
  return undefined
}

/** Every file the manifest names (SHA256SUMS must list each, and the bundle hold it). */
export function zotBundleFiles(manifest: ZotBundleFields): string[] {
  return [...manifest.binaries.map((binary) => binary.file), manifest.config.file, manifest.unit.file]
}

export function binaryOf(manifest: ZotBundleFields, name: BinaryName): BundledBinary | undefined {
  return manifest.binaries.find((binary) => binary.name === name)
}
