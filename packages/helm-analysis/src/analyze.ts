import {readFile, writeFile} from 'node:fs/promises'
import path from 'node:path'
import YAML from 'yaml'

import type {FoundImage, RefHelpers, SourceContext, Target, ValuesBinding} from 'kod'

import {type ChartTree, valuesPathsInTemplates} from './chart-files.js'
import {type HintedImage, HINTS_TEMPLATE} from './hints.js'
import {imageFieldsInText, imageTokens, namedForImage, type Occurrence, occurrences, render, type RenderOptions, setValues} from './render.js'
import {
  getPath,
  isMap,
  joinPath,
  mergeValues,
  nameOf,
  type PathKey,
  relocatedValue,
  replaceLength,
  setPath,
  splitPath,
  type Values,
} from './values.js'

/**
 * Which values put which image where, learnt from helm itself rather than guessed from key names.
 *
 * 1. Render as the user will, and collect every image (image fields; container args and env values
 *    that carry an image set through values).
 * 2. Render again with every candidate value (strings that appear in an image's name, and empty
 *    registry-like values) replaced by a unique sentinel. An image whose reference now starts with a
 *    sentinel is relocated by that value; the text the value produced is found by aligning the two
 *    renders. A render that fails with sentinels is bisected until the culprits are left out.
 * 3. Values shared by images that need different relocations (a global registry over two hosts) are
 *    left out and the sentinel render repeated, which reveals the per-image values below them.
 * 4. Render once more with the relocation values for a probe registry and keep only what lands
 *    exactly where populate pushes. Everything else is reported, with its template.
 */
const SENTINEL = /kodsnt(\d{4})x/g
const sentinel = (index: number): string => `kodsnt${String(index).padStart(4, '0')}x`

/** Keys whose empty value may still decide where an image comes from (global.imageRegistry, hub, …). */
const LOCATION_KEY = /(registry|hub|repository|repo|image|imagenamespace|namespace|organization|org|owner|prefix)$/i
/** Keys that only ever hold the tag or digest part: never relocated, never rewritten. */
const VERSION_KEY = /(tag|version|digest|sha|pullpolicy)$/i

/** Where the probe render puts images; any address works, this one can never be reached. */
export const PROBE_TARGET: Target = {registry: 'kod-probe.invalid:5000', prefix: 'kod', plainHttp: false, insecureSkipTlsVerify: false}

/** Bitnami charts refuse replaced images unless this is set. */
const ALLOW_INSECURE_IMAGES = ['global', 'security', 'allowInsecureImages']

interface Candidate {
  keys: PathKey[]
  path: string
  original: string
}

export interface Analysis {
  images: FoundImage[]
  /** Values deploy must also set when relocating (e.g. Bitnami's allowInsecureImages). */
  extraValues: Values
  /** Lists (by values path) that relocation changes an element of, as the chart has them. */
  lists: Values
  /** Image-like strings kod saw but did not package, for a warning each. */
  unpackaged: Unpackaged[]
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
  return parseable(refs, ref) && ref.includes('/') && /[:@]/.test(ref.slice(nameOf(ref).length))
}

/** Candidate values: strings found in the name part of an image, and empty location-like values (in maps and lists). */
export function findCandidates(values: Values, names: string[], templatePaths: string[][] = []): Candidate[] {
  const found = new Map<string, Candidate>()
  const consider = (key: string, value: unknown, here: PathKey[]): void => {
    if (isMap(value)) {
      walk(Object.entries(value), here)
    } else if (Array.isArray(value)) {
      walk(value.map((item, index) => [index, item] as [number, unknown]), here, key)
    } else if (typeof value === 'string' && !VERSION_KEY.test(key)) {
      const text = value.trim()
      const inName = text.length >= 2 && names.some((name) => name.includes(text) || text.includes(name))
      if (inName || (text === '' && LOCATION_KEY.test(key))) found.set(joinPath(here), {keys: here, path: joinPath(here), original: value})
    } else if (value === null && LOCATION_KEY.test(key)) {
      found.set(joinPath(here), {keys: here, path: joinPath(here), original: ''})
    }
  }
  // A list item is judged by its list's key (a list of images under "images").
  const walk = (entries: Array<[PathKey, unknown]>, keys: PathKey[], listKey?: string): void => {
    for (const [key, value] of entries) consider(typeof key === 'number' ? (listKey ?? '') : key, value, [...keys, key])
  }
  walk(Object.entries(values), [])
  // Location-like values the templates read but values.yaml does not declare (a commented-out registry).
  for (const keys of templatePaths) {
    if (!LOCATION_KEY.test(keys.at(-1)!) || getPath(values, keys) !== undefined) continue
    // Only where nothing on the way is a scalar already.
    if (keys.slice(1, -1).some((_, index) => {
      const at = getPath(values, keys.slice(0, index + 2))
      return at !== undefined && !isMap(at)
    })) continue
    found.set(joinPath(keys), {keys, path: joinPath(keys), original: ''})
  }
  return [...found.values()]
}

