import type {ValidateFunction} from 'ajv'
import {createHash, type KeyObject, randomBytes} from 'node:crypto'
import {setMaxListeners} from 'node:events'
import {createReadStream} from 'node:fs'
import {type FileHandle, lstat, mkdir, open, readdir, readFile, rename, rm, stat, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {pipeline} from 'node:stream/promises'
import * as tar from 'tar'
import YAML from 'yaml'

import type {PackagedImage, PackageManifest, UnitImage} from '../api.js'
import {makeDirectories} from './bounds.js'
import {ExitCode, KodError, messageOf, packageError, usageError} from './errors.js'
import {blobLinks, type BlobLinks, type LayoutBlob, layoutProblem, REF_NAME} from './oci.js'
import {schemaProblem} from './schemas.js'
import {SIGNATURE_FILE, signSums} from './signing.js'
import {unitValuesFileName} from './units.js'
import {validatorFor} from './vendor/validators.js'

/**
 * The .kodpkg format (docs/kodpkg.md): a plain tar archive holding kod-package.yaml (first),
 * SHA256SUMS, charts/, values/, hints/ and images/ (one OCI image layout for all images). Readers
 * recognise it by that content, never by the file's name.
 */
export const FORMAT_VERSION = 4
/** Formats this kod reads: 1 and 2 (one chart, read as one unit), 3 (units) and 4 (units; images accepted as external). */
export const READABLE_FORMATS: readonly number[] = [1, 2, 3, 4]
export const MANIFEST_FILE = 'kod-package.yaml'
export const SUMS_FILE = 'SHA256SUMS'
/** A detached signature over SHA256SUMS: the one file besides SHA256SUMS that SHA256SUMS cannot list. */
export {SIGNATURE_FILE} from './signing.js'
export const IMAGES_DIR = 'images'
export const EXTENSION = '.kodpkg'

export function packageBaseName(name: string, version: string): string {
  return `kod-${name}-${version}`
}

/** Each schema's validation function (ahead-of-time code once built, see vendor/validators.ts). */
const validateManifest = (): ValidateFunction<PackageManifest> => validatorFor('manifest') as ValidateFunction<PackageManifest>
const legacyValidator = (): ValidateFunction<LegacyManifest> => validatorFor('legacyManifest') as ValidateFunction<LegacyManifest>

/** kod-package.yaml in format 1 or 2: one chart, its package-time values and its images at the top level. */
interface LegacyManifest extends Omit<PackageManifest, 'formatVersion' | 'units' | 'images'> {
  formatVersion: 1 | 2
  values: string[]
  images: Array<Omit<PackagedImage, 'units'> & Omit<UnitImage, 'name' | 'ref'>>
}

/** A format-1 or -2 manifest as formats 3 and 4 say it: one unit, named after the chart, holding the values and bindings. */
export function upgradeManifest(legacy: LegacyManifest): PackageManifest {
  const {values, images, sourceData, ...rest} = legacy
  const [chart] = legacy.charts
  if (!chart) throw packageError(`${MANIFEST_FILE} names no chart`)
  const id = chart.name
  return {
    ...rest,
    units: [
      {
        id,
        release: id,
        chart: chart.file,
        values,
        installed: true,
        needs: [],
        images: images.map(({ref, name, values: bindings, foundIn, note}) => ({name, ref, values: bindings, foundIn, ...(note ? {note} : {})})),
        ...(sourceData ? {data: sourceData} : {}),
      },
    ],
    images: images.map(({ref, name, layoutName, digest, platforms}) => ({ref, name, ...(layoutName ? {layoutName} : {}), digest, platforms, units: [id]})),
  }
}

/** Reads kod-package.yaml of any format this kod knows, validated against its format's schema, in format 3's shape. */
export function parseManifest(text: string, origin: string): PackageManifest {
  let data: unknown
  try {
    data = YAML.parse(text)
  } catch (error) {
    throw packageError(`${origin}: ${MANIFEST_FILE} is not valid YAML (${(error as Error).message.split('\n')[0]})`)
  }
  const version = (data as {formatVersion?: unknown} | null)?.formatVersion
  if (typeof version === 'number' && !READABLE_FORMATS.includes(version)) {
    throw packageError(`${origin}: package format ${version} is not supported by this kod (reads formats ${READABLE_FORMATS.join(', ')}); use a matching kod version`)
  }
  const legacy = version === 1 || version === 2
  const check = legacy ? legacyValidator() : validateManifest()
  if (!check(data)) throw packageError(`${origin}: ${MANIFEST_FILE} is invalid: ${schemaProblem(check.errors)}`)
  const manifest = legacy ? upgradeManifest(data as LegacyManifest) : (data as PackageManifest)
  checkConsistency(manifest, origin)
  return manifest
}

/** What the schema cannot say: units and images name each other and the charts. */
function checkConsistency(manifest: PackageManifest, origin: string): void {
  const fail = (what: string): never => {
    throw packageError(`${origin}: ${MANIFEST_FILE} is invalid: ${what}`)
  }
  const ids = new Set<string>()
  const charts = new Set(manifest.charts.map((chart) => chart.file))
  const images = new Set(manifest.images.map((image) => image.name))
  for (const unit of manifest.units) {
    if (ids.has(unit.id)) fail(`unit ${unit.id} appears twice`)
    for (const need of unit.needs) if (!ids.has(need)) fail(`unit ${unit.id} needs ${need}, which is not an earlier unit`)
    ids.add(unit.id)
    if (unit.installed && !charts.has(unit.chart)) fail(`unit ${unit.id} installs ${unit.chart}, which is not among the charts`)
    for (const image of unit.images) if (unit.installed && !images.has(image.name)) fail(`unit ${unit.id} runs ${image.name}, which is not among the images`)
  }
  for (const image of manifest.images) for (const unit of image.units) if (!ids.has(unit)) fail(`image ${image.name} names unit ${unit}, which does not exist`)
}

export function stringifyManifest(manifest: PackageManifest): string {
  const validate = validateManifest()
  if (manifest.formatVersion !== FORMAT_VERSION || !validate(manifest)) {
    const problems = (validate.errors ?? []).map((error) => `${error.instancePath || '/'} ${error.message ?? ''}`.trim())
    throw new Error(`internal: manifest does not match its schema: ${problems.join(', ') || `format ${manifest.formatVersion}`}`)
  }
  checkConsistency(manifest, 'internal')
  return YAML.stringify(manifest, {lineWidth: 0})
}

/** How much of a large file is read at once: a few large reads and writes, not thousands of 64 KiB ones. */
const STREAM_CHUNK = 1024 * 1024
/** Writes of an extracted file that may be under way at once while its next chunks are hashed. */
const WRITES_IN_FLIGHT = 4

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(file, {highWaterMark: STREAM_CHUNK})) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

