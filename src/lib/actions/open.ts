import type {KeyObject} from 'node:crypto'
import {cp, lstat, readdir, readFile, rename, rm, stat} from 'node:fs/promises'
import path from 'node:path'

import type {OpenedPackage, PackageManifest, ToolRunner} from '../../api.js'
import {isNotWritable, messageOf, packageError, usageError} from '../errors.js'
import {formatSize} from '../format.js'
import {
  type ArchiveHead,
  discard,
  extractPackage,
  firstDifference,
  generatedFiles,
  inGeneratedDir,
  MANIFEST_FILE,
  packageBaseName,
  PackageRefusal,
  parseManifest,
  parseSums,
  readArchiveHead,
  readDirectoryHead,
  SIGNATURE_FILE,
  SUMS_FILE,
  verifyDirectory,
} from '../kodpkg.js'
import {sweepUnpackLeftovers} from '../leftovers.js'
import {runSteps, step} from '../progress.js'
import {checkSignature} from '../signing.js'
import {isRegistryInput, openFromRegistry} from './registry-package.js'

async function kindOf(file: string): Promise<'directory' | 'file' | 'other' | undefined> {
  try {
    const info = await stat(file)
    return info.isDirectory() ? 'directory' : info.isFile() ? 'file' : 'other'
  } catch {
    return undefined
  }
}

/** What a path that is neither a file nor a directory is, for the refusal (never read: a FIFO would block). */
export async function specialKind(file: string): Promise<string | undefined> {
  const info = await stat(file).catch(() => undefined)
  if (!info || info.isFile() || info.isDirectory()) return undefined
  return info.isFIFO() ? 'a FIFO (named pipe)' : info.isSocket() ? 'a socket' : info.isCharacterDevice() ? 'a character device' : info.isBlockDevice() ? 'a block device' : 'no regular file'
}

/** -c checked before anything reads it: given, and a file or directory. */
export async function checkPackageInput(input: string): Promise<void> {
  if (input.trim() === '') throw usageError('-c is empty: name a package file, an unpacked package directory, or oci://<registry>/<prefix>/packages/<name>:<version>')
  const special = await specialKind(input)
  if (special) throw usageError(`${input} is not a kod package: it is ${special}; give a package file or directory`)
}

export interface OpenOptions {
  /** Where a package file is unpacked: `dir` if given, else parent/kod-<name>-<version>. */
  unpackTo: {dir?: string; parent: string}
  /**
   * When the unpack directory already exists: use it when it holds this same package, and replace it
   * when it holds another package kod unpacked and nobody changed (deploy, populate --list-commands).
   * Without it an existing directory is refused (unpack).
   */
  reuse?: boolean
  /** No progress display (--json, --list-commands). */
  quiet?: boolean
  /** --verify-key: the package must be signed with it, checked before anything else (docs/security.md). */
  verifyKey?: KeyObject
  signal?: AbortSignal
  /**
   * How to reach a package in a registry (-c oci://…); without it such an input is refused. Its metadata
   * (and, with `charts`, its charts) go into scratch space, or into `keep`/kod-<name>-<version>-from-registry
   * when printed commands must outlive the run.
   */
  registry?: {tools: ToolRunner; scratch: string; insecure: {plainHttp: boolean; skipTlsVerify: boolean}; charts: boolean; keep?: string}
}

/**
 * Where a package comes from, like helm's getters keyed by scheme: each getter recognises the inputs it
 * takes (-c), and opens them into a verified package directory. The local getter takes package files
 * (recognised by content) and unpacked directories; the registry getter oci:// references.
 */
export interface PackageGetter {
  /** What it takes, for messages: "a package file or directory", "oci://…". */
  name: string
  handles(input: string): boolean
  open(input: string, options: OpenOptions): Promise<Opened>
}

const registryGetter: PackageGetter = {
  name: 'oci://<registry>/<prefix>/packages/<name>:<version>',
  handles: isRegistryInput,
  async open(input, options) {
    const registry = options.registry
    if (!registry) throw usageError(`-c ${input}: this command takes a package file or directory, not a package in a registry`)
    const scratchDir = path.join(registry.scratch, 'from-registry')
    const opened = await openFromRegistry(input, {
      tools: registry.tools,
      scratch: registry.scratch,
      dir: scratchDir,
      insecure: registry.insecure,
      verifyKey: options.verifyKey,
      charts: registry.charts,
      quiet: Boolean(options.quiet),
      signal: options.signal,
    })
    if (!registry.keep) return {...opened, unpacked: false}
    // Printed commands name these files: they go beside the user, replacing only an earlier copy of the same package.
    const dir = path.join(registry.keep, `${packageBaseName(opened.manifest.name, opened.manifest.version)}-from-registry`)
    const earlier = await readDirectoryHead(dir).catch(() => ({manifestText: undefined, sumsText: undefined}))
    if (await kindOf(dir)) {
      const mine = await readFile(path.join(scratchDir, SUMS_FILE), 'utf8')
      if (earlier.sumsText !== mine) throw usageError(`${shown(dir)} already exists and holds something else: remove it, or run kod from another directory`)
      await rm(dir, {recursive: true, force: true})
    }
    await rename(scratchDir, dir).catch(async () => {
      await cp(scratchDir, dir, {recursive: true})
    })
    return {...opened, dir, unpacked: false, note: `${opened.note}; its values and charts are in ${shown(dir)}`}
  },
}

