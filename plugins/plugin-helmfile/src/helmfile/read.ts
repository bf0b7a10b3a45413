import path from 'node:path'

import {CREDENTIALS_IN_URL, hasUserinfo, HelmfileError, needsHelmfile, refuse} from './errors.js'
import {exists, isMap, isRemote, resolveFrom} from './files.js'
import {glob} from './glob.js'
import {checkKeys, SUBHELMFILE_KEYS} from './keys.js'
import {type Tagged} from './layers.js'
import {locateHelmfile} from './locate.js'
import {type HelmfileModel, type ReadOptions, type Release, type Repository, type Values} from './model.js'
import {installOrder} from './needs.js'
import {helmDefaults, readRelease} from './release.js'
import {loadState, UndefinedEnvironment} from './state.js'
import {loadValues} from './values.js'

/**
 * Read a plain-YAML helmfile, its bases and its sub-helmfiles into the releases helmfile would
 * install with `-e <environment>`, without running helmfile: kod must know every chart, values
 * file and image before it goes offline, and a helmfile binary is not always at hand.
 */
export async function readHelmfile(fileOrDir: string, options: ReadOptions = {}): Promise<HelmfileModel> {
  const file = await locateHelmfile(fileOrDir)
  const environment = options.environment ?? 'default'
  const out: Walk = {releases: [], order: [], repositories: [], warnings: [], values: {}, defaults: undefined}
  await walk(file, environment, undefined, out, [])
  const model: HelmfileModel = {
    file,
    environment: {name: environment, values: out.values},
    repositories: out.repositories,
    helmDefaults: out.defaults ?? helmDefaults(file, undefined),
    releases: out.releases,
    installOrder: out.order,
    warnings: out.warnings,
  }
  checkDuplicates(model.releases)
  if (model.releases.length === 0) refuse(file, 'it lists no releases (nor do its sub-helmfiles): nothing to package')
  return model
}

interface Walk {
  releases: Release[]
  order: string[]
  repositories: Repository[]
  warnings: string[]
  /** The top helmfile's environment values and helmDefaults. */
  values: Values
  defaults: HelmfileModel['helmDefaults'] | undefined
}

/**
 * One helmfile: its sub-helmfiles first, then its own releases, as helmfile's visitStates does
 * (pkg/app/app.go: processNestedHelmfiles runs before the parent's releases converge).
 */
async function walk(file: string, environment: string, overrides: Values | undefined, out: Walk, stack: string[]): Promise<void> {
  if (stack.includes(file)) refuse(file, `helmfiles: recursion through ${[...stack, file].join(' → ')}`)
  const top = stack.length === 0
  let state
  try {
    state = await loadState(file, {environment, overrides, warnings: out.warnings})
  } catch (error) {
    // helmfile skips a sub-helmfile that does not define the environment (visitStatesWithContext).
    if (!top && error instanceof UndefinedEnvironment) {
      out.warnings.push(`${file}: skipped: environment "${environment}" is not defined there (helmfile skips it too)`)
      return
    }
    throw error
  }
  const {doc} = state
  const repositories = (asTagged(doc.repositories)).map(({item, file: declared}) => repository(declared, item))
  out.repositories.push(...repositories)
  const defaults = helmDefaults(file, doc.helmDefaults)
  if (top) {
    out.values = state.values
    out.defaults = defaults
  }
  for (const {file: declared} of asTagged(doc.hooks)) out.warnings.push(`${declared}: has global hooks, which run commands wherever helmfile runs; kod does not package or run them`)
  if (isMap(doc.helmDefaults) && Array.isArray(doc.helmDefaults.args) && doc.helmDefaults.args.length > 0) {
    out.warnings.push(`${file}: helmDefaults.args are extra helm arguments kod does not pass`)
  }

  for (const {item, file: declared} of asTagged(doc.helmfiles)) {
    for (const sub of await subHelmfiles(declared, state.dir, item, out.warnings)) {
      const subOverrides = sub.values === undefined ? undefined : await loadValues({file: declared, dir: path.dirname(file), handler: 'Error', warnings: out.warnings}, sub.values, 'override', 'sub-helmfile values file')
      await walk(sub.path, environment, subOverrides, out, [...stack, file])
    }
  }

  const commonLabels: Record<string, string> = {}
  if (isMap(doc.commonLabels)) for (const [k, v] of Object.entries(doc.commonLabels)) commonLabels[k] = String(v)
  const ctx = {
    state,
    repositories,
    helmDefaults: defaults,
    commonLabels,
    namespace: typeof doc.namespace === 'string' && doc.namespace ? doc.namespace : undefined,
    kubeContext: typeof doc.kubeContext === 'string' && doc.kubeContext ? doc.kubeContext : undefined,
    warnings: out.warnings,
  }
  const releases: Release[] = []
  for (const {item, file: declared} of asTagged(doc.releases)) releases.push(await readRelease(ctx, item, declared))
  for (const r of releases) {
    for (const need of r.needs) {
      const needed = releases.filter((n) => n.id === need)
      if (r.installed && needed.length > 0 && needed.every((n) => !n.installed)) {
        out.warnings.push(`${r.file}: release "${r.name}" needs "${need}", which is installed: false`)
      }
    }
  }
  const order = installOrder(file, releases.map((r) => ({id: r.id, needs: r.needs})))
  const deploy = new Set(releases.filter((r) => r.deploy).map((r) => r.id))
  out.releases.push(...releases)
  out.order.push(...order.filter((id) => deploy.has(id)))
}

