import type {SourceContext} from 'kod'

import type {RenderAhead} from './ahead.js'
import {type Candidate, findCandidates} from './candidates.js'
import {type ChartTree, valuesPathsInTemplates} from './chart-files.js'
import {addHintBindings, type AnalysisHints} from './hint-bindings.js'
import {type Binding, imageItems, type Item} from './items.js'
import {verify} from './probe.js'
import type {RenderOptions} from './render.js'
import {type Analysis, analysisResult, conflicts, type Unpackaged} from './result.js'
import {bindingsRound} from './sentinels.js'
import {RenderSession} from './session.js'
import {nameOf} from './values.js'
import {varianceWarnings} from './variance.js'

/** How often an image whose binding failed the probe is tried again without the values that failed. */
const PROBE_RETRIES = 3

/**
 * Which values put which image where, learnt from helm itself rather than guessed from key names
 * (docs/images.md).
 *
 * 1. Render as the user will, and collect every image (image fields; container args and env values
 *    that carry an image set through values) — items.ts.
 * 2. Render again with every candidate value (strings that appear in an image's name, and empty
 *    registry-like values; candidates.ts) replaced by a unique sentinel. An image whose reference now
 *    starts with a sentinel is relocated by that value; the text the value produced is found by aligning
 *    the two renders. A render that fails with sentinels is bisected until the culprits are left out —
 *    sentinels.ts, bisect.ts.
 * 3. Values shared by images that need different relocations (a global registry over two hosts) are
 *    left out and the sentinel render repeated, which reveals the per-image values below them — result.ts
 *    finds the conflicts.
 * 4. Render once more with the relocation values for a probe registry and keep only what lands
 *    exactly where populate pushes (probe.ts). Everything else is reported, with its template (result.ts).
 */
export class ImageAnalyzer {
  private readonly session: RenderSession

  /**
   * Renders tree.dir: the chart archive, or the unpacked scratch copy that carries the analysis-only hints
   * template; `ahead` is a first render started on the chart's directory while helm packaged it (ahead.ts).
   */
  constructor(
    ctx: SourceContext,
    options: RenderOptions,
    private readonly tree: ChartTree,
    private readonly hints: AnalysisHints = {images: [], values: {}},
    ahead?: RenderAhead,
  ) {
    this.session = new RenderSession(ctx, tree.dir, options, ahead)
    this.kubeVersionGiven = Boolean(options.kubeVersion)
  }

  private readonly kubeVersionGiven: boolean

  get renderCount(): number {
    return this.session.count
  }

  async analyze(): Promise<Analysis> {
    const {session} = this
    await session.prepare(this.tree.values, this.hints.values)
    const invalid: Array<{ref: string; template: string; reason?: string}> = []
    const base = session.occurrences(await session.render())
    const items = imageItems(session.ctx.refs, base, invalid)
    const unpackaged: Unpackaged[] = invalid.map((entry) => ({...entry, reason: entry.reason ?? 'is not a valid image reference (rendered as is: kod cannot pull it)'}))
    // What renders otherwise on upgrade or for another Kubernetes version, found beside the rest (variance.ts).
    const variance = varianceWarnings(session, this.tree.templates, this.kubeVersionGiven, items)
    // Awaited below; an interruption before then must not become an unhandled rejection.
    variance.catch(() => undefined)
    const names = [...new Set(items.map((item) => nameOf(item.ref)))]
    // No image: nothing to tie to a value.
    if (names.length === 0) return analysisResult(session, this.hints.images, {items, verified: new Map(), unpackaged: [...unpackaged, ...(await variance)]})

    const candidates = findCandidates(session.effective, names, valuesPathsInTemplates(this.tree.templates, this.tree.top))
    session.ctx.log.debug(`candidates: ${candidates.map((candidate) => candidate.path).join(', ')}`)
    const bindings = await this.sentinelBindings(candidates, items)
    addHintBindings(session.ctx, session.effective, this.hints.images, items, bindings)
    const verified = await this.probe(bindings, items, candidates)
    return analysisResult(session, this.hints.images, {items, verified, unpackaged: [...unpackaged, ...(await variance)]})
  }

  /** Round 1 with every candidate; round 2 for what round 1 left unbound or bound to a value asked to hold two relocations. */
  private async sentinelBindings(candidates: Candidate[], items: Item[]): Promise<Map<string, Binding>> {
    const bindings = await bindingsRound(this.session, candidates, items)
    const conflicting = conflicts(bindings, items)
    for (const [key, binding] of bindings) if (conflicting.has(binding.path)) bindings.delete(key)
    const again = items.filter((item) => !bindings.has(item.key))
    if (again.length === 0) return bindings
    // Without the empty candidates (they can change a template's shape), nor the conflicting ones.
    const retry = candidates.filter((candidate) => candidate.original.trim() !== '' && !conflicting.has(candidate.path))
    const second = await bindingsRound(this.session, retry, again)
    for (const item of again) {
      const binding = second.get(item.key)
      if (binding) bindings.set(item.key, binding)
    }
    for (const conflict of conflicts(bindings, items)) {
      for (const [key, binding] of bindings) if (binding.path === conflict) bindings.delete(key)
    }
    return bindings
  }

  /**
   * The bindings that pass the probe. An image whose binding failed is tried again without the values
   * that failed (each try can reveal the next value down, as a shadowed registry reveals its repository).
   */
  private async probe(bindings: Map<string, Binding>, items: Item[], candidates: Candidate[]): Promise<Map<string, Binding>> {
    let verified = await verify(this.session, bindings, items)
    const excluded = new Set<string>()
    let tried = bindings
    for (let attempt = 0; attempt < PROBE_RETRIES; attempt++) {
      const failed = items.filter((item) => tried.has(item.key) && !verified.has(item.key))
      if (failed.length === 0) break
      const usedElsewhere = new Set([...verified.values()].map((binding) => binding.path))
      for (const item of failed) {
        const failedPath = tried.get(item.key)!.path
        if (!usedElsewhere.has(failedPath)) excluded.add(failedPath)
      }
      tried = await bindingsRound(this.session, candidates.filter((candidate) => !excluded.has(candidate.path)), failed)
      if (tried.size === 0) break
      verified = await verify(this.session, new Map([...verified, ...tried]), items)
    }
    return verified
  }
}