const localGetter: PackageGetter = {
  name: 'a package file or an unpacked package directory',
  handles: () => true,
  open: openLocal,
}

const getters: PackageGetter[] = [registryGetter, localGetter]

/** Opens -c with the first getter that takes it (see PackageGetter). */
export async function openPackage(input: string, options: OpenOptions): Promise<Opened> {
  return getters.find((getter) => getter.handles(input))!.open(input, options)
}

/** A directory's SHA256SUMS and SHA256SUMS.sig, as the signature check reads them. */
export async function directorySignature(dir: string): Promise<{sums?: Buffer; signature?: Buffer}> {
  const read = (name: string): Promise<Buffer | undefined> => readFile(path.join(dir, name)).catch(() => undefined)
  return {sums: await read(SUMS_FILE), signature: await read(SIGNATURE_FILE)}
}

export interface Opened extends OpenedPackage {
  /** The directory was created by this call (extracted, or replaced an older unpack). */
  unpacked: boolean
  /** One line for stderr saying where the package is, when -c named a file; undefined for a directory. */
  note?: string
}

/** A path as the user would type it: relative when below the current directory. */
function shown(target: string): string {
  const relative = path.relative(process.cwd(), target)
  if (relative === '') return '.'
  return relative.startsWith('..') || path.isAbsolute(relative) ? target : relative
}

/** The first entry below dir that is not one of `allowed` (regular files) or a directory leading to one. */
async function firstExtra(dir: string, allowed: Set<string>): Promise<string | undefined> {
  const needed = new Set<string>()
  for (const file of allowed) {
    const parts = file.split('/')
    for (let depth = 1; depth < parts.length; depth++) needed.add(parts.slice(0, depth).join('/'))
  }
  const entries = await readdir(dir, {recursive: true, withFileTypes: true})
  const extras = entries
    .map((entry) => ({entry, name: path.relative(dir, path.join(entry.parentPath, entry.name)).split(path.sep).join('/')}))
    .filter(({name}) => !inGeneratedDir(name))
    .filter(({entry, name}) => (entry.isDirectory() ? !needed.has(name) : !(entry.isFile() && allowed.has(name))))
    .map(({name}) => name)
    .sort()
  return extras[0]
}

/** What an existing unpack directory holds, compared to the package being opened. */
type Existing = {kind: 'not-a-directory'} | {kind: 'not-a-package'} | {kind: 'same'} | OtherPackage
type OtherPackage = {kind: 'other'; manifest?: PackageManifest; sums?: Map<string, string>; unreadable?: string}

/** Cheap look at an existing directory: only its manifest and checksums are read. */
async function existing(dir: string, head: ArchiveHead): Promise<Existing> {
  const info = await lstat(dir)
  if (!info.isDirectory()) return {kind: 'not-a-directory'}
  const {manifestText, sumsText} = await readDirectoryHead(dir)
  if (manifestText === undefined) return {kind: 'not-a-package'}
  if (manifestText === head.manifestText && sumsText === head.sumsText) return {kind: 'same'}
  try {
    if (sumsText === undefined) throw new Error(`${SUMS_FILE} is missing`)
    return {kind: 'other', manifest: parseManifest(manifestText, dir), sums: parseSums(sumsText)}
  } catch (error) {
    return {kind: 'other', unreadable: messageOf(error)}
  }
}

/** How to get past a directory in the way, for every refusal below. */
function elsewhere(input: string): string {
  return `or unpack it elsewhere with kod unpack -c ${input} -o OTHERDIR and use -c OTHERDIR`
}

function describe(manifest: PackageManifest): string {
  return `another ${manifest.name} ${manifest.version} package (created ${manifest.created})`
}

/**
 * Why an existing directory holding another package may not be replaced, and the way out; undefined
 * when it is exactly what kod unpacked: every file matches its own SHA256SUMS, and nothing else is
 * there but the files deploy generates.
 */