/** Writes all of `bytes` at `position` (a write may write less than it was given). */
export async function writeFully(handle: FileHandle, bytes: Buffer, position: number): Promise<void> {
  for (let done = 0; done < bytes.length; ) {
    const {bytesWritten} = await handle.write(bytes, done, bytes.length - done, position + done)
    if (bytesWritten === 0) throw new Error('the disk took no more bytes')
    done += bytesWritten
  }
}

/** Every regular file below dir, as sorted posix paths relative to it. */
export async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, {recursive: true, withFileTypes: true})
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)).split(path.sep).join('/'))
    .sort()
}

/** Runs fn over items, at most `limit` at a time, keeping order; stops early when `signal` aborts. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>, signal?: AbortSignal): Promise<R[]> {
  const results: R[] = Array.from({length: items.length})
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      signal?.throwIfAborted()
      const index = next++
      results[index] = await fn(items[index])
    }
  }
  await Promise.all(Array.from({length: Math.min(limit, items.length)}, worker))
  return results
}

/**
 * Starts fn over items, at most `limit` at a time, in order, and gives each item's promise at once, so
 * that a caller can use the first results while the rest are still running. A result nobody awaits
 * (the caller stopped at an earlier failure) is not an unhandled rejection.
 */
export function startLimited<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>, signal?: AbortSignal): Array<Promise<R>> {
  const settle: Array<{resolve(value: R): void; reject(error: unknown): void}> = []
  const promises = items.map((_, index) => {
    const promise = new Promise<R>((resolve, reject) => (settle[index] = {resolve, reject}))
    promise.catch(() => {})
    return promise
  })
  void mapLimit(
    items.map((item, index) => ({item, index})),
    limit,
    ({item, index}) => fn(item).then(settle[index].resolve, settle[index].reject),
    signal,
  ).catch((error: unknown) => {
    for (const {reject} of settle) reject(error)
  })
  return promises
}

function formatSums(sums: Map<string, string>): string {
  return [...sums].map(([file, hex]) => `${hex}  ${file}\n`).join('')
}

export function parseSums(text: string): Map<string, string> {
  const sums = new Map<string, string>()
  for (const [index, line] of text.split('\n').entries()) {
    if (!line.trim()) continue
    const match = /^([a-f0-9]{64}) [ *](.+)$/.exec(line)
    if (!match || match[2].startsWith('/') || match[2].split('/').includes('..')) {
      throw packageError(`${SUMS_FILE} line ${index + 1} is malformed`)
    }
    sums.set(match[2], match[1])
  }
  return sums
}

/** Files the manifest names must be covered by the checksums. */
function referencedFiles(manifest: PackageManifest): string[] {
  return [
    MANIFEST_FILE,
    ...manifest.charts.map((chart) => chart.file),
    ...manifest.units.flatMap((unit) => unit.values),
    ...manifest.hints,
    ...(manifest.images.length > 0 ? [`${IMAGES_DIR}/index.json`] : []),
  ]
}

/** Refuses (exit 5) a package whose checksums leave out a file its manifest names. */
export function checkCoverage(manifest: PackageManifest, sums: Map<string, string>, origin: string): void {
  checkCovered(referencedFiles(manifest), sums, origin, 'package')
}

/** A package's head: kod-package.yaml, and its layout blobs hashed by their names. */
export function packageHead(manifest: PackageManifest): ArchiveHeadFiles {
  // A layout blob is named by its digest: skopeo checked it as it stored it (a blob an interrupted run left was
  // checked when salvaged, and kod names the index blobs it writes by their digest), so it is not read a
  // second time here. Verification, on the other side, reads every byte.
  return {manifestFile: MANIFEST_FILE, manifestText: stringifyManifest(manifest), named: (file) => BLOB_PATH.exec(file)?.[1]}
}

/**
 * Writes the manifest and SHA256SUMS into `staging`, then tars it into `outFile` atomically: the
 * archive appears under its name only when complete.
 */
export async function writePackage(
  staging: string,
  manifest: PackageManifest,
  outFile: string,
  signal?: AbortSignal,
  /** --sign-key: SHA256SUMS.sig is written beside SHA256SUMS, and follows it in the archive. */
  signingKey?: KeyObject,
): Promise<{files: number; bytes: number}> {
  return writeArchive(staging, packageHead(manifest), outFile, signal, signingKey)
}

/**
 * The hidden name an archive is written under until it is complete (`.<name>.partial-<pid>` beside it,
 * or `.<name>.<what>.partial-<pid>`): a run killed outright leaves nothing a user would take for a
 * package, and the next run into the same directory removes it (sweepPackageLeftovers).
 */
export function partialFile(outFile: string, what?: string): string {
  return path.join(path.dirname(outFile), `.${path.basename(outFile)}${what ? `.${what}` : ''}.partial-${process.pid}`)
}

/**
 * An archive in kod's format, whatever its manifest (a package's kod-package.yaml, a bundle's
 * kod-bundle.yaml): writes `manifestText` as `manifestFile` and SHA256SUMS (over every file of `staging`)
 * into `staging`, signs SHA256SUMS when given a key, then tars it into `outFile` atomically, the manifest
 * first, then SHA256SUMS and its signature, then every other file in sorted order. Files keep their modes
 * (an executable stays executable); links and special files are not written (listFiles takes files only).
 */
export async function writeArchive(
  staging: string,
  head: ArchiveHeadFiles,
  outFile: string,
  signal?: AbortSignal,
  signingKey?: KeyObject,
): Promise<{files: number; bytes: number}> {
  const {first, rest} = await stageHead(staging, head, signal, signingKey)
  const order = [...first, ...rest]
  const partial = partialFile(outFile)
  try {
    await tar.create({cwd: staging, file: partial, portable: true, noDirRecurse: true}, order)
    signal?.throwIfAborted()
    await rename(partial, outFile)
  } catch (error) {
    await rm(partial, {force: true})
    throw error
  }
  return {files: order.length, bytes: (await stat(outFile)).size}
}

/** What heads an archive in kod's format: its manifest file and text, and which files need not be read to be hashed. */
export interface ArchiveHeadFiles {
  manifestFile: string
  manifestText: string
  /** The sha256 (hex) of a file that is named by it and known to hold it, which is then not read to hash it. */
  named?: (file: string) => string | undefined
}

/**
 * Writes `manifestFile`, then SHA256SUMS over every file of `staging` (sorted), then its signature when
 * given a key, into `staging`. Returns the archive's first entries (manifest, SHA256SUMS, signature) and
 * every other file, sorted.
 */
