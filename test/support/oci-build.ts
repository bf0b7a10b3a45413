import {createHash} from 'node:crypto'
import {mkdir, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {gzipSync} from 'node:zlib'

/**
 * Builds tiny OCI images without a container engine: each layer is a gzipped tar of a few small files,
 * written into an OCI image layout that skopeo can copy into a registry.
 */
export interface LayerSpec {
  /** file path inside the image -> content */
  files: Record<string, string>
}

export interface ImageSpec {
  /** ref.name in the layout's index.json */
  name: string
  layers: LayerSpec[]
  architecture?: string
  /** Build a multi-platform image (an OCI index) with one manifest per architecture, e.g. ['amd64', 'arm64']. */
  architectures?: string[]
}

function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex')
}

/** A ustar header for one regular file of `size` bytes (mode 0644, owner 0, time 0). */
export function tarHeader(name: string, size: number): Buffer {
  const header = Buffer.alloc(512)
  header.write(name, 0, 100)
  header.write('0000644\0', 100)
  header.write('0000000\0', 108)
  header.write('0000000\0', 116)
  header.write(size.toString(8).padStart(11, '0') + '\0', 124)
  header.write('00000000000\0', 136)
  header.write('        ', 148)
  header.write('0', 156)
  header.write('ustar\0', 257)
  header.write('00', 263)
  let sum = 0
  for (const byte of header) sum += byte
  header.write(sum.toString(8).padStart(6, '0') + '\0 ', 148)
  return header
}

/** A minimal ustar archive (regular files only): deterministic, so equal layers get equal digests. */
export function tarFiles(files: Record<string, string>): Buffer {
  const blocks: Buffer[] = []
  for (const [name, content] of Object.entries(files).sort(([a], [b]) => a.localeCompare(b))) {
    const body = Buffer.from(content)
    blocks.push(tarHeader(name, body.length), body, Buffer.alloc((512 - (body.length % 512)) % 512))
  }
  blocks.push(Buffer.alloc(1024))
  return Buffer.concat(blocks)
}

async function writeBlob(layout: string, data: Buffer | string): Promise<{digest: string; size: number}> {
  const buffer = Buffer.isBuffer(data) ? data : Buffer.from(data)
  const hex = sha256(buffer)
  await mkdir(path.join(layout, 'blobs', 'sha256'), {recursive: true})
  await writeFile(path.join(layout, 'blobs', 'sha256', hex), buffer)
  return {digest: `sha256:${hex}`, size: buffer.length}
}

async function writeManifest(layout: string, image: ImageSpec, architecture: string): Promise<{digest: string; size: number}> {
  const layers = []
  const diffIds = []
  for (const layer of image.layers) {
    const tar = tarFiles(layer.files)
    diffIds.push(`sha256:${sha256(tar)}`)
    const blob = await writeBlob(layout, gzipSync(tar, {level: 9}))
    layers.push({mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...blob})
  }
  const config = await writeBlob(
    layout,
    JSON.stringify({architecture, os: 'linux', config: {Cmd: ['/bin/true']}, rootfs: {type: 'layers', diff_ids: diffIds}}),
  )
  return writeBlob(
    layout,
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {mediaType: 'application/vnd.oci.image.config.v1+json', ...config},
      layers,
    }),
  )
}

/** Writes the images into an OCI layout at `layout`; returns each image's top digest (manifest or index) by name. */
export async function buildLayout(layout: string, images: ImageSpec[]): Promise<Record<string, string>> {
  await mkdir(layout, {recursive: true})
  await writeFile(path.join(layout, 'oci-layout'), JSON.stringify({imageLayoutVersion: '1.0.0'}))
  const manifests = []
  const digests: Record<string, string> = {}
  for (const image of images) {
    let top: {digest: string; size: number}
    let mediaType = 'application/vnd.oci.image.manifest.v1+json'
    if (image.architectures) {
      const entries = []
      for (const architecture of image.architectures) {
        const manifest = await writeManifest(layout, image, architecture)
        entries.push({mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, platform: {os: 'linux', architecture}})
      }
      mediaType = 'application/vnd.oci.image.index.v1+json'
      top = await writeBlob(layout, JSON.stringify({schemaVersion: 2, mediaType, manifests: entries}))
    } else {
      top = await writeManifest(layout, image, image.architecture ?? 'amd64')
    }
    digests[image.name] = top.digest
    manifests.push({mediaType, ...top, annotations: {'org.opencontainers.image.ref.name': image.name}})
  }
  await writeFile(path.join(layout, 'index.json'), JSON.stringify({schemaVersion: 2, manifests}))
  return digests
}
