import {Ajv} from 'ajv'
import type {KeyObject} from 'node:crypto'
import {readFile, stat} from 'node:fs/promises'
import path from 'node:path'
import YAML from 'yaml'

import {packageError, usageError} from './errors.js'
import {
  ArchiveVerifier,
  type ArchiveFormat,
  type ArchiveHead,
  BUNDLE_MANIFEST_FILE,
  extractArchiveAs,
  MANIFEST_FILE,
  readArchiveHeadAs,
  SUMS_FILE,
  verifyArchiveAs,
  verifyDirectoryAs,
  writeArchive,
} from './kodpkg.js'
import {schemaProblem} from './schemas.js'
import {checkSignature, SIGNATURE_FILE} from './signing.js'
import {sweepPartialFiles} from './leftovers.js'

/**
 * Bundles (docs/plugins.md, "Bundles"): what a plugin carries across the air gap that is not a Helm
 * package — tools, a registry — in the archive format of packages (docs/kodpkg.md): a plain tar whose
 * first entry is the manifest, kod-bundle.yaml, then SHA256SUMS (every other file's sha256), then
 * SHA256SUMS.sig when signed (Ed25519 over SHA256SUMS, docs/security.md), then the files. Read with the
 * same rules as a package (ArchiveVerifier: every entry listed and matching, plain files and directories
 * only, bounded names, no special permission bits), and `tar xf` / `sha256sum -c SHA256SUMS` / openssl
 * check one without kod. Files keep their permission bits, so executables stay executable.
 */
export {BUNDLE_MANIFEST_FILE} from './kodpkg.js'

export const BUNDLE_API_VERSION = 'kod.dev/v1'
/** The version of the bundle format this kod writes and reads. */
export const BUNDLE_FORMAT = 1

/** kod-bundle.yaml: the fields every bundle has; a bundle kind adds its own. */
export interface BundleManifest {
  apiVersion: typeof BUNDLE_API_VERSION
  /** The bundle kind (e.g. ToolsBundle), which says what the rest of the manifest holds and what deploys it. */
  kind: string
  bundleFormat: typeof BUNDLE_FORMAT
  /** The kod that wrote it. */
  kodVersion: string
  /** ISO 8601 time of writing. */
  created: string
  name: string
  version: string
}

/** A JSON Schema (draft-07) fragment: a bundle kind's own fields. */
export interface BundleSchema {
  properties: Record<string, unknown>
  required?: string[]
  definitions?: Record<string, unknown>
}

/** What a plugin declares about its bundles. */
export interface BundleKind<M extends BundleManifest = BundleManifest> {
  /** kind: in kod-bundle.yaml. */
  kind: string
  /** Its own fields; unknown fields are refused, as in a package's manifest. */
  schema: BundleSchema
  /** The files the manifest names, which SHA256SUMS must list (and the bundle hold). */
  files(manifest: M): string[]
  /** Checks the schema cannot express (files named twice, …): a message naming the problem, or undefined. */
  check?(manifest: M): string | undefined
  /** The command that deploys it (for the message when it is given where something else belongs): "kod deploy-tools". */
  deployedBy: string
}

const COMMON_PROPERTIES = {
  apiVersion: {const: BUNDLE_API_VERSION},
  kind: {type: 'string', minLength: 1},
  bundleFormat: {const: BUNDLE_FORMAT},
  kodVersion: {type: 'string', minLength: 1},
  created: {type: 'string', minLength: 1},
  name: {type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$'},
  version: {type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._+-]*$'},
}

const ajv = new Ajv({allErrors: true})
const validators = new WeakMap<BundleKind<never>, ReturnType<typeof ajv.compile>>()

/** The full JSON Schema of a kind's kod-bundle.yaml: the common fields and the kind's own, nothing else. */
export function bundleManifestSchema(kind: BundleKind<never>): Record<string, unknown> {
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    type: 'object',
    required: [...Object.keys(COMMON_PROPERTIES), ...(kind.schema.required ?? [])],
    properties: {...kind.schema.properties, ...COMMON_PROPERTIES, kind: {const: kind.kind}},
    additionalProperties: false,
    ...(kind.schema.definitions ? {definitions: kind.schema.definitions} : {}),
  }
}

function validatorOf(kind: BundleKind<never>): ReturnType<typeof ajv.compile> {
  let validate = validators.get(kind)
  if (!validate) {
    validate = ajv.compile(bundleManifestSchema(kind))
    validators.set(kind, validate)
  }
  return validate
}

/** Reads kod-bundle.yaml as `kind` says it must be (exit 5 naming `origin` and the problem otherwise). */
export function parseBundleManifest<M extends BundleManifest>(kind: BundleKind<M>, text: string, origin: string): M {
  let data: unknown
  try {
    data = YAML.parse(text)
  } catch (error) {
    throw packageError(`${origin}: ${BUNDLE_MANIFEST_FILE} is not valid YAML (${(error as Error).message.split('\n')[0]})`)
  }
  const header = (data ?? {}) as Partial<BundleManifest>
  if (typeof header.bundleFormat === 'number' && header.bundleFormat !== BUNDLE_FORMAT) {
    throw packageError(`${origin}: bundle format ${header.bundleFormat} is not supported by this kod (reads format ${BUNDLE_FORMAT}); use a matching kod version`)
  }
  if (typeof header.kind === 'string' && header.kind !== kind.kind) {
    // A bundle of another kind is no damage: the user gave it to the wrong command.
    throw usageError(`${origin} is a ${header.kind} bundle, not a ${kind.kind}: give it to the command that deploys ${header.kind} bundles`)
  }
  const validate = validatorOf(kind as BundleKind<never>)
  if (!validate(data)) throw packageError(`${origin}: ${BUNDLE_MANIFEST_FILE} is invalid: ${schemaProblem(validate.errors)}`)
  const manifest = data as M
  const problem = kind.check?.(manifest)
  if (problem) throw packageError(`${origin}: ${BUNDLE_MANIFEST_FILE} is invalid: ${problem}`)
  return manifest
}

