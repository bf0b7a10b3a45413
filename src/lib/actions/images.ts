import {mkdtemp} from 'node:fs/promises'
import path from 'node:path'

import type {KodSource, PackageRequest, SourceContext, SourcePackage, Target, Unit} from '../../api.js'
import {relocatedRepository, parseRef} from '../refs.js'
import {optionsFor, type SourceFlagsGiven} from '../source-flags.js'
import type {SourceRegistry} from '../sources.js'
import {asKodError, collectImages} from './package.js'

export interface ImagesResult {
  source: KodSource
  found: SourcePackage
  /** Each unit with its images merged by name, as the package would record them. */
  units: Unit[]
}

/** What `kod package` would package, without pulling anything: fetch and analyse into scratch space. */
export async function findImages(
  ctx: SourceContext,
  sources: SourceRegistry,
  given: PackageRequest,
  kind?: string,
  sourceFlags: SourceFlagsGiven = [],
): Promise<ImagesResult> {
  const source = await sources.pick(given, kind)
  const request: PackageRequest = {...given, options: optionsFor(source, sourceFlags)}
  const staging = await mkdtemp(path.join(ctx.tmpDir, 'images-'))
  const found = await source.package(ctx, request, staging).catch((error: unknown) => {
    throw asKodError(error)
  })
  return {source, found, units: collectImages(found.units).units}
}

/** Where populate will push an image for this target, tag or digest kept. */
export function relocatedReference(reference: string, target: Target): string {
  const ref = parseRef(reference)
  return `${relocatedRepository(ref, target)}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`
}
