import {mkdir, writeFile} from 'node:fs/promises'
import path from 'node:path'
import semver from 'semver'

import type {ChartHint, LoadedHints} from 'kod'

import {setPath, splitPath, type Values} from './values.js'

/** The hints that apply to a chart: same name, version in range. */
export interface AppliedHint {
  file: string
  library: string
  hint: ChartHint
}

export function matchingHints(loaded: readonly LoadedHints[], chart: {name: string; version: string}): AppliedHint[] {
  return loaded.flatMap(({file, library, hints}) =>
    hints.hints
      .filter((hint) => hint.chart === chart.name)
      .filter((hint) => !hint.versions || semver.satisfies(chart.version, hint.versions, {includePrerelease: true, loose: true}))
      .map((hint) => ({file, library, hint})),
  )
}

/** Values the hints set (first hint wins on a path), with their reasons. */
export function hintValues(applied: readonly AppliedHint[]): {values: Values; reasons: string[]} {
  const values: Values = {}
  const reasons: string[] = []
  const seen = new Set<string>()
  for (const {hint, library} of applied) {
    for (const entry of hint.set ?? []) {
      if (seen.has(entry.path)) continue
      seen.add(entry.path)
      setPath(values, splitPath(entry.path), entry.value)
      reasons.push(`${entry.path}: ${entry.reason ?? `set by a hint from ${library}`}`)
    }
  }
  return {values, reasons}
}

/** The analysis-only template that renders hinted image references (never part of the packaged chart). */
export const HINTS_TEMPLATE = '0000-kod-hints.yaml'

export interface HintedImage {
  /** Index of the container in the hints template. */
  index: number
  ref: string
  values: string[]
  label: string
}

/** The named template that holds hinted reference number index, verbatim. */
export function hintTemplateName(index: number): string {
  return `kod-hints.image.${index}`
}

/**
 * The analysis-only template for the hinted references: each reference is the body of a named template,
 * verbatim, so its {{ … }} actions are evaluated by helm with the chart's values and helpers whatever
 * quotes, colons or other YAML syntax it holds; the image field is what it renders, through toJson (a
 * JSON string is a valid YAML scalar for any text).
 */
export function hintsTemplate(refs: readonly string[]): string {
  const defines = refs.map((ref, index) => `{{- define "${hintTemplateName(index)}" }}${ref}{{ end }}\n`).join('')
  const containers = refs.map((_, index) => `    - name: hint-${index}\n      image: {{ include "${hintTemplateName(index)}" . | toJson }}\n`).join('')
  return `# Written by kod for image analysis only; never part of the packaged chart.\n${defines}apiVersion: v1\nkind: Pod\nmetadata:\n  name: kod-hints\nspec:\n  containers:\n${containers}`
}

/** The hinted references of the hints that apply, with what each stands for (its container in the hints template). */
export function hintedImages(applied: readonly AppliedHint[]): HintedImage[] {
  const images: HintedImage[] = []
  for (const {hint, file, library} of applied) {
    for (const image of hint.images ?? []) {
      images.push({index: images.length, ref: image.ref, values: image.values ?? [], label: `hint ${path.basename(file)} (${library})`})
    }
  }
  return images
}

/**
 * Writes the hinted references into the unpacked scratch chart as one Pod, so helm renders them with
 * the chart's own values (and whatever the chart does to them); returns what each container stands for.
 */
export async function writeHintsTemplate(chartDir: string, applied: readonly AppliedHint[]): Promise<HintedImage[]> {
  const images = hintedImages(applied)
  if (images.length === 0) return images
  await mkdir(path.join(chartDir, 'templates'), {recursive: true})
  await writeFile(path.join(chartDir, 'templates', HINTS_TEMPLATE), hintsTemplate(images.map((image) => image.ref)))
  return images
}
