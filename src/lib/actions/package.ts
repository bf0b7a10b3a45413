import type {KeyObject} from 'node:crypto'
import {access, copyFile, mkdir, mkdtemp, rm, stat} from 'node:fs/promises'
import path from 'node:path'

import type {FoundImage, FoundUnit, Logger, PackageManifest, PackagedImage, PackageRequest, PlannedCommand, SourceContext, SourceError, SourcePackage, Unit} from '../../api.js'
import {LOOK_CONCURRENCY, makeDirectories, pullBytes, runPull} from '../bounds.js'
import {ExitCode, fileSystemError, isNotWritable, KodError, messageOf, usageError} from '../errors.js'
import {commandHost, withRetries} from '../retry.js'
import {formatSize} from '../format.js'
import {describeImage, layoutNameFor, layoutNameOf, manifestDigest, type Mirror, pullCommand, pullSource, sourceManifest} from '../images.js'
import {EXTENSION, FORMAT_VERSION, IMAGES_DIR, MANIFEST_FILE, packageBaseName, packageHead, readArchiveHead, startLimited} from '../kodpkg.js'
import {stagingPrefix, sweepPackageLeftovers} from '../leftovers.js'
import {findImage, isIndex, pruneLayout, readBlob, writeImageIndex} from '../oci.js'
import {StreamingArchive} from '../package-writer.js'
import {formatPlatform, type IndexEntry, type IndexSelection, noPlatformMessage, type PlatformChoice, recordedPlatforms, selectPlatforms, servesAny} from '../platforms.js'
import {countedSubtasks, keepSaying, runSteps} from '../progress.js'
import {normalizeRef, parseRef, sameImage} from '../refs.js'
import {optionsFor, type SourceFlagsGiven} from '../source-flags.js'
import type {SourceRegistry} from '../sources.js'

export interface PackageOptions {
  request: PackageRequest
  kind?: string
  /** Flags source kinds declare, as given: the picked source's become request.options. */
  sourceFlags?: SourceFlagsGiven
  /** Directory the package is written into, as kod-<chart>-<version>.kodpkg. */
  outDir: string
  /** The package's path instead, when the user named the file (-o FILE.kodpkg); it must be in outDir. */
  outFile?: string
  kodVersion: string
  quiet: boolean
  /** --registry-mirror: pull through these, recording the original references. */
  mirrors?: Mirror[]
  /** Called with each step's cleanup (the staging directory), so an interrupt removes it. */
  onCleanup(fn: () => Promise<unknown>): void
  /** --sign-key: the package's SHA256SUMS is signed with it. */
  signingKey?: KeyObject
  /** --allow-external: images (any spelling) that cannot be relocated and are accepted all the same. */
  allowExternal?: string[]
  /** --platform / --all-platforms, or the packaging host's platform (default: every platform, as before platforms could be chosen). */
  platforms?: PlatformChoice
}

export interface PackageResult {
  file: string
  manifest: PackageManifest
  bytes: number
}

/**
 * Errors from a plugin become one-line kod errors (exit 2 when the plugin says the input is bad; a file-system
 * error names its path and what to do); kod's own pass through.
 */
export function asKodError(error: unknown): KodError {
  if (error instanceof KodError) return error
  const fsFailure = fileSystemError(error)
  if (fsFailure) return fsFailure
  const exit = (error as SourceError | null)?.exit === ExitCode.usage ? ExitCode.usage : ExitCode.failure
  return new KodError(messageOf(error), {exit})
}

/**
 * One entry per distinct image (by normalised name), merging where it was found, what sets it and any
 * note. A binding computed against another spelling of the reference keeps that spelling in `ref`.
 */
