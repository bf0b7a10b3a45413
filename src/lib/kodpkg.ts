import {Ajv} from 'ajv'
import {createHash, randomBytes} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {mkdir, open, readdir, readFile, rename, rm, stat, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {pipeline} from 'node:stream/promises'
import * as tar from 'tar'
import YAML from 'yaml'

import type {PackagedImage, PackageManifest, UnitImage} from '../api.js'
import {ExitCode, KodError, packageError, usageError} from './errors.js'
import {legacyManifestSchema, manifestSchema} from './kodpkg-schema.js'

/**
 * The .kodpkg format (docs/kodpkg.md): a plain tar archive holding kod-package.yaml (first),
 * SHA256SUMS, charts/, values/, hints/ and images/ (one OCI image layout for all images). Readers
 * recognise it by that content, never by the file's name.
 */
export const FORMAT_VERSION = 3
/** Formats this kod reads: 1 and 2 (one chart, read as one unit) and 3. */
export const READABLE_FORMATS: readonly number[] = [1, 2, 3]
export const MANIFEST_FILE = 'kod-package.yaml'
export const SUMS_FILE = 'SHA256SUMS'
export const IMAGES_DIR = 'images'
export const EXTENSION = '.kodpkg'

export function packageBaseName(name: string, version: string): string {
  return `kod-${name}-${version}`
}

const ajv = new Ajv({allErrors: true})
const validate = ajv.compile<PackageManifest>(manifestSchema)
const validateLegacy = ajv.compile<LegacyManifest>(legacyManifestSchema)

/** kod-package.yaml in format 1 or 2: one chart, its package-time values and its images at the top level. */
interface LegacyManifest extends Omit<PackageManifest, 'formatVersion' | 'units' | 'images'> {
  formatVersion: 1 | 2
  values: string[]
  images: Array<Omit<PackagedImage, 'units'> & Omit<UnitImage, 'name' | 'ref'>>
}

/** A format-1 or -2 manifest as format 3 says it: one unit, named after the chart, holding the values and bindings. */
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
  const check = legacy ? validateLegacy : validate
  if (!check(data)) {
    const first = check.errors?.[0]
    throw packageError(`${origin}: ${MANIFEST_FILE} is invalid: ${first?.instancePath || '/'} ${first?.message ?? ''}`.trim())
  }
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
  if (manifest.formatVersion !== FORMAT_VERSION || !validate(manifest)) {
    throw new Error(`internal: manifest does not match its schema: ${ajv.errorsText(validate.errors)}`)
  }
  checkConsistency(manifest, 'internal')
  return YAML.stringify(manifest, {lineWidth: 0})
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer)
  return hash.digest('hex')
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
  const missing = referencedFiles(manifest).filter((file) => !sums.has(file))
  if (missing.length > 0) throw packageError(`${origin}: ${missing[0]} is not covered by ${SUMS_FILE}; the package is incomplete or was tampered with`)
}