function asTagged(v: unknown): Tagged[] {
  return Array.isArray(v) ? (v as Tagged[]) : []
}

function repository(file: string, raw: unknown): Repository {
  if (!isMap(raw) || typeof raw.name !== 'string' || !raw.name) refuse(file, 'each repository needs a name')
  if (typeof raw.url !== 'string' || !raw.url) refuse(file, `repository "${raw.name}" has no url`)
  if (raw.url.startsWith('git::') || raw.url.includes('::')) refuse(file, `repository "${raw.name}" is a go-getter URL; kod pulls charts only from Helm and OCI repositories`)
  if (hasUserinfo(raw.url)) refuse(file, `repository "${raw.name}": ${CREDENTIALS_IN_URL}`)
  return {name: raw.name, url: raw.url, oci: raw.oci === true, file}
}

interface SubHelmfile {
  path: string
  values?: unknown
}

/**
 * A `helmfiles:` entry (pkg/state/state.go SubHelmfileSpec.UnmarshalYAML, ExpandedHelmfiles): a
 * path or `{path, values, selectors}`, globbed relative to the helmfile; a directory stands for
 * its `*.y*ml` files in name order (pkg/app/app.go findDesiredStateFiles).
 */
async function subHelmfiles(file: string, dir: string, raw: unknown, warnings: string[]): Promise<SubHelmfile[]> {
  const spec = typeof raw === 'string' ? {path: raw} : raw
  if (!isMap(spec)) refuse(file, 'each helmfiles entry must be a path or a map with path')
  checkKeys(file, 'a helmfiles entry', spec, SUBHELMFILE_KEYS)
  if (typeof spec.path !== 'string' || !spec.path) refuse(file, 'a helmfiles entry has no path')
  const p = spec.path
  if (isRemote(p)) refuse(file, `sub-helmfile "${p}" is remote (git:: or similar); kod reads only local files — download it and reference the copy`)
  if (p === '.') refuse(file, 'helmfiles: recursion into the directory containing this helmfile')
  if (Array.isArray(spec.inherits) && spec.inherits.length > 0) refuse(file, `sub-helmfile "${p}": inherits is not read by kod yet; declare what it needs in the sub-helmfile`)
  if ((Array.isArray(spec.selectors) && spec.selectors.length > 0) || spec.selectorsInherited === true) {
    warnings.push(`${file}: selectors of sub-helmfile "${p}" are ignored; kod packages all its releases`)
  }
  const matches = await glob(resolveFrom(dir, p))
  if (matches.length === 0) refuse(file, `sub-helmfile "${p}": no matches in ${dir}`)
  const out: SubHelmfile[] = []
  for (const m of matches) {
    if ((await exists(m)) === 'dir') {
      const inDir = [...(await glob(path.join(m, '*.y*ml'))), ...(await glob(path.join(m, '*.y*ml.gotmpl')))].sort()
      for (const f of inDir) {
        if (f.endsWith('.gotmpl')) needsHelmfile(f, 'it is a Go template (.gotmpl)')
        out.push({path: f, values: spec.values})
      }
    } else out.push({path: m, values: spec.values})
  }
  return out
}

/**
 * Two enabled releases with one ID would be one helm release installed twice. helmfile refuses
 * that within a helmfile (pkg/app/app.go getSelectedReleases); a kod package, holding one unit per
 * release, refuses it across sub-helmfiles too. Releases switched off by `condition` may share an ID.
 */
function checkDuplicates(releases: Release[]): void {
  const seen = new Map<string, Release>()
  for (const r of releases) {
    if (r.condition && !r.condition.enabled) continue
    const before = seen.get(r.id)
    if (before) throw new HelmfileError(`${r.file}: release "${r.id}" is declared twice${before.file === r.file ? '' : ` (also in ${before.file})`}`)
    seen.set(r.id, r)
  }
}