export function mergeImages(found: FoundImage[]): Array<FoundImage & {name: string}> {
  const byName = new Map<string, FoundImage & {name: string}>()
  for (const image of found) {
    let name: string
    try {
      name = normalizeRef(image.ref)
    } catch {
      throw new KodError(`the chart renders an invalid image reference "${image.ref}" (in ${image.foundIn.join(', ')})`)
    }
    const known = byName.get(name)
    if (!known) {
      byName.set(name, {...image, name, values: [...image.values], foundIn: [...image.foundIn]})
      continue
    }
    known.foundIn = [...new Set([...known.foundIn, ...image.foundIn])].sort()
    for (const binding of image.values) {
      const spelled = image.ref === known.ref ? binding : {...binding, ref: binding.ref ?? image.ref}
      if (!known.values.some((other) => other.path === spelled.path)) known.values.push(spelled)
    }
    if (image.note) known.note = known.note ? `${known.note}; ${image.note}` : image.note
  }
  return [...byName.values()]
}

/** An image the package stores, and the installed units that run it (each image once, whatever the units). */
export interface StoredImage {
  name: string
  /** As the first unit that runs it renders it. */
  ref: string
  units: string[]
}

/** Every unit's images merged by name within the unit (mergeImages), the units' image entries, and the images to store. */
export function collectImages(units: readonly FoundUnit[]): {units: Unit[]; stored: StoredImage[]} {
  const stored = new Map<string, StoredImage>()
  const collected = units.map((unit): Unit => {
    const images = unit.installed ? mergeImages(unit.images) : []
    for (const image of images) {
      const known = stored.get(image.name)
      if (known) known.units.push(unit.id)
      else stored.set(image.name, {name: image.name, ref: image.ref, units: [unit.id]})
    }
    return {
      ...unit,
      images: images.map(({name, ref, values, foundIn, note}) => ({name, ref, values, foundIn, ...(note ? {note} : {})})),
    }
  })
  return {units: collected, stored: [...stored.values()]}
}

/**
 * An image no value relocates would be pulled from outside the private registry on the far side, where
 * deploy would refuse it: refused here instead (exit 6), before anything is pulled, unless accepted by
 * name with --allow-external, which is recorded (format 4: `external`) so deploy lets it through, saying
 * so. A name that matches no such image is a mistake worth stopping for.
 */
export function acceptUnrelocatable(units: Unit[], allowed: readonly string[], log: Pick<Logger, 'warn'>): Unit[] {
  const several = units.filter((unit) => unit.installed).length > 1
  const all = units.flatMap((unit) => unit.images.map((image) => ({unit, image})))
  const stuck = all.filter(({image}) => image.note)
  const describe = ({unit, image}: (typeof all)[number]): string => `${image.ref} (${several ? `release ${unit.id}: ` : ''}${image.foundIn.join(', ')}: ${image.note})`
  for (const name of allowed) {
    if (stuck.some(({image}) => sameImage(image.ref, name))) continue
    const runs = all.some(({image}) => sameImage(image.ref, name))
    throw usageError(
      runs
        ? `--allow-external ${name}: kod relocates that image through values, there is nothing to accept${stuck.length > 0 ? `; images it cannot relocate: ${[...new Set(stuck.map(({image}) => image.ref))].join(', ')}` : ''}`
        : `--allow-external ${name}: the package runs no such image; images it cannot relocate: ${[...new Set(stuck.map(({image}) => image.ref))].join(', ') || 'none'}`,
    )
  }
  const accepted = (ref: string): boolean => allowed.some((name) => sameImage(ref, name))
  const refused = stuck.filter(({image}) => !accepted(image.ref))
  if (refused.length > 0) {
    throw new KodError(
      `refusing to package: ${refused.length} image(s) cannot be relocated through values, so the cluster would pull them from outside the private registry: ${refused.map((entry) => describe(entry)).join('; ')}. Relocate each with a hint (--hints FILE, docs/hints.md) or your -f values, or accept it with --allow-external IMAGE`,
      {exit: ExitCode.notRelocated},
    )
  }
  for (const entry of stuck) log.warn(`${describe(entry)} cannot be relocated through values: accepted with --allow-external, so deploy lets it be pulled from outside the private registry`)
  return units.map((unit) => ({...unit, images: unit.images.map((image) => (image.note && accepted(image.ref) ? {...image, external: true as const} : image))}))
}

/** Names -o takes as the package file: kod's own extension, and the .tgz / .tar names a package may go by. */
const PACKAGE_FILE_NAME = /\.(kodpkg|tgz|tar)$/

