import type {Target} from 'kod'

import {bisect, FAILED} from './bisect.js'
import type {Binding, Item} from './items.js'
import type {RenderSession} from './session.js'
import {mergeValues, nameOf, relocatedValue, setPath, splitPath, type Values} from './values.js'

/** Where the probe render puts images; any address works, this one can never be reached. */
export const PROBE_TARGET: Target = {registry: 'kod-probe.invalid:5000', prefix: 'kod', plainHttp: false, insecureSkipTlsVerify: false}

/**
 * Render with the relocation values for the probe registry; keep the bindings that land exactly. When
 * the values break the render (a schema or a check rejects one), the paths are split until the
 * culprits are alone and dropped, so one rejected value does not cost every other image.
 */
export async function verify(session: RenderSession, bindings: Map<string, Binding>, items: Item[]): Promise<Map<string, Binding>> {
  const paths = [...new Set([...bindings.values()].map((binding) => binding.path))]
  const kept = await bisect(paths, async (part) => {
    const inPart = new Set(part)
    return verifyOnce(session, new Map([...bindings].filter(([, binding]) => inPart.has(binding.path))), items)
  })
  return new Map(kept.flatMap((map) => [...map]))
}

/** One probe render: the bindings whose image lands exactly where populate pushes it. */
export async function verifyOnce(session: RenderSession, bindings: Map<string, Binding>, items: Item[]): Promise<Map<string, Binding> | typeof FAILED> {
  const refs = session.ctx.refs
  const kept = new Map<string, Binding>()
  const expected = new Map<string, string>()
  const values: Values = mergeValues({}, session.extra)
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
    setPath(values, splitPath(binding.path), value, session.effective)
    kept.set(item.key, binding)
    const suffix = item.ref.slice(nameOf(item.ref).length)
    expected.set(item.key, `${item.prefix}${refs.relocatedRepository(refs.parse(item.ref), PROBE_TARGET)}${suffix}`)
  }
  if (kept.size === 0) return kept
  let output: string
  try {
    output = await session.renderWith('probe', values)
  } catch (error) {
    session.rethrowIfCancelled(error)
    session.ctx.log.debug(`the relocation values break the render: ${(error as Error).message}`)
    return FAILED
  }
  const relocated = new Map(session.occurrences(output).map((occurrence) => [occurrence.where, occurrence.value]))
  for (const item of items) {
    if (!kept.has(item.key)) continue
    const text = relocated.get(item.where)
    const lands = item.partial ? text?.includes(expected.get(item.key)!) : text === expected.get(item.key)
    if (!lands) kept.delete(item.key)
  }
  return kept
}