async function whyNotReplaceable(dir: string, input: string, found: OtherPackage, signal?: AbortSignal): Promise<string | undefined> {
  const refuse = (why: string, fix = ''): string => `${shown(dir)} ${why}, so kod will not replace it with ${input}: ${fix}remove ${shown(dir)}, ${elsewhere(input)}`
  if (!found.manifest || !found.sums) return refuse(`holds a package kod cannot read (${found.unreadable})`)
  const what = describe(found.manifest)
  const difference = await firstDifference(dir, found.sums, signal)
  if (difference) return refuse(`holds ${what} whose ${difference.file} ${difference.missing ? 'is missing' : 'was changed'} since it was unpacked`)
  const extra = await firstExtra(dir, replaceable(found))
  if (extra) return refuse(`holds ${what} and also ${extra}, which is not part of it`, `move ${extra} out and run again, `)
  return undefined
}

/** What an unchanged unpack may hold: the files its SHA256SUMS lists, SHA256SUMS, and deploy's files. */
function replaceable(found: OtherPackage): Set<string> {
  return new Set([...found.sums!.keys(), SUMS_FILE, ...generatedFiles(found.manifest!, found.sums!.keys())])
}

/**
 * Opens a package given with -c: a directory is verified in place; a package file (recognised by its
 * content, whatever its name) is extracted, atomically and verified, into the unpack directory. With
 * `reuse`, an existing unpack directory holding the same package is used as it is, and one holding
 * another package that kod unpacked and nobody changed (a re-made package of the same version) is
 * replaced: the new package is extracted beside it and verified, then swapped in, then the old one
 * removed. Anything else in the way is refused with exit 2 and the way out. Long steps show progress.
 */
async function openLocal(input: string, options: OpenOptions): Promise<Opened> {
  const {signal} = options
  await checkPackageInput(input)
  const kind = await kindOf(input)
  if (kind === undefined) throw usageError(`package not found: ${input}`)
  const quiet = Boolean(options.quiet)
  if (kind === 'directory') {
    const dir = path.resolve(input)
    if (options.verifyKey) {
      const {sums, signature} = await directorySignature(dir)
      checkSignature(sums, signature, options.verifyKey, input)
    }
    let manifest: PackageManifest | undefined
    await runSteps([step(`Verify ${shown(dir)}`, `Verified ${shown(dir)}`, async () => void (manifest = await verifyDirectory(dir, signal)))], {quiet})
    return {dir, manifest: manifest!, unpacked: false}
  }
  // The manifest names the directory: read it first, before anything is written.
  const head = await readArchiveHead(input, signal)
  if (head.sumsText === undefined) throw packageError(`${input}: ${SUMS_FILE} is missing; the package is incomplete`)
  // Before anything is written: the signature over SHA256SUMS, whose every line the extraction then checks.
  if (options.verifyKey) checkSignature(head.sumsBytes, head.signature, options.verifyKey, input)
  const {dir: fixed, parent} = options.unpackTo
  const dir = path.resolve(fixed ?? path.join(parent, packageBaseName(head.manifest.name, head.manifest.version)))
  const size = formatSize((await stat(input)).size)
  // A directory kod cannot write into is bad input, not a failure (root passes access(), so try and see).
  const unwritable = (error: unknown): never => {
    if (!isNotWritable(error)) throw error
    const where = shown(path.dirname(dir))
    const named = where === '.' ? `the current directory (${path.dirname(dir)})` : where
    if (fixed !== undefined) throw usageError(`cannot unpack ${input} into ${shown(dir)}: ${named} is not writable; give -o a directory you can write to`)
    throw usageError(`cannot unpack ${input} into ${named}: it is not writable; run kod from a directory you can write to, or unpack it with kod unpack -c ${input} -o DIR and use -c DIR`)
  }
  await sweepUnpackLeftovers(dir, {debug: () => {}})
  const extractTitles = [`Extract and verify ${path.basename(input)} (${size})`, `Extracted and verified ${path.basename(input)} (${size}) into ${shown(dir)}`] as const
  if ((await kindOf(dir)) === undefined) {
    const manifest = await extractInto(input, head, dir, extractTitles, quiet, signal).catch(unwritable)
    return {dir, manifest, unpacked: true, note: `unpacked ${input} into ${shown(dir)}`}
  }

  const found = await existing(dir, head)
  if (!options.reuse) throw usageError(`${shown(dir)} already exists${refusedUnpack(found, dir)}: remove it or choose another directory with -o`)
  if (found.kind === 'not-a-directory') throw usageError(`${shown(dir)} already exists and is not a plain directory: remove it, ${elsewhere(input)}`)
  if (found.kind === 'not-a-package') {
    throw usageError(`${shown(dir)} already exists and is not an unpacked kod package (no ${MANIFEST_FILE}): remove it, ${elsewhere(input)}`)
  }
  if (found.kind === 'same') {
    let manifest: PackageManifest | undefined
    const verifying = `${shown(dir)}, which already holds this package`
    await runSteps([step(`Verify ${verifying}`, `Verified ${verifying}`, async () => void (manifest = await reuse(dir, input, signal)))], {quiet})
    return {dir, manifest: manifest!, unpacked: false, note: `using ${shown(dir)}, which already holds ${input} (checksums verified)`}
  }
  let manifest: PackageManifest | undefined
  await runSteps(
    [
      step(`Check that ${shown(dir)} (an earlier unpack) is unchanged`, `Checked that ${shown(dir)} (an earlier unpack) is unchanged`, async () => {
        const refusal = await whyNotReplaceable(dir, input, found, signal)
        if (refusal) throw usageError(refusal)
      }),
      step(...extractTitles, async () => void (manifest = await replace(input, head, dir, found, signal))),
    ],
    {quiet},
  ).catch(unwritable)
  return {
    dir,
    manifest: manifest!,
    unpacked: true,
    note: `replaced ${shown(dir)}, an unchanged unpack of ${describe(found.manifest!)}, with ${input}`,
  }
}

