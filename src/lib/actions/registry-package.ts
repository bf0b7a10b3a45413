import {createHash, type KeyObject} from 'node:crypto'
import {copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, stat} from 'node:fs/promises'
import path from 'node:path'

import type {OpenedPackage, PackageManifest, Target, ToolRunner} from '../../api.js'
import {ANSWER_MS, makeDirectories, runPull} from '../bounds.js'
import {loginSuggestion} from '../credentials.js'
import {ExitCode, KodError, messageOf, packageError, usageError} from '../errors.js'
import {NOT_FOUND} from '../images.js'
import {
  ARCHIVE_ARTIFACT_TYPE,
  artifactPullCommand,
  checkKodinfoTitle,
  KODINFO_ARTIFACT_TYPE,
  readPulledArtifact,
} from '../kodinfo.js'
import {checkCoverage, MANIFEST_FILE, mapLimit, packageBaseName, parseManifest, parseSums, readArchiveHead, sha256File, SIGNATURE_FILE, SUMS_FILE, verifyArchive} from '../kodpkg.js'
import {stagingPrefix} from '../leftovers.js'
import {runSteps, step} from '../progress.js'
import {parseRef, relocatedRepository} from '../refs.js'
import {checkSignature} from '../signing.js'

/** An `oci://host[:port]/path:tag` (or `@sha256:…`) package reference, parsed. */
export interface RegistryReference {
  /** host[:port]/path:tag, as skopeo takes it after docker:// */
  reference: string
  host: string
  /** Where the package's charts are: the reference's repository with /packages/<name> replaced by /charts. */
  chartRepository?: string
}

export function isRegistryInput(input: string): boolean {
  return /^oci:\/\//i.test(input)
}

