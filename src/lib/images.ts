import {createHash} from 'node:crypto'

import type {ImageRef, PackagedImage, PlannedCommand, Target, ToolRunner} from '../api.js'
import {ANSWER_MS, inspectFlags, isTimeout} from './bounds.js'
import {loginSuggestion} from './credentials.js'
import {ExitCode, KodError, usageError} from './errors.js'
import {findImage, imageBlobs, imagePlatforms} from './oci.js'
import {formatRef, hostComponent, parseRef, relocatedRepository} from './refs.js'
import {isInsecure} from './target.js'

/**
 * Every image moves with skopeo, keeping every manifest byte-identical (--all --preserve-digests), so
 * digest-pinned references resolve after relocation. All images of a package share one OCI layout,
 * where a layer used by several images is stored once.
 */
const COPY = ['copy', '--all', '--preserve-digests', '--retry-times', '2']

/** How many characters of the reference a layout name keeps readable. */
const READABLE_LENGTH = 100
/** How many hex digits of sha256(name) make a layout name unique. */
const HASH_LENGTH = 16

/**
 * The image's name in the package's OCI layout (its org.opencontainers.image.ref.name, format 2).
 *
 * The OCI grammar for ref.name is far stricter than Docker's for tags and repositories: `_-`, `__`,
 * `---`, a leading `_` are all refused, so the normalised reference cannot be the name. Instead:
 * the reference without its digest, every run of characters other than letters and digits that is
 * not a single `-`, `.`, `_` or `:` turned into `-`, cut to 100 characters and trimmed to start and
 * end on a letter or digit, then `+` and the first 16 hex digits of sha256(normalised name). The
 * hash keeps names unique whatever the readable part loses; `+` never occurs in a reference, so the
 * readable part ends unambiguously. Always valid, whatever the reference's spelling.
 */
export function layoutNameFor(name: string): string {
  const hash = createHash('sha256').update(name).digest('hex').slice(0, HASH_LENGTH)
  const at = name.indexOf('@')
  const readable = (at === -1 ? name : name.slice(0, at))
    .replaceAll(/[^A-Za-z0-9]+/g, (run) => (/^[-._:]$/.test(run) ? run : '-'))
    .slice(0, READABLE_LENGTH)
    .replaceAll(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '')
  return readable ? `${readable}+${hash}` : hash
}

/** Where a packaged image is in the layout: format 2 records it, format 1 used the normalised name. */
export function layoutNameOf(image: Pick<PackagedImage, 'name' | 'layoutName'>): string {
  return image.layoutName ?? image.name
}

/** What skopeo pulls: by digest when there is one (skopeo refuses tag+digest), else by tag. */
export function pullReference(ref: ImageRef): string {
  return formatRef(ref.digest ? {...ref, tag: undefined} : {...ref, tag: ref.tag ?? 'latest'})
}

/** --registry-mirror SOURCE=MIRROR: pull SOURCE's images from MIRROR (host[:port][/path]). */
export interface Mirror {
  source: string
  mirror: string
}

