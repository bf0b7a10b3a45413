import path from 'node:path'

import {HelmfileError, refuse} from './errors.js'
import {type Doc, isMap, isRemote, readHelmfileParts} from './files.js'
import {checkKeys, ENVIRONMENT_KEYS, TOP_KEYS} from './keys.js'
import {layer, tag} from './layers.js'
import {type Values} from './model.js'
import {loadValues, mergeValues, missingFileHandler} from './values.js'

/**
 * One helmfile read into one merged document plus its environment values, the way helmfile builds
 * one HelmState: each `---` part gets its `bases` layered under it, parts are layered in order,
 * and environment values accumulate part by part (pkg/app/desired_state_file_loader.go load,
 * pkg/state/create.go ParseAndLoad, loadBases, loadEnvValues).
 *
 * Relative paths anywhere in the result, including those written in a base, resolve against the
 * directory of the helmfile being read: helmfile gives a base the including helmfile's baseDir.
 */
export interface State {
  file: string
  dir: string
  doc: Doc
  /** Environment values: top-level `values:` under the environment's own. */
  values: Values
}

export interface StateOptions {
  environment: string
  /** Sub-helmfile `values:` from the parent, already loaded: they override the environment values. */
  overrides?: Values
  warnings: string[]
}

export class UndefinedEnvironment extends HelmfileError {}

export async function loadState(file: string, options: StateOptions): Promise<State> {
  const dir = path.dirname(file)
  const env = options.environment
  let doc: Doc = {}
  let defaults: Values = {}
  let envValues: Values = {}
  for (const part of await readHelmfileParts(file)) {
    checkKeys(file, 'the helmfile', part, TOP_KEYS)
    let layered = tag(part, file)
    const bases = Array.isArray(part.bases) ? part.bases : []
    if (part.bases !== undefined && !Array.isArray(part.bases)) refuse(file, 'bases must be a list of files')
    if (bases.length > 0) {
      let merged: Doc = {}
      for (const base of bases) merged = layer(merged, await loadBase(file, dir, base), 'append')
      layered = layer(merged, {...layered, bases: undefined}, 'append')
    }
    const ctx = {file, dir, warnings: options.warnings}
    defaults = mergeValues(defaults, await loadValues({...ctx, handler: 'Error'}, layered.values, 'override', 'values file'))
    const environments = layered.environments ?? {}
    if (!isMap(environments)) refuse(file, 'environments must be a map')
    const spec = environments[env]
    if (isMap(spec)) {
      checkKeys(file, `environment "${env}"`, spec, ENVIRONMENT_KEYS)
      if (Array.isArray(spec.secrets) && spec.secrets.length > 0) {
        refuse(file, `environment "${env}" has secrets, which helmfile decrypts with helm-secrets/sops; decrypt them into a values file, or use the helmfile binary`)
      }
      const strategy = spec.mergeStrategy ?? 'override'
      if (strategy !== 'override' && strategy !== 'fallback') refuse(file, `environment "${env}": mergeStrategy must be override or fallback`)
      const handler = missingFileHandler(file, spec.missingFileHandler)
      envValues = mergeValues(envValues, await loadValues({...ctx, handler}, spec.values, strategy, 'environment values file'))
    }
    doc = layer(doc, layered, 'replace')
    const defined = isMap(doc.environments) ? Object.keys(doc.environments) : []
    if (defined.length > 0 && env !== 'default' && !defined.includes(env)) throw undefinedEnvironment(file, env)
  }
  const defined = isMap(doc.environments) ? Object.keys(doc.environments) : []
  if (defined.length === 0 && env !== 'default' && options.overrides === undefined) throw undefinedEnvironment(file, env)
  return {file, dir, doc, values: mergeValues(defaults, mergeValues(envValues, options.overrides ?? {}))}
}

const undefinedEnvironment = (file: string, env: string): UndefinedEnvironment =>
  new UndefinedEnvironment(`${file}: environment "${env}" is not defined`)

/**
 * A base is read like a helmfile (its own parts layered with replace), cannot have bases of its
 * own ("nested `base` helmfile is unsupported", pkg/state/create.go ParseAndLoad), and its
 * environment values are loaded by the including helmfile.
 */
async function loadBase(file: string, dir: string, base: unknown): Promise<Doc> {
  if (typeof base !== 'string') refuse(file, 'each base must be a file path')
  if (isRemote(base)) refuse(file, `base "${base}" is remote (git:: or similar); kod reads only local files — download it and reference the copy`)
  const baseFile = path.resolve(dir, base)
  let doc: Doc = {}
  for (const part of await readHelmfileParts(baseFile)) {
    checkKeys(baseFile, 'the base', part, TOP_KEYS)
    if (part.bases !== undefined) refuse(baseFile, 'a base cannot have bases of its own (helmfile refuses nested bases too)')
    doc = layer(doc, tag(part, baseFile), 'replace')
  }
  return doc
}
