import {createHash} from 'node:crypto'
import {copyFile, mkdir, readFile, rm, stat, symlink, writeFile} from 'node:fs/promises'
import path from 'node:path'

import type {PackageManifest, PlannedCommand, Target} from '../api.js'
import {packageError, usageError} from './errors.js'
import {GENERATED_DIR, IMAGES_DIR, MANIFEST_FILE, sha256File, SIGNATURE_FILE, SUMS_FILE} from './kodpkg.js'
import {REF_NAME} from './oci.js'
import {isValidRepositoryPath} from './refs.js'
import {isInsecure} from './target.js'

/**
 * kodinfo (docs/kodpkg.md, "In the registry"): a package's metadata as an OCI artifact (image-spec 1.1),
 * pushed by populate beside its images and charts under <registry>/<prefix>/packages/<name>:<version>, so
 * that deploy and inspect can work from the registry with no local package. One layer per file:
 * kod-package.yaml, SHA256SUMS (and SHA256SUMS.sig), the package-time values and the hint files; every one
 * is listed in SHA256SUMS, which the signature covers, so a kodinfo verifies as the package it came from.
 * A whole package file can be pushed as one artifact too (populate --as-artifact, kod pull).
 */
export const KODINFO_ARTIFACT_TYPE = 'application/vnd.kod.package.v1'
export const ARCHIVE_ARTIFACT_TYPE = 'application/vnd.kod.package.archive.v1'
export const MEDIA_TYPES = {
  manifest: 'application/vnd.kod.package.manifest.v1+yaml',
  sums: 'application/vnd.kod.package.sha256sums.v1',
  signature: 'application/vnd.kod.package.signature.v1',
  file: 'application/vnd.kod.package.file.v1',
  archive: 'application/vnd.kod.package.archive.v1.tar',
} as const
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
const EMPTY_CONFIG = {mediaType: 'application/vnd.oci.empty.v1+json', digest: `sha256:${sha256('{}')}`, size: 2, data: 'e30='}
const TITLE = 'org.opencontainers.image.title'
/** Where populate writes the kodinfo layout inside an unpacked package (generated, like deploy's values files). */
export const KODINFO_DIR = GENERATED_DIR
/** The layout's name for the artifact it holds. */
const LAYOUT_REF = 'kodinfo'
/** How the tag of a whole-package artifact differs from the kodinfo's: <version>.kodpkg. */
export const ARCHIVE_TAG_SUFFIX = '.kodpkg'

function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex')
}

/** A version as an OCI tag (helm's rule for chart tags: "+" is not allowed in tags, "_" stands for it). */
export function versionTag(version: string): string {
  return version.replaceAll('+', '_')
}

/** The repository name a package name takes below <prefix>/packages (lower case, path-safe). */
function repositoryName(name: string): string {
  const lowered = name.toLowerCase().replaceAll(/[^a-z0-9._-]+/g, '-').replaceAll(/^[._-]+|[._-]+$/g, '')
  if (!lowered || !isValidRepositoryPath(lowered)) throw usageError(`package name ${name} cannot name a repository in the registry`)
  return lowered
}

/** Where a package's kodinfo lives: <registry>/<prefix>/packages/<name>:<version> (no scheme). */
export function kodinfoReference(target: Pick<Target, 'registry' | 'prefix'>, manifest: Pick<PackageManifest, 'name' | 'version'>, suffix = ''): string {
  return `${[target.registry, target.prefix, 'packages', repositoryName(manifest.name)].filter(Boolean).join('/')}:${versionTag(manifest.version)}${suffix}`
}

/** The files a kodinfo carries, in order: the manifest, SHA256SUMS, the signature if any, then values and hints. */
export function kodinfoFiles(manifest: PackageManifest, sums: Map<string, string>, signed: boolean): string[] {
  const values = [...new Set(manifest.units.flatMap((unit) => unit.values))].sort()
  return [MANIFEST_FILE, SUMS_FILE, ...(signed ? [SIGNATURE_FILE] : []), ...values, ...[...manifest.hints].sort()].filter(
    (file, index, all) => all.indexOf(file) === index && (file === SUMS_FILE || file === SIGNATURE_FILE || sums.has(file)),
  )
}

function mediaTypeOf(file: string): string {
  if (file === MANIFEST_FILE) return MEDIA_TYPES.manifest
  if (file === SUMS_FILE) return MEDIA_TYPES.sums
  if (file === SIGNATURE_FILE) return MEDIA_TYPES.signature
  return MEDIA_TYPES.file
}

interface Descriptor {
  mediaType: string
  digest: string
  size: number
  annotations?: Record<string, string>
}

/** Writes a one-artifact OCI layout at `layout`: blobs, the artifact manifest, index.json naming it. */
async function writeArtifactLayout(
  layout: string,
  artifactType: string,
  layers: Array<{file: string; descriptor: Descriptor; link?: boolean}>,
  annotations: Record<string, string>,
): Promise<string> {
  await rm(layout, {recursive: true, force: true})
  const blobs = path.join(layout, 'blobs', 'sha256')
  await mkdir(blobs, {recursive: true})
  await writeFile(path.join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}')
  await writeFile(path.join(blobs, EMPTY_CONFIG.digest.slice('sha256:'.length)), '{}')
  for (const {file, descriptor, link} of layers) {
    const blob = path.join(blobs, descriptor.digest.slice('sha256:'.length))
    // A whole package file is linked, not copied: skopeo reads it through the link.
    if (link) await symlink(path.resolve(file), blob).catch(() => copyFile(file, blob))
    else await copyFile(file, blob)
  }
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType,
    config: EMPTY_CONFIG,
    layers: layers.map((layer) => layer.descriptor),
    annotations,
  })
  const digest = `sha256:${sha256(manifest)}`
  await writeFile(path.join(blobs, digest.slice('sha256:'.length)), manifest)
  await writeFile(
    path.join(layout, 'index.json'),
    JSON.stringify({schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{mediaType: OCI_MANIFEST, digest, size: Buffer.byteLength(manifest), annotations: {[REF_NAME]: LAYOUT_REF}}]}),
  )
  return digest
}

