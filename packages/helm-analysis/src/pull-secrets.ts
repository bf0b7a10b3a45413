import {mkdtemp, writeFile} from 'node:fs/promises'
import path from 'node:path'
import YAML from 'yaml'

import type {SourceContext} from 'kod'

import {bisect, FAILED} from './bisect.js'
import {type ChartTree, valuesPathsInTemplates} from './chart-files.js'
import {render, type RenderOptions} from './render.js'
import {getPath, isMap, joinPath, type PathKey, setPath, type Values} from './values.js'

/**
 * Pull secrets (kod deploy --image-pull-secret NAME), found like images are: by rendering. Every value
 * that may name pull secrets — keys called so in the chart's values (imagePullSecrets, image.pullSecrets,
 * …), the ones its templates read, and the well-known ones — is set to a sentinel secret name, and the
 * render tells which of them reach the `imagePullSecrets` of which pod spec (or of the service account a
 * pod runs as). kod then writes the fewest of them that give every pod spec the secrets, each in the shape
 * the chart takes there (a list of names, a list of {name} maps, or one name), keeping the secrets the
 * values already give (helm replaces lists wholesale). docs/pull-secrets.md.
 */

/** How a value names pull secrets: `[NAME]`, `[{name: NAME}]`, or `NAME` alone. */
export type SecretShape = 'string' | 'map' | 'scalar'

export interface PullSecretCandidate {
  path: string
  keys: PathKey[]
  /** A key whose value is one name (its default is a string), not a list. */
  scalar: boolean
  /** global.* or a top-level key: tried first, as one such value usually reaches every pod. */
  general: boolean
}

/** Something the render gives pull secrets to: a pod spec (a map with `containers`), or another map with `imagePullSecrets` (a custom resource). */
export interface SecretTarget {
  /** Kind/name, and where in the document when it holds several. */
  id: string
  template: string
  podSpec: boolean
  /** The service account its pods run as (pod specs only). */
  serviceAccount?: string
  /** The names its imagePullSecrets give ({name} entries). */
  secrets: string[]
}

/** One value kod writes. */
export interface ChosenSecretValue {
  path: string
  keys: PathKey[]
  shape: SecretShape
  /** Ids of the targets it reaches. */
  reaches: string[]
  /** What kod writes there: the secrets the values already give, then the new names. */
  value: unknown
}

export interface PullSecretPlan {
  chosen: ChosenSecretValue[]
  /** Targets the render has that no value kod may write gives a pull secret. */
  unreached: SecretTarget[]
  /** Values that would reach some of those, but that the user's own files set (and win): where to add the name instead. */
  blocked: Array<{path: string; file: string; reaches: string[]}>
  /** How many renders it took. */
  renders: number
}

/** Keys that name pull secrets: imagePullSecrets, pullSecrets, imagePullSecret, image_pull_secrets, imagePullSecretNames. */
const PULL_SECRET_KEY = /pull[-_]?secrets?(?:[-_]?names?)?$/i

/** Values charts commonly read without declaring them (setting them where nothing reads them changes nothing). */
const WELL_KNOWN = ['global.imagePullSecrets', 'imagePullSecrets', 'global.image.pullSecrets', 'image.pullSecrets']

/** Whether every ancestor of `keys` in `values` is a map or absent, so that setting it changes nothing else. */
function settable(values: Values, keys: PathKey[]): boolean {
  for (let depth = 1; depth < keys.length; depth++) {
    const node = getPath(values, keys.slice(0, depth))
    if (node !== undefined && node !== null && !isMap(node)) return false
  }
  return true
}

/**
 * The values that may name pull secrets: keys named so (in the chart's values with every subchart's
 * defaults, and the user's), `.Values` paths the templates read that are named so, and the well-known
 * ones. Lists are not walked into; a key holding a map (a secret to create, {create, name}) is not one.
 */
export function pullSecretCandidates(tree: Pick<ChartTree, 'templates' | 'name'>, effective: Values): PullSecretCandidate[] {
  const found = new Map<string, PullSecretCandidate>()
  const add = (keys: PathKey[]): void => {
    const path = joinPath(keys)
    if (found.has(path) || !settable(effective, keys)) return
    const current = getPath(effective, keys)
    if (current !== undefined && current !== null && !Array.isArray(current) && typeof current !== 'string') return
    found.set(path, {path, keys, scalar: typeof current === 'string', general: keys.length === 1 || keys[0] === 'global'})
  }
  const walk = (node: Values, at: string[]): void => {
    for (const [key, value] of Object.entries(node)) {
      if (PULL_SECRET_KEY.test(key)) add([...at, key])
      else if (isMap(value)) walk(value, [...at, key])
    }
  }
  walk(effective, [])
  for (const keys of valuesPathsInTemplates(tree.templates, tree.name)) {
    if (PULL_SECRET_KEY.test(keys.at(-1)!)) add(keys)
  }
  for (const path of WELL_KNOWN) add(path.split('.'))
  return [...found.values()].sort((a, b) => Number(b.general) - Number(a.general) || a.keys.length - b.keys.length || a.path.localeCompare(b.path))
}