/**
 * The text a sentinel at the start of `rendered` stood for in `original`. Later sentinels whose value is
 * known stand for that value; the others for any text. The value itself wins when it fits; else, of the
 * prefixes for which the rest of both renders agrees, the longest within the repository name (an unknown
 * value after it is more likely an image's own name than part of a registry path).
 */
export function alignFirst(rendered: string, original: string, value: string, known: ReadonlyMap<number, string> = new Map()): string | undefined {
  const first = new RegExp(`^${SENTINEL.source}`).exec(rendered)
  if (!first) return undefined
  const rest = rendered.slice(first[0].length)
  const escape = (text: string): string => text.replaceAll(/[.*+?^${}()|[\]\\]/g, '\\$&')
  // split() with a capture group interleaves the sentinel numbers (odd indices) with the literals.
  const parts = rest.split(SENTINEL)
  const pattern = new RegExp(
    `^${parts.map((part, index) => (index % 2 === 0 ? escape(part) : known.has(Number(part)) ? escape(known.get(Number(part))!) : '(.*?)')).join('')}$`,
  )
  const fits = (after: string): boolean => pattern.test(after)
  if (value && original.startsWith(value) && fits(original.slice(value.length))) return value
  const lengths = Array.from({length: original.length + 1}, (_, length) => length).filter((length) => fits(original.slice(length)))
  const withinName = lengths.filter((length) => length <= nameOf(original).length)
  const chosen = withinName.length > 0 ? withinName.at(-1) : lengths[0]
  return chosen === undefined ? undefined : original.slice(0, chosen)
}

interface Binding extends ValuesBinding {
  key: string
}

/** One place an image reference sits in the rendered output. */
interface Item {
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

/** What hints add to an analysis. */
export interface AnalysisHints {
  /** References written into the analysis-only hints template. */
  images: HintedImage[]
  /** Values set in every analysis render and in deploy's values. */
  values: Values
}

/** An image-like reference kod saw but does not package: nothing ties it to a value. */
export interface Unpackaged {
  ref: string
  template: string
  /** What to tell the user, after "<template> names <ref>, which". */
  reason: string
}

export class ImageAnalyzer {
  private renders = 0
  private readonly chart: string
  private readonly options: RenderOptions
  private readonly sets: string[]
  /** Values files every render gets after the user's: --set as a file, then the hints' and kod's own values. */
  private fixedFiles: string[] = []
  /** The chart's values as the user's files and --set leave them: lists are copied from here when changed. */
  private effective: Values = {}

  /** Renders tree.dir (the scratch copy), which may carry the analysis-only hints template. */
  constructor(
    private readonly ctx: SourceContext,
    options: RenderOptions,
    private readonly tree: ChartTree,
    private readonly hints: AnalysisHints = {images: [], values: {}},
  ) {
    this.chart = tree.dir
    // --set becomes a values file (setValues), so that sentinel and probe values can come after it.
    this.options = {...options, set: undefined}
    this.sets = options.set ?? []
  }

  /** A failed render is tolerated during analysis, but never an interruption. */
  private rethrowIfCancelled(error: unknown): void {
    if (this.ctx.cancelSignal?.aborted) throw error
  }

  get renderCount(): number {
    return this.renders
  }

  /** The hinted image a hints-template item stands for. */
  private hinted(item: Item): HintedImage | undefined {
    if (!item.template.endsWith(`/templates/${HINTS_TEMPLATE}`)) return undefined
    const index = /\/containers\/(\d+)\/image$/.exec(item.where)?.[1]
    return index === undefined ? undefined : this.hints.images[Number(index)]
  }

  /**
   * Every image field; arguments, env values and ConfigMap text only where they look like an image (or
   * hold image-like tokens). Image fields that are no valid reference are set aside in `invalid`.
   */
  private items(found: Occurrence[], invalid: Array<{ref: string; template: string}> = []): Item[] {
    const refs = this.ctx.refs
    const tokens = (occurrence: Occurrence): Item[] => {
      const fields = occurrence.kind === 'text' ? imageFieldsInText(occurrence.value) : []
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
      if (kind === 'other') return []
      if (!looksLikeImage(refs, occurrence.value)) return tokens(occurrence)
      const {prefix, ref} = imagePart(occurrence.value)
      return [{key: where, where, template, kind, ref, prefix, partial: false, field: namedForImage(occurrence.name)}]
    })
  }

