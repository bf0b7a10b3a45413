import type {RefHelpers, ValuesBinding} from 'kod'

import {imageFieldsInText, imageTokens, namedForImage, type Occurrence} from './render.js'
import {hasTagOrDigest} from './values.js'

/** One place an image reference sits in the rendered output. */
export interface Item {
  /** The occurrence's where, plus "|token" for a reference inside text. */
  key: string
  where: string
  template: string
  kind: Occurrence['kind']
  /** The reference as rendered. */
  ref: string
  /** Text before the reference in an argument ("--image="). */
  prefix: string
  /** The reference is a token inside a larger text (ConfigMap data, a multi-image env value). */
  partial: boolean
  /**
   * It is an image the workload runs whether or not a value sets it (an image field, an `image:` line of a
   * pod template kept in a ConfigMap, an argument or env variable named for an image): packaged always,
   * and named as not relocatable when no value relocates it. Other image-like text is packaged only
   * when a value sets it.
   */
  field: boolean
}

/** The value that relocates an item, keyed by the item's key. */
export interface Binding extends ValuesBinding {
  key: string
}

function parseable(refs: RefHelpers, value: string): boolean {
  try {
    refs.parse(value)
    return true
  } catch {
    return false
  }
}

/** An image carried in an argument ("--image=repo:tag") or env value: the part that is a reference. */
export function imagePart(value: string): {prefix: string; ref: string} {
  const eq = value.indexOf('=')
  return eq !== -1 && value.startsWith('-') ? {prefix: value.slice(0, eq + 1), ref: value.slice(eq + 1)} : {prefix: '', ref: value}
}

/** An argument or env value that is an image reference: a path and a tag or digest ("host:port" alone is not). */
export function looksLikeImage(refs: RefHelpers, value: string): boolean {
  const {ref} = imagePart(value)
  return parseable(refs, ref) && ref.includes('/') && hasTagOrDigest(ref)
}

/**
 * The value of an argument or env variable named for an image: any reference with a tag, a digest or a
 * path (`alpine:3.19`, `quay.io/x/y`), not a bare word (`Always`) and not a URL.
 */
export function isNamedImageValue(refs: RefHelpers, value: string): boolean {
  const {ref} = imagePart(value)
  return !ref.includes('://') && parseable(refs, ref) && (ref.includes('/') || hasTagOrDigest(ref))
}

/** The repository an argument or env value named for an image holds when it has a path but neither tag nor digest. */
function untaggedRepository(refs: RefHelpers, occurrence: Occurrence): string | undefined {
  const {ref} = imagePart(occurrence.value)
  // A named image value without tag or digest has a path (isNamedImageValue): a repository.
  return namedForImage(occurrence.name) && isNamedImageValue(refs, occurrence.value) && !hasTagOrDigest(ref) ? ref : undefined
}

/** An argument or env value that is one whole image: named for one, or looking like one. */
function wholeImage(refs: RefHelpers, occurrence: Occurrence): {named: boolean} | undefined {
  const named = namedForImage(occurrence.name) && isNamedImageValue(refs, occurrence.value)
  return named || looksLikeImage(refs, occurrence.value) ? {named} : undefined
}

/**
 * The items of a render: every image field; arguments, env values, ConfigMap text and other fields named
 * like an image only where they look like an image (or hold image-like tokens). Image fields that are no
 * valid reference, and repositories without a tag in arguments or env values named for an image, are set
 * aside in `invalid`, with why.
 */
export function imageItems(refs: RefHelpers, found: Occurrence[], invalid: Array<{ref: string; template: string; reason?: string}> = []): Item[] {
  const tokens = (occurrence: Occurrence): Item[] => {
    // Text that parses is read field by field (its fields are occurrences of their own); other text by its image: lines.
    const fields = occurrence.kind === 'text' && !occurrence.structured ? imageFieldsInText(occurrence.value) : []
    return [...new Set([...fields, ...imageTokens(occurrence.value)])]
      .filter((token) => parseable(refs, token))
      .map((token) => ({...occurrence, key: `${occurrence.where}|${token}`, ref: token, prefix: '', partial: true, field: fields.includes(token)}))
  }
  return found.flatMap((occurrence): Item[] => {
    const {where, template, kind} = occurrence
    if (kind === 'image') {
      if (parseable(refs, occurrence.value)) return [{key: where, where, template, kind, ref: occurrence.value, prefix: '', partial: false, field: true}]
      invalid.push({ref: occurrence.value, template})
      return []
    }
    if (kind === 'text') return tokens(occurrence)
    // Another field named like an image (a custom resource's imageName, an annotation naming a proxy image):
    // an image when it holds a whole reference, packaged only when a value sets it (field: false).
    if (kind === 'other') return looksLikeImage(refs, occurrence.value) ? [{key: where, where, template, kind, ref: occurrence.value, prefix: '', partial: false, field: false}] : []
    // Named for an image but a repository alone (MONGODB_DATABASE_IMAGE=quay.io/mongodb/database beside a
    // *_VERSION variable): the program composes the image at run time; packaging it would take :latest.
    const repository = untaggedRepository(refs, occurrence)
    if (repository) {
      invalid.push({ref: repository, template, reason: `is named for an image (${occurrence.name}) but has no tag or digest: a repository the workload completes at run time (kod would pull :latest), not packaged`})
      return []
    }
    const whole = wholeImage(refs, occurrence)
    if (!whole) return tokens(occurrence)
    const {prefix, ref} = imagePart(occurrence.value)
    return [{key: where, where, template, kind, ref, prefix, partial: false, field: whole.named}]
  })
}