export function parseMirrors(specs: readonly string[]): Mirror[] {
  return specs.map((spec) => {
    const [source, mirror, ...rest] = spec.split('=')
    const cleanMirror = (mirror ?? '').trim().replace(/^https?:\/\//, '').replace(/\/+$/, '')
    if (!source?.trim() || !cleanMirror || rest.length > 0) {
      throw usageError(`--registry-mirror ${spec}: use SOURCE=MIRROR, e.g. docker.io=harbor.local/dockerhub-proxy`)
    }
    let host: string
    try {
      host = parseRef(`${source.trim()}/kod-probe`).host
      parseRef(`${cleanMirror}/kod-probe`)
    } catch {
      throw usageError(`--registry-mirror ${spec}: use SOURCE=MIRROR with registry hosts, e.g. docker.io=harbor.local/dockerhub-proxy`)
    }
    return {source: host, mirror: cleanMirror}
  })
}

/** Where an image is pulled from: through its registry's mirror if one is given, else from the registry itself. */
export function pullSource(ref: ImageRef, mirrors: readonly Mirror[] = []): ImageRef & {via?: string} {
  const mirror = mirrors.find((candidate) => candidate.source === ref.host)
  if (!mirror) return ref
  const [host, ...pathPrefix] = mirror.mirror.split('/')
  return {...ref, host, path: [...pathPrefix, ref.path].join('/'), via: mirror.mirror}
}

/** The pull of one image into the layout, stored under `layoutName` (layoutNameFor). */
export function pullCommand(
  ref: ImageRef,
  layout: string,
  layoutName: string,
  insecureHosts: readonly string[],
  mirrors: readonly Mirror[] = [],
): PlannedCommand {
  const source = pullSource(ref, mirrors)
  // --insecure-registry values are lower-case host[:port] (insecureRegistryHost); registry hosts are case-insensitive.
  const insecure = insecureHosts.includes(source.host.toLowerCase()) || insecureHosts.includes(hostComponent(source.host))
  return {
    tool: 'skopeo',
    args: [...COPY, ...(insecure ? ['--src-tls-verify=false'] : []), `docker://${pullReference(source)}`, `oci:${layout}:${layoutName}`],
  }
}

/** How many hex digits of the digest the tag of an image pinned by digest alone carries (all of a sha256). */
const DIGEST_TAG_HEX = 64

/**
 * The tag populate gives an image the chart pins by digest alone: `kod-` and the hex of the digest
 * stored (a sha256's 64 digits). Registries that garbage-collect untagged manifests (zot, after an hour
 * by default) then keep it. Deterministic, so a re-run finds it, and never the `sha256-<hex>` form the
 * OCI referrers API reserves for its fallback tags. The chart still pulls it by digest.
 */
export function digestTag(digest: string): string {
  const hex = digest.slice(digest.indexOf(':') + 1).toLowerCase()
  return `kod-${hex.slice(0, DIGEST_TAG_HEX)}`
}

/**
 * Where populate pushes an image: the relocated repository with its tag, or with digestTag of the digest
 * stored (`stored`, the package's images[].digest; else the reference's) when it has none.
 */
export function pushReference(ref: ImageRef, target: Target, stored?: string): string {
  const repository = relocatedRepository(ref, target)
  const digest = stored ?? ref.digest
  return ref.tag || !digest ? `${repository}:${ref.tag ?? 'latest'}` : `${repository}:${digestTag(digest)}`
}

/** The push of one packaged image: from its layout name (see layoutNameOf) to where pushReference says. */
export function pushCommand(layout: string, image: Pick<PackagedImage, 'name' | 'layoutName'> & Partial<Pick<PackagedImage, 'digest'>>, target: Target): PlannedCommand {
  const ref = parseRef(image.name)
  return {
    tool: 'skopeo',
    args: [
      ...COPY,
      ...(isInsecure(target) ? ['--dest-tls-verify=false'] : []),
      `oci:${layout}:${layoutNameOf(image)}`,
      `docker://${pushReference(ref, target, image.digest)}`,
    ],
  }
}

/**
 * The top manifest or index the source serves for a pull (skopeo inspect --raw, with the pull's
 * source flags), byte for byte (its digest is the hash of these bytes), bounded like the pull's first
 * answer: a registry that does not answer within ANSWER_MS fails here, named; any other failure gives
 * undefined, and the pull itself says why.
 */
export async function sourceManifest(tools: ToolRunner, pull: PlannedCommand): Promise<string | undefined> {
  const source = pull.args.at(-2) ?? ''
  try {
    return (await tools.run('skopeo', ['inspect', '--raw', ...inspectFlags(pull.args, '--src-'), source], {env: pull.env, timeoutMs: ANSWER_MS, raw: true})).stdout
  } catch (error) {
    if (isTimeout(error)) throw error
    return undefined
  }
}

/** The digest of a manifest as sourceManifest read it, and whether it is `expected`. */
export function manifestDigest(raw: string, expected?: string): {digest: string; matches: boolean} {
  const digest = `sha256:${createHash('sha256').update(raw).digest('hex')}`
  return {digest, matches: digest === expected}
}

/**
 * Digest, platforms, blobs and stored size of the image named `layoutName` in the layout: the size is
 * what a pull stored and roughly what a push sends, for progress.
 */
export async function describeImage(layout: string, layoutName: string): Promise<{digest: string; platforms: string[]; blobs: Map<string, {size: number; manifest: boolean}>; bytes: number}> {
  const descriptor = await findImage(layout, layoutName)
  const blobs = await imageBlobs(layout, descriptor)
  const bytes = [...blobs.values()].reduce((sum, {size}) => sum + (Number.isFinite(size) ? size : 0), 0)
  return {digest: descriptor.digest, platforms: await imagePlatforms(layout, descriptor), blobs, bytes}
}

/** skopeo's words for a manifest that is not there (as opposed to a registry that did not answer). */
export const NOT_FOUND = /manifest unknown|name unknown|not found|404/i

/** Whether the target registry has the image; any failure other than "not there" is an error. */
export async function existsInRegistry(tools: ToolRunner, reference: string, target: Target): Promise<boolean> {
  try {
    await tools.run('skopeo', ['inspect', '--raw', ...(isInsecure(target) ? ['--tls-verify=false'] : []), `docker://${reference}`], {
      timeoutMs: 60_000,
    })
    return true
  } catch (error) {
    if (error instanceof KodError && error.exit === ExitCode.toolFailed && NOT_FOUND.test(error.message)) return false
    const suggestions = error instanceof KodError ? loginSuggestion(error.message, target.registry) : []
    if (suggestions.length > 0) throw new KodError((error as KodError).message, {exit: (error as KodError).exit, suggestions, cause: error})
    throw error
  }
}