  private async render(extraFiles: string[]): Promise<string> {
    this.renders++
    return render(this.ctx, this.chart, {...this.options, valuesFiles: [...this.options.valuesFiles, ...this.fixedFiles, ...extraFiles]})
  }

  private async valuesFile(name: string, values: Values): Promise<string> {
    const file = path.join(this.ctx.tmpDir, `${name}-${this.renders}.yaml`)
    await writeFile(file, YAML.stringify(values, {lineWidth: 0}))
    return file
  }

  /** Sentinel renders of these candidates; a failing set is split until the culprits are alone and dropped. */
  private async sentinelRenders(candidates: Candidate[], extra: Values): Promise<Array<{output: string; byIndex: Map<number, Candidate>}>> {
    if (candidates.length === 0) return []
    const values: Values = mergeValues({}, extra)
    const byIndex = new Map<number, Candidate>()
    for (const [index, candidate] of candidates.entries()) {
      byIndex.set(index, candidate)
      setPath(values, candidate.keys, sentinel(index), this.effective)
    }
    try {
      return [{output: await this.render([await this.valuesFile('sentinels', values)]), byIndex}]
    } catch (error) {
      this.rethrowIfCancelled(error)
      if (candidates.length === 1) {
        this.ctx.log.debug(`a sentinel in ${candidates[0].path} breaks the render: ${(error as Error).message}`)
        return []
      }
      const middle = Math.ceil(candidates.length / 2)
      return [
        ...(await this.sentinelRenders(candidates.slice(0, middle), extra)),
        ...(await this.sentinelRenders(candidates.slice(middle), extra)),
      ]
    }
  }

  /** For each item, the binding that relocates it, from one round of sentinel renders. */
  private async bindingsRound(candidates: Candidate[], items: Item[], extra: Values): Promise<Map<string, Binding>> {
    const refs = this.ctx.refs
    const found = new Map<string, Binding>()
    const bind = (item: Item, path: string, value: string): void => {
      const replace = replaceLength(refs, value, item.ref, PROBE_TARGET)
      if (replace !== undefined) found.set(item.key, {key: item.key, path, value, replace})
    }
    for (const {output, byIndex} of await this.sentinelRenders(candidates, extra)) {
      const known = new Map([...byIndex].filter(([, candidate]) => candidate.original.trim() !== '').map(([index, candidate]) => [index, candidate.original.trim()]))
      const rendered = new Map(occurrences(output).map((occurrence) => [occurrence.where, occurrence.value]))
      for (const item of items) {
        const text = rendered.get(item.where)
        if (text === undefined || found.has(item.key)) continue
        if (item.partial) {
          // The token's start is a value's when the sentinel, followed by the rest of the token, is in the text.
          for (const [index, candidate] of byIndex) {
            const value = candidate.original.trim()
            if (!value || !item.ref.startsWith(value)) continue
            const restored = text.replaceAll(SENTINEL, (match, number: string) => (Number(number) === index ? match : (known.get(Number(number)) ?? match)))
            if (restored.includes(sentinel(index) + item.ref.slice(value.length))) {
              bind(item, candidate.path, value)
              break
            }
          }
          continue
        }
        const part = imagePart(text)
        if (part.prefix !== item.prefix) continue
        const first = new RegExp(`^${SENTINEL.source}`).exec(part.ref)
        const candidate = first ? byIndex.get(Number(first[1])) : undefined
        if (!candidate) continue
        const value = alignFirst(part.ref, item.ref, candidate.original.trim(), known)
        if (value !== undefined) bind(item, candidate.path, value)
      }
    }
    return found
  }

