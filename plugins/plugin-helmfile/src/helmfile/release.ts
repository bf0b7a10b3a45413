import semver from 'semver'

import {resolveChart} from './chart.js'
import {conditionEnabled} from './condition.js'
import {needsHelmfile, refuse} from './errors.js'
import {isMap, isRemote, resolveFrom, exists} from './files.js'
import {checkKeys, REFUSED_RELEASE_KEYS, RELEASE_KEYS, TEMPLATE_RELEASE_KEYS} from './keys.js'
import {type HelmDefaults, type Release, type Repository, type SetEntry} from './model.js'
import {releaseId, resolveNeed} from './needs.js'
import {type State} from './state.js'
import {asList, missingFileHandler, releaseValues} from './values.js'

/** What a release needs from the helmfile (state) that declares it. */
export interface ReleaseContext {
  state: State
  repositories: Repository[]
  helmDefaults: HelmDefaults
  commonLabels: Record<string, string>
  /** Top-level `namespace:` / `kubeContext:`: override every release's (ApplyOverrides). */
  namespace?: string
  kubeContext?: string
  warnings: string[]
}

const str = (v: unknown): string | undefined => (v === undefined || v === null ? undefined : String(v))
const present = (v: unknown): boolean => v !== undefined && v !== null && v !== false && !(Array.isArray(v) && v.length === 0) && !(isMap(v) && Object.keys(v).length === 0)

function bool(file: string, where: string, key: string, v: unknown): boolean | undefined {
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'boolean') refuse(file, `${where}: ${key} must be true or false`)
  return v
}

function seconds(file: string, where: string, v: unknown): number | undefined {
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) refuse(file, `${where}: timeout must be a whole number of seconds`)
  return v
}

/** helmDefaults, as far as installing goes; helmfile defaults createNamespace to true. */
export function helmDefaults(file: string, raw: unknown): HelmDefaults {
  const d = isMap(raw) ? raw : {}
  const where = 'helmDefaults'
  if (present(d.postRenderer)) refuse(file, `${where}: ${REFUSED_RELEASE_KEYS.postRenderer}`)
  return {
    wait: bool(file, where, 'wait', d.wait) ?? false,
    waitForJobs: bool(file, where, 'waitForJobs', d.waitForJobs) ?? false,
    timeout: seconds(file, where, d.timeout) || undefined,
    createNamespace: bool(file, where, 'createNamespace', d.createNamespace) ?? true,
  }
}