/** Reads -c oci://…: a tag or digest is required (a package is one version). */
export function parseRegistryInput(input: string): RegistryReference {
  const rest = input.replace(/^oci:\/\//i, '')
  const match = /^([^/@:]+(?::\d+)?)\/([a-z0-9]+(?:[._/-][a-z0-9]+)*)(?::([\w][\w.-]{0,127})|@(sha256:[a-f0-9]{64}))$/.exec(rest)
  if (!match) {
    throw usageError(`-c ${input}: a package in a registry is named oci://<registry>/<prefix>/packages/<name>:<version>, as kod populate prints it`)
  }
  const [, host, repository] = match
  const packages = /^(.*\/)?packages\/[^/]+$/.exec(repository)
  return {
    reference: rest,
    host,
    ...(packages ? {chartRepository: `${host}/${packages[1] ?? ''}charts`} : {}),
  }
}

export interface RegistryOpenOptions {
  tools: ToolRunner
  /** Scratch space for the pull (removed by the caller). */
  scratch: string
  /** The directory the package's metadata and charts are written into (created; it must not exist). */
  dir: string
  /** Plain HTTP or unverified TLS towards the registry. */
  insecure: {plainHttp: boolean; skipTlsVerify: boolean}
  verifyKey?: KeyObject
  /** Also pull the charts (deploy renders them); inspect needs only the metadata. */
  charts: boolean
  quiet: boolean
  signal?: AbortSignal
}

/** A package used from the registry: its metadata (and charts) in `dir`, verified; images stay in the registry. */
export interface RegistryPackage extends OpenedPackage {
  note: string
  files: number
  bytes: number
}

function pullFailed(what: string, reference: string, error: unknown): KodError {
  const message = messageOf(error)
  const host = reference.split('/')[0]
  const suggestions = /server gave HTTP response to HTTPS client/i.test(message) ? ['add --plain-http'] : loginSuggestion(message, host)
  const missing = NOT_FOUND.test(message)
  return new KodError(
    missing ? `${reference} is not in the registry: populate pushes a package's metadata there (kod populate prints where); check the name and version` : `cannot pull ${what} from ${reference}: ${message}`,
    {exit: missing ? ExitCode.usage : ((error as KodError).exit ?? ExitCode.toolFailed), suggestions},
  )
}

/** helm's TLS flags for a registry. */
function helmRegistryFlags(insecure: RegistryOpenOptions['insecure']): string[] {
  if (insecure.plainHttp) return ['--plain-http']
  if (insecure.skipTlsVerify) return ['--insecure-skip-tls-verify']
  return []
}

/**
 * Opens a package from the registry (-c oci://…/packages/<name>:<version>): pulls its kodinfo artifact
 * (skopeo checks each blob against its digest), checks the signature first when --verify-key asks, then
 * every file against SHA256SUMS, then (for deploy) pulls each chart from <prefix>/charts with helm and
 * checks it against SHA256SUMS too. Nothing but the metadata and charts is written, into `dir`.
 */
export async function openFromRegistry(input: string, options: RegistryOpenOptions): Promise<RegistryPackage> {
  const parsed = parseRegistryInput(input)
  const insecure = options.insecure.plainHttp || options.insecure.skipTlsVerify
  const layout = path.join(options.scratch, 'kodinfo')
  let manifest: PackageManifest | undefined
  let files = 0
  let bytes = 0
  const steps = [
    step(`Pull the package's metadata from ${parsed.reference}`, `Pulled and verified the package's metadata from ${parsed.reference}`, async () => {
      await runPull(options.tools, artifactPullCommand(parsed.reference, layout, insecure)).catch((error: unknown) => {
        throw pullFailed(`the package's metadata`, parsed.reference, error)
      })
      const artifact = await readPulledArtifact(layout, input)
      if (artifact.artifactType === ARCHIVE_ARTIFACT_TYPE) {
        throw usageError(`${input} holds a whole package file (populate --as-artifact): get it with kod pull -c ${input}, then use the file`)
      }
      if (artifact.artifactType !== KODINFO_ARTIFACT_TYPE) {
        throw usageError(`${input} is not a kod package (artifact type ${artifact.artifactType ?? 'none'}); kod packages in a registry are at <prefix>/packages/<name>:<version>`)
      }
      await mkdir(options.dir, {recursive: true})
      const placed = new Map<string, string>()
      for (const layer of artifact.layers) {
        const title = checkKodinfoTitle(layer.title, input)
        if (placed.has(title)) throw packageError(`${input}: kodinfo holds ${title} twice`)
        const to = path.join(options.dir, ...title.split('/'))
        await mkdir(path.dirname(to), {recursive: true})
        await copyFile(layer.blob, to)
        placed.set(title, to)
        files++
        bytes += layer.size
      }
      const sumsFile = placed.get(SUMS_FILE)
      const manifestFile = placed.get(MANIFEST_FILE)
      if (!sumsFile || !manifestFile) throw packageError(`${input}: the package's metadata lacks ${sumsFile ? MANIFEST_FILE : SUMS_FILE}; it cannot be verified`)
      const sumsBytes = await readFile(sumsFile)
      // Before anything else is believed: the signature over SHA256SUMS.
      if (options.verifyKey) checkSignature(sumsBytes, placed.has(SIGNATURE_FILE) ? await readFile(placed.get(SIGNATURE_FILE)!) : undefined, options.verifyKey, input)
      const sums = parseSums(sumsBytes.toString('utf8'))
      for (const [title, file] of placed) {
        if (title === SUMS_FILE || title === SIGNATURE_FILE) continue
        const expected = sums.get(title)
        if (!expected) throw packageError(`${input}: ${title} is not listed in ${SUMS_FILE}: the metadata holds a file the package does not account for`)
        if ((await sha256File(file)) !== expected) throw packageError(`${input}: ${title} does not match ${SUMS_FILE}: the package's metadata was changed in the registry`)
      }
      manifest = parseManifest(await readFile(manifestFile, 'utf8'), input)
      checkCoverage(manifest, sums, input)
      const wanted = [...manifest.units.flatMap((unit) => unit.values), ...manifest.hints]
      const absent = wanted.find((file) => !placed.has(file))
      if (absent) throw packageError(`${input}: the package's metadata lacks ${absent}, which its manifest names`)
      if (options.charts) {
        if (!parsed.chartRepository) throw usageError(`-c ${input}: deploy takes a package where populate put it, oci://<registry>/<prefix>/packages/<name>:<version>`)
        for (const chart of manifest.charts) {
          const into = await mkdtemp(path.join(options.scratch, 'chart-'))
          const ref = `oci://${parsed.chartRepository}/${chart.name}`
          await options.tools.run('helm', ['pull', ref, '--version', chart.version, '-d', into, ...helmRegistryFlags(options.insecure)]).catch((error: unknown) => {
            throw pullFailed(`chart ${chart.name} ${chart.version}`, `${parsed.chartRepository}/${chart.name}:${chart.version}`, error)
          })
          const [pulled] = await readdir(into)
          const expected = sums.get(chart.file)
          if (!pulled || !expected || (await sha256File(path.join(into, pulled))) !== expected) {
            throw packageError(`${ref} ${chart.version} is not the chart this package holds (${chart.file} does not match ${SUMS_FILE}): it was changed in the registry; populate the package again`)
          }
          const to = path.join(options.dir, ...chart.file.split('/'))
          await mkdir(path.dirname(to), {recursive: true})
          await copyFile(path.join(into, pulled), to)
        }
      }
    }),
  ]
  await runSteps(steps, {quiet: options.quiet})
  const chartRepository = parsed.chartRepository
  return {
    dir: options.dir,
    manifest: manifest!,
    files,
    bytes,
    note: `using ${manifest!.name} ${manifest!.version} from ${parsed.reference} (checksums verified; images and charts stay in the registry)`,
    ...(chartRepository
      ? {
          registry: {
            reference: parsed.reference,
            chartArgs: (file: string): string[] => {
              const chart = manifest!.charts.find((entry) => entry.file === file)
              return chart ? [`oci://${chartRepository}/${chart.name}`, '--version', chart.version, ...helmRegistryFlags(options.insecure)] : []
            },
          },
        }
      : {}),
  }
}

/**
 * A package used from the registry is not populated again: every image it holds must be in the target
 * registry under its relocated repository, by digest, with that very manifest (its bytes hashed here).
 * Missing or different ones refuse the deploy (exit 6), all named.
 */
export async function checkImagesByDigest(tools: ToolRunner, manifest: PackageManifest, target: Target): Promise<void> {
  const flags = target.plainHttp || target.insecureSkipTlsVerify ? ['--tls-verify=false'] : []
  const problems: string[] = []
  await mapLimit(manifest.images, 4, async (image) => {
    const at = `${relocatedRepository(parseRef(image.name), target)}@${image.digest}`
    try {
      const {stdout} = await tools.run('skopeo', ['inspect', '--raw', ...flags, `docker://${at}`], {timeoutMs: ANSWER_MS * 2})
      // skopeo prints the manifest as stored; its final newline, if any, may be gone.
      const ok = [stdout, `${stdout}\n`].some((text) => `sha256:${createHash('sha256').update(text).digest('hex')}` === image.digest)
      if (!ok) problems.push(`${at} (it answers with another manifest)`)
    } catch (error) {
      if (error instanceof KodError && error.exit === ExitCode.toolFailed && NOT_FOUND.test(error.message)) problems.push(`${at} (missing)`)
      else throw error
    }
  })
  if (problems.length > 0) {
    throw new KodError(`refusing to deploy: ${problems.length} image(s) of the package are not in ${target.registry} as packaged: ${problems.join('; ')}. Populate the package again (kod populate -c <package> -r ${target.registry})`, {exit: ExitCode.notRelocated})
  }
}

/**
 * kod pull: a whole package pushed with populate --as-artifact, fetched into `outFile`: pulled beside it
 * (a staging directory), verified as every package is, then renamed into place.
 */
export async function pullArchive(
  input: string,
  output: {dir: string; file?: string},
  options: {tools: ToolRunner; insecure: {plainHttp: boolean; skipTlsVerify: boolean}; verifyKey?: KeyObject; quiet: boolean; signal?: AbortSignal; onCleanup(fn: () => Promise<unknown>): void},
): Promise<{file: string; manifest: PackageManifest; bytes: number}> {
  const parsed = parseRegistryInput(input)
  // Created if needed, and removed again if this pull created it and fails.
  const created = await makeDirectories(output.dir)
  const staging = await mkdtemp(stagingPrefix(output.dir))
  options.onCleanup(async () => {
    await rm(staging, {recursive: true, force: true})
    if (created && !result) await rm(created, {recursive: true, force: true})
  })
  const layout = path.join(staging, 'artifact')
  let result: {file: string; manifest: PackageManifest; bytes: number} | undefined
  try {
    await runSteps(
      [
        step(`Pull ${parsed.reference}`, `Pulled ${parsed.reference}`, async () => {
          await runPull(options.tools, artifactPullCommand(parsed.reference, layout, options.insecure.plainHttp || options.insecure.skipTlsVerify)).catch((error: unknown) => {
            throw pullFailed('the package', parsed.reference, error)
          })
        }),
        step('Verify the package', 'Verified the package', async () => {
          const artifact = await readPulledArtifact(layout, input)
          if (artifact.artifactType === KODINFO_ARTIFACT_TYPE) {
            throw usageError(`${input} holds a populated package's metadata, not a package file: deploy it with kod deploy -c ${input}, or inspect it with kod inspect -c ${input} (a package file pushed with populate --as-artifact is at ${input}.kodpkg)`)
          }
          const [layer] = artifact.layers
          if (artifact.artifactType !== ARCHIVE_ARTIFACT_TYPE || artifact.layers.length !== 1 || !layer) {
            throw usageError(`${input} is not a kod package file pushed with populate --as-artifact (artifact type ${artifact.artifactType ?? 'none'})`)
          }
          if (options.verifyKey) {
            const head = await readArchiveHead(layer.blob, options.signal)
            checkSignature(head.sumsBytes, head.signature, options.verifyKey, input)
          }
          const summary = await verifyArchive(layer.blob, options.signal)
          const name = output.file ?? path.join(output.dir, `${packageBaseName(summary.manifest.name, summary.manifest.version)}.kodpkg`)
          if (await stat(name).then(() => true, () => false)) throw usageError(`${name} already exists: remove it or choose another name with -o`)
          await rename(layer.blob, name)
          result = {file: name, manifest: summary.manifest, bytes: (await stat(name)).size}
        }),
      ],
      {quiet: options.quiet},
    )
  } finally {
    await rm(staging, {recursive: true, force: true})
    if (created && !result) await rm(created, {recursive: true, force: true})
  }
  return result!
}