  async analyze(): Promise<Analysis> {
    const refs = this.ctx.refs
    let effective = this.tree.values
    for (const file of this.options.valuesFiles) {
      const data = YAML.parse(await readFile(file, 'utf8')) as unknown
      if (isMap(data)) effective = mergeValues(effective, data)
    }
    const fromSet = await setValues(this.ctx, this.sets)
    effective = mergeValues(effective, fromSet)
    this.effective = effective
    const extra: Values = mergeValues({}, this.hints.values)
    if (getPath(effective, ALLOW_INSECURE_IMAGES) !== undefined && getPath(extra, ALLOW_INSECURE_IMAGES) === undefined) {
      setPath(extra, ALLOW_INSECURE_IMAGES, true)
    }
    // Every render, the first included, sees --set and the values kod will set when relocating.
    this.fixedFiles = [
      ...(Object.keys(fromSet).length > 0 ? [await this.valuesFile('set', fromSet)] : []),
      ...(Object.keys(extra).length > 0 ? [await this.valuesFile('extra', extra)] : []),
    ]
    const invalid: Array<{ref: string; template: string}> = []
    const base = occurrences(await this.render([]))
    const items = this.items(base, invalid)
    const unpackaged: Unpackaged[] = invalid.map((entry) => ({...entry, reason: 'is not a valid image reference (rendered as is: kod cannot pull it)'}))
    const names = [...new Set(items.map((item) => nameOf(item.ref)))]
    if (names.length === 0) return {images: [], extraValues: extra, lists: {}, unpackaged: [...unpackaged, ...this.otherImageFields(base)]}

    const allCandidates = findCandidates(effective, names, valuesPathsInTemplates(this.tree.templates, path.basename(this.tree.dir)))
    // Without the empty candidates (they can change a template's shape): the retry for what round 1 left.
    const nonEmpty = allCandidates.filter((candidate) => candidate.original.trim() !== '')
    this.ctx.log.debug(`candidates: ${allCandidates.map((candidate) => candidate.path).join(', ')}`)
    const bindings = await this.bindingsRound(allCandidates, items, extra)

    // Round 2, for what round 1 left unbound or bound to a value asked to hold two relocations.
    const conflicts = this.conflicts(bindings, items)
    for (const [key, binding] of bindings) if (conflicts.has(binding.path)) bindings.delete(key)
    const again = items.filter((item) => !bindings.has(item.key))
    if (again.length > 0) {
      const retry = nonEmpty.filter((candidate) => !conflicts.has(candidate.path))
      const second = await this.bindingsRound(retry, again, extra)
      for (const item of again) {
        const binding = second.get(item.key)
        if (binding) bindings.set(item.key, binding)
      }
      for (const conflict of this.conflicts(bindings, items)) {
        for (const [key, binding] of bindings) if (binding.path === conflict) bindings.delete(key)
      }
    }

    // Values paths a hint names, for images no sentinel could tie to a value.
    for (const item of items.filter((candidate) => candidate.kind === 'image' && !bindings.has(candidate.key))) {
      const named = this.hinted(item)?.values ?? this.hints.images.filter((image) => this.renderedHint(items, image) === item.ref).flatMap((image) => image.values)
      for (const valuesPath of named) {
        const value = getPath(effective, splitPath(valuesPath))
        const replace = typeof value === 'string' && item.ref.startsWith(value) ? replaceLength(refs, value, item.ref, PROBE_TARGET) : undefined
        if (replace === undefined) {
          this.ctx.log.warn(`a hint names ${valuesPath} for ${item.ref}, but that value is not a string the reference starts with; ignored`)
          continue
        }
        bindings.set(item.key, {key: item.key, path: valuesPath, value: value as string, replace})
        break
      }
    }

    let verified = await this.verify(bindings, items, extra)
    // An image whose binding failed the probe is tried again without the values that failed (up to three
    // times: each try can reveal the next value down, as a shadowed registry reveals its repository).
    const excluded = new Set<string>()
    let tried = bindings
    for (let attempt = 0; attempt < 3; attempt++) {
      const failed = items.filter((item) => tried.has(item.key) && !verified.has(item.key))
      if (failed.length === 0) break
      const usedElsewhere = new Set([...verified.values()].map((binding) => binding.path))
      for (const item of failed) {
        const path = tried.get(item.key)!.path
        if (!usedElsewhere.has(path)) excluded.add(path)
      }
      const retry = allCandidates.filter((candidate) => !excluded.has(candidate.path))
      tried = await this.bindingsRound(retry, failed, extra)
      if (tried.size === 0) break
      verified = await this.verify(new Map([...verified, ...tried]), items, extra)
    }

    // Image fields are always packaged; other image-like text only when values set it.
    const packaged = items.filter((item) => item.field || verified.has(item.key))
    for (const item of items) {
      if (item.field || verified.has(item.key) || packaged.some((other) => other.ref === item.ref)) continue
      if (unpackaged.some((other) => other.ref === item.ref && other.template === item.template)) continue
      unpackaged.push({ref: item.ref, template: item.template, reason: 'looks like an image but no value sets it: not packaged'})
    }
    unpackaged.push(...this.otherImageFields(base).filter((other) => !packaged.some((item) => item.ref === other.ref)))
    // Lists that relocation values point into, as the chart has them: deploy writes them whole.
    const lists: Values = {}
    for (const binding of verified.values()) {
      const keys = splitPath(binding.path)
      const first = keys.findIndex((key) => typeof key === 'number')
      if (first > 0) lists[joinPath(keys.slice(0, first))] = structuredClone(getPath(effective, keys.slice(0, first)))
    }
    return {images: this.collect(packaged, verified), extraValues: extra, lists, unpackaged}
  }