function mismatch(origin: string, file: string): Error {
  return packageError(`${origin}: checksum mismatch for ${file}: the package was changed or damaged after it was written; get a fresh copy`)
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
): Promise<{files: number; bytes: number}> {
  await writeFile(path.join(staging, MANIFEST_FILE), stringifyManifest(manifest))
  await rm(path.join(staging, SUMS_FILE), {force: true})
  const files = await listFiles(staging)
  const hashes = await mapLimit(files, 4, (file) => sha256File(path.join(staging, file)), signal)
  await writeFile(path.join(staging, SUMS_FILE), formatSums(new Map(files.map((file, index) => [file, hashes[index]]))))
  const order = [MANIFEST_FILE, SUMS_FILE, ...files.filter((file) => file !== MANIFEST_FILE)]
  const partial = `${outFile}.partial-${process.pid}`
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

/** An archive entry's path without a leading "./" (tar run on "." writes them so). */
function entryName(entry: {path: string}): string {
  return entry.path.replace(/^\.\//, '')
}

/** -c names something that is no kod package at all: a usage error that says what it is instead. */
function notAPackage(input: string, what: string): Error {
  return usageError(`${input} is not a kod package: ${what}`)
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

/** Verifies an unpacked package directory: schema, then every checksum. */
export async function verifyDirectory(dir: string, signal?: AbortSignal): Promise<PackageManifest> {
  const origin = dir
  const {manifestText, sumsText} = await readDirectoryHead(dir)
  if (manifestText === undefined) {
    const chart = await stat(path.join(dir, 'Chart.yaml')).then(
      () => true,
      () => false,
    )
    throw notAPackage(
      dir,
      chart ? `it is a Helm chart directory; make a package from it with kod package -c ${dir}` : `it holds no ${MANIFEST_FILE}`,
    )
  }
  if (sumsText === undefined) throw packageError(`${origin}: ${SUMS_FILE} is missing; the package is incomplete`)
  const sums = parseSums(sumsText)
  const manifest = parseManifest(manifestText, origin)
  checkCoverage(manifest, sums, origin)
  const difference = await firstDifference(dir, sums, signal)
  if (difference?.missing) throw packageError(`${origin}: ${difference.file} is missing; the package is incomplete`)
  if (difference) throw mismatch(origin, difference.file)
  return manifest
}

/** The head of a package archive: its manifest, and the manifest and checksums exactly as stored. */
export interface ArchiveHead {
  manifest: PackageManifest
  manifestText: string
  /** Absent when the archive holds no SHA256SUMS (verification then refuses it). */
  sumsText?: string
}

/** Magic numbers of what people put where a package belongs, and what to tell them. */
const MAGIC: Array<[number[], string]> = [
  [[0x1f, 0x8b], 'it is gzip-compressed data with no tar archive inside'],
  [[0x28, 0xb5, 0x2f, 0xfd], 'it is zstd-compressed, which this kod cannot read: decompress it (zstd -d) and give the tar inside'],
  [[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], 'it is xz-compressed: decompress it (xz -d) and give the tar inside'],
  [[0x42, 0x5a, 0x68], 'it is bzip2-compressed: decompress it (bunzip2) and give the tar inside'],
  [[0x50, 0x4b, 0x03, 0x04], 'it is a zip archive; a kod package is a tar archive'],
]

/** What a file that is not a tar archive is, from its first bytes. */
async function describeNonTar(file: string): Promise<string> {
  const handle = await open(file, 'r')
  try {
    const {buffer, bytesRead} = await handle.read(Buffer.alloc(8), 0, 8, 0)
    if (bytesRead === 0) return 'it is empty'
    const found = MAGIC.find(([magic]) => magic.every((byte, index) => buffer[index] === byte))
    return found?.[1] ?? 'it is not a tar archive'
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
  const texts = new Map<string, string>()
  let first: string | undefined
  let chart: string | undefined
  const enough = new AbortController()
  const parser = new tar.Parser({
    strict: true,
    onReadEntry(entry) {
      const name = entryName(entry)
      first ??= name
      if (!chart && /^[^/]+\/Chart\.yaml$/.test(name)) chart = name
      if (entry.type !== 'File' || (name !== MANIFEST_FILE && name !== SUMS_FILE)) {
        entry.resume()
        return
      }
      const chunks: Buffer[] = []
      entry.on('data', (chunk: Buffer) => chunks.push(chunk))
      entry.on('end', () => {
        texts.set(name, Buffer.concat(chunks).toString('utf8'))
        if (first === MANIFEST_FILE && texts.has(MANIFEST_FILE) && texts.has(SUMS_FILE)) enough.abort()
      })
    },
  })
  try {
    await pipeline(createReadStream(file), parser, {signal: signal ? AbortSignal.any([signal, enough.signal]) : enough.signal})
  } catch {
    // Stopped on purpose, interrupted, or not (entirely) a tar archive: what was read decides below.
    signal?.throwIfAborted()
  }
  const manifestText = texts.get(MANIFEST_FILE)
  const sumsText = texts.get(SUMS_FILE)
  if (manifestText !== undefined && (first === MANIFEST_FILE || sumsText !== undefined)) {
    return {manifest: parseManifest(manifestText, file), manifestText, sumsText}
  }
  if (first === undefined) throw notAPackage(file, await describeNonTar(file))
  if (chart) throw notAPackage(file, `it is a Helm chart archive (${chart}); make a package from it with kod package -c ${file}`)
  if (manifestText !== undefined) throw notAPackage(file, `it is a tar archive holding ${MANIFEST_FILE} but no ${SUMS_FILE}`)
  throw notAPackage(file, `it is a tar archive without ${MANIFEST_FILE}`)
}

export interface ArchiveSummary {
  manifest: PackageManifest
  files: number
  bytes: number
}

/** The one-line refusal of an archive the tar reader gave up on part way. */
function unreadable(file: string, error: unknown): Error {
  return packageError(`${file} is damaged or truncated (${(error as Error).message.split('\n')[0]}); get a fresh copy`)
}

/**
 * Reads and verifies a package archive without extracting it: recognised by its content first, then
 * every entry is hashed as it streams past.
 */
export async function verifyArchive(file: string, signal?: AbortSignal): Promise<ArchiveSummary> {
  const head = await readArchiveHead(file, signal)
  const hashes = new Map<string, string>()
  const pending: Promise<void>[] = []
  let bytes = 0
  const parser = new tar.Parser({
    strict: true,
    onReadEntry(entry) {
      if (entry.type !== 'File') {
        entry.resume()
        return
      }
      const name = entryName(entry)
      const hash = createHash('sha256')
      entry.on('data', (chunk: Buffer) => {
        hash.update(chunk)
        bytes += chunk.length
      })
      pending.push(
        new Promise((resolve) => {
          entry.on('end', () => {
            hashes.set(name, hash.digest('hex'))
            resolve()
          })
        }),
      )
    },
  })
  try {
    await pipeline(createReadStream(file), parser, signal ? {signal} : {})
    await Promise.all(pending)
  } catch (error) {
    signal?.throwIfAborted()
    throw unreadable(file, error)
  }
  if (head.sumsText === undefined) throw packageError(`${file}: ${SUMS_FILE} is missing; the package is incomplete`)
  const sums = parseSums(head.sumsText)
  checkCoverage(head.manifest, sums, file)
  for (const [name, hex] of sums) {
    const actual = hashes.get(name)
    if (actual === undefined) throw packageError(`${file}: ${name} is missing; the package is incomplete`)
    if (actual !== hex) throw mismatch(file, name)
  }
  return {manifest: head.manifest, files: hashes.size, bytes}
}

/**
 * Extracts a package archive into `dir` (which must not exist) and verifies it there. Extraction goes
 * to a sibling temporary directory first, so `dir` appears only when complete and verified; an abort
 * stops the extraction itself, not only what follows it.
 */
export async function extractPackage(file: string, dir: string, signal?: AbortSignal): Promise<PackageManifest> {
  const partial = `${dir}.partial-${process.pid}`
  await discard(partial)
  await mkdir(partial, {recursive: true})
  try {
    try {
      await pipeline(createReadStream(file), tar.extract({cwd: partial, strict: true, preserveOwner: false}), signal ? {signal} : {})
    } catch (error) {
      signal?.throwIfAborted()
      throw unreadable(file, error)
    }
    signal?.throwIfAborted()
    const manifest = await verifyDirectory(partial, signal).catch((error: Error) => {
      if (signal?.aborted) throw error
      throw new KodError(error.message.replaceAll(partial, file), {exit: error instanceof KodError ? error.exit : ExitCode.badPackage})
    })
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
  const trash = `${dir}.discard-${randomBytes(4).toString('hex')}`
  const target = await rename(dir, trash).then(
    () => trash,
    () => dir,
  )
  await rm(target, {recursive: true, force: true, maxRetries: 10, retryDelay: 20})
}
