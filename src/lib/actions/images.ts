import {mkdtemp} from 'node:fs/promises'
import path from 'node:path'

import type {FoundImage, KodSource, PackageRequest, SourceContext, SourcePackage, Target} from '../../api.js'
import {relocatedRepository, parseRef} from '../refs.js'
import type {SourceRegistry} from '../sources.js'
import {asKodError, mergeImages} from './package.js'

export interface ImagesResult {
  source: KodSource
  found: SourcePackage
  images: Array<FoundImage & {name: string}>
}

/** What `kod package` would package, without pulling anything: fetch and analyse into scratch space. */
export async function findImages(ctx: SourceContext, sources: SourceRegistry, request: PackageRequest, kind?: string): Promise<ImagesResult> {
  const source = await sources.pick(request, kind)
  const staging = await mkdtemp(path.join(ctx.tmpDir, 'images-'))
  const found = await source.package(ctx, request, staging).catch((error: unknown) => {
    throw asKodError(error)
  })
  return {source, found, images: mergeImages(found.images)}
}

/** Where populate will push an image for this target, tag or digest kept. */
export function relocatedReference(reference: string, target: Target): string {
  const ref = parseRef(reference)
  return `${relocatedRepository(ref, target)}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`
}