/** What -o means: a value ending in .kodpkg, .tgz or .tar that is not an existing directory names the file, anything else a directory. */
export function outputTarget(output: string, isDirectory: boolean): {outDir: string; outFile?: string} {
  const resolved = path.resolve(output)
  if (PACKAGE_FILE_NAME.test(output) && !isDirectory) return {outDir: path.dirname(resolved), outFile: resolved}
  return {outDir: resolved}
}

/**
 * Whether kod may store an image with fewer platforms than its source index (a new index, so a new
 * digest). Always, unless the chart pins the image by digest: then every value that relocates it must
 * carry that digest, so that deploy writes the stored digest in its place (pointAtStored); an image whose
 * digest the chart renders from another value (image.digest beside image.registry) keeps every platform,
 * as only the source's own index has the digest the chart asks for.
 */
export function canTrim(name: string, units: readonly Unit[]): boolean {
  const pinned = parseRef(name).digest
  if (!pinned) return true
  return units.every((unit) =>
    unit.images
      .filter((image) => image.name === name)
      .every((image) => (image.values.length > 0 || image.note !== undefined) && image.values.every((binding) => binding.value.slice(binding.replace).includes(pinned))),
  )
}

/**
 * After platforms were trimmed from an index the chart pins by digest: each value that carried the
 * source's digest carries the stored index's instead (the part deploy keeps, after the location it
 * replaces), so the relocated reference names a digest the private registry holds.
 */
export function pointAtStored(units: readonly Unit[], images: readonly PackagedImage[]): Unit[] {
  const stored = new Map(images.filter((image) => image.sourceDigest && parseRef(image.name).digest === image.sourceDigest).map((image) => [image.name, image]))
  if (stored.size === 0) return [...units]
  return units.map((unit) => ({
    ...unit,
    images: unit.images.map((entry) => {
      const image = stored.get(entry.name)
      if (!image) return entry
      const values = entry.values.map((binding) => ({
        ...binding,
        value: binding.value.slice(0, binding.replace) + binding.value.slice(binding.replace).replaceAll(image.sourceDigest!, image.digest),
      }))
      return {...entry, values}
    }),
  }))
}

/** What pulling one image gave: the stored image, its bytes, and a warning to record. */
interface Pulled {
  image: PackagedImage
  bytes: number
  /** Every blob the image reaches in the layout, by digest (some may be absent: non-distributable layers). */
  blobs: ReadonlyMap<string, {size: number; manifest: boolean}>
  warning?: string
}

/** How one image is pulled: its pull command, and the one-line error of a pull that failed. */
function pullOf(image: StoredImage, layout: string, options: PackageOptions): {command: PlannedCommand; layoutName: string; via?: string; cannotPull(error: unknown): never} {
  const ref = parseRef(image.name)
  const layoutName = layoutNameFor(image.name)
  const via = pullSource(ref, options.mirrors).via
  const command = pullCommand(ref, layout, layoutName, options.request.insecureRegistries, options.mirrors)
  const cannotPull = (error: unknown): never => {
    // A missing tool is said as it is, the same everywhere (exit 3).
    if ((error as KodError).exit === ExitCode.toolMissing) throw error
    const detail = messageOf(error).replace(/^skopeo copy failed: /, '')
    throw new KodError(`cannot pull ${image.ref}${via ? ` through mirror ${via}` : ''}: ${detail}`, {
      exit: (error as KodError).exit,
    })
  }
  return {command, layoutName, ...(via ? {via} : {}), cannotPull}
}

/** What the source said of an image before its pull: its top manifest or index, and how many bytes the pull moves (undefined: unknown). */
interface SourceLook {
  raw: string | undefined
  bytes: number | undefined
}

/**
 * The source's first answer for each image (sourceManifest, then pullBytes for the pull's time bound),
 * asked a few at a time ahead of the pulls, which take each answer as it comes: each look is a process
 * and a round trip, which one by one cost as much as a small pull. A source that does not answer within
 * ANSWER_MS fails the pull that needs it, named.
 */
