import type {ImageRef, PlannedCommand, Target, ToolRunner} from '../api.js'
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

export function hostOf(registry: string): string {
  return registry.split('/')[0]
}

export function pullCommand(
  ref: ImageRef,
  layout: string,
  name: string,
  insecureHosts: readonly string[],
): PlannedCommand {
  const insecure = insecureHosts.includes(ref.host) || insecureHosts.includes(hostComponent(ref.host))
  return {
    tool: 'skopeo',
    args: [...COPY, ...(insecure ? ['--src-tls-verify=false'] : []), `docker://${pullReference(ref)}`, `oci:${layout}:${name}`],
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

/** Whether the target registry has the image: skopeo inspect --raw succeeds. */
export async function existsInRegistry(tools: ToolRunner, reference: string, target: Target): Promise<boolean> {
  try {
    await tools.run('skopeo', ['inspect', '--raw', ...(isInsecure(target) ? ['--tls-verify=false'] : []), `docker://${reference}`], {
      timeoutMs: 60_000,
    })
    return true
  } catch {
    return false
  }
}