/** unpack refuses any existing directory; say what it holds so the user knows what removing it costs. */
function refusedUnpack(found: Existing, dir: string): string {
  if (found.kind === 'same') return ` and holds this same package (use it as it is with -c ${shown(dir)})`
  if (found.kind === 'other' && found.manifest) return ` and holds ${describe(found.manifest)}`
  return ''
}

/**
 * The existing unpack of this same package, verified by the rules every package meets; a changed one
 * is refused (exit 2: the package is fine, the directory is not), never repaired.
 */
async function reuse(dir: string, input: string, signal?: AbortSignal): Promise<PackageManifest> {
  try {
    return await verifyDirectory(dir, signal)
  } catch (error) {
    if (!(error instanceof PackageRefusal)) throw error
    const what =
      error.kind === 'mismatch'
        ? `its ${error.entry} was changed since it was unpacked`
        : error.kind === 'missing'
          ? `its ${error.entry} was removed since it was unpacked`
          : `it fails verification (${error.message.replace(`${dir}: `, '')})`
    throw usageError(`${shown(dir)} holds this package, but ${what}: remove ${shown(dir)} to unpack ${input} afresh`)
  }
}

/** Extracts into a sibling temporary directory, renamed into place only when complete and verified. */
async function extractInto(input: string, head: ArchiveHead, dir: string, titles: readonly [string, string], quiet: boolean, signal?: AbortSignal): Promise<PackageManifest> {
  let manifest: PackageManifest | undefined
  const incoming = `${dir}.extracting-${process.pid}`
  try {
    await runSteps(
      [
        step(...titles, async () => {
          manifest = await extractPackage(input, incoming, signal, head)
          await rename(incoming, dir)
        }),
      ],
      {quiet},
    )
    return manifest!
  } finally {
    await discard(incoming)
  }
}

/**
 * Replaces an unchanged earlier unpack with the new package: extracted and verified beside it, the
 * extra-file check repeated (someone may have written there meanwhile), then two renames, restoring
 * the old directory if the second fails. The old one is removed last.
 */
async function replace(input: string, head: ArchiveHead, dir: string, found: OtherPackage, signal?: AbortSignal): Promise<PackageManifest> {
  const incoming = `${dir}.extracting-${process.pid}`
  const outgoing = `${dir}.replaced-${process.pid}`
  let swapped = false
  try {
    const manifest = await extractPackage(input, incoming, signal, head)
    signal?.throwIfAborted()
    const extra = await firstExtra(dir, replaceable(found))
    if (extra) throw usageError(`${shown(dir)} gained ${extra} while kod unpacked ${input}, so kod will not replace it: remove ${shown(dir)}, ${elsewhere(input)}`)
    await rename(dir, outgoing)
    try {
      await rename(incoming, dir)
      swapped = true
    } catch (error) {
      await rename(outgoing, dir)
      throw error
    }
    return manifest
  } finally {
    await discard(incoming)
    // Only once the new package is in place: until then the old one is all there is.
    if (swapped) await rm(outgoing, {recursive: true, force: true})
  }
}

/**
 * Everything a package records that the operator on the air-gapped side must hear before anything is
 * pushed or installed: the package's warnings, and each image no value relocates (its note), once each.
 */
export function packageWarnings(manifest: PackageManifest): string[] {
  const warnings = manifest.warnings ?? []
  const several = manifest.units.length > 1
  const notes = manifest.units.flatMap((unit) =>
    unit.images
      .filter((image) => image.note && !warnings.some((line) => line.startsWith(`${image.ref} `) && line.includes(image.note!)))
      .map(
        (image) =>
          `${image.ref}${several ? ` (release ${unit.id})` : ''} cannot be relocated through values: ${image.note}${image.external ? '; accepted when the package was made (kod package --allow-external): the cluster pulls it from outside the private registry' : ''}`,
      ),
  )
  return [...new Set([...warnings, ...notes])]
}