function lookAtSources(ctx: SourceContext, images: readonly StoredImage[], layout: string, options: PackageOptions): Array<Promise<SourceLook>> {
  return startLimited(
    images,
    LOOK_CONCURRENCY,
    async (image) => {
      const {command, cannotPull} = pullOf(image, layout, options)
      const look = async (): Promise<SourceLook> => {
        const raw = await sourceManifest(ctx.tools, command)
        return {raw, bytes: await pullBytes(ctx.tools, command, {top: raw})}
      }
      return look().catch(cannotPull)
    },
    ctx.cancelSignal,
  )
}

/**
 * Pulls one image into the layout under its layout name (layoutNameFor: valid whatever the
 * reference's spelling) and describes what was stored, refusing a digest other than the pinned one.
 *
 * With a choice of platforms (not --all-platforms), the source's top manifest is read first. An index
 * holding platforms that were not asked for is stored trimmed (when canTrim): each kept entry is pulled
 * by digest under a scratch name, then kod writes the index of exactly those entries (the source's
 * media type and fields kept) under the image's name. An index with none of the platforms asked for is
 * refused (exit 2) before it is pulled; a single-platform image for another platform is kept, with a
 * warning the package records.
 */
async function pullImage(ctx: SourceContext, image: StoredImage, layout: string, options: PackageOptions, trimmable: boolean, looked: SourceLook): Promise<Pulled> {
  const ref = parseRef(image.name)
  const {command, layoutName, via, cannotPull} = pullOf(image, layout, options)
  const insecure = options.request.insecureRegistries
  // Copies are retried while a registry that answered comes back; a look at a manifest (lookAtSources) is
  // not (its failure leaves the choice to what the copy stores), and does not count as an answer.
  const pulling = <T>(work: () => Promise<T>): Promise<T> => withRetries(commandHost(command.args), `pulling ${image.ref}`, ctx.log, work, {signal: ctx.cancelSignal}).catch(cannotPull)
  const servedOther = (digest: string): KodError =>
    new KodError(`${via ?? ref.host} served ${digest} for ${image.ref}, which is pinned to ${ref.digest}: refusing it`, {exit: ExitCode.toolFailed})
  const choice = options.platforms ?? {all: true}
  const wanted = choice.all ? undefined : choice.platforms
  const fromHost = !choice.all && choice.fromHost
  const asIndex = (raw: string | undefined): (Record<string, unknown> & {manifests: IndexEntry[]}) | undefined => {
    if (raw === undefined) return undefined
    try {
      const parsed = JSON.parse(raw) as Record<string, unknown>
      return parsed && isIndex(parsed) && Array.isArray(parsed.manifests) ? (parsed as Record<string, unknown> & {manifests: IndexEntry[]}) : undefined
    } catch {
      return undefined
    }
  }
  /** Which entries of an index to keep; refuses an index that has none of the platforms asked for. */
  const choose = (index: {manifests: IndexEntry[]} | undefined): IndexSelection | undefined => {
    const selection = index && wanted ? selectPlatforms(index.manifests, wanted) : undefined
    if (selection && selection.keptPlatforms.length === 0) throw usageError(noPlatformMessage(image.ref, selection.available, wanted!, fromHost))
    return selection && selection.droppedPlatforms.length > 0 ? selection : undefined
  }
  const keptWhole = (selection: IndexSelection): string =>
    `${image.ref} is pinned to the digest of a multi-platform index by a value that does not also set where it is pulled from (the digest is set apart), so kod cannot point it at a trimmed copy: kept all its platforms (${selection.available.join(', ')}), not only ${selection.keptPlatforms.join(', ')}`

  const raw = wanted ? looked.raw : undefined
  const index = asIndex(raw)
  const selection = choose(index)
  let trimmed: {sourceDigest: string; droppedPlatforms: string[]} | undefined
  if (selection && trimmable && index && raw !== undefined) {
    const served = manifestDigest(raw, ref.digest)
    if (ref.digest && !served.matches) throw servedOther(served.digest)
    const scratch: string[] = []
    for (const [position, entry] of selection.kept.entries()) {
      const name = `${layoutName}-p${position}`
      const child = pullCommand({...ref, tag: undefined, digest: entry.digest}, layout, name, insecure, options.mirrors)
      await pulling(() => runPull(ctx.tools, child))
      scratch.push(name)
    }
    await writeImageIndex(layout, layoutName, {...index, manifests: selection.kept}, scratch)
    trimmed = {sourceDigest: served.digest, droppedPlatforms: selection.droppedPlatforms}
  } else {
    await pulling(() => runPull(ctx.tools, command, {bytes: looked.bytes}))
    if (selection) ctx.log.warn(keptWhole(selection))
  }
  let described = await describeImage(layout, layoutName)
  if (wanted && raw === undefined) {
    // The source did not show its manifest before the pull (which then worked): choose from what was stored.
    const stored = asIndex((await readBlob(layout, described.digest)).toString('utf8'))
    const late = choose(stored)
    if (late && trimmable && stored) {
      if (ref.digest && described.digest !== ref.digest) throw servedOther(described.digest)
      await writeImageIndex(layout, layoutName, {...stored, manifests: late.kept})
      trimmed = {sourceDigest: described.digest, droppedPlatforms: late.droppedPlatforms}
      described = await describeImage(layout, layoutName)
    } else if (late) {
      ctx.log.warn(keptWhole(late))
    }
  }
  const {digest, platforms, bytes, blobs} = described
  if (!trimmed && ref.digest && digest !== ref.digest) throw servedOther(digest)
  let warning: string | undefined
  if (wanted && !index && platforms.length > 0 && !servesAny(platforms, wanted)) {
    warning = `${image.ref} is built for ${platforms.join(', ')} only, not for ${wanted.map((platform) => formatPlatform(platform)).join(', ')}${fromHost ? " (this machine's platform, the default)" : ''}: packaged as it is`
    ctx.log.warn(warning)
  }
  return {
    bytes,
    blobs,
    ...(warning ? {warning} : {}),
    image: {
      ref: image.ref,
      name: image.name,
      layoutName,
      digest,
      ...(trimmed ? {sourceDigest: trimmed.sourceDigest} : {}),
      platforms,
      ...(trimmed ? {droppedPlatforms: trimmed.droppedPlatforms} : {}),
      units: image.units,
    },
  }
}

