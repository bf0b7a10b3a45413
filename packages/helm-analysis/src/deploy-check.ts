import type {RefHelpers} from 'kod'

import {imageItems, looksLikeImage} from './items.js'
import {occurrences} from './render.js'

/** What deploy knows of a packaged image: its name, how the chart renders it, and why no value relocates it. */
export interface PackagedForCheck {
  name: string
  ref: string
  foundIn: string[]
  note?: string
}

/**
 * Every image the install will run, as the chart renders with deploy's values: what deploy checks
 * against the private registry before installing. It reads everything package reads, and more: image
 * fields (composed ones too), fields of pod templates kept as ConfigMap or Secret text, arguments and env
 * values that are or name an image, image-like tokens in any text, other fields that hold an image
 * (imageName), and references kod cannot even parse. Package packages some of these only when a value
 * sets them and warns about the rest; deploy lets none of them come from outside the registry unnoticed.
 * A packaged image no value relocates and the chart does not render (a hinted one) is still pulled from
 * where it was, so it is listed too.
 */
export function imagesToCheck(refs: RefHelpers, output: string, packaged: readonly PackagedForCheck[]): Array<{ref: string; foundIn: string[]}> {
  const found = new Map<string, Set<string>>()
  const add = (ref: string, template: string): void => {
    if (!found.has(ref)) found.set(ref, new Set())
    found.get(ref)!.add(template)
  }
  const rendered = occurrences(output)
  const invalid: Array<{ref: string; template: string}> = []
  for (const item of imageItems(refs, rendered, invalid)) add(item.ref, item.template)
  for (const {ref, template} of invalid) add(ref, template)
  for (const occurrence of rendered) {
    if (occurrence.kind === 'other' && looksLikeImage(refs, occurrence.value)) add(occurrence.value, occurrence.template)
  }
  const normalized = (ref: string): string | undefined => {
    try {
      return refs.normalize(ref)
    } catch {
      return undefined
    }
  }
  const names = new Set([...found.keys()].map(normalized))
  for (const image of packaged) {
    if (image.note && !names.has(image.name)) for (const origin of image.foundIn) add(image.ref, origin)
  }
  return [...found].map(([ref, templates]) => ({ref, foundIn: [...templates].sort()})).sort((a, b) => a.ref.localeCompare(b.ref))
}
