import {createHash} from 'node:crypto'
import {readdir, readFile, rename, rm, stat, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {packageError} from './errors.js'

/**
 * Reading an OCI image layout: skopeo writes it, kod looks. kod writes only what skopeo cannot: the
 * index of an image whose platforms it trimmed (writeImageIndex), and it removes blobs no image reaches
 * (pruneLayout).
 */
export const REF_NAME = 'org.opencontainers.image.ref.name'

export interface Descriptor {
  mediaType?: string
  digest: string
  size: number
  annotations?: Record<string, string>
  platform?: {os: string; architecture: string; variant?: string}
}

interface IndexLike {
  mediaType?: string
  manifests?: Descriptor[]
  config?: Descriptor
  layers?: Descriptor[]
}

export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'

const INDEX_TYPES = new Set([
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
])

export async function readJson<T>(file: string): Promise<T> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T
  } catch (error) {
    throw packageError(`cannot read ${file}: ${(error as Error).message}`)
  }
}

/** Whether a manifest (parsed JSON, with its descriptor's media type) is an image index or manifest list. */
export function isIndex(manifest: {mediaType?: unknown; manifests?: unknown; config?: unknown}, descriptorType?: string): boolean {
  const mediaType = typeof manifest.mediaType === 'string' ? manifest.mediaType : (descriptorType ?? '')
  return INDEX_TYPES.has(mediaType) || (Array.isArray(manifest.manifests) && !manifest.config)
}

function blobPath(layout: string, digest: string): string {
  const [algorithm, hex] = digest.split(':')
  return path.join(layout, 'blobs', algorithm, hex)
}

/** A blob's bytes (a manifest or index, as pushed byte for byte). */
export async function readBlob(layout: string, digest: string): Promise<Buffer> {
  try {
    return await readFile(blobPath(layout, digest))
  } catch (error) {
    throw packageError(`cannot read blob ${digest} in ${layout}: ${(error as Error).message}`)
  }
}

export async function layoutIndex(layout: string): Promise<Descriptor[]> {
  return (await readJson<IndexLike>(path.join(layout, 'index.json'))).manifests ?? []
}

/** The descriptor of the image named `name` in the layout. */
export async function findImage(layout: string, name: string): Promise<Descriptor> {
  const found = (await layoutIndex(layout)).find((descriptor) => descriptor.annotations?.[REF_NAME] === name)
  if (!found) throw packageError(`image ${name} is not in ${layout}`)
  return found
}

/**
 * Every blob an image reaches in the layout, by digest, with its size and whether it is a manifest or an
 * index (rather than a config or a layer): its manifest or index and each platform's manifest, config and
 * layers, each distinct blob once (a non-distributable layer skopeo left out is named too, though the
 * layout does not hold it).
 */
export async function imageBlobs(layout: string, descriptor: Descriptor): Promise<Map<string, {size: number; manifest: boolean}>> {
  const blobs = new Map<string, {size: number; manifest: boolean}>()
  const visit = async (entry: Descriptor): Promise<void> => {
    if (blobs.get(entry.digest)?.manifest) return
    blobs.set(entry.digest, {size: entry.size, manifest: true})
    const manifest = await readJson<IndexLike>(blobPath(layout, entry.digest))
    for (const child of manifest.manifests ?? []) await visit(child)
    for (const blob of [manifest.config, ...(manifest.layers ?? [])]) {
      if (blob && !blobs.has(blob.digest)) blobs.set(blob.digest, {size: blob.size, manifest: false})
    }
  }
  await visit(descriptor)
  return blobs
}

function platformString(platform: {os: string; architecture: string; variant?: string}): string {
  return [platform.os, platform.architecture, platform.variant].filter(Boolean).join('/')
}

/** The platforms an image (or image index) provides, e.g. ["linux/amd64", "linux/arm64/v8"]. */
export async function imagePlatforms(layout: string, descriptor: Descriptor): Promise<string[]> {
  const manifest = await readJson<IndexLike>(blobPath(layout, descriptor.digest))
  if (isIndex(manifest, descriptor.mediaType)) {
    return (manifest.manifests ?? [])
      .filter((entry) => entry.platform && entry.platform.architecture !== 'unknown')
      .map((entry) => platformString(entry.platform!))
  }
  if (!manifest.config) return []
  const config = await readJson<{os?: string; architecture?: string; variant?: string}>(
    blobPath(layout, manifest.config.digest),
  )
  return config.os && config.architecture
    ? [platformString({os: config.os, architecture: config.architecture, variant: config.variant})]
    : []
}