export async function stageHead(staging: string, head: ArchiveHeadFiles, signal?: AbortSignal, signingKey?: KeyObject): Promise<{first: string[]; rest: string[]}> {
  const {manifestFile} = head
  await writeFile(path.join(staging, manifestFile), head.manifestText)
  await rm(path.join(staging, SUMS_FILE), {force: true})
  await rm(path.join(staging, SIGNATURE_FILE), {force: true})
  const files = await listFiles(staging)
  const hashes = await mapLimit(files, 4, async (file) => head.named?.(file) ?? sha256File(path.join(staging, file)), signal)
  const sums = Buffer.from(formatSums(new Map(files.map((file, index) => [file, hashes[index]]))))
  await writeFile(path.join(staging, SUMS_FILE), sums)
  if (signingKey) await writeFile(path.join(staging, SIGNATURE_FILE), signSums(sums, signingKey))
  return {first: [manifestFile, SUMS_FILE, ...(signingKey ? [SIGNATURE_FILE] : [])], rest: files.filter((file) => file !== manifestFile)}
}

/** An archive entry's path without a leading "./" (tar run on "." writes them so). */
function entryName(entry: {path: string}): string {
  return entry.path.replace(/^\.\//, '')
}

/** -c names something that is no kod package (or bundle) at all: a usage error that says what it is instead. */
function notA(noun: string, input: string, what: string): Error {
  return usageError(`${input} is not a kod ${noun}: ${what}`)
}

/**
 * The first file of an unpacked package that is missing or does not match SHA256SUMS (undefined when
 * every file matches). Files are hashed four at a time; the first in SHA256SUMS order is reported.
 */
export async function firstDifference(
  dir: string,
  sums: Map<string, string>,
  signal?: AbortSignal,
): Promise<{file: string; missing: boolean} | undefined> {
  const files = [...sums.keys()]
  const actual = await mapLimit(files, 4, (file) => sha256File(path.join(dir, file)).catch(() => undefined), signal)
  for (const [index, file] of files.entries()) {
    if (actual[index] === undefined) return {file, missing: true}
    if (actual[index] !== sums.get(file)) return {file, missing: false}
  }
  return undefined
}

/** kod-package.yaml and SHA256SUMS of an unpacked package as text, each undefined when absent. */
export async function readDirectoryHead(dir: string): Promise<{manifestText?: string; sumsText?: string}> {
  const read = (file: string): Promise<string | undefined> => readFile(path.join(dir, file), 'utf8').catch(() => undefined)
  return {manifestText: await read(MANIFEST_FILE), sumsText: await read(SUMS_FILE)}
}

/**
 * Bounds on what a package may hold. Far beyond any real package; they exist so that a hostile one
 * cannot make kod create absurd trees or hold unbounded data in memory.
 */
export const LIMITS = {
  /** Path components of one entry (images/blobs/sha256/<hex> is 4). */
  depth: 32,
  /** Bytes of one entry's path, and of one component of it. */
  pathBytes: 1024,
  componentBytes: 255,
  /** Entries in one archive. */
  entries: 1_000_000,
  /** Bytes of one file (an image layer). */
  fileBytes: 256 * 1024 ** 3,
  /** Bytes of kod-package.yaml, SHA256SUMS and images/index.json, which are read into memory whole. */
  textBytes: 64 * 1024 ** 2,
  /** Bytes of a blob read as a possible manifest (the distribution spec's bound on a manifest). */
  manifestBytes: 4 * 1024 ** 2,
} as const

const BLOB_PATH = /^images\/blobs\/sha256\/([a-f0-9]{64})$/
const INDEX_FILE = `${IMAGES_DIR}/index.json`

/**
 * A package refused by verification (exit 5): `entry` is the file or entry at fault and `kind` what
 * is wrong with it, so a caller can say it in its own words (an existing unpack "was changed").
 */
export class PackageRefusal extends KodError {
  constructor(
    readonly entry: string,
    readonly kind: 'mismatch' | 'missing' | 'refused',
    message: string,
  ) {
    super(message, {exit: ExitCode.badPackage})
    this.name = 'PackageRefusal'
  }
}

/**
 * The files deploy writes into an unpacked package (docs/kodpkg.md): each unit's kod-values-/kod-set-
 * files (and those named after the chart, as format-1 deploys wrote them), and what a source writes
 * beside its own files, named <dir>/kod-<dir>.yaml. SHA256SUMS cannot list them, so a package
 * directory may hold them; an archive may not.
 */
/**
 * The directory populate writes the package's kodinfo layout into (kodinfo.ts), inside an unpacked
 * package: generated, like the values files, and never verified.
 */
export const GENERATED_DIR = 'kod-info'

/** Whether a path inside an unpacked package is, or is below, GENERATED_DIR. */
export function inGeneratedDir(name: string): boolean {
  return name === GENERATED_DIR || name.startsWith(`${GENERATED_DIR}/`)
}

export function generatedFiles(manifest: PackageManifest, listed: Iterable<string>): string[] {
  const ids = new Set([manifest.name, ...manifest.charts.map((chart) => chart.name), ...manifest.units.map((unit) => unit.id)])
  const directories = new Set([...listed].map((file) => path.posix.dirname(file)).filter((dir) => dir !== '.'))
  return [
    ...[...ids].flatMap((id) => [unitValuesFileName(id), unitValuesFileName(id).replace(/^kod-values-/, 'kod-set-')]),
    ...[...directories].map((dir) => `${dir}/kod-${path.posix.basename(dir)}.yaml`),
  ]
}

/** One entry as an archive header or the file system describes it. */
export interface EntryInfo {
  /** As stored: may start with "./", a directory's may end with "/". */
  path: string
  /** 'file', 'directory', or what else it is ("a symbolic link", "a hard link", …). */
  type: string
  mode: number
  size: number
}

/** node-tar's entry types, as the rules below see them. */
function tarEntryType(type: string): string {
  if (type === 'File' || type === 'OldFile' || type === 'ContiguousFile') return 'file'
  if (type === 'Directory') return 'directory'
  const named: Record<string, string> = {
    SymbolicLink: 'a symbolic link',
    Link: 'a hard link',
    CharacterDevice: 'a character device',
    BlockDevice: 'a block device',
    FIFO: 'a FIFO',
  }
  return named[type] ?? `a tar entry of type ${type}`
}

/** The `sha256` of a file's content and, for a blob that may be a manifest, what it links to. */
interface Hashed {
  hex: string
  size: number
  links?: BlobLinks
  /** images/index.json only. */
  index?: BlobLinks
}

/** Whether a file's content must be read (not only hashed): index.json, and blobs small enough to be a manifest. */
function keepsContent(name: string, size: number): boolean {
  return name === INDEX_FILE || (BLOB_PATH.test(name) && size <= LIMITS.manifestBytes)
}

/** What a streamed file's content says, once hashed: its digest, and its links when it may be a manifest or the index. */
function hashedContent(name: string, hex: string, size: number, content?: Buffer): Hashed {
  if (!content) return {hex, size}
  if (name === INDEX_FILE) return {hex, size, index: blobLinks(content) ?? {}}
  return {hex, size, links: blobLinks(content)}
}

/** What a verifier needs besides the checksums: where the archive came from and how it was read. */
export interface VerifierOptions {
  /** An unpacked directory rather than an archive as it streams. */
  onDisk?: boolean
  /** sha256 of SHA256SUMS and of the manifest as read from the archive's head: the stream must carry those very files. */
  sumsDigest?: string
  manifestDigest?: string
}

/**
 * The rules every archive in kod's format follows (docs/kodpkg.md, "SHA256SUMS and verification"), a
 * package or a bundle alike, applied to an archive as it streams and to an unpacked directory: every
 * entry is a regular file or a directory with a plain, bounded, relative name and no setuid/setgid/sticky
 * bit, appears once, and is listed in SHA256SUMS (but SHA256SUMS and SHA256SUMS.sig); every listed file is
 * there with its checksum; every file the manifest names is listed. Feed it with `admit` (the header,
 * before any content is read or written), then `hashed` (once the content has streamed past), then
 * `finish`. Each refusal is a PackageRefusal naming the entry. PackageVerifier adds a package's own rules.
 */
export class ArchiveVerifier {
  private readonly seen = new Set<string>()
  protected readonly hashes = new Map<string, string>()
  private readonly directories = new Set<string>()
  files = 0
  bytes = 0

  constructor(
    protected readonly origin: string,
    protected readonly sums: Map<string, string>,
    protected readonly options: VerifierOptions & {
      /** The archive's manifest file (its first entry). */
      manifestFile: string
      /** What the archive is called in messages ("package", "bundle"). */
      noun: string
      /** The files the manifest names: SHA256SUMS must list each. */
      covered: string[]
    },
  ) {
    for (const file of sums.keys()) {
      const parts = file.split('/')
      for (let depth = 1; depth < parts.length; depth++) this.directories.add(parts.slice(0, depth).join('/'))
    }
  }

  protected refuse(entry: string, why: string, kind: PackageRefusal['kind'] = 'refused'): never {
    throw new PackageRefusal(entry, kind, `${this.origin}: ${why}`)
  }

  /** Whether a name in an unpacked directory is kod's own (written there after the archive) and not verified further. */
  protected skippedOnDisk(_name: string): boolean {
    return false
  }

  /** Whether a file of an unpacked directory that SHA256SUMS does not list is one kod writes there. */
  protected generatedOnDisk(_name: string): boolean {
    return false
  }

  /** Files read into memory whole (so bounded by LIMITS.textBytes). */
  protected isText(name: string): boolean {
    return name === this.options.manifestFile || name === SUMS_FILE
  }

  /** Rules of this kind of archive for one listed file's name. */
  protected checkListed(_shown: string, _name: string): void {}

  /**
   * Checks an entry's header, before anything of it is read or written; returns its normalised name
   * ('' for the archive's root directory), or undefined when the entry is a generated file of a
   * directory that is not verified further.
   */
  admit(entry: EntryInfo): string | undefined {
    const {noun} = this.options
    const name = this.checkName(entry)
    const shown = JSON.stringify(name).slice(1, -1)
    if (name === '' && entry.type === 'directory') return ''
    if (this.options.onDisk && this.skippedOnDisk(name) && !this.sums.has(name) && !this.directories.has(name)) return undefined
    if (this.seen.has(name)) this.refuse(shown, `${shown} appears twice in the archive; a ${noun} holds each file once`)
    this.seen.add(name)
    if (this.seen.size > LIMITS.entries) this.refuse(shown, `it holds more than ${LIMITS.entries} entries`)
    if (entry.type !== 'file' && entry.type !== 'directory') this.refuse(shown, `${shown} is ${entry.type}; a ${noun} holds only regular files and directories`)
    this.checkMode(shown, entry)
    if (entry.type === 'directory') {
      if (!this.directories.has(name)) this.refuse(shown, `directory ${shown} holds no file listed in ${SUMS_FILE}; the ${noun} holds something it does not account for`)
      return name
    }
    if (this.directories.has(name)) this.refuse(shown, `${shown} is a file, yet ${SUMS_FILE} lists files below it`)
    if (entry.size > LIMITS.fileBytes) this.refuse(shown, `${shown} is larger than ${LIMITS.fileBytes} bytes`)
    if (this.isText(name) && entry.size > LIMITS.textBytes) this.refuse(shown, `${shown} is larger than ${LIMITS.textBytes} bytes`)
    if (this.options.onDisk && this.generatedOnDisk(name) && !this.sums.has(name)) return undefined
    if (name !== SUMS_FILE && name !== SIGNATURE_FILE && !this.sums.has(name)) {
      this.refuse(shown, `${shown} is not listed in ${SUMS_FILE}: the ${noun} holds a file it does not account for (added or tampered with); get a fresh copy`)
    }
    this.checkListed(shown, name)
    return name
  }

  /** A plain relative path: no absolute path, no "." or ".." or empty component, no control character or backslash, bounded. */
  private checkName(entry: EntryInfo): string {
    const shown = JSON.stringify(entry.path).slice(1, -1)
    const bad = (why: string): never => this.refuse(shown, `entry ${shown} ${why}; kod refuses such a ${this.options.noun}`)
    let name = entry.path
    if (name.startsWith('/')) bad('is an absolute path')
    if (name.startsWith('./')) name = name.slice(2)
    if (entry.type === 'directory' && name.endsWith('/')) name = name.slice(0, -1)
    if (name === '' || name === '.') return ''
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001F\u007F\\]/.test(name)) bad('holds a control character or a backslash')
    const parts = name.split('/')
    if (parts.includes('..')) bad(`climbs out of the ${this.options.noun} with ".."`)
    if (parts.some((part) => part === '' || part === '.')) bad('is not a plain path (an empty or "." component)')
    if (parts.length > LIMITS.depth) bad(`is ${parts.length} directories deep (at most ${LIMITS.depth})`)
    if (Buffer.byteLength(name) > LIMITS.pathBytes || parts.some((part) => Buffer.byteLength(part) > LIMITS.componentBytes)) {
      bad(`has a name longer than ${LIMITS.pathBytes} bytes, or a component longer than ${LIMITS.componentBytes}`)
    }
    return name
  }

  /**
   * No setuid, setgid or sticky bit. On disk a directory may carry setgid: the file system gives it to
   * every directory made below a setgid one, whatever the package said.
   */
  private checkMode(shown: string, entry: EntryInfo): void {
    const tolerated = this.options.onDisk && entry.type === 'directory' ? 0o2000 : 0
    const bits = entry.mode & 0o7000 & ~tolerated
    if (bits === 0) return
    const which = [
      [0o4000, 'setuid'],
      [0o2000, 'setgid'],
      [0o1000, 'sticky'],
    ]
      .filter(([bit]) => bits & (bit as number))
      .map(([, label]) => label)
    this.refuse(shown, `${shown} has the ${which.join(' and ')} bit set (mode ${entry.mode.toString(8)}); a ${this.options.noun}'s files carry no special permissions`)
  }

  /** Whether a file's content must be read (not only hashed) for the rules of this kind of archive. */
  keepsContent(_name: string, _size: number): boolean {
    return false
  }

  /** What a streamed file's content says, once hashed (keepsContent decides whether `content` is given). */
  describe(_name: string, hex: string, size: number, _content?: Buffer): Hashed {
    return {hex, size}
  }

  /** Checks a file once its content has streamed past: its checksum (and what this kind of archive checks of it). */
  hashed(name: string, content: Hashed): void {
    this.files++
    this.bytes += content.size
    this.hashes.set(name, content.hex)
    const expected = name === SUMS_FILE ? this.options.sumsDigest : this.sums.get(name)
    const mismatch = `checksum mismatch for ${name}: the ${this.options.noun} was changed or damaged after it was written; get a fresh copy`
    if (expected !== undefined && expected !== content.hex) this.refuse(name, mismatch, 'mismatch')
    // The manifest in use was parsed from the archive's head: it must be the very file the sums vouch for.
    if (name === this.options.manifestFile && this.options.manifestDigest !== undefined && this.options.manifestDigest !== content.hex) {
      this.refuse(name, mismatch, 'mismatch')
    }
    this.checkContent(name, content)
  }

  /** What this kind of archive checks of a file's content, once its checksum matched. */
  protected checkContent(_name: string, _content: Hashed): void {}

  /** What only the whole archive can say: nothing listed is missing, the manifest's files are covered, and this kind's own rules. */
  finish(): void {
    const {noun} = this.options
    for (const name of this.sums.keys()) if (!this.hashes.has(name)) this.refuse(name, `${name} is missing; the ${noun} is incomplete`, 'missing')
    if (!this.hashes.has(SUMS_FILE) && !this.options.onDisk) this.refuse(SUMS_FILE, `${SUMS_FILE} is missing; the ${noun} is incomplete`, 'missing')
    this.checkCoverage()
    this.finishContent()
  }

  /** Refuses (exit 5) checksums that leave out a file the manifest names. */
  checkCoverage(): void {
    checkCovered(this.options.covered, this.sums, this.origin, this.options.noun)
  }

  /** This kind of archive's rules over the whole of it. */
  protected finishContent(): void {}
}