function packageAnnotations(manifest: PackageManifest): Record<string, string> {
  return {'org.opencontainers.image.created': manifest.created, 'org.opencontainers.image.version': manifest.version, 'dev.kod.package.name': manifest.name}
}

/**
 * Writes the kodinfo of the unpacked package in `dir` as an OCI layout in dir/kod-info (deterministic: the
 * same package always gives the same artifact digest). Returns the layout and the artifact's name in it.
 */
export async function writeKodinfo(
  dir: string,
  manifest: PackageManifest,
  sums: Map<string, string>,
  signed: boolean,
  /** Where the layout goes when not dir/kod-info (a package directory kod may not write into). */
  elsewhere?: string,
): Promise<{layout: string; name: string; digest: string}> {
  const layout = path.join(elsewhere ?? dir, KODINFO_DIR)
  const layers = await Promise.all(
    kodinfoFiles(manifest, sums, signed).map(async (file) => {
      const bytes = await readFile(path.join(dir, file))
      return {file: path.join(dir, file), descriptor: {mediaType: mediaTypeOf(file), digest: `sha256:${sha256(bytes)}`, size: bytes.length, annotations: {[TITLE]: file}}}
    }),
  )
  const digest = await writeArtifactLayout(layout, KODINFO_ARTIFACT_TYPE, layers, packageAnnotations(manifest))
  return {layout, name: LAYOUT_REF, digest}
}

/** Writes a layout holding a whole package file as one artifact (populate --as-artifact). */
export async function writeArchiveArtifact(layout: string, file: string, manifest: PackageManifest): Promise<{layout: string; name: string; digest: string}> {
  const hex = await sha256File(file)
  const {size} = await stat(file)
  const digest = await writeArtifactLayout(layout, ARCHIVE_ARTIFACT_TYPE, [{file, link: true, descriptor: {mediaType: MEDIA_TYPES.archive, digest: `sha256:${hex}`, size, annotations: {[TITLE]: path.basename(file)}}}], packageAnnotations(manifest))
  return {layout, name: LAYOUT_REF, digest}
}

/** The push of an artifact layout written above to `reference` (no scheme), as populate runs and prints it. */
export function artifactPushCommand(layout: string, name: string, reference: string, target: Target): PlannedCommand {
  return {
    tool: 'skopeo',
    args: ['copy', '--preserve-digests', '--retry-times', '2', ...(isInsecure(target) ? ['--dest-tls-verify=false'] : []), `oci:${layout}:${name}`, `docker://${reference}`],
  }
}

/** The pull of an artifact from the registry into a scratch layout. */
export function artifactPullCommand(reference: string, layout: string, insecure: boolean): PlannedCommand {
  return {tool: 'skopeo', args: ['copy', '--preserve-digests', '--retry-times', '2', ...(insecure ? ['--src-tls-verify=false'] : []), `docker://${reference}`, `oci:${layout}:${LAYOUT_REF}`]}
}

export interface PulledArtifact {
  artifactType?: string
  /** Each layer: its title (a path inside the package), the blob file in the layout, its media type. */
  layers: Array<{title: string; blob: string; mediaType: string; size: number}>
  annotations: Record<string, string>
}

/** Reads the artifact a pull stored in `layout`; skopeo has checked every blob against its digest. */
export async function readPulledArtifact(layout: string, origin: string): Promise<PulledArtifact> {
  const read = async (file: string): Promise<unknown> => {
    try {
      return JSON.parse(await readFile(file, 'utf8'))
    } catch {
      throw packageError(`${origin} is not a kod package in the registry: its manifest cannot be read`)
    }
  }
  const index = (await read(path.join(layout, 'index.json'))) as {manifests?: Descriptor[]}
  const top = index.manifests?.[0]
  if (!top) throw packageError(`${origin} is not a kod package in the registry: nothing was pulled`)
  const blob = (digest: string): string => path.join(layout, 'blobs', ...digest.split(':'))
  const manifest = (await read(blob(top.digest))) as {artifactType?: string; config?: Descriptor; layers?: Descriptor[]; annotations?: Record<string, string>; manifests?: unknown}
  if (manifest.manifests) throw usageError(`${origin} is an image index (a container image), not a kod package: kod package references end in /packages/<name>:<version>`)
  const artifactType = manifest.artifactType ?? manifest.config?.mediaType
  const layers = (manifest.layers ?? []).map((layer) => ({title: layer.annotations?.[TITLE] ?? '', blob: blob(layer.digest), mediaType: layer.mediaType, size: layer.size}))
  return {artifactType, layers, annotations: manifest.annotations ?? {}}
}

/** The files a kodinfo may hold, by the path each takes in the package (never outside it, never an image). */
export function checkKodinfoTitle(title: string, origin: string): string {
  const clean = path.posix.normalize(title)
  if (!title || clean !== title || clean.startsWith('../') || clean === '..' || path.posix.isAbsolute(clean) || clean.startsWith(`${IMAGES_DIR}/`) || clean.split('/').length > 8) {
    throw packageError(`${origin}: kodinfo layer "${title}" is not a file a kod package's metadata holds; refusing it`)
  }
  return clean
}
