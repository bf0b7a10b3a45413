import type {Config} from '@oclif/core'

import {type KodSource, type Logger, type PackageRequest, SOURCE_API} from '../api.js'
import {KodError, messageOf, usageError} from './errors.js'

/** The oclif hook through which plugins contribute source kinds. */
export const SOURCES_HOOK = 'kod:sources'
/** How long a plugin's sources hook may take. */
const HOOK_TIMEOUT_MS = 10_000

export class SourceRegistry {
  private readonly byKind = new Map<string, KodSource>()

  constructor(sources: Iterable<KodSource>) {
    for (const source of sources) this.byKind.set(source.kind, source)
  }

  all(): KodSource[] {
    return [...this.byKind.values()]
  }

  kinds(): string[] {
    return [...this.byKind.keys()].sort()
  }

  get(kind: string): KodSource {
    const source = this.byKind.get(kind)
    if (!source) {
      const known = this.kinds()
      throw new KodError(
        `unknown source kind "${kind}": no installed plugin provides it (known: ${known.join(', ') || 'none'}); install the plugin that does with "kod plugins install"`,
      )
    }
    return source
  }

  /** The source that handles a package request: --kind if given, else the most confident one. */
  async pick(request: PackageRequest, kind?: string): Promise<KodSource> {
    if (kind) return this.get(kind)
    let best: {score: number; source?: KodSource} = {score: 0}
    for (const source of this.byKind.values()) {
      const score = await source.detect(request)
      if (score > best.score) best = {score, source}
    }
    if (!best.source) throw usageError(`no source kind recognises "${request.ref}"; give a chart directory, .tgz, URL or --kind`)
    return best.source
  }
}

function isSource(value: unknown): value is KodSource {
  const candidate = value as Partial<KodSource> | null
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    typeof candidate.kind === 'string' &&
    typeof candidate.package === 'function' &&
    typeof candidate.deploy === 'function'
  )
}

/** Asks every plugin for its sources once; failures and incompatible sources are reported, never dropped silently. */
export async function loadSources(config: Config, log: Logger): Promise<SourceRegistry> {
  const result = await config.runHook(SOURCES_HOOK, {api: SOURCE_API}, HOOK_TIMEOUT_MS, true)
  for (const failure of result.failures) {
    log.warn(`plugin ${failure.plugin.name} could not provide its sources: ${messageOf(failure.error)}`)
  }
  const sources: KodSource[] = []
  for (const {plugin, result: provided} of result.successes) {
    for (const source of Array.isArray(provided) ? provided : []) {
      if (!isSource(source)) {
        log.warn(`plugin ${plugin.name} returned something that is not a kod source; ignored`)
      } else if (source.api === SOURCE_API) {
        sources.push(source)
      } else {
        log.warn(`plugin ${plugin.name} provides source "${source.kind}" for API ${source.api}, but this kod speaks ${SOURCE_API}; update the plugin`)
      }
    }
  }
  return new SourceRegistry(sources)
}
