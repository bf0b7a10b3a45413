import type {FoundImage, ValuesBinding} from 'kod'

import {hintedImage} from './hint-bindings.js'
import type {HintedImage} from './hints.js'
import type {Binding, Item} from './items.js'
import type {RenderSession} from './session.js'
import {getPath, joinPath, splitPath, type Values} from './values.js'

export interface Analysis {
  images: FoundImage[]
  /** Values deploy must also set when relocating (e.g. Bitnami's allowInsecureImages). */
  extraValues: Values
  /** Lists (by values path) that relocation changes an element of, as the chart has them. */
  lists: Values
  /** Image-like strings kod saw but did not package, for a warning each. */
  unpackaged: Unpackaged[]
}

/** An image-like reference kod saw but does not package: nothing ties it to a value. */
export interface Unpackaged {
  ref: string
  template: string
  /** What to tell the user, after "<template> names <ref>, which". */
  reason: string
  /** What to do, when not adding the image with a hint (the default advice). */
  advice?: string
}

/**
 * Paths whose relocated values differ between the image fields they set. A binding of an argument,
 * env value or text that disagrees with an image field's on the same path is dropped instead.
 */
export function conflicts(bindings: Map<string, Binding>, items: Item[]): Set<string> {
  const valueByPath = new Map<string, string>()
  const conflicting = new Set<string>()
  const ordered = [...items].sort((a, b) => Number(!a.field) - Number(!b.field))
  for (const item of ordered) {
    const binding = bindings.get(item.key)
    if (!binding) continue
    const value = `${binding.value}\u0000${binding.replace}`
    const known = valueByPath.get(binding.path)
    if (known === undefined) valueByPath.set(binding.path, value)
    else if (known !== value) {
      if (item.field) conflicting.add(binding.path)
      else bindings.delete(item.key)
    }
  }
  return conflicting
}

/** What the analysis found, with the bindings the probe kept. */
export interface Findings {
  /** The items read from the first render. */
  items: Item[]
  verified: Map<string, Binding>
  /** What is known already not to be packaged (image fields that are no valid reference). */
  unpackaged: Unpackaged[]
}

/** The analysis: packaged images with their values (or a note why none), lists, and what is not packaged. */
export function analysisResult(session: RenderSession, hinted: readonly HintedImage[], {items, verified, unpackaged}: Findings): Analysis {
  // Image fields are always packaged; other image-like text only when values set it.
  const packaged = items.filter((item) => item.field || verified.has(item.key))
  for (const item of items) {
    if (item.field || verified.has(item.key) || packaged.some((other) => other.ref === item.ref)) continue
    if (unpackaged.some((other) => other.ref === item.ref && other.template === item.template)) continue
    const field = item.kind === 'other' ? ` (field ${item.where.split('/').at(-1)})` : ''
    unpackaged.push({ref: item.ref, template: item.template, reason: `looks like an image${field} but no value sets it: not packaged`})
  }
  // Lists that relocation values point into, as the chart has them: deploy writes them whole.
  const lists: Values = {}
  for (const binding of verified.values()) {
    const keys = splitPath(binding.path)
    const first = keys.findIndex((key) => typeof key === 'number')
    if (first > 0) lists[joinPath(keys.slice(0, first))] = structuredClone(getPath(session.effective, keys.slice(0, first)))
  }
  return {images: collect(packaged, verified, hinted), extraValues: session.extra, lists, unpackaged}
}

/** One FoundImage per reference: where it was found, the values that relocate it, and a note when some place has none. */
function collect(items: Item[], bindings: Map<string, Binding>, hinted: readonly HintedImage[]): FoundImage[] {
  const byRef = new Map<string, {foundIn: Set<string>; values: Map<string, ValuesBinding>; missing: Set<string>}>()
  for (const item of items) {
    if (!byRef.has(item.ref)) byRef.set(item.ref, {foundIn: new Set(), values: new Map(), missing: new Set()})
    const entry = byRef.get(item.ref)!
    const label = hintedImage(item, hinted)?.label ?? item.template
    entry.foundIn.add(label)
    const binding = bindings.get(item.key)
    if (binding) entry.values.set(binding.path, {path: binding.path, value: binding.value, replace: binding.replace})
    else entry.missing.add(label)
  }
  return [...byRef]
    .map(([ref, entry]) => {
      const image: FoundImage = {ref, foundIn: [...entry.foundIn].sort(), values: [...entry.values.values()]}
      if (entry.missing.size > 0) {
        image.note = `no value kod can set decides where ${[...entry.missing].sort().join(', ')} pulls it from (hard-coded in a template or inside a larger value, built at run time, or refused by the chart when changed)`
      }
      return image
    })
    .sort((a, b) => a.ref.localeCompare(b.ref))
}