/** Writes index.json whole (a temporary file renamed over it, so a crash leaves the old one). */
async function writeLayoutIndex(layout: string, index: IndexLike & Record<string, unknown>): Promise<void> {
  const file = path.join(layout, 'index.json')
  const partial = `${file}.kod-${process.pid}`
  await writeFile(partial, JSON.stringify(index))
  await rename(partial, file)
}

/**
 * Stores an image index kod wrote (an index trimmed to some platforms, whose entries are already in the
 * layout) as the image named `name`, and drops the names in `scratch` (what its entries were pulled
 * under) from index.json. Returns the index's descriptor. The JSON is written compactly, as it will be
 * pushed: its digest is the image's digest from now on.
 */
export async function writeImageIndex(layout: string, name: string, index: Record<string, unknown>, scratch: readonly string[] = []): Promise<Descriptor> {
  const bytes = Buffer.from(JSON.stringify(index))
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`
  await writeFile(blobPath(layout, digest), bytes)
  const layoutIndexJson = await readJson<IndexLike & Record<string, unknown>>(path.join(layout, 'index.json'))
  const drop = new Set([name, ...scratch])
  const descriptor: Descriptor = {
    mediaType: typeof index.mediaType === 'string' ? index.mediaType : OCI_INDEX,
    digest,
    size: bytes.length,
    annotations: {[REF_NAME]: name},
  }
  const manifests = (layoutIndexJson.manifests ?? []).filter((entry) => !drop.has(entry.annotations?.[REF_NAME] ?? ''))
  await writeLayoutIndex(layout, {...layoutIndexJson, manifests: [...manifests, descriptor]})
  return descriptor
}

/**
 * Removes every blob of the layout that no image of index.json reaches (platforms kod dropped, blobs an
 * interrupted run pulled for images this run does not keep). Returns how many it removed and their bytes.
 */
export async function pruneLayout(layout: string): Promise<{blobs: number; bytes: number}> {
  // No image pulled, no layout.
  if (!(await stat(path.join(layout, 'index.json')).catch(() => undefined))) return {blobs: 0, bytes: 0}
  const reached = new Set<string>()
  const visit = async (entry: Descriptor, depth: number): Promise<void> => {
    if (reached.has(entry.digest) || depth > 8) return
    reached.add(entry.digest)
    const manifest = await readJson<IndexLike>(blobPath(layout, entry.digest))
    for (const child of manifest.manifests ?? []) await visit(child, depth + 1)
    for (const blob of [manifest.config, ...(manifest.layers ?? [])]) if (blob) reached.add(blob.digest)
  }
  for (const entry of await layoutIndex(layout)) await visit(entry, 0)
  const dir = path.join(layout, 'blobs', 'sha256')
  const files = await readdir(dir).catch(() => [] as string[])
  let blobs = 0
  let bytes = 0
  for (const file of files) {
    if (reached.has(`sha256:${file}`)) continue
    const size = (await stat(path.join(dir, file)).catch(() => undefined))?.size ?? 0
    await rm(path.join(dir, file), {force: true})
    blobs++
    bytes += size
  }
  return {blobs, bytes}
}

/** OCI descriptors as a package's layout must hold them: sha256 digests only (what skopeo writes). */
const SHA256_DIGEST = /^sha256:([a-f0-9]{64})$/

/** Media types of layers a registry may refuse to store ("foreign", non-distributable): skopeo leaves them out. */
const NON_DISTRIBUTABLE = /foreign|nondistributable/

/** The descriptors a JSON blob names, kept instead of its bytes so that a streaming check holds little in memory. */
export interface BlobLinks {
  manifests?: unknown
  config?: unknown
  layers?: unknown
}

/**
 * What a blob that may be a manifest or index links to; undefined when it is not a JSON object (a
 * layer, or not JSON). Only small blobs are read (OCI's distribution spec bounds manifests at 4 MiB).
 */
export function blobLinks(content: Buffer): BlobLinks | undefined {
  if (content.length === 0 || content.subarray(0, 64).toString('utf8').trimStart()[0] !== '{') return undefined
  try {
    const parsed = JSON.parse(content.toString('utf8')) as unknown
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined
    const {manifests, config, layers} = parsed as BlobLinks
    return {manifests, config, layers}
  } catch {
    return undefined
  }
}

/** What a layout check knows of each blob: its size and, for a small JSON blob, what it links to. */
export interface LayoutBlob {
  size: number
  links?: BlobLinks
}

/**
 * Checks an OCI image layout's graph, from index.json down: every manifest or index it reaches is a
 * blob of the layout with the descriptor's size (its name already matches its sha256, checked as it
 * was read), and so is every config and layer those name; a non-distributable layer may be absent.
 * Returns the first problem as a sentence naming the blob (undefined when the layout is whole).
 * `layout` is the layout's path inside the package, for messages.
 */
export function layoutProblem(layout: string, index: BlobLinks | undefined, blobs: ReadonlyMap<string, LayoutBlob>): string | undefined {
  const blobName = (hex: string): string => `${layout}/blobs/sha256/${hex}`
  const visited = new Set<string>()
  const visit = (descriptor: unknown, where: string, kind: 'manifest' | 'blob', depth: number): string | undefined => {
    const {digest, size, mediaType} = (descriptor ?? {}) as {digest?: unknown; size?: unknown; mediaType?: unknown}
    const hex = typeof digest === 'string' ? SHA256_DIGEST.exec(digest)?.[1] : undefined
    if (!hex || typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
      return `${where} holds a descriptor that is not a sha256 digest and size (${JSON.stringify(descriptor)?.slice(0, 120)})`
    }
    const blob = blobs.get(hex)
    if (!blob) {
      if (kind === 'blob' && typeof mediaType === 'string' && NON_DISTRIBUTABLE.test(mediaType)) return undefined
      return `${where} names ${kind === 'manifest' ? 'manifest' : 'blob'} ${digest}, which is not in the package (${blobName(hex)} is missing)`
    }
    if (blob.size !== size) return `${blobName(hex)} is ${blob.size} bytes, but ${where} says ${size}`
    if (kind === 'blob' || visited.has(hex)) return undefined
    visited.add(hex)
    if (!blob.links) return `${blobName(hex)}, named as a manifest by ${where}, is not a JSON manifest or index`
    if (depth > 8) return `${blobName(hex)} nests image indexes more than 8 deep`
    return linksProblem(blobName(hex), blob.links, depth + 1)
  }
  const linksProblem = (where: string, links: BlobLinks, depth: number): string | undefined => {
    for (const [field, kind] of [['manifests', 'manifest'], ['layers', 'blob']] as const) {
      const list = links[field]
      if (list === undefined) continue
      if (!Array.isArray(list)) return `${where}: "${field}" is not a list`
      for (const descriptor of list) {
        const problem = visit(descriptor, where, kind, depth)
        if (problem) return problem
      }
    }
    return links.config === undefined ? undefined : visit(links.config, where, 'blob', depth)
  }
  if (!index || !Array.isArray(index.manifests)) return `${layout}/index.json is not an OCI image index (no "manifests" list)`
  return linksProblem(`${layout}/index.json`, {manifests: index.manifests}, 0)
}

/** What an attestation or other non-platform manifest of an index may reach, for time limits: its blobs are small. */
const SMALL_MANIFEST_ALLOWANCE = 1024 * 1024

/**
 * What copying a manifest moves, from its raw JSON (as a registry serves it), for time limits: a
 * manifest's own bytes, its config and layers; an index's own bytes and its manifests', with the digests
 * of its platform manifests (whose blobs the caller counts) and an allowance for the others
 * (attestations). Undefined for anything that is not a manifest or an index.
 */
export function transferBytes(raw: string): {bytes: number; platforms: string[]} | undefined {
  let manifest: IndexLike
  try {
    manifest = JSON.parse(raw) as IndexLike
  } catch {
    return undefined
  }
  if (!manifest || typeof manifest !== 'object') return undefined
  const size = (entry: Descriptor | undefined): number => (entry && Number.isFinite(entry.size) && entry.size > 0 ? entry.size : 0)
  const own = Buffer.byteLength(raw)
  if (Array.isArray(manifest.manifests)) {
    const platforms = manifest.manifests.filter((entry) => entry.platform?.architecture !== 'unknown')
    const others = manifest.manifests.length - platforms.length
    return {
      bytes: own + manifest.manifests.reduce((sum, entry) => sum + size(entry), 0) + others * SMALL_MANIFEST_ALLOWANCE,
      platforms: platforms.map((entry) => entry.digest),
    }
  }
  if (!manifest.config && !Array.isArray(manifest.layers)) return undefined
  return {bytes: own + size(manifest.config) + (manifest.layers ?? []).reduce((sum, entry) => sum + size(entry), 0), platforms: []}
}