/** A kod package given to kod package (it recognises packages by content, whatever their name) is a mix-up worth naming. */
async function refuseKodPackage(ref: string, signal?: AbortSignal): Promise<void> {
  const info = await stat(ref).catch(() => undefined)
  // Only files and directories are looked into: reading a FIFO would wait for a writer.
  if (!info || (!info.isFile() && !info.isDirectory())) return
  const isPackage = info.isDirectory()
    ? await access(path.join(ref, MANIFEST_FILE)).then(() => true, () => false)
    : await readArchiveHead(ref, signal).then(() => true, () => false)
  if (isPackage) throw usageError(`${ref} is a kod package already, not a package source: deploy it with kod deploy -c ${ref}, or look inside with kod inspect -c ${ref}`)
}

/** The package file's place: free, or an earlier kod package (replaced); anything else is the user's and stays. */
async function checkReplaceable(file: string, signal?: AbortSignal): Promise<void> {
  const info = await stat(file).catch(() => undefined)
  if (!info) return
  if (!info.isFile()) throw usageError(`${file} already exists and is no file: choose another name with -o`)
  // An earlier package, even one cut short after its head (an interrupted copy), may be replaced; anything else not.
  const earlier = await readArchiveHead(file, signal).then(
    () => true,
    (error: unknown) => (error as {headWhole?: boolean}).headWhole === true,
  )
  if (!earlier) {
    throw usageError(`${file} already exists and is not a kod package: kod package replaces only an earlier package; move it away, or choose another name with -o`)
  }
}

/** Where the package is written: -o FILE, or kod-<name>-<version>.kodpkg in the output directory. */
function outputFile(options: PackageOptions, pkg: SourcePackage): string {
  return options.outFile ?? path.join(options.outDir, `${packageBaseName(pkg.name, pkg.version)}${EXTENSION}`)
}