/** Refuses (exit 5) an archive whose checksums leave out a file its manifest names. */
function checkCovered(files: string[], sums: Map<string, string>, origin: string, noun: string): void {
  const missing = files.filter((file) => !sums.has(file))
  if (missing.length > 0) throw packageError(`${origin}: ${missing[0]} is not covered by ${SUMS_FILE}; the ${noun} is incomplete or was tampered with`)
}

/**
 * The one place the rules of a package's content live (docs/kodpkg.md, "SHA256SUMS and
 * verification"): ArchiveVerifier's, and a package's own: in a directory, the files deploy writes may be
 * there unlisted; every blob hashes to its name; index.json's graph is whole and agrees with the manifest.
 */
export class PackageVerifier extends ArchiveVerifier {
  private readonly blobs = new Map<string, LayoutBlob>()
  private readonly generated: Set<string>
  private index?: BlobLinks

  constructor(
    origin: string,
    private readonly manifest: PackageManifest,
    sums: Map<string, string>,
    options: VerifierOptions = {},
  ) {
    super(origin, sums, {...options, manifestFile: MANIFEST_FILE, noun: 'package', covered: referencedFiles(manifest)})
    this.generated = new Set(options.onDisk ? generatedFiles(manifest, sums.keys()) : [])
  }

  // What populate generates in an unpacked package (its kodinfo layout) is kod's own, not the package's.
  protected override skippedOnDisk(name: string): boolean {
    return inGeneratedDir(name)
  }

