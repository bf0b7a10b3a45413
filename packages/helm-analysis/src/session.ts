import {writeFile} from 'node:fs/promises'
import path from 'node:path'
import YAML from 'yaml'

import type {SourceContext} from 'kod'

import type {RenderAhead} from './ahead.js'
import {type Occurrence, occurrences, type ReadingCache, render, type RenderOptions, setValues, templateArgs} from './render.js'
import {getPath, isMap, mergeValues, readValuesYaml, setPath, type Values} from './values.js'

/** Bitnami charts refuse replaced images unless this is set. */
const ALLOW_INSECURE_IMAGES = ['global', 'security', 'allowInsecureImages']

/**
 * The values deploy must also set when relocating: the hints' values, and Bitnami's allowInsecureImages
 * (true) when the chart's values have it (`insecureImagesKey`) and no hint sets it.
 */
export function extraValues(hintValues: Values, insecureImagesKey: boolean): Values {
  const extra: Values = mergeValues({}, hintValues)
  if (insecureImagesKey && getPath(extra, ALLOW_INSECURE_IMAGES) === undefined) setPath(extra, ALLOW_INSECURE_IMAGES, true)
  return extra
}

/** A values file's text, as every render of an analysis gets it. */
export function valuesText(values: Values): string {
  return YAML.stringify(values, {lineWidth: 0})
}

/**
 * What decides a render besides the chart: helm's arguments after it (the user's values files and knobs),
 * and the text of the values files kod adds after those. Two renders with the same key render the same.
 */
export function renderKey(options: RenderOptions, fixedTexts: readonly string[]): string {
  return JSON.stringify([templateArgs('', {...options, set: undefined}), fixedTexts])
}

/**
 * The renders of one analysis, and what every one of them sees: the user's values files, then --set
 * (as a values file, so that sentinel and probe values can come after it), then the values kod will set
 * when relocating. Each step adds one values file of its own after those.
 */
export class RenderSession {
  /** The chart's values as the user's files and --set leave them: lists are copied from here when changed. */
  effective: Values = {}
  /** Values deploy must also set when relocating (the hints' values, Bitnami's allowInsecureImages). */
  extra: Values = {}
  private renders = 0
  private readonly options: RenderOptions
  private readonly sets: string[]
  /** Values files every render gets after the user's: --set as a file, then the hints' and kod's own values. */
  private fixedFiles: string[] = []
  /** Their texts, in the same order. */
  private fixedTexts: string[] = []
  /** The documents of every render so far, read once each (render.ts). */
  private readonly readings: ReadingCache = new Map()

  /** Renders `chart`: the chart archive, or the unpacked scratch copy that carries the analysis-only hints template. */
  constructor(
    readonly ctx: SourceContext,
    private readonly chart: string,
    options: RenderOptions,
    /** The first render, started on the chart's directory while helm packaged it (ahead.ts); taken when its values are these. */
    private readonly ahead?: RenderAhead,
  ) {
    // --set becomes a values file (setValues), so that sentinel and probe values can come after it.
    this.options = {...options, set: undefined}
    this.sets = options.set ?? []
  }

  get count(): number {
    return this.renders
  }

  /** Works out the values every render sees and writes their files: once, before the first render. */
  async prepare(chartValues: Values, hintValues: Values): Promise<void> {
    let effective = chartValues
    for (const file of this.options.valuesFiles) {
      const data = await readValuesYaml(file)
      if (isMap(data)) effective = mergeValues(effective, data)
    }
    const fromSet = await setValues(this.ctx, this.sets)
    effective = mergeValues(effective, fromSet)
    this.effective = effective
    const extra = extraValues(hintValues, getPath(effective, ALLOW_INSECURE_IMAGES) !== undefined)
    this.extra = extra
    // Every render, the first included, sees --set and the values kod will set when relocating.
    const fixed = [...(Object.keys(fromSet).length > 0 ? [['set', fromSet] as const] : []), ...(Object.keys(extra).length > 0 ? [['extra', extra] as const] : [])]
    this.fixedTexts = fixed.map(([, values]) => valuesText(values))
    this.fixedFiles = await Promise.all(fixed.map(async ([name, values]) => this.valuesFile(name, values)))
  }

  /**
   * The chart as the user will render it (with kod's fixed values): the render started ahead on the chart's
   * directory when it had the very same values (and succeeded: a failure is the archive's to report).
   */
  async render(): Promise<string> {
    if (this.ahead && this.ahead.key === renderKey(this.options, this.fixedTexts)) {
      const output = await this.ahead.output
      if (output !== undefined) {
        this.renders++
        return output
      }
    }
    return this.renderFiles([])
  }

  /** The chart with one more values file, named after the step that asks (sentinels, probe). */
  async renderWith(name: string, values: Values): Promise<string> {
    return this.renderFiles([await this.valuesFile(name, values)])
  }

  /**
   * The chart as the user renders it (the same values), but as `helm upgrade` renders it (--is-upgrade)
   * or for another Kubernetes version: what the first render cannot show (variance.ts).
   */
  async renderVariant(variant: {kubeVersion?: string; upgrade?: boolean}): Promise<string> {
    this.renders++
    const options = {...this.options, ...(variant.kubeVersion ? {kubeVersion: variant.kubeVersion} : {}), valuesFiles: [...this.options.valuesFiles, ...this.fixedFiles]}
    return (await this.ctx.tools.run('helm', [...templateArgs(this.chart, options), ...(variant.upgrade ? ['--is-upgrade'] : [])])).stdout
  }

  /** The occurrences of one of this session's renders; documents an earlier render had are not parsed again. */
  occurrences(output: string): Occurrence[] {
    return occurrences(output, this.readings)
  }

  /** A failed render is tolerated during analysis, but never an interruption. */
  rethrowIfCancelled(error: unknown): void {
    if (this.ctx.cancelSignal?.aborted) throw error
  }

  private async renderFiles(extraFiles: string[]): Promise<string> {
    this.renders++
    return render(this.ctx, this.chart, {...this.options, valuesFiles: [...this.options.valuesFiles, ...this.fixedFiles, ...extraFiles]})
  }

  private async valuesFile(name: string, values: Values): Promise<string> {
    const file = path.join(this.ctx.tmpDir, `${name}-${this.renders}.yaml`)
    await writeFile(file, valuesText(values))
    return file
  }
}