type Document = Record<string, unknown>

/**
 * The documents of a render that can hold pull secrets: those with containers or imagePullSecrets, and
 * service accounts. Others (CRDs above all, large and many) are not parsed.
 */
function documents(output: string): Array<{template: string; document: Document}> {
  const found: Array<{template: string; document: Document}> = []
  for (const chunk of output.split(/^---\s*$/m)) {
    if (/^kind:\s*CustomResourceDefinition\s*$/m.test(chunk)) continue
    if (!/\b(?:containers|imagePullSecrets|ServiceAccount)\b/.test(chunk)) continue
    const template = /^# Source: (.+)$/m.exec(chunk)?.[1]?.trim() ?? '(unknown template)'
    try {
      for (const parsed of YAML.parseAllDocuments(chunk)) {
        const document = parsed.toJS() as unknown
        if (isMap(document)) found.push({template, document})
      }
    } catch {
      // Not YAML: helm would not install it either.
    }
  }
  return found
}

/** The names an imagePullSecrets field gives: its {name} entries (a bare string is no valid entry). */
function secretNames(field: unknown): string[] {
  if (!Array.isArray(field)) return []
  return field.flatMap((entry) => (isMap(entry) && typeof entry.name === 'string' ? [entry.name] : []))
}

/** Every pod spec and every other map with imagePullSecrets in a render, and each rendered service account's pull secrets. */
export function secretTargets(output: string): {targets: SecretTarget[]; serviceAccounts: Map<string, string[]>} {
  const targets: SecretTarget[] = []
  const serviceAccounts = new Map<string, string[]>()
  for (const {template, document} of documents(output)) {
    const kind = typeof document.kind === 'string' ? document.kind : 'object'
    const metadata = isMap(document.metadata) ? document.metadata : {}
    const name = typeof metadata.name === 'string' ? metadata.name : '?'
    if (kind === 'ServiceAccount') {
      serviceAccounts.set(name, secretNames(document.imagePullSecrets))
      continue
    }
    // A CRD's schema names imagePullSecrets too, as a property: no pod.
    if (kind === 'CustomResourceDefinition') continue
    const here: Array<Omit<SecretTarget, 'id'> & {at: string}> = []
    const visit = (node: unknown, at: string): void => {
      if (Array.isArray(node)) {
        for (const [index, item] of node.entries()) visit(item, `${at}/${index}`)
        return
      }
      if (!isMap(node)) return
      const podSpec = Array.isArray(node.containers)
      if (podSpec || Array.isArray(node.imagePullSecrets)) {
        const account = [node.serviceAccountName, node.serviceAccount].find((value) => typeof value === 'string' && value)
        here.push({at, template, podSpec, ...(podSpec ? {serviceAccount: (account as string | undefined) ?? 'default'} : {}), secrets: secretNames(node.imagePullSecrets)})
      }
      for (const [key, value] of Object.entries(node)) if (key !== 'containers' && key !== 'initContainers') visit(value, `${at}/${key}`)
    }
    visit(document, '')
    for (const target of here) {
      const {at, ...rest} = target
      targets.push({id: here.length > 1 ? `${kind}/${name} ${at || '/'}` : `${kind}/${name}`, ...rest})
    }
  }
  return {targets, serviceAccounts}
}

/**
 * The names a pod spec's pods pull with: its own imagePullSecrets, or, when it has none, those of its
 * service account when the release renders it (the ServiceAccount admission adds them only then).
 */
export function effectiveSecrets(target: SecretTarget, serviceAccounts: Map<string, string[]>): string[] {
  if (target.secrets.length > 0 || !target.podSpec || !target.serviceAccount) return target.secrets
  return serviceAccounts.get(target.serviceAccount) ?? []
}

/** The targets of a render that do not get every one of `names`. */
export function missingSecrets(output: string, names: readonly string[]): SecretTarget[] {
  const {targets, serviceAccounts} = secretTargets(output)
  return targets.filter((target) => {
    const have = effectiveSecrets(target, serviceAccounts)
    return !names.every((name) => have.includes(name))
  })
}

