import {readFile} from 'node:fs/promises'
import path from 'node:path'

import {packageError} from './errors.js'

/** Reading (never writing) an OCI image layout: skopeo writes it, kod only looks. */
export const REF_NAME = 'org.opencontainers.image.ref.name'

interface Descriptor {
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

function blobPath(layout: string, digest: string): string {
  const [algorithm, hex] = digest.split(':')
  return path.join(layout, 'blobs', algorithm, hex)
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
 * Bytes an image occupies in the layout: its manifest or index and every blob it reaches (each
 * platform's manifest, config and layers), each distinct blob once. What a pull stored and roughly
 * what a push sends, for progress.
 */
export async function imageSize(layout: string, descriptor: Descriptor): Promise<number> {
  const sizes = new Map<string, number>()
  const visit = async (entry: Descriptor): Promise<void> => {
    if (sizes.has(entry.digest)) return
    sizes.set(entry.digest, entry.size)
    const manifest = await readJson<IndexLike>(blobPath(layout, entry.digest))
    for (const child of manifest.manifests ?? []) await visit(child)
    for (const blob of [manifest.config, ...(manifest.layers ?? [])]) {
      if (blob) sizes.set(blob.digest, blob.size)
    }
  }
  await visit(descriptor)
  return [...sizes.values()].reduce((sum, size) => sum + (Number.isFinite(size) ? size : 0), 0)
}

function platformString(platform: {os: string; architecture: string; variant?: string}): string {
  return [platform.os, platform.architecture, platform.variant].filter(Boolean).join('/')
}

/** The platforms an image (or image index) provides, e.g. ["linux/amd64", "linux/arm64/v8"]. */
export async function imagePlatforms(layout: string, descriptor: Descriptor): Promise<string[]> {
  const manifest = await readJson<IndexLike>(blobPath(layout, descriptor.digest))
  const mediaType = manifest.mediaType ?? descriptor.mediaType ?? ''
  if (INDEX_TYPES.has(mediaType) || (manifest.manifests && !manifest.config)) {
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
