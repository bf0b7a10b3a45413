import {Ajv} from 'ajv'
import {createHash} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {mkdir, readdir, readFile, rename, rm, stat, writeFile} from 'node:fs/promises'
import path from 'node:path'
import * as tar from 'tar'
import YAML from 'yaml'

import type {PackageManifest} from '../api.js'
import {packageError} from './errors.js'
import {manifestSchema} from './kodpkg-schema.js'

/**
 * The .kodpkg format, version 1 (docs/kodpkg.md): a plain tar archive holding kod-package.yaml,
 * SHA256SUMS, charts/, values/, hints/ and images/ (one OCI image layout for all images).
 */
export const FORMAT_VERSION = 2
/** Formats this kod reads: 1 (kod 0.1) and 2. */
export const READABLE_FORMATS: readonly number[] = [1, 2]
export const MANIFEST_FILE = 'kod-package.yaml'
export const SUMS_FILE = 'SHA256SUMS'
export const IMAGES_DIR = 'images'
export const EXTENSION = '.kodpkg'

export function packageBaseName(name: string, version: string): string {
  return `kod-${name}-${version}`
}

const ajv = new Ajv({allErrors: true})
const validate = ajv.compile<PackageManifest>(manifestSchema)

export function parseManifest(text: string, origin: string): PackageManifest {
  let data: unknown
  try {
    data = YAML.parse(text)
  } catch (error) {
    throw packageError(`${origin}: ${MANIFEST_FILE} is not valid YAML (${(error as Error).message.split('\n')[0]})`)
  }
  if (!validate(data)) {
    const first = validate.errors?.[0]
    const version = (data as {formatVersion?: unknown} | null)?.formatVersion
    if (typeof version === 'number' && !READABLE_FORMATS.includes(version)) {
      throw packageError(`${origin}: package format ${version} is not supported by this kod (reads formats ${READABLE_FORMATS.join(' and ')}); use a matching kod version`)
    }
    throw packageError(`${origin}: ${MANIFEST_FILE} is invalid: ${first?.instancePath || '/'} ${first?.message ?? ''}`.trim())
  }
  return data
}

export function stringifyManifest(manifest: PackageManifest): string {
  if (!validate(manifest)) {
    throw new Error(`internal: manifest does not match its schema: ${ajv.errorsText(validate.errors)}`)
  }
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
    ...manifest.values,
    ...manifest.hints,
    ...(manifest.images.length > 0 ? [`${IMAGES_DIR}/index.json`] : []),
  ]
}

function checkCoverage(manifest: PackageManifest, sums: Map<string, string>, origin: string): void {
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

/** Verifies an unpacked package directory: schema, then every checksum. */
export async function verifyDirectory(dir: string, signal?: AbortSignal): Promise<PackageManifest> {
  const origin = dir
  let sumsText: string
  let manifestText: string
  try {
    sumsText = await readFile(path.join(dir, SUMS_FILE), 'utf8')
    manifestText = await readFile(path.join(dir, MANIFEST_FILE), 'utf8')
  } catch {
    throw packageError(`${dir} is not a kod package: ${MANIFEST_FILE} or ${SUMS_FILE} is missing`)
  }
  const sums = parseSums(sumsText)
  const manifest = parseManifest(manifestText, origin)
  checkCoverage(manifest, sums, origin)
  const files = [...sums.keys()]
  const actual = await mapLimit(
    files,
    4,
    async (file) => {
      try {
        return await sha256File(path.join(dir, file))
      } catch {
        throw packageError(`${origin}: ${file} is missing; the package is incomplete`)
      }
    },
    signal,
  )
  for (const [index, file] of files.entries()) {
    if (actual[index] !== sums.get(file)) throw mismatch(origin, file)
  }
  return manifest
}

export interface ArchiveSummary {
  manifest: PackageManifest
  files: number
  bytes: number
}

/** Reads and verifies a .kodpkg without extracting it: every entry is hashed as it streams past. */
export async function verifyArchive(file: string): Promise<ArchiveSummary> {
  const hashes = new Map<string, string>()
  const texts = new Map<string, string>()
  const pending: Promise<void>[] = []
  let bytes = 0
  try {
    await tar.list({
      file,
      strict: true,
      onReadEntry(entry) {
        if (entry.type !== 'File') return
        const name = entry.path.replace(/^\.\//, '')
        const hash = createHash('sha256')
        const chunks: Buffer[] = []
        const keep = name === MANIFEST_FILE || name === SUMS_FILE
        entry.on('data', (chunk: Buffer) => {
          hash.update(chunk)
          bytes += chunk.length
          if (keep) chunks.push(chunk)
        })
        pending.push(
          new Promise((resolve) => {
            entry.on('end', () => {
              hashes.set(name, hash.digest('hex'))
              if (keep) texts.set(name, Buffer.concat(chunks).toString('utf8'))
              resolve()
            })
          }),
        )
      },
    })
    await Promise.all(pending)
  } catch (error) {
    throw packageError(`${file} is not a readable kod package: ${(error as Error).message}`)
  }
  const manifestText = texts.get(MANIFEST_FILE)
  const sumsText = texts.get(SUMS_FILE)
  if (manifestText === undefined || sumsText === undefined) {
    throw packageError(`${file} is not a kod package: ${MANIFEST_FILE} or ${SUMS_FILE} is missing`)
  }
  const sums = parseSums(sumsText)
  const manifest = parseManifest(manifestText, file)
  checkCoverage(manifest, sums, file)
  for (const [name, hex] of sums) {
    const actual = hashes.get(name)
    if (actual === undefined) throw packageError(`${file}: ${name} is missing; the package is incomplete`)
    if (actual !== hex) throw mismatch(file, name)
  }
  return {manifest, files: hashes.size, bytes}
}

/** kod-package.yaml of a .kodpkg, read (and schema-checked) without extracting anything. */
export async function readArchiveManifest(file: string): Promise<{text: string; manifest: PackageManifest}> {
  const chunks: Buffer[] = []
  try {
    await tar.list({
      file,
      strict: true,
      filter: (entry) => entry.replace(/^\.\//, '') === MANIFEST_FILE,
      onReadEntry(entry) {
        entry.on('data', (chunk: Buffer) => chunks.push(chunk))
      },
    })
  } catch (error) {
    throw packageError(`${file} is not a readable kod package: ${(error as Error).message}`)
  }
  if (chunks.length === 0) throw packageError(`${file} is not a kod package: ${MANIFEST_FILE} is missing`)
  const text = Buffer.concat(chunks).toString('utf8')
  return {text, manifest: parseManifest(text, file)}
}

/**
 * Extracts a .kodpkg into `dir` (which must not exist) and verifies it there. Extraction goes to a
 * sibling temporary directory first, so `dir` appears only when complete and verified.
 */
export async function extractPackage(file: string, dir: string, signal?: AbortSignal): Promise<PackageManifest> {
  const partial = `${dir}.partial-${process.pid}`
  await rm(partial, {recursive: true, force: true})
  await mkdir(partial, {recursive: true})
  try {
    try {
      await tar.extract({file, cwd: partial, strict: true, preserveOwner: false})
    } catch (error) {
      throw packageError(`${file} is not a readable kod package: ${(error as Error).message}`)
    }
    signal?.throwIfAborted()
    const manifest = await verifyDirectory(partial, signal).catch((error: Error) => {
      if (signal?.aborted) throw error
      throw packageError(error.message.replaceAll(partial, file))
    })
    await rename(partial, dir)
    return manifest
  } catch (error) {
    await rm(partial, {recursive: true, force: true})
    throw error
  }
}
