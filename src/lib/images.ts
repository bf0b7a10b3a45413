import type {ImageRef, PlannedCommand, Target, ToolRunner} from '../api.js'
import {ExitCode, KodError, usageError} from './errors.js'
import {findImage, imagePlatforms} from './oci.js'
import {formatRef, hostComponent, parseRef, relocatedRepository} from './refs.js'
import {isInsecure} from './target.js'

/**
 * Every image moves with skopeo, keeping every manifest byte-identical (--all --preserve-digests), so
 * digest-pinned references resolve after relocation. All images of a package share one OCI layout,
 * where a layer used by several images is stored once.
 */
const COPY = ['copy', '--all', '--preserve-digests', '--retry-times', '2']

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

export function pullCommand(
  ref: ImageRef,
  layout: string,
  name: string,
  insecureHosts: readonly string[],
  mirrors: readonly Mirror[] = [],
): PlannedCommand {
  const source = pullSource(ref, mirrors)
  const insecure = insecureHosts.includes(source.host) || insecureHosts.includes(hostComponent(source.host))
  return {
    tool: 'skopeo',
    args: [...COPY, ...(insecure ? ['--src-tls-verify=false'] : []), `docker://${pullReference(source)}`, `oci:${layout}:${name}`],
  }
}

/** Where populate pushes an image: the relocated repository, with its tag, or its digest when it has no tag. */
export function pushReference(ref: ImageRef, target: Target): string {
  const repository = relocatedRepository(ref, target)
  return ref.tag ? `${repository}:${ref.tag}` : `${repository}@${ref.digest}`
}

export function pushCommand(layout: string, name: string, target: Target): PlannedCommand {
  const ref = parseRef(name)
  return {
    tool: 'skopeo',
    args: [...COPY, ...(isInsecure(target) ? ['--dest-tls-verify=false'] : []), `oci:${layout}:${name}`, `docker://${pushReference(ref, target)}`],
  }
}

/** Digest and platforms of an image already in the layout. */
export async function describeImage(layout: string, name: string): Promise<{digest: string; platforms: string[]}> {
  const descriptor = await findImage(layout, name)
  return {digest: descriptor.digest, platforms: await imagePlatforms(layout, descriptor)}
}

/** skopeo's words for a manifest that is not there (as opposed to a registry that did not answer). */
const NOT_FOUND = /manifest unknown|name unknown|not found|404/i

/** Whether the target registry has the image; any failure other than "not there" is an error. */
export async function existsInRegistry(tools: ToolRunner, reference: string, target: Target): Promise<boolean> {
  try {
    await tools.run('skopeo', ['inspect', '--raw', ...(isInsecure(target) ? ['--tls-verify=false'] : []), `docker://${reference}`], {
      timeoutMs: 60_000,
    })
    return true
  } catch (error) {
    if (error instanceof KodError && error.exit === ExitCode.toolFailed && NOT_FOUND.test(error.message)) return false
    throw error
  }
}
