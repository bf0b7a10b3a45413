// The bench's image set: 30 images of 3–8 layers on four shared base stacks, random (incompressible) layer
// content, written straight into one OCI image layout and pushed to a local registry with skopeo.
//
// Layers are gzip streams made of stored (level 0) deflate blocks: the realistic media type
// (application/vnd.oci.image.layer.v1.tar+gzip) and valid for every tool, but as fast to write as a copy, and
// random bytes would not compress anyway. Their sizes are reproducible (a seeded generator); their content is
// new on every run, so no cache anywhere holds them.
import {execa} from 'execa'
import {createHash, randomBytes} from 'node:crypto'
import {createWriteStream} from 'node:fs'
import {mkdir, rename, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {Readable, Transform, type TransformCallback} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import {createGzip} from 'node:zlib'

import {tarHeader} from '../../test/support/oci-build.js'

const MB = 1e6
/** Unique content bytes of the set at --scale 1 (the set: 659 MB). */
export const UNIQUE_BYTES_AT_SCALE_1 = 659 * MB
const IMAGE_COUNT = 30

/** Four base stacks (sizes in MB at scale 1), each shared by a group of images, like debian, alpine, a JRE, python. */
const BASES: Array<{name: string; layersMB: number[]; images: number}> = [
  {name: 'debian', layersMB: [29, 7, 3], images: 10},
  {name: 'alpine', layersMB: [3.4, 1.2], images: 7},
  {name: 'jre', layersMB: [2, 0.5, 45, 12], images: 7},
  {name: 'python', layersMB: [27, 18, 11], images: 6},
]
const MAX_LAYERS = 8
const MIN_LAYERS = 3

export interface Blob {
  digest: string
  size: number
}

export interface BenchImage {
  /** ref.name in the layout, and the repository's last component: app01 … app30 */
  name: string
  /** Repository below the registry: `<prefix>/<name>` */
  repository: string
  tag: string
  manifest: Blob
  layers: Blob[]
}

export interface ImageSet {
  layout: string
  images: BenchImage[]
  /** Every distinct blob of the set (layers, configs, manifests), by digest. */
  blobs: Map<string, Blob>
  /** Digests of the layer blobs. */
  layerDigests: Set<string>
  uniqueBytes: number
}

/** mulberry32: a small seeded generator, so that layer counts and sizes are the same on every run. */
function seeded(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

interface Plan {
  bases: number[][]
  images: Array<{base: number; topBytes: number[]}>
}

/** Layer sizes in bytes: base stacks as listed, unique top layers log-uniform, scaled so the whole set is 659 MB × scale. */
function plan(scale: number): Plan {
  const random = seeded(11)
  const images: Array<{base: number; topWeights: number[]}> = []
  BASES.forEach((base, index) => {
    for (let i = 0; i < base.images; i++) {
      const minTop = Math.max(1, MIN_LAYERS - base.layersMB.length)
      const maxTop = MAX_LAYERS - base.layersMB.length
      const count = minTop + Math.floor(random() * (maxTop - minTop + 1))
      // Mostly small layers (config, scripts), some large ones (an application binary, a bundle): 0.05–60 MB.
      const topWeights = Array.from({length: count}, () => Math.exp(Math.log(0.05) + random() * (Math.log(60) - Math.log(0.05))))
      images.push({base: index, topWeights})
    }
  })
  const baseMB = BASES.reduce((sum, base) => sum + base.layersMB.reduce((a, b) => a + b, 0), 0)
  const weights = images.reduce((sum, image) => sum + image.topWeights.reduce((a, b) => a + b, 0), 0)
  const topFactor = (UNIQUE_BYTES_AT_SCALE_1 / MB - baseMB) / weights
  const bytes = (mb: number): number => Math.max(1024, Math.round(mb * MB * scale))
  return {
    bases: BASES.map((base) => base.layersMB.map(bytes)),
    images: images.map((image) => ({base: image.base, topBytes: image.topWeights.map((weight) => bytes(weight * topFactor))})),
  }
}

/** A tar holding one file of `size` random bytes, as a stream of chunks. */
function* randomTar(name: string, size: number): Generator<Buffer> {
  yield tarHeader(name, size)
  const CHUNK = 1 << 20
  for (let left = size; left > 0; left -= CHUNK) yield randomBytes(Math.min(CHUNK, left))
  yield Buffer.alloc((512 - (size % 512)) % 512 + 1024)
}

/** Passes bytes through, hashing them. */
class Hasher extends Transform {
  readonly hash = createHash('sha256')
  size = 0
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk)
    this.size += chunk.length
    callback(null, chunk)
  }
}