  protected override generatedOnDisk(name: string): boolean {
    return this.generated.has(name)
  }

  protected override isText(name: string): boolean {
    return super.isText(name) || name === INDEX_FILE
  }

  protected override checkListed(shown: string, name: string): void {
    if (name.startsWith(`${IMAGES_DIR}/blobs/`) && !BLOB_PATH.test(name)) {
      this.refuse(shown, `${shown} is not a blob kod reads: a package's layout holds images/blobs/sha256/<64 hex digits> only`)
    }
  }

  /** index.json, and blobs small enough to be a manifest. */
  override keepsContent(name: string, size: number): boolean {
    return keepsContent(name, size)
  }

  override describe(name: string, hex: string, size: number, content?: Buffer): Hashed {
    return hashedContent(name, hex, size, content)
  }

  /** A blob's name. */
  protected override checkContent(name: string, content: Hashed): void {
    const blob = BLOB_PATH.exec(name)?.[1]
    if (blob) {
      if (blob !== content.hex) this.refuse(name, `${name} does not hash to its name (its sha256 is ${content.hex}): the blob was changed; get a fresh copy`, 'mismatch')
      this.blobs.set(blob, {size: content.size, ...(content.links ? {links: content.links} : {})})
    }
    if (content.index) this.index = content.index
  }

  /** The layout is whole. */
  protected override finishContent(): void {
    if (!this.hashes.has(INDEX_FILE)) {
      if (this.blobs.size > 0) this.refuse(INDEX_FILE, `${INDEX_FILE} is missing, yet the package holds image blobs`, 'missing')
      return
    }
    const problem = layoutProblem(IMAGES_DIR, this.index, this.blobs)
    if (problem) this.refuse(INDEX_FILE, `${problem}; the image layout is incomplete or was tampered with`)
    this.checkImages()
  }

  /** Every image of the manifest is in index.json under its layout name, with the digest the manifest records. */
  private checkImages(): void {
    const descriptors = (Array.isArray(this.index?.manifests) ? this.index.manifests : []) as Array<{digest?: string; annotations?: Record<string, string>}>
    for (const image of this.manifest.images) {
      const name = image.layoutName ?? image.name
      const found = descriptors.find((descriptor) => descriptor.annotations?.[REF_NAME] === name)
      if (!found) this.refuse(INDEX_FILE, `${INDEX_FILE} has no image named ${name}, which ${MANIFEST_FILE} lists (${image.ref})`)
      if (found.digest !== image.digest) {
        this.refuse(INDEX_FILE, `${INDEX_FILE} gives ${name} the digest ${found.digest}, but ${MANIFEST_FILE} records ${image.digest}`)
      }
    }
  }
}

/** Hashes a file on disk, reading its content too when the rules need it. */
async function hashFile(verifier: ArchiveVerifier, file: string, name: string, size: number): Promise<Hashed> {
  const hash = createHash('sha256')
  const kept: Buffer[] | undefined = verifier.keepsContent(name, size) ? [] : undefined
  let read = 0
  for await (const chunk of createReadStream(file, {highWaterMark: STREAM_CHUNK})) {
    hash.update(chunk as Buffer)
    read += (chunk as Buffer).length
    kept?.push(chunk as Buffer)
  }
  return verifier.describe(name, hash.digest('hex'), read, kept && Buffer.concat(kept))
}

