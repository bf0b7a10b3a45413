import {createHash} from 'node:crypto'
import {copyFile, cp, mkdir, mkdtemp, readFile, stat, writeFile} from 'node:fs/promises'
import path from 'node:path'

import type {ChartEntry, DeployPlan, DeployRequest, FoundUnit, KodSource, OpenedPackage, PackageRequest, PlannedCommand, SourceContext, SourcePackage, Target, Unit} from 'kod'

import {analyseRelease, fetchChart, type InstallSettings, planRelease, type PlannedRelease, pushChartCommands, setValues, unitRelocation} from '@kod/helm-analysis'

import {derivedHelmfile} from './derived.js'
import {needsHelmfileBinary} from './helmfile/binary.js'
import {locateHelmfile} from './helmfile/locate.js'
import type {HelmfileModel, Release} from './helmfile/model.js'
import {HelmfileError} from './helmfile/errors.js'
import {readHelmfile} from './helmfile/read.js'
import {chartInput, chartKey, chartLabel, stageReleaseValues} from './stage.js'

/** Where the package keeps the helmfile as given (byte-identical) and what plugin-helmfile records in sourceData. */
export interface HelmfileSourceData {
  /** Path inside the package of the original helmfile. */
  helmfile: string
  environment: string
}

/** A name a helmfile file or directory may go by. */
const HELMFILE_NAME = /(^|\/)helmfile[^/]*\.ya?ml(\.gotmpl)?$/

async function isHelmfile(ref: string): Promise<boolean> {
  const info = await stat(ref).catch(() => undefined)
  if (info?.isFile()) return HELMFILE_NAME.test(ref) || /\.gotmpl$/.test(ref)
  if (!info?.isDirectory()) return false
  // A helmfile.d/ (or a directory holding one) is a helmfile project too: this source says why kod takes one helmfile.
  if (path.basename(path.resolve(ref)) === 'helmfile.d') return true
  for (const name of ['helmfile.yaml', 'helmfile.yaml.gotmpl', 'helmfile.d']) if (await stat(path.join(ref, name)).then(() => true, () => false)) return true
  return false
}

/** A plain-YAML helmfile to read: the given one, or what `helmfile build --embed-values` renders of a templated one. */
async function plainHelmfile(ctx: SourceContext, file: string, environment: string | undefined): Promise<string> {
  if (!(await needsHelmfileBinary(file))) return file
  const args = ['--file', file, ...(environment ? ['--environment', environment] : []), 'build', '--embed-values']
  const {stdout} = await ctx.tools.run('helmfile', args).catch(async (error: Error) => {
    // The toolkit's own error, only said about this file: a new Error would lose its exit code (3 when
    // helmfile is missing, 4 when it fails), since the core keeps a tool error's code only on its own errors.
    // Without the binary, the file that needs it is named (a templated values file, a sub-helmfile), as
    // readHelmfile says it.
    const which = (error as {exit?: number}).exit === 3 ? await readHelmfile(file, {environment}).then(() => undefined, (why: unknown) => (why instanceof HelmfileError && why.needsHelmfile ? why.message : undefined)) : undefined
    error.message = which ? `${which}: ${error.message}` : `${file} is a templated helmfile, which kod renders with helmfile build: ${error.message}`
    throw error
  })
  // Beside a copy of its directory, so that relative chart and values paths still resolve.
  const copy = path.join(ctx.tmpDir, 'helmfile-rendered')
  await cp(path.dirname(file), copy, {recursive: true})
  const rendered = path.join(copy, 'kod-rendered-helmfile.yaml')
  await writeFile(rendered, stdout)
  return rendered
}

/**
 * Fetches a release's chart into the package's charts/, once per chart and version. Two different charts
 * that both call themselves name-version would be one file in the package: refused, naming the release.
 */
async function fetchOnce(ctx: SourceContext, release: Release, request: PackageRequest, stagingDir: string, fetched: ReadonlyMap<string, ChartEntry>): Promise<ChartEntry> {
  const incoming = await mkdtemp(path.join(ctx.tmpDir, 'chart-'))
  const chart = await fetchChart(ctx, chartInput(release.chart), request, incoming)
  const from = path.join(incoming, path.basename(chart.file))
  const to = path.join(stagingDir, chart.file)
  const same = [...fetched.values()].find((known) => known.file === chart.file)
  if (same) {
    const digest = async (file: string): Promise<string> => createHash('sha256').update(await readFile(file)).digest('hex')
    if ((await digest(from)) !== (await digest(to))) {
      throw Object.assign(new Error(`${release.file}: release ${release.name} installs a chart ${chart.name} ${chart.version} that differs from another release's chart of the same name and version; a package holds one chart per name and version — give one a version of its own`), {exit: 2})
    }
    return same
  }
  await mkdir(path.dirname(to), {recursive: true})
  await copyFile(from, to)
  return chart
}

