import {bisect, FAILED} from './bisect.js'
import type {Candidate} from './candidates.js'
import {type Binding, imagePart, type Item} from './items.js'
import {PROBE_TARGET} from './probe.js'
import type {RenderSession} from './session.js'
import {mergeValues, nameOf, replaceLength, setPath, type Values} from './values.js'

/**
 * Sentinel renders: every candidate value replaced by a unique sentinel (kodsnt0007x). An image whose
 * reference now starts with a sentinel is relocated by that value; the text the value produced is found
 * by aligning the two renders.
 */
const SENTINEL = /kodsnt(\d{4})x/g
const sentinel = (index: number): string => `kodsnt${String(index).padStart(4, '0')}x`

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

/** One sentinel render: its output, and the candidate each sentinel number stands for. */
interface SentinelRender {
  output: string
  byIndex: Map<number, Candidate>
}

/** Sentinel renders of these candidates; a failing set is split until the culprits are alone and dropped. */
async function sentinelRenders(session: RenderSession, candidates: Candidate[]): Promise<SentinelRender[]> {
  return bisect(candidates, async (part) => {
    const values: Values = mergeValues({}, session.extra)
    const byIndex = new Map<number, Candidate>()
    for (const [index, candidate] of part.entries()) {
      byIndex.set(index, candidate)
      setPath(values, candidate.keys, sentinel(index), session.effective)
    }
    try {
      return {output: await session.renderWith('sentinels', values), byIndex}
    } catch (error) {
      session.rethrowIfCancelled(error)
      if (part.length === 1) session.ctx.log.debug(`a sentinel in ${part[0].path} breaks the render: ${(error as Error).message}`)
      return FAILED
    }
  })
}

/** For each item, the binding that relocates it, from one round of sentinel renders. */
export async function bindingsRound(session: RenderSession, candidates: Candidate[], items: Item[]): Promise<Map<string, Binding>> {
  const refs = session.ctx.refs
  const found = new Map<string, Binding>()
  const bind = (item: Item, path: string, value: string): void => {
    const replace = replaceLength(refs, value, item.ref, PROBE_TARGET)
    if (replace !== undefined) found.set(item.key, {key: item.key, path, value, replace})
  }
  for (const {output, byIndex} of await sentinelRenders(session, candidates)) {
    const known = new Map([...byIndex].filter(([, candidate]) => candidate.original.trim() !== '').map(([index, candidate]) => [index, candidate.original.trim()]))
    const rendered = new Map(session.occurrences(output).map((occurrence) => [occurrence.where, occurrence.value]))
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