/**
 * What kind of archive in kod's format a reader expects (a package, a bundle): its manifest file, how it
 * is named in messages, how its manifest is read, and its verifier.
 */
export interface ArchiveFormat<M> {
  manifestFile: string
  /** "package", "bundle". */
  noun: string
  /** Reads and checks the manifest text (a bad one: exit 5, naming `origin`). */
  parse(text: string, origin: string): M
  verifier(origin: string, manifest: M, sums: Map<string, string>, options: VerifierOptions): ArchiveVerifier
  /** What an archive or directory lacking the manifest is, when it is recognisably something else (a Helm chart, another kind of archive). */
  otherwise?(found: {first?: string; chart?: string; directory?: boolean}, input: string): string | undefined
}

/** A kod package (.kodpkg): kod-package.yaml, verified by PackageVerifier. */
export const PACKAGE_FORMAT: ArchiveFormat<PackageManifest> = {
  manifestFile: MANIFEST_FILE,
  noun: 'package',
  parse: parseManifest,
  verifier: (origin, manifest, sums, options) => new PackageVerifier(origin, manifest, sums, options),
  otherwise(found, input) {
    if (found.chart) {
      return found.directory
        ? `it is a Helm chart directory; make a package from it with kod package -c ${input}`
        : `it is a Helm chart archive (${found.chart}); make a package from it with kod package -c ${input}`
    }
    if (found.first === BUNDLE_MANIFEST_FILE) return `it is a kod bundle (${BUNDLE_MANIFEST_FILE}), not a package: give it to the command that deploys it (kod deploy-tools for kod package-tools' bundles)`
    return undefined
  },
}

/** The manifest of a bundle (docs/plugins.md): the archive format of packages, carrying what a plugin packs. */
export const BUNDLE_MANIFEST_FILE = 'kod-bundle.yaml'

/**
 * Verifies an unpacked package directory by the rules of PackageVerifier: every entry admitted (in
 * sorted order, so the first bad one is reported), then every file hashed, four at a time.
 */
export async function verifyDirectory(dir: string, signal?: AbortSignal): Promise<PackageManifest> {
  return verifyDirectoryAs(PACKAGE_FORMAT, dir, signal)
}

/** Verifies an unpacked directory of any archive format (verifyDirectory for packages). */
export async function verifyDirectoryAs<M>(format: ArchiveFormat<M>, dir: string, signal?: AbortSignal): Promise<M> {
  const origin = dir
  const {noun, manifestFile} = format
  const read = (file: string): Promise<string | undefined> => readFile(path.join(dir, file), 'utf8').catch(() => undefined)
  const manifestText = await read(manifestFile)
  const sumsText = await read(SUMS_FILE)
  if (manifestText === undefined) {
    const chart = await stat(path.join(dir, 'Chart.yaml')).then(
      () => true,
      () => false,
    )
    const first = (await stat(path.join(dir, MANIFEST_FILE)).then(() => MANIFEST_FILE, () => undefined)) ?? (await stat(path.join(dir, BUNDLE_MANIFEST_FILE)).then(() => BUNDLE_MANIFEST_FILE, () => undefined))
    throw notA(noun, dir, format.otherwise?.({chart: chart ? 'Chart.yaml' : undefined, directory: true, first}, dir) ?? `it holds no ${manifestFile}`)
  }
  if (sumsText === undefined) throw packageError(`${origin}: ${SUMS_FILE} is missing; the ${noun} is incomplete`)
  const sums = parseSums(sumsText)
  const manifest = format.parse(manifestText, origin)
  const verifier = format.verifier(origin, manifest, sums, {onDisk: true})
  verifier.checkCoverage()
  const entries = (await readdir(dir, {recursive: true, withFileTypes: true}))
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)).split(path.sep).join('/'))
    .sort()
  const infos = await mapLimit(entries, 16, async (name) => {
    const info = await lstat(path.join(dir, name))
    const type = info.isFile() ? 'file' : info.isDirectory() ? 'directory' : info.isSymbolicLink() ? 'a symbolic link' : 'a device, FIFO or socket'
    return {path: name, type, mode: info.mode, size: info.size}
  }, signal)
  const files = infos.flatMap((info) => {
    const name = verifier.admit(info)
    return name && info.type === 'file' ? [{name, size: info.size}] : []
  })
  const hashed = await mapLimit(files, 4, ({name, size}) => hashFile(verifier, path.join(dir, name), name, size).catch((error: Error) => {
    throw packageError(`${origin}: cannot read ${name} (${messageOf(error)})`)
  }), signal)
  for (const [index, {name}] of files.entries()) verifier.hashed(name, hashed[index])
  verifier.finish()
  return manifest
}

/** The head of a package archive (or of another archive in kod's format): its manifest, and the manifest and checksums exactly as stored. */
export interface ArchiveHead<M = PackageManifest> {
  manifest: M
  manifestText: string
  /** Absent when the archive holds no SHA256SUMS (verification then refuses it). */
  sumsText?: string
  /** sha256 of the two files' bytes as read here: verification checks the rest of the archive against these very files. */
  manifestDigest: string
  sumsDigest?: string
  /** SHA256SUMS.sig, when it follows SHA256SUMS (a signed package, docs/security.md). */
  signature?: Buffer
  /** SHA256SUMS as bytes, what the signature covers. */
  sumsBytes?: Buffer
}

/** Magic numbers of what people put where a package belongs, and what to tell them. */
const MAGIC: Array<[number[], string]> = [
  [[0x1f, 0x8b], 'it is gzip-compressed data with no tar archive inside'],
  [[0x28, 0xb5, 0x2f, 0xfd], 'it is zstd-compressed, which this kod cannot read: decompress it (zstd -d) and give the tar inside'],
  [[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], 'it is xz-compressed: decompress it (xz -d) and give the tar inside'],
  [[0x42, 0x5a, 0x68], 'it is bzip2-compressed: decompress it (bunzip2) and give the tar inside'],
  [[0x50, 0x4b, 0x03, 0x04], 'it is a zip archive; a kod NOUN is a tar archive'],
]

/** What a file that is not a tar archive is, from its first bytes. */
async function describeNonTar(file: string, noun: string): Promise<string> {
  const handle = await open(file, 'r')
  try {
    const {buffer, bytesRead} = await handle.read(Buffer.alloc(8), 0, 8, 0)
    if (bytesRead === 0) return 'it is empty'
    const found = MAGIC.find(([magic]) => magic.every((byte, index) => buffer[index] === byte))
    return found?.[1].replace('NOUN', noun) ?? 'it is not a tar archive'
  } finally {
    await handle.close()
  }
}

/**
 * Recognises a kod package by its content, whatever the file is called (kod-x-1.0.kodpkg, .tgz, no
 * extension): a tar archive whose first entry is kod-package.yaml, or that holds kod-package.yaml and
 * SHA256SUMS (re-tarred by hand). A gzip-compressed one is read as it is (node-tar inflates it).
 * Reads only as far as it must: for a package kod wrote, its first two entries. Anything else is
 * refused as a usage error (exit 2) that says what the file is instead: a Helm chart, a zip, empty, …
 * A package whose manifest is invalid or of an unknown format is refused as a bad package (exit 5).
 */