function nameOf(entry: unknown): string | undefined {
  if (typeof entry === 'string') return entry
  return isMap(entry) && typeof entry.name === 'string' ? entry.name : undefined
}

/**
 * What kod writes at a path: the list the values already give, then each name it lacks in `shape`. A
 * scalar takes the first name, and only when the values give it none (kod never replaces a secret).
 * Undefined when nothing can be written without replacing what the values give.
 */
export function secretValue(existing: unknown, shape: SecretShape, names: readonly string[]): unknown {
  if (shape === 'scalar') return existing === undefined || existing === null || existing === '' || existing === names[0] ? names[0] : undefined
  if (existing !== undefined && existing !== null && !Array.isArray(existing)) return undefined
  const kept = Array.isArray(existing) ? structuredClone(existing) : []
  const have = new Set(kept.map((entry) => nameOf(entry)))
  for (const name of names) if (!have.has(name)) kept.push(shape === 'map' ? {name} : name)
  return kept
}

export interface FindPullSecrets {
  /** The chart archive helm renders. */
  chart: string
  tree: Pick<ChartTree, 'templates' | 'name'>
  /** How the release renders: release, namespace, every values file in helm's order, knobs. */
  render: RenderOptions
  /** The chart's values merged with every values file the release gets (to find keys and keep the lists they give). */
  effective: Values
  names: readonly string[]
  /**
   * The user's own values file that sets a path, if one does: those files come after kod's and win, so
   * kod does not write that path (it could not add to the list) but says where to add the name.
   */
  setByUser?: (keys: PathKey[]) => string | undefined
}

/** kod's exit code for a tool that ran and failed: a chart refusing a sentinel value. */
const TOOL_FAILED_EXIT = 4

type Entry = {candidate: PullSecretCandidate; shape: SecretShape}

function describeShape(shape: SecretShape): string {
  return shape === 'scalar' ? 'a name' : `a list of ${shape === 'map' ? '{name} maps' : 'names'}`
}

/**
 * Which values give every pod spec of a release the pull secrets `names`. The release is rendered as it
 * is (what each pod pulls with today), then with sentinels: first the general values alone (global.*,
 * top-level keys; one often reaches every pod, and setting the others would shadow it in charts where a
 * component's own list replaces the global one), then, for the pods those do not reach, every candidate
 * at once. Each sentinel render is done twice, with lists of names and with lists of {name} maps, since
 * charts take one or the other (or both); a render the chart refuses (a values schema, a `fail`) is split
 * until the refused values are alone and left out. Last, the chosen values are rendered: a secret a pod
 * had and lost (a component list that now shadows a global one the user's files set) is added back.
 */
