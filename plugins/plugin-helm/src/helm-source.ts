import {copyFile, mkdir} from 'node:fs/promises'
import path from 'node:path'

import type {DeployPlan, DeployRequest, FoundUnit, KodSource, OpenedPackage, PackageRequest, PlannedCommand, SourceContext, SourcePackage, Target, Unit} from 'kod'

import {analyseRelease, analysisOptions, classify, describeInput, fetchChart, planRelease, pushChartCommands, renderAhead, unitRelocation} from '@kod/helm-analysis'

/** Copies the package-time -f files into the staging directory, as values/NN-<name>, in order. */
async function stageValues(stagingDir: string, files: string[]): Promise<string[]> {
  if (files.length > 0) await mkdir(path.join(stagingDir, 'values'), {recursive: true})
  const inside: string[] = []
  for (const [index, file] of files.entries()) {
    const name = `values/${String(index + 1).padStart(2, '0')}-${path.basename(file)}`
    await copyFile(file, path.join(stagingDir, name))
    inside.push(name)
  }
  return inside
}

/** A chart package: one unit, the release named after the chart. */
export function createHelmSource(): KodSource {
  return {
    api: 'kod.source/v2',
    kind: 'helm',
    description: 'A Helm chart: a directory, .tgz, https:// URL, oci:// URL, or a chart name in a repository (-r)',

    async detect(request: PackageRequest): Promise<number> {
      return (await classify(request)) ? 10 : 1
    },

    async package(ctx: SourceContext, request: PackageRequest, stagingDir: string): Promise<SourcePackage> {
      const input = await classify(request)
      if (!input) {
        // exit 2: a usage error (SourceError in kod's API)
        throw Object.assign(
          new Error(`chart not found: "${request.ref}" is not a chart directory (with Chart.yaml), a .tgz, an https:// or oci:// URL; for a chart in a repository add -r REPO_URL`),
          {exit: 2},
        )
      }
      if (request.version && (input.type === 'directory' || input.type === 'archive' || input.type === 'url')) {
        // helm pull's --version chooses among a repository's versions; a chart given as itself has only its own.
        const what = input.type === 'url' ? 'the URL of one chart archive' : 'a local chart'
        throw Object.assign(
          new Error(`--version applies to charts from a repository or oci://; ${request.ref} is ${what} (its version is what Chart.yaml says): drop --version`),
          {exit: 2},
        )
      }
      const release = {valuesFiles: request.valuesFiles, render: request.render, hints: request.hints ?? []}
      // A local chart's first render starts on its directory while helm packages it (renderAhead never fails).
      const ahead = input.type === 'directory' ? renderAhead(ctx, input.path, analysisOptions(release), release.hints) : undefined
      const chart = await fetchChart(ctx, input, request, path.join(stagingDir, 'charts'))
      ctx.log.debug(`fetched ${describeInput(request)} as ${chart.file}`)
      const values = await stageValues(stagingDir, request.valuesFiles)
      const analysed = await analyseRelease(ctx, {...release, chartPath: path.join(stagingDir, chart.file), chart, ahead: await ahead})
      const unit: FoundUnit = {
        id: chart.name,
        release: chart.name,
        chart: chart.file,
        values,
        installed: true,
        needs: [],
        images: analysed.images,
        ...(analysed.data ? {data: analysed.data} : {}),
      }
      return {
        name: chart.name,
        version: chart.version,
        charts: [chart],
        units: [unit],
        hintsUsed: analysed.hintsUsed,
        ...(analysed.warnings.length > 0 ? {warnings: analysed.warnings} : {}),
      }
    },

    pushCharts(ctx: SourceContext, pkg: OpenedPackage, target: Target): PlannedCommand[] {
      return pushChartCommands(pkg, target)
    },

    relocation(ctx: SourceContext, unit: FoundUnit | Unit, target: Target): string {
      return unitRelocation(ctx, unit, undefined, target)
    },

    async deploy(ctx: SourceContext, pkg: OpenedPackage, request: DeployRequest): Promise<DeployPlan> {
      const [unit] = pkg.manifest.units
      if (!unit) throw new Error(`${pkg.dir} holds no release`)
      const planned = await planRelease(ctx, pkg, unit, request)
      return {generated: planned.generated, valuesFiles: planned.valuesFiles, install: [planned.install], renderedImages: planned.renderedImages}
    },
  }
}