export async function readRelease(ctx: ReleaseContext, raw: unknown, declaredIn: string): Promise<Release> {
  const {state} = ctx
  const file = declaredIn
  if (!isMap(raw)) refuse(file, 'each release must be a map')
  const name = str(raw.name)
  if (!name) refuse(file, 'a release has no name')
  const where = `release "${name}"`
  checkKeys(file, where, raw, RELEASE_KEYS)
  for (const [key, why] of Object.entries(REFUSED_RELEASE_KEYS)) {
    if (!present(raw[key])) continue
    if (TEMPLATE_RELEASE_KEYS.has(key)) needsHelmfile(file, `${where}: ${why}`)
    refuse(file, `${where}: ${why}`)
  }
  if (present(raw.directory) && present(raw.chart)) refuse(file, `${where}: has both chart and directory`)
  const chartName = str(raw.chart ?? raw.directory)
  if (!chartName) refuse(file, `${where} has no chart`)

  const namespace = ctx.namespace ?? (str(raw.namespace) || undefined)
  const kubeContext = ctx.kubeContext ?? (str(raw.kubeContext) || undefined)
  const chart = await resolveChart(file, state.dir, chartName, name, ctx.repositories)

  const version = str(raw.version) || undefined
  let versionIsRange = false
  if (version !== undefined) {
    const bare = version.split('@')[0]
    if (bare === '') versionIsRange = false
    else if (semver.valid(bare, {loose: true})) versionIsRange = false
    else if (semver.validRange(bare, {loose: true})) versionIsRange = true
    else refuse(file, `${where}: version "${version}" is neither a version nor a semver range`)
  }

  const handler = missingFileHandler(file, raw.missingFileHandler ?? state.doc.missingFileHandler)
  const prefix = str(raw.valuesPathPrefix) ?? ''
  const vctx = {file, dir: state.dir, handler, warnings: ctx.warnings}
  const values = await releaseValues(vctx, raw.values, prefix, name)
  const set = await setEntries(file, state.dir, where, raw.set, 'set', ctx.warnings)
  const setString = await setEntries(file, state.dir, where, raw.setString, 'setString', ctx.warnings)

  const installed = bool(file, where, 'installed', raw.installed) ?? true
  const expression = str(raw.condition)
  const condition = expression ? {expression, enabled: conditionEnabled(file, name, expression, state.values)} : undefined
  const needs = asList(file, raw.needs, `needs of ${where}`).map((n) => {
    if (typeof n !== 'string' || n === '') refuse(file, `${where}: each need must be a release name`)
    return resolveNeed(n, namespace, kubeContext)
  })
  const labels: Record<string, string> = {...ctx.commonLabels}
  if (raw.labels !== undefined && !isMap(raw.labels)) refuse(file, `${where}: labels must be a map`)
  for (const [k, v] of Object.entries(raw.labels ?? {})) labels[k] = String(v)

  const hooks = present(raw.hooks)
  if (hooks) ctx.warnings.push(`${file}: ${where} has hooks, which run commands wherever helmfile runs; kod does not package or run them`)

  const timeout = raw.timeout === undefined || raw.timeout === null ? ctx.helmDefaults.timeout : seconds(file, where, raw.timeout)
  return {
    id: releaseId(name, namespace, kubeContext),
    name,
    ...(namespace === undefined ? {} : {namespace}),
    ...(kubeContext === undefined ? {} : {kubeContext}),
    chart,
    ...(version === undefined ? {} : {version}),
    versionIsRange,
    values,
    set,
    setString,
    installed,
    ...(condition ? {condition} : {}),
    deploy: installed && (condition?.enabled ?? true),
    needs,
    labels,
    wait: bool(file, where, 'wait', raw.wait) ?? ctx.helmDefaults.wait,
    waitForJobs: bool(file, where, 'waitForJobs', raw.waitForJobs) ?? ctx.helmDefaults.waitForJobs,
    ...(timeout ? {timeout} : {}),
    createNamespace: bool(file, where, 'createNamespace', raw.createNamespace) ?? ctx.helmDefaults.createNamespace,
    file,
    hooks,
  }
}

/**
 * `set:` / `setString:` as pkg/state/state.go setFlags/setStringFlags read them: `value` wins,
 * then `file` (set only), then `values`; an entry with none of them adds no flag, and helmfile
 * drops it silently — kod warns.
 */
async function setEntries(file: string, dir: string, where: string, raw: unknown, key: string, warnings: string[]): Promise<SetEntry[]> {
  const out: SetEntry[] = []
  for (const entry of asList(file, raw, `${key} of ${where}`)) {
    if (!isMap(entry) || !str(entry.name)) refuse(file, `${where}: each ${key} entry needs a name`)
    const name = String(entry.name)
    const value = str(entry.value)
    if (value) {
      if (/ref\+[a-z0-9]+:\/\//i.test(value)) needsHelmfile(file, `${where}: ${key} ${name} is a vals reference resolved at run time`)
      out.push({name, value})
    } else if (key === 'set' && str(entry.file)) {
      const f = String(entry.file)
      if (isRemote(f)) refuse(file, `${where}: set file "${f}" is remote; kod reads only local files`)
      const abs = resolveFrom(dir, f)
      if ((await exists(abs)) !== 'file') refuse(file, `${where}: set file ${abs} does not exist`)
      out.push({name, file: abs})
    } else if (Array.isArray(entry.values) && entry.values.length > 0) {
      out.push({name, values: entry.values.map((v) => String(v))})
    } else warnings.push(`${file}: ${where}: ${key} "${name}" has no value${key === 'setString' && entry.file ? ' (setString does not read files)' : ''}; helmfile ignores it, and so does kod`)
  }
  return out
}