/** Unit ids: a release's name, or namespace/name where two releases share a name. */
function unitIds(releases: readonly Release[]): Map<string, string> {
  const count = new Map<string, number>()
  for (const release of releases) count.set(release.name, (count.get(release.name) ?? 0) + 1)
  const ids = new Map<string, string>()
  for (const release of releases) {
    const id = count.get(release.name)! > 1 ? `${release.namespace ?? 'default'}/${release.name}` : release.name
    if ([...ids.values()].includes(id)) {
      throw Object.assign(new Error(`${release.file}: two releases are both ${id} (in different kube contexts); a package deploys to one cluster`), {exit: 2})
    }
    ids.set(release.id, id)
  }
  return ids
}

/** The package's name and version: the helmfile's directory, and --version or a digest of what was read. */
async function packageName(file: string, environment: string, version: string | undefined): Promise<{name: string; version: string}> {
  const base = path.basename(path.dirname(file)).replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '') || 'helmfile'
  if (version) return {name: base, version}
  const digest = createHash('sha256').update(await readFile(file)).update(`\0${environment}`).digest('hex')
  return {name: base, version: `0.0.0-${digest.slice(0, 12)}`}
}

/** Units in install order: deployed releases as `needs` orders them, then the recorded ones. */
function ordered(model: HelmfileModel): Release[] {
  const byId = new Map(model.releases.map((release) => [release.id, release]))
  const deployed = model.installOrder.map((id) => byId.get(id)!).filter(Boolean)
  return [...deployed, ...model.releases.filter((release) => !deployed.includes(release))]
}

/**
 * The chart of a release that is recorded, not packaged: the packaged archive when another release installs
 * the same chart and version (it is in the package, so the unit names it as an installed unit would), else
 * the chart as the helmfile names it. Deployed releases come first (see ordered), so every chart that will
 * be packaged is known by then.
 */
function recordedChart(release: Release, charts: ReadonlyMap<string, ChartEntry>): string {
  return charts.get(chartKey(release))?.file ?? chartLabel(release.chart, path.dirname(release.file))
}

function installSettings(unit: Unit): InstallSettings {
  const install = (unit.data?.install ?? {}) as InstallSettings
  return {wait: install.wait === true, waitForJobs: install.waitForJobs === true, timeout: typeof install.timeout === 'number' ? install.timeout : undefined, createNamespace: install.createNamespace}
}