/** The archive format of a bundle kind, for kodpkg's readers. */
export function bundleFormat<M extends BundleManifest>(kind: BundleKind<M>): ArchiveFormat<M> {
  return {
    manifestFile: BUNDLE_MANIFEST_FILE,
    noun: 'bundle',
    parse: (text, origin) => parseBundleManifest(kind, text, origin),
    verifier: (origin, manifest, sums, options) => new ArchiveVerifier(origin, sums, {...options, manifestFile: BUNDLE_MANIFEST_FILE, noun: 'bundle', covered: [BUNDLE_MANIFEST_FILE, ...kind.files(manifest)]}),
    otherwise(found, input) {
      if (found.first === MANIFEST_FILE) return `it is a kod package (${MANIFEST_FILE}), not a bundle: inspect it with kod inspect -c ${input}, deploy it with kod deploy`
      if (found.chart) return `it is a Helm chart${found.directory ? ' directory' : ` archive (${found.chart})`}: package it with kod package -c ${input}`
      return undefined
    },
  }
}

/**
 * Writes a bundle: `staging` holds its files (their modes kept); kod-bundle.yaml (the manifest, checked
 * against its kind first), SHA256SUMS and, with a key, SHA256SUMS.sig are written beside them, then
 * everything is tarred into `outFile`, which appears only when complete.
 */
export async function writeBundle<M extends BundleManifest>(
  kind: BundleKind<M>,
  staging: string,
  manifest: M,
  outFile: string,
  options: {signal?: AbortSignal; signingKey?: KeyObject} = {},
): Promise<{files: number; bytes: number}> {
  const text = YAML.stringify(manifest, {lineWidth: 0})
  // What this kod writes, it must read back.
  parseBundleManifest(kind, text, 'internal: the bundle kod is writing')
  // What a bundle run killed outright was writing here goes first (as package does before writing).
  await sweepPartialFiles(path.dirname(outFile))
  return writeArchive(staging, {manifestFile: BUNDLE_MANIFEST_FILE, manifestText: text}, outFile, options.signal, options.signingKey)
}

/** The head of a bundle archive: its manifest, the checksums and the signature, recognised by content. */
export async function readBundleHead<M extends BundleManifest>(kind: BundleKind<M>, file: string, signal?: AbortSignal): Promise<ArchiveHead<M>> {
  return readArchiveHeadAs(bundleFormat(kind), file, signal)
}

export interface OpenedBundle<M extends BundleManifest> {
  manifest: M
  /** The verified bundle directory: `input` itself when it was a directory, else where it was extracted. */
  dir: string
  /** How many files and bytes were verified, when read as an archive. */
  files?: number
  bytes?: number
}

/** --verify-key, before anything else: SHA256SUMS of the head (or of the directory) must be signed with the key. */
async function checkBundleSignature(input: string, isDirectory: boolean, head: ArchiveHead<BundleManifest> | undefined, key: KeyObject): Promise<void> {
  if (isDirectory) {
    const read = (file: string): Promise<Buffer | undefined> => readFile(path.join(input, file)).catch(() => undefined)
    checkSignature(await read(SUMS_FILE), await read(SIGNATURE_FILE), key, input, 'bundle')
    return
  }
  checkSignature(head?.sumsBytes, head?.signature, key, input, 'bundle')
}

/**
 * Verifies a bundle — a file, or a directory it was unpacked into (`tar xf`) — against its checksums and
 * (with `verifyKey`) its signature first, refusing it (exit 5, naming the first bad entry) otherwise.
 * A file is extracted into `into` (which must not exist; it appears only complete and verified, files
 * with their modes) when given, else only verified as it streams. A directory is verified where it is.
 */
export async function openBundle<M extends BundleManifest>(
  kind: BundleKind<M>,
  input: string,
  options: {
    into?: string
    verifyKey?: KeyObject
    signal?: AbortSignal
    /** The file's head when the caller read it already (readBundleHead): the rest is verified against that very SHA256SUMS. */
    head?: ArchiveHead<M>
  } = {},
): Promise<OpenedBundle<M>> {
  const info = await stat(input).catch(() => undefined)
  if (!info) throw usageError(`bundle not found: ${input}`)
  const format = bundleFormat(kind)
  if (info.isDirectory()) {
    if (options.verifyKey) await checkBundleSignature(input, true, undefined, options.verifyKey)
    const manifest = await verifyDirectoryAs(format, input, options.signal)
    return {manifest, dir: input}
  }
  const head = options.head ?? (await readArchiveHeadAs(format, input, options.signal))
  if (options.verifyKey) await checkBundleSignature(input, false, head, options.verifyKey)
  if (options.into) {
    const manifest = await extractArchiveAs(format, input, options.into, options.signal, head, true)
    return {manifest, dir: options.into, bytes: info.size}
  }
  const summary = await verifyArchiveAs(format, input, options.signal, head)
  return {manifest: summary.manifest, dir: input, files: summary.files, bytes: summary.bytes}
}
