import {readFile, writeFile} from 'node:fs/promises'
import path from 'node:path'
import YAML from 'yaml'

import type {FoundImage, RefHelpers, SourceContext, Target, ValuesBinding} from 'kod'

import {type ChartTree, valuesPathsInTemplates} from './chart-files.js'
import {type HintedImage, HINTS_TEMPLATE} from './hints.js'
import {type Occurrence, occurrences, render, type RenderOptions} from './render.js'
import {
  getPath,
  isMap,
  joinPath,
  mergeValues,
  nameOf,
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
  keys: string[]
  path: string
  original: string
}

export interface Analysis {
  images: FoundImage[]
  /** Values deploy must also set when relocating (e.g. Bitnami's allowInsecureImages). */
  extraValues: Values
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

/** Candidate values: strings found in the name part of an image, and empty location-like values. */
export function findCandidates(values: Values, names: string[], templatePaths: string[][] = []): Candidate[] {
  const found = new Map<string, Candidate>()
  const walk = (node: Values, keys: string[]): void => {
    for (const [key, value] of Object.entries(node)) {
      const here = [...keys, key]
      if (isMap(value)) {
        walk(value, here)
      } else if (typeof value === 'string' && !VERSION_KEY.test(key)) {
        const text = value.trim()
        const inName = text.length >= 2 && names.some((name) => name.includes(text) || text.includes(name))
        if (inName || (text === '' && LOCATION_KEY.test(key))) found.set(joinPath(here), {keys: here, path: joinPath(here), original: value})
      } else if (value === null && LOCATION_KEY.test(key)) {
        found.set(joinPath(here), {keys: here, path: joinPath(here), original: ''})
      }
    }
  }
  walk(values, [])
  for (const keys of templatePaths) {
    if (keys[0] !== 'global' || !LOCATION_KEY.test(keys.at(-1)!) || getPath(values, keys) !== undefined) continue
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
  where: string
}

/** What hints add to an analysis. */
export interface AnalysisHints {
  /** References written into the analysis-only hints template. */
  images: HintedImage[]
  /** Values set in every analysis render and in deploy's values. */
  values: Values
}

export class ImageAnalyzer {
  private renders = 0
  private readonly chart: string

  /** Renders tree.dir (the scratch copy), which may carry the analysis-only hints template. */
  constructor(
    private readonly ctx: SourceContext,
    private readonly options: RenderOptions,
    private readonly tree: ChartTree,
    private readonly hints: AnalysisHints = {images: [], values: {}},
  ) {
    this.chart = tree.dir
  }

  /** The hinted image a hints-template occurrence stands for. */
  private hinted(occurrence: Occurrence): HintedImage | undefined {
    if (!occurrence.template.endsWith(`/templates/${HINTS_TEMPLATE}`)) return undefined
    const index = /\/containers\/(\d+)\/image$/.exec(occurrence.where)?.[1]
    return index === undefined ? undefined : this.hints.images[Number(index)]
  }

  get renderCount(): number {
    return this.renders
  }

  private async render(extraFiles: string[]): Promise<string> {
    this.renders++
    return render(this.ctx, this.chart, {...this.options, valuesFiles: [...this.options.valuesFiles, ...extraFiles]})
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
      setPath(values, candidate.keys, sentinel(index))
    }
    try {
      return [{output: await this.render([await this.valuesFile('sentinels', values)]), byIndex}]
    } catch (error) {
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

  /** For each occurrence (by where), the binding that relocates it, from one round of sentinel renders. */
  private async bindingsRound(candidates: Candidate[], base: Map<string, Occurrence>, extra: Values): Promise<Map<string, Binding>> {
    const refs = this.ctx.refs
    const found = new Map<string, Binding>()
    for (const {output, byIndex} of await this.sentinelRenders(candidates, extra)) {
      const known = new Map([...byIndex].filter(([, candidate]) => candidate.original.trim() !== '').map(([index, candidate]) => [index, candidate.original.trim()]))
      for (const occurrence of occurrences(output)) {
        const original = base.get(occurrence.where)
        if (!original || found.has(occurrence.where)) continue
        if (original.kind !== 'image' && !looksLikeImage(refs, original.value)) continue
        const renderedPart = imagePart(occurrence.value)
        const originalPart = imagePart(original.value)
        if (renderedPart.prefix !== originalPart.prefix) continue
        const first = new RegExp(`^${SENTINEL.source}`).exec(renderedPart.ref)
        if (!first) continue
        const candidate = byIndex.get(Number(first[1]))
        if (!candidate) continue
        const text = alignFirst(renderedPart.ref, originalPart.ref, candidate.original.trim(), known)
        if (text === undefined || !parseable(refs, originalPart.ref)) continue
        const replace = replaceLength(refs, text, originalPart.ref, PROBE_TARGET)
        if (replace === undefined) continue
        found.set(occurrence.where, {where: occurrence.where, path: candidate.path, value: text, replace})
      }
    }
    return found
  }

  async analyze(): Promise<Analysis> {
    const refs = this.ctx.refs
    const base = occurrences(await this.render([]))
    const imageFields = base.filter((occurrence) => occurrence.kind === 'image')
    // Names of image fields, and of arguments and env values that look like images.
    const looksPinned = (value: string): boolean => looksLikeImage(refs, value)
    const names = [
      ...new Set([
        ...imageFields.map((occurrence) => nameOf(occurrence.value)),
        ...base.filter((occurrence) => occurrence.kind !== 'image' && looksPinned(occurrence.value)).map((occurrence) => nameOf(imagePart(occurrence.value).ref)),
      ]),
    ]

    let effective = this.tree.values
    for (const file of this.options.valuesFiles) {
      const data = YAML.parse(await readFile(file, 'utf8')) as unknown
      if (isMap(data)) effective = mergeValues(effective, data)
    }
    const extra: Values = mergeValues({}, this.hints.values)
    if (getPath(effective, ALLOW_INSECURE_IMAGES) !== undefined && getPath(extra, ALLOW_INSECURE_IMAGES) === undefined) {
      setPath(extra, ALLOW_INSECURE_IMAGES, true)
    }

    if (names.length === 0) return {images: [], extraValues: extra}

    // Arguments and env values are images only when values put an image there (checked below).
    const byWhere = new Map(base.map((occurrence) => [occurrence.where, occurrence]))
    const allCandidates = findCandidates(effective, names, valuesPathsInTemplates(this.tree.templates))
    this.ctx.log.debug(`candidates: ${allCandidates.map((candidate) => candidate.path).join(', ')}`)
    let bindings = await this.bindingsRound(allCandidates, byWhere, extra)

    // Round 2: without the empty candidates (they can change a template's shape), and without any value
    // asked to hold two different relocations.
    const conflicts = this.conflicts(bindings)
    const unresolved = base.filter((occurrence) => occurrence.kind === 'image' && (!bindings.has(occurrence.where) || conflicts.has(bindings.get(occurrence.where)!.path)))
    if (unresolved.length > 0) {
      const retry = allCandidates.filter((candidate) => candidate.original.trim() !== '' && !conflicts.has(candidate.path))
      const second = await this.bindingsRound(retry, byWhere, extra)
      for (const occurrence of unresolved) {
        const binding = second.get(occurrence.where)
        if (binding) bindings.set(occurrence.where, binding)
        else bindings.delete(occurrence.where)
      }
      for (const [where, binding] of second) if (!bindings.has(where) && byWhere.get(where)?.kind !== 'image') bindings.set(where, binding)
      for (const path of this.conflicts(bindings)) {
        for (const [where, binding] of bindings) if (binding.path === path) bindings.delete(where)
      }
    }

    // Values paths a hint names, for images no sentinel could tie to a value (e.g. inside a list).
    for (const occurrence of imageFields) {
      if (bindings.has(occurrence.where)) continue
      const named = this.hinted(occurrence)?.values ?? this.hints.images.filter((image) => this.renderedHint(base, image) === occurrence.value).flatMap((image) => image.values)
      for (const valuesPath of named) {
        const value = getPath(effective, splitPath(valuesPath))
        if (typeof value !== 'string' || !occurrence.value.startsWith(value)) continue
        const replace = replaceLength(refs, value, occurrence.value, PROBE_TARGET)
        if (replace === undefined) continue
        bindings.set(occurrence.where, {where: occurrence.where, path: valuesPath, value, replace})
        break
      }
    }

    // An argument or env value is an image when it looks like one and values set where it is pulled from.
    // (A registry alone, "host:port", is not an image: an image has a path and a tag or digest.)
    const carried = base.filter((occurrence) => {
      if (occurrence.kind === 'image' || !looksPinned(occurrence.value)) return false
      return bindings.has(occurrence.where)
    })
    for (const [where] of bindings) {
      if (byWhere.get(where)?.kind !== 'image' && !carried.some((occurrence) => occurrence.where === where)) bindings.delete(where)
    }

    bindings = await this.verify(bindings, byWhere, extra)
    return {images: this.collect([...imageFields, ...carried], bindings), extraValues: extra}
  }

  /** What a hinted reference rendered to. */
  private renderedHint(base: Occurrence[], image: HintedImage): string | undefined {
    return base.find((occurrence) => this.hinted(occurrence) === image)?.value
  }

  /** Paths whose relocated values differ between the occurrences they set. */
  private conflicts(bindings: Map<string, Binding>): Set<string> {
    const valueByPath = new Map<string, string>()
    const conflicting = new Set<string>()
    for (const binding of bindings.values()) {
      const value = `${binding.value}\u0000${binding.replace}`
      const known = valueByPath.get(binding.path)
      if (known !== undefined && known !== value) conflicting.add(binding.path)
      valueByPath.set(binding.path, value)
    }
    return conflicting
  }

  /** Render with the relocation values for the probe registry; keep the bindings that land exactly. */
  private async verify(bindings: Map<string, Binding>, byWhere: Map<string, Occurrence>, extra: Values): Promise<Map<string, Binding>> {
    const refs = this.ctx.refs
    const expected = new Map<string, string>()
    const values: Values = mergeValues({}, extra)
    const assigned = new Map<string, string>()
    for (const [where, binding] of bindings) {
      const occurrence = byWhere.get(where)!
      const {prefix, ref} = imagePart(occurrence.value)
      let value: string
      try {
        value = relocatedValue(refs, binding, ref, PROBE_TARGET)
      } catch {
        bindings.delete(where)
        continue
      }
      if (assigned.has(binding.path) && assigned.get(binding.path) !== value) {
        bindings.delete(where)
        continue
      }
      assigned.set(binding.path, value)
      setPath(values, splitPath(binding.path), value)
      const parsed = refs.parse(ref)
      const suffix = ref.slice(nameOf(ref).length)
      expected.set(where, `${prefix}${refs.relocatedRepository(parsed, PROBE_TARGET)}${suffix}`)
    }
    if (bindings.size === 0) return bindings
    let output: string
    try {
      output = await this.render([await this.valuesFile('probe', values)])
    } catch (error) {
      this.ctx.log.debug(`the relocation values break the render: ${(error as Error).message}`)
      return new Map()
    }
    const relocated = new Map(occurrences(output).map((occurrence) => [occurrence.where, occurrence.value]))
    for (const [where] of bindings) {
      if (relocated.get(where) !== expected.get(where)) bindings.delete(where)
    }
    return bindings
  }

  private collect(found: Occurrence[], bindings: Map<string, Binding>): FoundImage[] {
    const byRef = new Map<string, {foundIn: Set<string>; values: Map<string, ValuesBinding>; missing: Set<string>}>()
    for (const occurrence of found) {
      const {ref} = imagePart(occurrence.value)
      if (!byRef.has(ref)) byRef.set(ref, {foundIn: new Set(), values: new Map(), missing: new Set()})
      const entry = byRef.get(ref)!
      const label = this.hinted(occurrence)?.label ?? occurrence.template
      entry.foundIn.add(label)
      const binding = bindings.get(occurrence.where)
      if (binding) entry.values.set(binding.path, {path: binding.path, value: binding.value, replace: binding.replace})
      else entry.missing.add(label)
    }
    return [...byRef]
      .map(([ref, entry]) => {
        const image: FoundImage = {ref, foundIn: [...entry.foundIn].sort(), values: [...entry.values.values()]}
        if (entry.missing.size > 0) {
          image.note = `no value sets where ${[...entry.missing].sort().join(', ')} pulls it from (hard-coded in the template, or built at run time)`
        }
        return image
      })
      .sort((a, b) => a.ref.localeCompare(b.ref))
  }
}