/**
 * The layers and configs of an image, as staging paths with their sizes, to be written into the archive
 * while the next image pulls (one the layout does not hold, a non-distributable layer skopeo left out, is
 * not written). Manifests and indexes are not: a later pull of the same image rewrites them in place
 * (skopeo, and kod trimming an index), so they are written with the rest once every pull is done; they are
 * small.
 */
function streamable(blobs: ReadonlyMap<string, {size: number; manifest: boolean}>): Array<{file: string; size: number}> {
  return [...blobs].filter(([, blob]) => !blob.manifest).map(([digest, {size}]) => ({file: `${IMAGES_DIR}/blobs/${digest.replace(':', '/')}`, size}))
}

/**
 * kod package: fetch through the source, pull every image into one OCI layout, write the archive.
 * Everything is staged in a hidden directory beside the output and removed whatever happens; the
 * .kodpkg appears only when complete.
 */
export async function packageAction(ctx: SourceContext, sources: SourceRegistry, options: PackageOptions): Promise<PackageResult> {
  await refuseKodPackage(options.request.ref, ctx.cancelSignal)
  if (options.outFile) await checkReplaceable(options.outFile, ctx.cancelSignal)
  const source = await sources.pick(options.request, options.kind)
  const request: PackageRequest = {...options.request, options: optionsFor(source, options.sourceFlags ?? [])}
  let result: PackageResult | undefined
  // The output directory is created if needed, and removed again if this run created it and fails.
  const notWritable = (error: unknown): never => {
    if (isNotWritable(error)) throw usageError(`cannot write the package into ${options.outDir}: it is not writable; choose a directory you can write to with -o`)
    const code = (error as NodeJS.ErrnoException | null)?.code
    // mkdtemp in a directory that takes no new entries (/proc): name that directory, not kod's temporary name.
    if (code === 'ENOENT' && (error as NodeJS.ErrnoException).syscall === 'mkdtemp') {
      throw usageError(`cannot write the package into ${options.outDir}: it takes no new files; choose a directory you can write to with -o`)
    }
    if (code === 'EEXIST' || code === 'ENOTDIR') {
      throw usageError(`cannot write the package into ${options.outDir}: ${(error as NodeJS.ErrnoException).path ?? options.outDir} is a file, not a directory; choose a directory with -o, or a file name ending in ${EXTENSION}`)
    }
    throw fileSystemError(error) ?? error
  }
  const created = await makeDirectories(options.outDir).catch(notWritable)
  const staging = await mkdtemp(stagingPrefix(options.outDir)).catch(notWritable)
  let archive: StreamingArchive | undefined
  const removeStaging = async (): Promise<void> => {
    await archive?.abort()
    await rm(staging, {recursive: true, force: true})
    if (created && !result) await rm(created, {recursive: true, force: true})
  }
  options.onCleanup(removeStaging)
  const layout = path.join(staging, IMAGES_DIR)
  // What interrupted runs left here goes; the image blobs they pulled are kept for this run.
  const reused = await sweepPackageLeftovers(options.outDir, layout, ctx.log)
  if (reused.blobs > 0) ctx.log.info(`reusing ${reused.blobs} image blob(s), ${formatSize(reused.bytes)}, pulled by an interrupted kod package run`)

  let packaged: SourcePackage | undefined
  let units: Unit[] = []
  let images: StoredImage[] = []
  const pulled: PackagedImage[] = []
  const platformWarnings: string[] = []
  const choice = options.platforms ?? {all: true}
  try {
    await runSteps(
      [
        {
          title: `Fetch and render ${options.request.ref}`,
          task: async (_, task) => {
            packaged = await keepSaying(task, task.title as string, 'fetching and rendering', () => source.package(ctx, request, staging)).catch((error: unknown) => {
              throw asKodError(error)
            })
            const collected = collectImages(packaged.units)
            units = acceptUnrelocatable(collected.units, options.allowExternal ?? [], ctx.log)
            images = collected.stored
            const installed = units.filter((unit) => unit.installed).length
            task.title = `Fetched and rendered ${options.request.ref}: ${installed === 1 ? '' : `${installed} releases, `}${images.length} image(s)`
          },
        },
        {
          title: 'Pull images',
          task: async (_, task) => {
            // The target's platform is unknown here: the default is said, with the way to choose another.
            if (!choice.all && choice.fromHost) {
              ctx.log.info(
                `Platform ${choice.platforms.map((platform) => formatPlatform(platform)).join(', ')}: this machine's, the default (kod cannot know the cluster's); multi-platform images keep only it. Choose with --platform os/arch (repeatable) or --all-platforms`,
              )
            }
            const looks = lookAtSources(ctx, images, layout, options)
            // The archive is written as the images come (each image's blobs while the next one pulls), its head last.
            archive = await StreamingArchive.start(staging, outputFile(options, packaged!), images.length)
            return countedSubtasks(
              task,
              images.map((image, index) => ({
                title: image.name,
                run: async () => {
                  const done = await pullImage(ctx, image, layout, options, canTrim(image.name, units), await looks[index])
                  pulled.push(done.image)
                  if (done.warning) platformWarnings.push(done.warning)
                  archive!.add(streamable(done.blobs))
                  return done.bytes
                },
              })),
              {doing: 'Pull', did: 'pulled', noun: 'image(s)'},
            )
          },
        },
        {
          title: 'Write package',
          task: async (_, task) => {
            const pkg = packaged!
            // Blobs no kept image reaches (dropped platforms, an interrupted run's pulls for other images) are not packaged.
            const pruned = await pruneLayout(layout)
            if (pruned.blobs > 0) ctx.log.debug(`removed ${pruned.blobs} blob(s), ${formatSize(pruned.bytes)}, that no packaged image uses`)
            // Every image is still in the layout as it was pulled: anything that rewrote index.json meanwhile would
            // otherwise be a silent miss, found only on the air-gapped side.
            for (const image of pulled) {
              const stored = await findImage(layout, layoutNameOf(image)).catch(() => undefined)
              if (stored?.digest !== image.digest) throw new KodError(`${image.name} is no longer in the package's image layout as pulled (${image.digest}): the staging directory was changed during the run; nothing was written, run kod package again`)
            }
            const warnings = [...(pkg.warnings ?? []), ...platformWarnings]
            const hintPaths: string[] = []
            const used = pkg.hintsUsed ?? []
            if (used.length > 0) await mkdir(path.join(staging, 'hints'), {recursive: true})
            for (const [index, file] of used.entries()) {
              const inside = `hints/${String(index + 1).padStart(2, '0')}-${path.basename(file)}`
              await copyFile(file, path.join(staging, inside))
              hintPaths.push(inside)
            }
            const manifest: PackageManifest = {
              formatVersion: FORMAT_VERSION,
              kodVersion: options.kodVersion,
              created: new Date().toISOString(),
              source: {
                kind: source.kind,
                ref: options.request.ref,
                ...(options.request.version ? {version: options.request.version} : {}),
                ...(options.request.repo ? {repo: options.request.repo} : {}),
              },
              name: pkg.name,
              version: pkg.version,
              charts: pkg.charts,
              units: pointAtStored(units, pulled),
              hints: hintPaths,
              images: [...pulled].sort((a, b) => a.name.localeCompare(b.name)),
              platforms: recordedPlatforms(choice),
              ...(!choice.all && choice.fromHost ? {platformsFromHost: true as const} : {}),
              ...(warnings.length > 0 ? {warnings} : {}),
              ...(pkg.data ? {sourceData: pkg.data} : {}),
            }
            const file = outputFile(options, pkg)
            await checkReplaceable(file, ctx.cancelSignal)
            task.title = `Write ${path.basename(file)}`
            archive ??= await StreamingArchive.start(staging, file, 0)
            const written = await archive.finish(packageHead(manifest), ctx.cancelSignal, options.signingKey)
            result = {file, manifest, bytes: written.bytes}
            task.title = `Wrote ${path.basename(file)}, ${formatSize(written.bytes)}`
          },
        },
      ],
      {quiet: options.quiet},
    )
  } finally {
    await removeStaging()
  }
  return result!
}