export async function readArchiveHead(file: string, signal?: AbortSignal): Promise<ArchiveHead> {
  return readArchiveHeadAs(PACKAGE_FORMAT, file, signal)
}

/** readArchiveHead for any archive format: recognised by its manifest (the first entry), read as far as it must. */
export async function readArchiveHeadAs<M>(format: ArchiveFormat<M>, file: string, signal?: AbortSignal): Promise<ArchiveHead<M>> {
  const {manifestFile, noun} = format
  const texts = new Map<string, Buffer>()
  let first: string | undefined
  let chart: string | undefined
  let tooLarge: string | undefined
  /** A manifest or checksum entry that is not a regular file (a link placed where kod-package.yaml belongs). */
  let notAFile: {name: string; type: string} | undefined
  /** A manifest or checksum entry the file ends inside of. */
  let cutShort: string | undefined
  const enough = new AbortController()
  const parser = new tar.Parser({
    strict: true,
    onReadEntry(entry) {
      const name = entryName(entry)
      first ??= name
      if (!chart && /^[^/]+\/Chart\.yaml$/.test(name)) chart = name
      // Past the signature's place: a package kod wrote has nothing more to read here.
      if (first === manifestFile && texts.has(manifestFile) && texts.has(SUMS_FILE) && name !== SIGNATURE_FILE) {
        entry.resume()
        enough.abort()
        return
      }
      if (entry.type !== 'File' && (name === manifestFile || name === SUMS_FILE || name === SIGNATURE_FILE)) notAFile ??= {name, type: entry.type}
      // Read into memory: bounded, and only the first of each (verification refuses a second).
      if (entry.type !== 'File' || (name !== manifestFile && name !== SUMS_FILE && name !== SIGNATURE_FILE) || texts.has(name)) {
        entry.resume()
        return
      }
      if ((entry.size ?? 0) > LIMITS.textBytes) {
        tooLarge ??= name
        entry.resume()
        return
      }
      const chunks: Buffer[] = []
      entry.on('data', (chunk: Buffer) => chunks.push(chunk))
      entry.on('end', () => {
        const bytes = Buffer.concat(chunks)
        // The archive ends inside this entry (a copy cut short): not a manifest that fails its schema.
        if (entry.size !== undefined && bytes.length < entry.size) {
          cutShort ??= name
          return
        }
        texts.set(name, bytes)
        if (first === manifestFile && texts.has(manifestFile) && texts.has(SUMS_FILE) && texts.has(SIGNATURE_FILE)) enough.abort()
      })
    },
  })
  try {
    await pipeline(createReadStream(file), parser, {signal: signal ? AbortSignal.any([signal, enough.signal]) : enough.signal})
  } catch {
    // Stopped on purpose, interrupted, or not (entirely) a tar archive: what was read decides below.
    signal?.throwIfAborted()
  }
  if (tooLarge) throw packageError(`${file}: ${tooLarge} is larger than ${LIMITS.textBytes} bytes; kod refuses such a ${noun}`)
  if (cutShort) throw packageError(`${file} is damaged or truncated (it ends inside ${cutShort}); get a fresh copy`)
  if (notAFile) {
    const what = notAFile.type === 'SymbolicLink' ? 'a symbolic link' : notAFile.type === 'Link' ? 'a hard link' : `a ${notAFile.type} entry`
    throw packageError(`${file}: ${notAFile.name} is ${what}; a ${noun} holds only regular files, so this one was made by hand or tampered with: get a fresh copy`)
  }
  const manifestBytes = texts.get(manifestFile)
  const sumsBytes = texts.get(SUMS_FILE)
  const manifestText = manifestBytes?.toString('utf8')
  const sumsText = sumsBytes?.toString('utf8')
  if (manifestBytes !== undefined && manifestText !== undefined && (first === manifestFile || sumsText !== undefined)) {
    // Only the head was read: a copy cut short further on is told by its end, before anything trusts the rest.
    if (!(await endsWhole(file))) {
      // Its head was read whole: a kod archive, cut short after it (kod package may replace such a file).
      throw Object.assign(packageError(`${file} is damaged or truncated (it does not end as a whole tar archive does); get a fresh copy`), {headWhole: true})
    }
    return {
      manifest: format.parse(manifestText, file),
      manifestText,
      sumsText,
      manifestDigest: sha256(manifestBytes),
      ...(sumsBytes ? {sumsDigest: sha256(sumsBytes), sumsBytes} : {}),
      ...(texts.has(SIGNATURE_FILE) ? {signature: texts.get(SIGNATURE_FILE)} : {}),
    }
  }
  if (first === undefined) throw notA(noun, file, await describeNonTar(file, noun))
  const other = format.otherwise?.({first, chart}, file)
  if (other) throw notA(noun, file, other)
  if (manifestText !== undefined) throw notA(noun, file, `it is a tar archive holding ${manifestFile} but no ${SUMS_FILE}`)
  throw notA(noun, file, `it is a tar archive without ${manifestFile}`)
}

/**
 * Whether a file ends as a whole tar archive does: in 512-byte blocks, the last two all zeros. A copy cut
 * short almost never does. A gzip-compressed archive carries its own check (its reader fails on a cut one).
 */
async function endsWhole(file: string): Promise<boolean> {
  const handle = await open(file, 'r')
  try {
    const {size} = await handle.stat()
    const magic = Buffer.alloc(2)
    await handle.read(magic, 0, 2, 0)
    if (magic[0] === 0x1f && magic[1] === 0x8b) return true
    if (size % 512 !== 0 || size < 1024) return false
    const tail = Buffer.alloc(1024)
    await handle.read(tail, 0, 1024, size - 1024)
    return tail.every((byte) => byte === 0)
  } finally {
    await handle.close()
  }
}

export interface ArchiveSummary<M = PackageManifest> {
  manifest: M
  files: number
  bytes: number
}

/** The one-line refusal of an archive the tar reader gave up on part way. */
function unreadable(file: string, error: unknown): Error {
  return packageError(`${file} is damaged or truncated (${(error as Error).message.split('\n')[0]}); get a fresh copy`)
}

/**
 * Reads one file entry to its end: hashed, its content kept when the rules need it, and written to
 * `into` when extracting (a new file: 'wx' never follows or overwrites anything). `stop` ends the
 * reading when another entry was refused or the archive broke off.
 */