  /**
   * Image-like strings in fields kod does not read as images (imageName, a custom resource's package, …):
   * named so the user can add a hint, never packaged on a guess.
   */
  private otherImageFields(base: Occurrence[]): Unpackaged[] {
    return base
      .filter((occurrence) => occurrence.kind === 'other' && looksLikeImage(this.ctx.refs, occurrence.value))
      .map((occurrence) => ({ref: occurrence.value, template: occurrence.template, reason: `looks like an image (field ${occurrence.where.split('/').at(-1)}) but kod reads only image fields: not packaged`}))
  }

  /** What a hinted reference rendered to. */
  private renderedHint(items: Item[], image: HintedImage): string | undefined {
    return items.find((item) => this.hinted(item) === image)?.ref
  }

  /**
   * Paths whose relocated values differ between the image fields they set. A binding of an argument,
   * env value or text that disagrees with an image field's on the same path is dropped instead.
   */
  private conflicts(bindings: Map<string, Binding>, items: Item[]): Set<string> {
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

  /**
   * Render with the relocation values for the probe registry; keep the bindings that land exactly. When
   * the values break the render (a schema or a check rejects one), the paths are split until the
   * culprits are alone and dropped, so one rejected value does not cost every other image.
   */
  private async verify(bindings: Map<string, Binding>, items: Item[], extra: Values): Promise<Map<string, Binding>> {
    const paths = [...new Set([...bindings.values()].map((binding) => binding.path))]
    const result = await this.verifyOnce(bindings, items, extra)
    if (result !== 'render failed') return result
    if (paths.length <= 1) return new Map()
    const half = new Set(paths.slice(0, Math.ceil(paths.length / 2)))
    const pick = (inHalf: boolean): Map<string, Binding> => new Map([...bindings].filter(([, binding]) => half.has(binding.path) === inHalf))
    return new Map([...(await this.verify(pick(true), items, extra)), ...(await this.verify(pick(false), items, extra))])
  }

  private async verifyOnce(bindings: Map<string, Binding>, items: Item[], extra: Values): Promise<Map<string, Binding> | 'render failed'> {
    const refs = this.ctx.refs
    const kept = new Map<string, Binding>()
    const expected = new Map<string, string>()
    const values: Values = mergeValues({}, extra)
    const assigned = new Map<string, string>()
    for (const item of items) {
      const binding = bindings.get(item.key)
      if (!binding) continue
      let value: string
      try {
        value = relocatedValue(refs, binding, item.ref, PROBE_TARGET)
      } catch {
        continue
      }
      if (assigned.has(binding.path) && assigned.get(binding.path) !== value) continue
      assigned.set(binding.path, value)
      setPath(values, splitPath(binding.path), value, this.effective)
      kept.set(item.key, binding)
      const suffix = item.ref.slice(nameOf(item.ref).length)
      expected.set(item.key, `${item.prefix}${refs.relocatedRepository(refs.parse(item.ref), PROBE_TARGET)}${suffix}`)
    }
    if (kept.size === 0) return kept
    let output: string
    try {
      output = await this.render([await this.valuesFile('probe', values)])
    } catch (error) {
      this.rethrowIfCancelled(error)
      this.ctx.log.debug(`the relocation values break the render: ${(error as Error).message}`)
      return 'render failed'
    }
    const relocated = new Map(occurrences(output).map((occurrence) => [occurrence.where, occurrence.value]))
    for (const item of items) {
      if (!kept.has(item.key)) continue
      const text = relocated.get(item.where)
      const lands = item.partial ? text?.includes(expected.get(item.key)!) : text === expected.get(item.key)
      if (!lands) kept.delete(item.key)
    }
    return kept
  }

  private collect(items: Item[], bindings: Map<string, Binding>): FoundImage[] {
    const byRef = new Map<string, {foundIn: Set<string>; values: Map<string, ValuesBinding>; missing: Set<string>}>()
    for (const item of items) {
      if (!byRef.has(item.ref)) byRef.set(item.ref, {foundIn: new Set(), values: new Map(), missing: new Set()})
      const entry = byRef.get(item.ref)!
      const label = this.hinted(item)?.label ?? item.template
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
}
