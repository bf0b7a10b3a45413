import type {PackagedImage, RefHelpers} from 'kod'

import {imagePart, looksLikeImage} from './items.js'
import {imageFieldsInText, imageTokens, namedForImage, occurrences} from './render.js'

/**
 * Every image the install will run, as the chart renders with deploy's values: what deploy checks
 * against the private registry before installing. The same places package reads are read here: image
 * fields (and the composed images of custom resources), `image:` lines of pod templates kept in
 * ConfigMaps, arguments and env values named for an image, and any argument, env value or ConfigMap
 * text that carries an image the package holds. A packaged image no value relocates and the chart does
 * not render (a hinted one) is still pulled from where it was, so it is listed too.
 */
export function imagesToCheck(refs: RefHelpers, output: string, packaged: readonly PackagedImage[]): Array<{ref: string; foundIn: string[]}> {
  const normalized = (ref: string): string | undefined => {
    try {
      return refs.normalize(ref)
    } catch {
      return undefined
    }
  }
  const names = new Set(packaged.map((image) => image.name))
  const carried = (ref: string): boolean => names.has(normalized(ref) ?? '')
  const found = new Map<string, Set<string>>()
  const add = (ref: string, template: string): void => {
    if (!found.has(ref)) found.set(ref, new Set())
    found.get(ref)!.add(template)
  }
  for (const occurrence of occurrences(output)) {
    const {kind, value, template} = occurrence
    if (kind === 'other') continue
    if (kind === 'image') {
      add(value, template)
      continue
    }
    if (kind === 'text') for (const ref of imageFieldsInText(value)) add(ref, template)
    if ((kind === 'arg' || kind === 'env') && looksLikeImage(refs, value)) {
      const {ref} = imagePart(value)
      if (namedForImage(occurrence.name) || carried(ref)) add(ref, template)
    }
    for (const ref of imageTokens(value).filter(carried)) add(ref, template)
  }
  const rendered = new Set([...found.keys()].map(normalized))
  for (const image of packaged) {
    if (image.note && !rendered.has(image.name)) for (const origin of image.foundIn) add(image.ref, origin)
  }
  return [...found].map(([ref, templates]) => ({ref, foundIn: [...templates].sort()})).sort((a, b) => a.ref.localeCompare(b.ref))
}