async function consumeEntry(verifier: ArchiveVerifier, entry: tar.ReadEntry, name: string, into: string | undefined, stop: AbortSignal, keepModes = false): Promise<Hashed> {
  const hash = createHash('sha256')
  const kept: Buffer[] | undefined = verifier.keepsContent(name, entry.size ?? 0) ? [] : undefined
  let read = 0
  const destroy = (): void => void entry.destroy()
  stop.addEventListener('abort', destroy, {once: true})
  let handle: FileHandle | undefined
  // Writes go on while the next chunks are hashed: a few at a time, each at its own offset.
  const writing: Array<Promise<unknown>> = []
  try {
    stop.throwIfAborted()
    if (into) {
      const target = path.join(into, name)
      await mkdir(path.dirname(target), {recursive: true})
      // A bundle's files keep their permissions (an executable stays one), less the umask; admit refused special bits.
      handle = await open(target, 'wx', keepModes ? (entry.mode ?? 0o644) & 0o777 : 0o666)
    }
    // A destroyed entry's iteration ends only if it was waiting for data: check before each wait.
    stop.throwIfAborted()
    for await (const chunk of entry as AsyncIterable<Buffer>) {
      hash.update(chunk)
      read += chunk.length
      kept?.push(chunk)
      if (handle) {
        const written = writeFully(handle, chunk, read - chunk.length)
        // Awaited below or in finally: not an unhandled rejection meanwhile.
        written.catch(() => {})
        writing.push(written)
        if (writing.length >= WRITES_IN_FLIGHT) await writing.shift()
      }
      if (stop.aborted) break
    }
    await Promise.all(writing)
    // A destroyed entry ends its iteration early: what was read is not the file.
    stop.throwIfAborted()
  } finally {
    stop.removeEventListener('abort', destroy)
    await Promise.allSettled(writing)
    await handle?.close()
  }
  return verifier.describe(name, hash.digest('hex'), read, kept && Buffer.concat(kept))
}

/**
 * Reads a package archive once, start to end, through PackageVerifier: each entry's header is
 * admitted before any of its content is read, and each file checked as soon as it has streamed past,
 * so the first bad entry stops the reading with its reason. With `into`, every admitted entry is
 * written below that directory as it streams (the caller removes it if this throws).
 */
async function streamArchive<M>(
  format: ArchiveFormat<M>,
  file: string,
  head: ArchiveHead<M>,
  signal: AbortSignal | undefined,
  into?: string,
  keepModes = false,
): Promise<ArchiveSummary<M>> {
  if (head.sumsText === undefined) throw packageError(`${file}: ${SUMS_FILE} is missing; the ${format.noun} is incomplete`)
  const verifier = format.verifier(file, head.manifest, parseSums(head.sumsText), {manifestDigest: head.manifestDigest, sumsDigest: head.sumsDigest})
  const stop = new AbortController()
  // One listener per file still being read: many small files may be in flight at once.
  setMaxListeners(0, stop.signal)
  let failure: unknown
  const fail = (error: unknown): void => {
    failure ??= error
    stop.abort()
  }
  const pending: Promise<void>[] = []
  const parser = new tar.Parser({
    strict: true,
    onReadEntry(entry) {
      let name: string | undefined
      try {
        if (failure === undefined) name = verifier.admit({path: entry.path, type: tarEntryType(entry.type), mode: entry.mode ?? 0, size: entry.size ?? 0})
      } catch (error) {
        fail(error)
      }
      if (name === undefined || entry.type === 'Directory') {
        if (into && name) pending.push(mkdir(path.join(into, name), {recursive: true}).then(() => undefined, fail))
        entry.resume()
        return
      }
      const admitted = name
      pending.push(consumeEntry(verifier, entry, admitted, into, stop.signal, keepModes).then((hashed) => verifier.hashed(admitted, hashed)).catch(fail))
    },
  })
  try {
    await pipeline(createReadStream(file, {highWaterMark: STREAM_CHUNK}), parser, {signal: signal ? AbortSignal.any([signal, stop.signal]) : stop.signal})
  } catch (error) {
    const first = failure
    stop.abort()
    await Promise.allSettled(pending)
    if (first !== undefined) throw first
    signal?.throwIfAborted()
    throw unreadable(file, error)
  }
  await Promise.all(pending)
  if (failure !== undefined) throw failure
  verifier.finish()
  return {manifest: head.manifest, files: verifier.files, bytes: verifier.bytes}
}

/**
 * Reads and verifies a package archive without extracting it: recognised by its content first, then
 * read once, every entry checked as it streams past (the same rules as unpack, populate and deploy).
 */
export async function verifyArchive(file: string, signal?: AbortSignal): Promise<ArchiveSummary> {
  return streamArchive(PACKAGE_FORMAT, file, await readArchiveHead(file, signal), signal)
}

/** verifyArchive for any archive format; `known` is its head when the caller has read it already. */
export async function verifyArchiveAs<M>(format: ArchiveFormat<M>, file: string, signal?: AbortSignal, known?: ArchiveHead<M>): Promise<ArchiveSummary<M>> {
  return streamArchive(format, file, known ?? (await readArchiveHeadAs(format, file, signal)), signal)
}

/**
 * Extracts a package archive into `dir` (which must not exist), verifying it in the same single read:
 * an entry is written only once its header has passed the rules, and a refusal stops the reading.
 * Extraction goes to a sibling temporary directory first, so `dir` appears only when complete and
 * verified, and nothing is left behind otherwise; an abort stops the extraction itself. `known` is the
 * archive's head when the caller has read it already (a hand-made archive's head may take a full read).
 */
export async function extractPackage(file: string, dir: string, signal?: AbortSignal, known?: ArchiveHead): Promise<PackageManifest> {
  return extractArchiveAs(PACKAGE_FORMAT, file, dir, signal, known)
}

/**
 * extractPackage for any archive format. `keepModes`: files keep their permission bits (less the umask),
 * as a bundle's executables must; a package's files are written 0666 less the umask.
 */
export async function extractArchiveAs<M>(format: ArchiveFormat<M>, file: string, dir: string, signal?: AbortSignal, known?: ArchiveHead<M>, keepModes = false): Promise<M> {
  // The head the caller read, if any: the stream is checked against those very files, so it cannot differ.
  const head = known ?? (await readArchiveHeadAs(format, file, signal))
  const partial = `${dir}.partial-${process.pid}`
  await discard(partial)
  await makeDirectories(partial)
  try {
    const {manifest} = await streamArchive(format, file, head, signal, partial, keepModes)
    signal?.throwIfAborted()
    await rename(partial, dir)
    return manifest
  } catch (error) {
    await discard(partial)
    throw error
  }
}

/**
 * Removes a directory that an interrupted extraction may still be writing into: renamed away first,
 * so that no late write lands under its name, then removed, retrying while the last writes finish.
 */
export async function discard(dir: string): Promise<void> {
  const trash = `${dir}.discard-${process.pid}-${randomBytes(4).toString('hex')}`
  const target = await rename(dir, trash).then(
    () => trash,
    () => dir,
  )
  await rm(target, {recursive: true, force: true, maxRetries: 10, retryDelay: 20})
}