export async function findPullSecretValues(ctx: SourceContext, request: FindPullSecrets): Promise<PullSecretPlan> {
  const candidates = pullSecretCandidates(request.tree, request.effective)
  const dir = await mkdtemp(path.join(ctx.tmpDir, 'pull-secrets-'))
  let renders = 0
  let files = 0
  const renderWith = async (values: Values | undefined): Promise<string> => {
    const extra: string[] = []
    if (values) {
      const file = path.join(dir, `values-${++files}.yaml`)
      await writeFile(file, YAML.stringify(values, {lineWidth: 0}))
      extra.push(file)
    }
    renders++
    return render(ctx, request.chart, {...request.render, valuesFiles: [...request.render.valuesFiles, ...extra]})
  }

  // What every target pulls with today; the targets to cover.
  const before = secretTargets(await renderWith(undefined))
  const universe = new Map(before.targets.map((target) => [target.id, target]))
  const had = new Map(before.targets.map((target) => [target.id, effectiveSecrets(target, before.serviceAccounts)]))

  /** Path → shape → ids of the targets its sentinel reached. */
  const reach = new Map<string, Map<SecretShape, Set<string>>>()
  const refused = new Set<string>()
  /** Renders with each entry set to its own sentinel and records which targets each reaches. */
  const probe = async (all: Entry[]): Promise<void> => {
    // A value the chart refused alone is not tried again.
    const entries = all.filter((entry) => !refused.has(`${entry.candidate.path}|${entry.shape}`))
    await bisect(entries, async (part) => {
      const sentinels = new Map<string, Entry>()
      const values: Values = {}
      for (const [index, entry] of part.entries()) {
        const sentinel = `kodps${String(index).padStart(4, '0')}${entry.shape[0]}`
        sentinels.set(sentinel, entry)
        setPath(values, entry.candidate.keys, entry.shape === 'scalar' ? sentinel : [entry.shape === 'map' ? {name: sentinel} : sentinel])
      }
      let output: string
      try {
        output = await renderWith(values)
      } catch (error) {
        if ((error as {exit?: number} | null)?.exit !== TOOL_FAILED_EXIT) throw error
        if (part.length === 1) {
          refused.add(`${part[0].candidate.path}|${part[0].shape}`)
          ctx.log.debug(`pull secrets: the chart refuses ${part[0].candidate.path} as ${describeShape(part[0].shape)}`)
        }
        return FAILED
      }
      const {targets, serviceAccounts} = secretTargets(output)
      for (const target of targets) {
        for (const name of effectiveSecrets(target, serviceAccounts)) {
          const entry = sentinels.get(name)
          if (!entry) continue
          // A target that renders only once a value is set (a custom resource's optional field) counts too.
          if (!universe.has(target.id)) universe.set(target.id, {...target, secrets: []})
          const byShape = reach.get(entry.candidate.path) ?? new Map<SecretShape, Set<string>>()
          reach.set(entry.candidate.path, byShape)
          const ids = byShape.get(entry.shape) ?? new Set<string>()
          byShape.set(entry.shape, ids)
          ids.add(target.id)
        }
      }
      return true
    })
  }
  const entriesOf = (list: PullSecretCandidate[], shape: 'string' | 'map'): Entry[] =>
    list.flatMap((candidate): Entry[] => (candidate.scalar ? (shape === 'string' ? [{candidate, shape: 'scalar'}] : []) : [{candidate, shape}]))

  const chosen: ChosenSecretValue[] = []
  const covered = new Set<string>()
  /** Greedy: the value that reaches the most targets not yet covered, until none adds any. */
  const choose = (among: PullSecretCandidate[]): void => {
    for (;;) {
      let best: {entry: ChosenSecretValue; fresh: number} | undefined
      for (const candidate of among) {
        if (chosen.some((entry) => entry.path === candidate.path) || request.setByUser?.(candidate.keys)) continue
        const byShape = reach.get(candidate.path)
        if (!byShape) continue
        const existing = getPath(request.effective, candidate.keys)
        // The shape that reaches most; on a tie the one the values already use, else {name} maps (what Kubernetes takes).
        const used = Array.isArray(existing) && existing.length > 0 ? (typeof existing[0] === 'string' ? 'string' : 'map') : undefined
        const [shape] = [...byShape.keys()].sort(
          (a, b) => byShape.get(b)!.size - byShape.get(a)!.size || Number(b === used) - Number(a === used) || Number(b === 'map') - Number(a === 'map'),
        )
        const reaches = [...byShape.get(shape)!].sort()
        const fresh = reaches.filter((id) => !covered.has(id)).length
        if (fresh === 0) continue
        const value = secretValue(existing, shape, request.names)
        if (value === undefined) continue
        if (!best || fresh > best.fresh) best = {entry: {path: candidate.path, keys: candidate.keys, shape, reaches, value}, fresh}
      }
      if (!best) return
      chosen.push(best.entry)
      for (const id of best.entry.reaches) covered.add(id)
    }
  }
  const general = candidates.filter((candidate) => candidate.general)
  if (general.length > 0) {
    await probe(entriesOf(general, 'map'))
    await probe(entriesOf(general, 'string'))
    choose(general)
  }
  // The rest only when some target is left: every candidate at once.
  if ([...universe.keys()].some((id) => !covered.has(id)) && candidates.length > general.length) {
    await probe(entriesOf(candidates, 'map'))
    await probe(entriesOf(candidates, 'string'))
    choose(candidates)
  }

  // Nothing a pod had may be lost: a component's list now set can shadow a global one the values give.
  if (chosen.length > 0) {
    const values: Values = {}
    for (const entry of chosen) setPath(values, entry.keys, entry.value)
    const after = secretTargets(await renderWith(values))
    for (const target of after.targets) {
      const now = effectiveSecrets(target, after.serviceAccounts)
      const lost = (had.get(target.id) ?? []).filter((name) => !now.includes(name))
      if (lost.length === 0) continue
      for (const entry of chosen.filter((candidate) => candidate.shape !== 'scalar' && candidate.reaches.includes(target.id))) {
        entry.value = secretValue(entry.value, entry.shape, lost)
      }
    }
  }

  const unreached = [...universe.values()].filter((target) => !covered.has(target.id))
  const blocked = candidates.flatMap((candidate) => {
    const file = request.setByUser?.(candidate.keys)
    const reaches = [...new Set([...(reach.get(candidate.path)?.values() ?? [])].flatMap((ids) => [...ids]))].filter((id) => !covered.has(id)).sort()
    return file && reaches.length > 0 ? [{path: candidate.path, file, reaches}] : []
  })
  return {chosen, unreached, blocked, renders}
}