async function writeLayer(layout: string, name: string, size: number): Promise<{blob: Blob; diffId: string}> {
  const uncompressed = new Hasher()
  const compressed = new Hasher()
  const temporary = path.join(layout, 'blobs', `.${name.replaceAll('/', '_')}.tmp`)
  await pipeline(Readable.from(randomTar(name, size)), uncompressed, createGzip({level: 0}), compressed, createWriteStream(temporary))
  const hex = compressed.hash.digest('hex')
  await rename(temporary, path.join(layout, 'blobs', 'sha256', hex))
  return {blob: {digest: `sha256:${hex}`, size: compressed.size}, diffId: `sha256:${uncompressed.hash.digest('hex')}`}
}

async function writeJson(layout: string, value: unknown): Promise<Blob> {
  const bytes = Buffer.from(JSON.stringify(value))
  const hex = createHash('sha256').update(bytes).digest('hex')
  await writeFile(path.join(layout, 'blobs', 'sha256', hex), bytes)
  return {digest: `sha256:${hex}`, size: bytes.length}
}

/** Writes the set at `scale` into the OCI layout `layout`; images are named app01…app30, repositories `<prefix>/appNN`. */
export async function buildImageSet(layout: string, scale: number, prefix: string, log: (line: string) => void = () => {}): Promise<ImageSet> {
  await mkdir(path.join(layout, 'blobs', 'sha256'), {recursive: true})
  await writeFile(path.join(layout, 'oci-layout'), JSON.stringify({imageLayoutVersion: '1.0.0'}))
  const {bases, images: planned} = plan(scale)
  const blobs = new Map<string, Blob>()
  const layerDigests = new Set<string>()
  const add = (blob: Blob): Blob => {
    blobs.set(blob.digest, blob)
    return blob
  }
  const baseLayers: Array<Array<{blob: Blob; diffId: string}>> = []
  for (const [index, sizes] of bases.entries()) {
    const stack = []
    for (const [layer, size] of sizes.entries()) stack.push(await writeLayer(layout, `opt/base-${BASES[index].name}/layer${layer}.bin`, size))
    baseLayers.push(stack)
  }
  const images: BenchImage[] = []
  for (const [index, image] of planned.entries()) {
    const name = `app${String(index + 1).padStart(2, '0')}`
    const top = []
    for (const [layer, size] of image.topBytes.entries()) top.push(await writeLayer(layout, `opt/${name}/layer${layer}.bin`, size))
    const layers = [...baseLayers[image.base], ...top]
    for (const layer of layers) {
      add(layer.blob)
      layerDigests.add(layer.blob.digest)
    }
    const config = add(
      await writeJson(layout, {
        architecture: 'amd64',
        os: 'linux',
        config: {Cmd: [`/opt/${name}/run`]},
        rootfs: {type: 'layers', diff_ids: layers.map((layer) => layer.diffId)},
      }),
    )
    const manifest = add(
      await writeJson(layout, {
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: {mediaType: 'application/vnd.oci.image.config.v1+json', ...config},
        layers: layers.map((layer) => ({mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...layer.blob})),
      }),
    )
    images.push({name, repository: `${prefix}/${name}`, tag: `1.${index + 1}.0`, manifest, layers: layers.map((layer) => layer.blob)})
    if ((index + 1) % 10 === 0) log(`  built ${index + 1}/${planned.length} images`)
  }
  await writeFile(
    path.join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: images.map((image) => ({
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        ...image.manifest,
        annotations: {'org.opencontainers.image.ref.name': image.name},
      })),
    }),
  )
  const uniqueBytes = [...blobs.values()].reduce((sum, blob) => sum + blob.size, 0)
  return {layout, images, blobs, layerDigests, uniqueBytes}
}

/** Pushes every image of the set to `registry` (plain HTTP), digests preserved. */
export async function pushImageSet(set: ImageSet, registry: string): Promise<void> {
  for (const image of set.images) {
    await execa(
      'skopeo',
      ['copy', '--quiet', '--preserve-digests', '--dest-tls-verify=false', `oci:${set.layout}:${image.name}`, `docker://${registry}/${image.repository}:${image.tag}`],
      {stdin: 'ignore'},
    )
  }
}

export const imageCount = IMAGE_COUNT
export const layerCounts = (): number[] => plan(1).images.map((image) => BASES[image.base].layersMB.length + image.topBytes.length)