export function createHelmfileSource(): KodSource {
  return {
    api: 'kod.source/v2',
    kind: 'helmfile',
    description: 'A helmfile: every release it installs, with its chart, values and images (plain YAML; a templated one needs the helmfile binary)',
    flags: [
      {name: 'environment', char: 'e', summary: "helmfile's environment to read (default: default).", type: 'string', commands: ['package', 'images']},
      {
        name: 'helm',
        summary: 'Install with helm upgrade --install, one release after another in needs order, instead of helmfile (no helmfile binary needed).',
        type: 'boolean',
        commands: ['deploy'],
      },
      {name: 'sync', summary: 'Run helmfile sync instead of helmfile apply (apply needs the helm-diff plugin).', type: 'boolean', commands: ['deploy']},
    ],

    async detect(request: PackageRequest): Promise<number> {
      return !request.repo && (await isHelmfile(request.ref)) ? 20 : 0
    },

    async package(ctx: SourceContext, request: PackageRequest, stagingDir: string): Promise<SourcePackage> {
      const environment = typeof request.options?.environment === 'string' ? request.options.environment : undefined
      if (request.valuesFiles.length > 0) {
        throw Object.assign(new Error("-f is for a chart: a helmfile names each release's values itself (add yours to the release's values:)"), {exit: 2})
      }
      const file = await locateHelmfile(request.ref)
      const model = await readHelmfile(await plainHelmfile(ctx, file, environment), {environment})
      for (const warning of model.warnings) ctx.log.warn(warning)
      const releases = ordered(model)
      const ids = unitIds(releases)
      const charts = new Map<string, ChartEntry>()
      const units: FoundUnit[] = []
      const warnings = [...model.warnings]
      const hintsUsed = new Set<string>()
      for (const release of releases) {
        const id = ids.get(release.id)!
        const base = {id, release: release.name, ...(release.namespace ? {namespace: release.namespace} : {})}
        const needs = release.needs.map((need) => ids.get(need)).filter((need): need is string => need !== undefined && units.some((unit) => unit.id === need && unit.installed))
        if (!release.deploy) {
          const why = release.installed ? `its condition ${release.condition?.expression} is off` : 'installed: false'
          ctx.log.info(`release ${id}: recorded, not packaged (${why})`)
          units.push({...base, chart: recordedChart(release, charts), values: [], installed: false, needs: [], images: []})
          continue
        }
        const key = chartKey(release)
        if (!charts.has(key)) charts.set(key, await fetchOnce(ctx, release, {...request, version: release.version}, stagingDir, charts))
        const chart = charts.get(key)!
        const values = await stageReleaseValues(ctx, release, id, stagingDir)
        const analysed = await analyseRelease(ctx, {
          chartPath: path.join(stagingDir, chart.file),
          chart,
          release: release.name,
          namespace: release.namespace,
          valuesFiles: values.map((inside) => path.join(stagingDir, inside)),
          render: request.render,
          hints: request.hints ?? [],
        })
        warnings.push(...analysed.warnings)
        for (const hint of analysed.hintsUsed) hintsUsed.add(hint)
        const install: InstallSettings = {
          wait: release.wait,
          ...(release.waitForJobs ? {waitForJobs: true} : {}),
          ...(release.timeout ? {timeout: release.timeout} : {}),
          createNamespace: release.createNamespace,
        }
        units.push({...base, chart: chart.file, values, installed: true, needs, images: analysed.images, data: {...analysed.data, install}})
      }
      // The helmfile as given, byte for byte: deploy writes a derived one beside it.
      await mkdir(path.join(stagingDir, 'helmfile'), {recursive: true})
      const kept = `helmfile/${path.basename(file)}`
      await copyFile(file, path.join(stagingDir, kept))
      const data: HelmfileSourceData = {helmfile: kept, environment: model.environment.name}
      return {
        ...(await packageName(file, model.environment.name, request.version)),
        charts: [...new Map([...charts.values()].map((chart) => [chart.file, chart])).values()],
        units,
        hintsUsed: [...hintsUsed],
        data: data as unknown as Record<string, unknown>,
        ...(warnings.length > 0 ? {warnings} : {}),
      }
    },

    pushCharts(ctx: SourceContext, pkg: OpenedPackage, target: Target): PlannedCommand[] {
      return pushChartCommands(pkg, target)
    },

    relocation(ctx: SourceContext, unit: FoundUnit | Unit, target: Target): string {
      return unitRelocation(ctx, unit, undefined, target)
    },

    async deploy(ctx: SourceContext, pkg: OpenedPackage, request: DeployRequest): Promise<DeployPlan> {
      const viaHelm = request.options?.helm === true
      if (!viaHelm && request.dryRun) {
        throw Object.assign(new Error("--dry-run is helm's client-side dry run: add --helm to install with helm, release by release"), {exit: 2})
      }
      const units = pkg.manifest.units.filter((unit) => unit.installed)
      const planned: Array<{unit: Unit; plan: PlannedRelease}> = []
      for (const unit of units) planned.push({unit, plan: await planRelease(ctx, pkg, unit, request, installSettings(unit))})
      const generated = planned.flatMap(({plan}) => plan.generated)
      const renderedImages = planned.flatMap(({plan}) => plan.renderedImages)
      const valuesFiles = [...new Set(planned.flatMap(({plan}) => plan.valuesFiles))]
      if (viaHelm) return {generated, valuesFiles, install: planned.map(({plan}) => plan.install), renderedImages}
      const derived = path.join(pkg.dir, 'helmfile', 'kod-helmfile.yaml')
      await writeFile(derived, derivedHelmfile(pkg, planned, request, await setValues(ctx, request.render?.set ?? [])))
      const install: PlannedCommand = {
        tool: 'helmfile',
        args: ['--file', derived, request.options?.sync === true ? 'sync' : 'apply', ...(request.wait ? ['--wait'] : [])],
      }
      return {generated: [...generated, derived], valuesFiles, install: [install], renderedImages}
    },
  }
}
