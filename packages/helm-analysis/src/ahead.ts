import {mkdtemp, readdir, readFile, writeFile} from 'node:fs/promises'
import path from 'node:path'
import YAML from 'yaml'

import type {LoadedHints, SourceContext} from 'kod'

import {missingDependencies} from './fetch.js'
import {hintedImages, hintValues, matchingHints} from './hints.js'
import {render, type RenderOptions} from './render.js'
import {extraValues, renderKey, valuesText} from './session.js'

/**
 * The first render of a local chart, started on its directory while `helm package` writes the archive the
 * analysis renders: helm loads a directory as `helm package` does (.helmignore applied, charts/ included),
 * so the directory renders as the archive packaged from it does. The values kod adds to every render
 * depend on the packaged chart (its name and version choose the hints, its values say whether Bitnami's
 * allowInsecureImages is there); they are guessed from the directory, and the analysis takes this render
 * only when its own values files turn out to be the very same (RenderSession.render).
 */
export interface RenderAhead {
  /** What decides the render besides the chart (renderKey). */
  key: string
  /** helm's output; undefined when the render failed (the analysis then renders the archive, and says why). */
  output: Promise<string | undefined>
}

/** The word a values file holds when it sets Bitnami's global.security.allowInsecureImages. */
const INSECURE_IMAGES_WORD = 'allowInsecureImages'

/** The values.yaml of a chart directory and of its unpacked subcharts, at any depth (archived subcharts are not read). */
async function valuesFiles(chartDir: string): Promise<string[]> {
  const subcharts = await readdir(path.join(chartDir, 'charts'), {withFileTypes: true}).catch(() => [])
  const nested = await Promise.all(subcharts.filter((entry) => entry.isDirectory()).map(async (entry) => valuesFiles(path.join(chartDir, 'charts', entry.name))))
  return [path.join(chartDir, 'values.yaml'), ...nested.flat()]
}

/**
 * Starts the first render of a chart directory (see RenderAhead), or undefined when it would not be the
 * analysis' first render: a chart missing dependencies is packaged from a copy once helm has fetched them;
 * hinted references are rendered from an unpacked copy with kod's hints template; --set is parsed by a
 * helm run of its own first. Nothing here fails: whatever goes wrong leaves the work to the analysis.
 */
export async function renderAhead(ctx: SourceContext, chartDir: string, options: RenderOptions, hints: readonly LoadedHints[]): Promise<RenderAhead | undefined> {
  if (options.set?.length) return undefined
  try {
    if ((await missingDependencies(chartDir)).length > 0) return undefined
    const chart = YAML.parse(await readFile(path.join(chartDir, 'Chart.yaml'), 'utf8'), {uniqueKeys: false}) as {name?: unknown; version?: unknown} | null
    if (typeof chart?.name !== 'string' || chart.version === undefined) return undefined
    const applied = matchingHints(hints, {name: chart.name, version: String(chart.version)})
    if (hintedImages(applied).length > 0) return undefined
    // Whether any values the analysis merges may hold allowInsecureImages, told by the word alone (a wrong guess only costs this render).
    const texts = await Promise.all([...(await valuesFiles(chartDir)), ...options.valuesFiles].map(async (file) => readFile(file, 'utf8').catch(() => '')))
    const extra = extraValues(hintValues(applied).values, texts.some((text) => text.includes(INSECURE_IMAGES_WORD)))
    const fixedTexts = Object.keys(extra).length > 0 ? [valuesText(extra)] : []
    const files = await Promise.all(
      fixedTexts.map(async (text) => {
        const file = path.join(await mkdtemp(path.join(ctx.tmpDir, 'ahead-')), 'extra.yaml')
        await writeFile(file, text)
        return file
      }),
    )
    const output = render(ctx, chartDir, {...options, valuesFiles: [...options.valuesFiles, ...files]}).catch((error: unknown) => {
      ctx.log.debug(`the render of ${chartDir} ahead of its archive failed: ${(error as Error).message}`)
      return undefined
    })
    return {key: renderKey(options, fixedTexts), output}
  } catch (error) {
    ctx.log.debug(`no render of ${chartDir} ahead of its archive: ${(error as Error).message}`)
    return undefined
  }
}
