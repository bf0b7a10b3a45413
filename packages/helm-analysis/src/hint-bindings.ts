import type {SourceContext} from 'kod'

import {type HintedImage, HINTS_TEMPLATE} from './hints.js'
import type {Binding, Item} from './items.js'
import {PROBE_TARGET} from './probe.js'
import {getPath, replaceLength, splitPath, type Values} from './values.js'

/** What hints add to an analysis. */
export interface AnalysisHints {
  /** References written into the analysis-only hints template. */
  images: HintedImage[]
  /** Values set in every analysis render and in deploy's values. */
  values: Values
}

/** The hinted image a hints-template item stands for. */
export function hintedImage(item: Item, hinted: readonly HintedImage[]): HintedImage | undefined {
  if (!item.template.endsWith(`/templates/${HINTS_TEMPLATE}`)) return undefined
  const index = /\/containers\/(\d+)\/image$/.exec(item.where)?.[1]
  return index === undefined ? undefined : hinted[Number(index)]
}

/** What a hinted reference rendered to. */
function renderedHint(items: Item[], image: HintedImage, hinted: readonly HintedImage[]): string | undefined {
  return items.find((item) => hintedImage(item, hinted) === image)?.ref
}

/** Values paths a hint names, for images no sentinel could tie to a value: added to `bindings`. */
export function addHintBindings(ctx: SourceContext, effective: Values, hinted: readonly HintedImage[], items: Item[], bindings: Map<string, Binding>): void {
  for (const item of items.filter((candidate) => candidate.kind === 'image' && !bindings.has(candidate.key))) {
    const named = hintedImage(item, hinted)?.values ?? hinted.filter((image) => renderedHint(items, image, hinted) === item.ref).flatMap((image) => image.values)
    for (const valuesPath of named) {
      const value = getPath(effective, splitPath(valuesPath))
      const replace = typeof value === 'string' && item.ref.startsWith(value) ? replaceLength(ctx.refs, value, item.ref, PROBE_TARGET) : undefined
      if (replace === undefined) {
        ctx.log.warn(`a hint names ${valuesPath} for ${item.ref}, but that value is not a string the reference starts with; ignored`)
        continue
      }
      bindings.set(item.key, {key: item.key, path: valuesPath, value: value as string, replace})
      break
    }
  }
}
