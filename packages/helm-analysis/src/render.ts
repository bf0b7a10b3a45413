import {mkdir, mkdtemp, writeFile} from 'node:fs/promises'
import path from 'node:path'
import YAML from 'yaml'

import type {SourceContext} from 'kod'

import {hasTagOrDigest} from './values.js'

/** Images in rendered manifests: every non-empty string under a key named "image", at any depth. */
export interface RenderedImage {
  ref: string
  /** Templates it appears in, as helm names them (chart/templates/x.yaml). */
  foundIn: string[]
}

/** One place a string sits in the rendered output; `where` is stable between renders of the same chart. */
export interface Occurrence {
  /** template#document/json/path */
  where: string
  template: string
  value: string
  /**
   * "image" for an image field; "arg" or "env" for a container argument or environment value; "text" for
   * ConfigMap data; "other" for another field named like an image (imageName, sidecarImage, an image map).
   */
  kind: 'image' | 'arg' | 'env' | 'text' | 'other'
  /** For an env value, the variable's name; for an argument, its flag ("--sidecar-image"); for another field, its key. */
  name?: string
  /** For text: it holds YAML or JSON, whose fields are occurrences of their own. */
  structured?: boolean
}

/** Values of image fields that are not images: istio's gateway chart sets `image: auto`, which its injector replaces. */
const NOT_IMAGES = new Set(['auto'])

/**
 * A pattern that matches images, not an image: a policy's `image: "*:*"`, `"!*:latest"` or
 * `"registry.io/* | docker.io/*"` (Kyverno, Gatekeeper). No reference holds `*` or `?`, nor starts with
 * `!`, so nothing can pull one: it is neither packaged nor checked at deploy.
 */
export function isImagePattern(value: string): boolean {
  return /[*?]/.test(value) || value.startsWith('!')
}

/** Image-like tokens in text: a path and a tag or digest (registry optional). */
const IMAGE_TOKEN = /(?<![\w./:@-])(?:[a-z0-9][a-z0-9.-]*(?::\d+)?\/)?[a-z0-9][a-z0-9._-]*(?:\/[a-z0-9][a-z0-9._-]*)+(?::\w[\w.-]{0,127}(?:@sha256:[a-f0-9]{64})?|@sha256:[a-f0-9]{64})(?![\w./@-])/g

export function imageTokens(text: string): string[] {
  return [...new Set(text.match(IMAGE_TOKEN) ?? [])]
}

/**
 * `image:` lines of ConfigMap or Secret text that does not parse as YAML or JSON as a whole (a template
 * with placeholders elsewhere, a JSON fragment), and `image = "…"` lines of TOML or INI text (a CI
 * runner's config): their values are image fields, even without a registry or a path (`image:
 * busybox:1.28`, `"image": "busybox:1.28",`, `image = "ubuntu:22.04"`). Text that parses is read field by
 * field. Values still holding a template (`{{ .ProxyImage }}`) and values with neither tag, digest nor path
 * (`image: true`) are left out.
 */
const TEXT_IMAGE_FIELD = /^[ \t]*(?:-[ \t]+)?["']?image["']?[ \t]*([:=])[ \t]*["']?([^\s"'#{},]+)["']?[ \t]*,?[ \t]*(?:#.*)?$/gm

export function imageFieldsInText(text: string): string[] {
  const found = [...text.matchAll(TEXT_IMAGE_FIELD)]
    // `image = "…"` of a config is an image only with a tag or digest (`image = "assets/hero.jpg"` is a picture).
    .filter(([, separator, value]) => (separator === ':' ? /[/:@]/.test(value) : hasTagOrDigest(value)))
    .map((match) => match[2])
  return [...new Set(found)]
}

/** Names of flags and variables that hold part of an image, not an image: a pull policy, a secret, a registry or repository alone, a tag. */
const NOT_AN_IMAGE_NAME = /(pull|polic|secret|registry|repo|prefix|tag|version|digest)/i

/**
 * Whether an argument flag or env variable is named for a whole image (--acme-http01-solver-image,
 * RELATED_IMAGE_X), not for a part of one or a setting about images (IMAGE_PULL_POLICY, --image-repository).
 */
export function namedForImage(name: string | undefined): boolean {
  return name !== undefined && /image/i.test(name) && !NOT_AN_IMAGE_NAME.test(name.replace(/images?/gi, ''))
}

/**
 * A custom resource that splits an image into sibling keys: `repository` (registry and path), `image`
 * (the name) and `version` or `tag` (a digest when it starts with sha256:). The GPU operator's
 * ClusterPolicy does this for every component. Undefined when the object has no such shape.
 */
export function composedImage(record: Record<string, unknown>): string | undefined {
  const {image, repository} = record
  if (typeof image !== 'string' || !image.trim() || typeof repository !== 'string' || !repository.trim()) return undefined
  const ref = `${repository.trim().replace(/\/+$/, '')}/${image.trim().replace(/^\/+/, '')}`
  return withTag(ref, [record.version, record.tag].map(scalarText).find(Boolean))
}

/** A scalar value as text, trimmed ('' for anything else): versions and tags may be numbers. */
function scalarText(value: unknown): string {
  return typeof value === 'string' || typeof value === 'number' ? String(value).trim() : ''
}

/** `ref` with `tag` after it (a digest when it starts with sha256:), unless it has a tag or digest already. */
function withTag(ref: string, tag: string | undefined): string {
  if (!tag || hasTagOrDigest(ref)) return ref
  return /^sha256:/.test(tag) ? `${ref}@${tag}` : `${ref}:${tag}`
}

/**
 * The image of a prometheus-operator resource (Prometheus, Alertmanager, ThanosRuler) that gives
 * `baseImage` instead of `image`, as the operator composes it: `@sha256:<sha>`, else `:<tag>`, else
 * `:<version>`.
 */
function baseImageReference(baseImage: string, record: Record<string, unknown>): string {
  const sha = scalarText(record.sha).replace(/^sha256:/, '')
  if (sha) return `${baseImage}@sha256:${sha}`
  const tag = scalarText(record.tag) || scalarText(record.version)
  return tag ? `${baseImage}:${tag}` : baseImage
}

const SOURCE_COMMENT = /^# Source: (.+)$/m

/** kod's exit code for a tool that ran and failed (ExitCode.toolFailed in the core; plugins import its types only). */
const TOOL_FAILED_EXIT = 4

/**
 * An `image:` map, the values shape many charts also pass to their custom resources: `{registry,
 * repository, tag, digest}` (Bitnami, VictoriaMetrics), `{registry, image, tag, digest}` (ingress-nginx) or
 * `{name, version}` (linkerd) — the name from `repository`, `image` or `name` (`name` only with a tag or
 * digest and a registry), the tag from `tag` or `version` (a digest when it starts with sha256:) — read as
 * the whole reference. Undefined when the map names no image.
 */
export function imageFromMap(map: Record<string, unknown>): string | undefined {
  const registry = scalarText(map.registry).replace(/\/+$/, '')
  const tag = [map.tag, map.version].map(scalarText).find(Boolean)
  const digest = scalarText(map.digest)
  // `name` names many things (an OS image of a machine: {name: gardenlinux, version: …}): it is an image's
  // only with a tag and a registry, in the map or in the name itself (linkerd's cr.l5d.io/linkerd/proxy).
  const named = scalarText(map.name)
  const nameIsImage = named !== '' && (tag !== undefined || digest !== '') && (registry !== '' || named.includes('/'))
  const name = [scalarText(map.repository), scalarText(map.image), nameIsImage ? named : ''].find(Boolean)
  if (!name) return undefined
  const ref = withTag(`${registry ? `${registry}/` : ''}${name}`, tag)
  return digest && !ref.includes('@') ? `${ref}@${digest}` : ref
}

/** Text a ConfigMap or Secret carries, by key: data (a Secret's decoded from base64) and a Secret's stringData. */
function carriedText(document: {kind?: unknown; data?: unknown; stringData?: unknown}): Array<[string, string]> {
  const entries = (map: unknown): Array<[string, unknown]> => (typeof map === 'object' && map !== null && !Array.isArray(map) ? Object.entries(map) : [])
  if (document.kind === 'ConfigMap') return entries(document.data).filter((entry): entry is [string, string] => typeof entry[1] === 'string')
  if (document.kind !== 'Secret') return []
  const decoded = entries(document.data).flatMap(([key, value]): Array<[string, string]> => {
    if (typeof value !== 'string') return []
    const text = Buffer.from(value, 'base64').toString('utf8')
    // Only text: a binary secret (a keystore) holds no pod template.
    return /^[\t\n\r\x20-\x7e\u00a0-\uffff]*$/.test(text) && !text.includes('\ufffd') ? [[key, text]] : []
  })
  return [...decoded, ...entries(document.stringData).filter((entry): entry is [string, string] => typeof entry[1] === 'string')]
}

/**
 * Whether a YAML document has a map with two equal keys: what the yaml library's `uniqueKeys` check
 * reports (two scalar keys with the same value), found in one pass instead of its pass per key, which is
 * quadratic in a map's size.
 */
function hasDuplicateKeys(document: YAML.Document): boolean {
  let duplicate = false
  YAML.visit(document, {
    Map(_, map) {
      const seen = new Set<unknown>()
      for (const {key} of map.items) {
        if (!YAML.isScalar(key) || (typeof key.value === 'number' && Number.isNaN(key.value))) continue
        if (seen.has(key.value)) {
          duplicate = true
          return YAML.visit.BREAK
        }
        seen.add(key.value)
      }
      return undefined
    },
  })
  return duplicate
}

/**
 * Words one of which a text must hold for visitDocument to find anything in it: an image field or a
 * field named like an image, container arguments or a command, env values.
 */
const VISITED_WORDS = /image|args|command|env/i

/** The documents of a text that holds YAML or JSON (a pod template), or none when it holds something else. */
function structured(text: string): unknown[] {
  try {
    // Parsed without the yaml library's own duplicate-key check (quadratic in a map's size) but refused
    // on duplicate keys all the same: such text is read by its image: lines, as before.
    const documents = YAML.parseAllDocuments(text, {uniqueKeys: false})
    if (documents.some((document) => document.errors.length > 0 || hasDuplicateKeys(document))) return []
    return documents.map((document) => document.toJS() as unknown).filter((value) => typeof value === 'object' && value !== null)
  } catch {
    return []
  }
}

/**
 * Whether an image field of YAML or JSON kept as ConfigMap or Secret text names an image to run. In a pod
 * template it does, even as a bare name (`image: busybox` of a container). But such text is also a
 * values dump an injector reads (istiod's `{"global": {"proxy": {"image": "proxyv2"}}}`), where a bare
 * name outside a container is the name part of an image composed at run time (a hint names that one):
 * not an image. So a bare name counts only in a container (beside a `name`, in a list of containers, or
 * under a `container` key, as an Argo template has it).
 */
function imageInText(value: string, record: Record<string, unknown>, parentKey: string): boolean {
  return /[/:@]/.test(value) || typeof record.name === 'string' || /containers?$/i.test(parentKey)
}

/**
 * Every place of one document that may hold an image: image fields (composed ones included), container
 * arguments (with the flag they belong to), env values (with their variable's name) and other fields
 * named like an image. `base` prefixes every `where`; it is not empty for a document of ConfigMap or
 * Secret text (imageInText).
 */
function visitDocument(document: unknown, template: string, base: string, found: Occurrence[]): void {
  const inText = base !== ''
  // In a values dump kept as text, an image map without tag or digest (linkerd's {name, version: ""}) is part
  // of an image composed at run time, as a bare name is (imageInText).
  const mapImage = (map: Record<string, unknown>): string | undefined => {
    const ref = imageFromMap(map)
    return ref !== undefined && (!inText || hasTagOrDigest(ref)) ? ref : undefined
  }
  const visit = (node: unknown, at: string, parentKey: string): void => {
    if (Array.isArray(node)) {
      let flag: string | undefined
      for (const [position, item] of node.entries()) {
        if (typeof item === 'string' && (parentKey === 'args' || parentKey === 'command') && item.trim()) {
          const value = item.trim()
          // "--flag=VALUE", or "--flag" then "VALUE" as the next argument.
          const name = /^(-{1,2}[\w.-]+)=/.exec(value)?.[1] ?? (value.startsWith('-') ? undefined : flag)
          found.push({where: `${base}${at}/${position}`, template, value, kind: 'arg', ...(name ? {name} : {})})
          flag = /^-{1,2}[\w.-]+$/.test(value) ? value : undefined
        } else {
          flag = undefined
          visit(item, `${at}/${position}`, parentKey)
        }
      }
    } else if (typeof node === 'object' && node !== null) {
      const record = node as Record<string, unknown>
      // A component a custom resource turns off (the GPU operator's vgpuManager: {enabled: false, image:
      // vgpu-manager}): nothing of it runs.
      if (record.enabled === false && ('image' in record || 'repository' in record)) return
      const composed = composedImage(record)
      for (const [key, value] of Object.entries(record)) {
        const where = `${base}${at}/${key}`
        if (key === 'image' && typeof value === 'string') {
          const image = composed ?? value.trim()
          // The split shape with its repository left empty (a GPU operator component not configured, often
          // disabled): the bare name is no image to pull.
          const unconfigured = composed === undefined && typeof record.repository === 'string' && !record.repository.trim() && !/[/:@]/.test(image)
          if (image && !unconfigured && !NOT_IMAGES.has(image) && !isImagePattern(image) && (!inText || imageInText(image, record, parentKey))) found.push({where, template, value: image, kind: 'image'})
        } else if (key === 'image' && typeof value === 'object' && value !== null && !Array.isArray(value) && mapImage(value as Record<string, unknown>)) {
          found.push({where, template, value: mapImage(value as Record<string, unknown>)!, kind: 'image'})
        } else if (key === 'baseImage' && typeof value === 'string' && value.trim() && record.image === undefined) {
          found.push({where, template, value: baseImageReference(value.trim(), record), kind: 'image'})
        } else if (key === 'value' && parentKey === 'env' && typeof value === 'string' && value.trim()) {
          found.push({where, template, value: value.trim(), kind: 'env', ...(typeof record.name === 'string' ? {name: record.name} : {})})
        } else if (/image/i.test(key) && typeof value === 'string' && value.trim()) {
          found.push({where, template, value: value.trim(), kind: 'other', name: key})
        } else {
          visit(value, `${at}/${key}`, key)
        }
      }
    }
  }
  visit(document, '', '')
}

/**
 * What one rendered document holds for kod: its occurrences, each `where` relative to the document
 * (occurrences() puts `template#index` in front).
 */
type DocumentReading = Occurrence[]

/** One chunk of helm's output (the text between two `---` lines): its template and its documents. */
interface ChunkReading {
  template: string
  documents: DocumentReading[]
}

/**
 * Chunks already read, by their text: the renders of one analysis share most of their documents (a
 * sentinel or probe render changes only those its values reach), so each distinct document is parsed once.
 */
export type ReadingCache = Map<string, ChunkReading>

/** A line that starts or ends a YAML document, or a directive: a chunk holding one is parsed in full. */
const DOCUMENT_MARKER = /^(?:---|\.\.\.|%)/m
/** A line with content: not blank, not a comment. */
const CONTENT_LINE = /^[ \t]*[^\s#]/m
const CRD_KIND = /^kind:[ \t]*["']?CustomResourceDefinition["']?[ \t]*(?:#.*)?$/m
const ROOT_KIND = /^kind:/gm
const ROOT_SPEC = /^spec:/m

/**
 * A CustomResourceDefinition: a schema for other resources, which runs nothing (a default in its schema
 * is no workload, and helm never renders a chart's crds/ directory for the same reason). kod reads
 * nothing in one.
 */
function isDefinition(document: unknown): boolean {
  if (typeof document !== 'object' || document === null || Array.isArray(document)) return false
  const {apiVersion, kind} = document as Record<string, unknown>
  return kind === 'CustomResourceDefinition' && typeof apiVersion === 'string' && apiVersion.startsWith('apiextensions.k8s.io/')
}

/**
 * Whether a chunk is one CustomResourceDefinition (isDefinition), told without parsing the whole of it:
 * CRDs are most of the bytes of many operators' charts. Its one top-level `kind:` line says
 * CustomResourceDefinition, and the text before its top-level `spec:` (apiVersion, kind, metadata) parses
 * on its own as one map that isDefinition accepts. Anything else (kind after spec, a flow map cut in two,
 * a second document) is parsed in full, which comes to the same.
 */
export function isCustomResourceDefinition(chunk: string): boolean {
  if (!CRD_KIND.test(chunk) || (chunk.match(ROOT_KIND) ?? []).length !== 1 || DOCUMENT_MARKER.test(chunk)) return false
  const spec = ROOT_SPEC.exec(chunk)
  if (!spec) return false
  const documents = YAML.parseAllDocuments(chunk.slice(0, spec.index), {uniqueKeys: false})
  if (!Array.isArray(documents) || documents.length !== 1 || documents[0].errors.length > 0) return false
  try {
    return isDefinition(documents[0].toJS())
  } catch {
    return false
  }
}

/**
 * Whether a chunk surely holds nothing kod reads, without parsing it: one document (or none) that holds
 * neither a word visitDocument looks for nor the kinds whose text kod reads. undefined when it must be parsed.
 */
function documentsWithNothing(chunk: string): number | undefined {
  if (DOCUMENT_MARKER.test(chunk)) return undefined
  if (!CONTENT_LINE.test(chunk)) return 0
  if (VISITED_WORDS.test(chunk) || /ConfigMap|Secret/.test(chunk)) return isCustomResourceDefinition(chunk) ? 1 : undefined
  return 1
}

/** Reads one chunk: the occurrences of each of its documents, relative to the document. */
function readChunk(chunk: string): ChunkReading {
  const template = SOURCE_COMMENT.exec(chunk)?.[1]?.trim() ?? '(unknown template)'
  const empty = documentsWithNothing(chunk)
  if (empty !== undefined) return {template, documents: Array.from({length: empty}, () => [])}
  let parsed: YAML.Document[]
  try {
    // uniqueKeys off: the same values (duplicate keys are only reported, never dropped), in linear time.
    parsed = YAML.parseAllDocuments(chunk, {uniqueKeys: false}) as YAML.Document[]
  } catch {
    return {template, documents: []}
  }
  // A document that cannot be turned into values (an alias to nowhere) is counted, with nothing in it, so
  // the documents after it keep their place whether or not it was parsed.
  const NOTHING = Symbol('nothing')
  const documents = parsed.map((document): unknown => {
    try {
      return document.toJS()
    } catch {
      return NOTHING
    }
  })
  return {
    template,
    documents: documents.map((document) => {
      const found: Occurrence[] = []
      if (document === NOTHING || isDefinition(document)) return found
      visitDocument(document, template, '', found)
      if (typeof document !== 'object' || document === null) return found
      for (const [key, text] of carriedText(document as Record<string, unknown>)) {
        if (!text.trim()) continue
        const where = `/data/${key}`
        // Text without any word visitDocument looks for yields nothing when parsed: it is not parsed.
        const inner = VISITED_WORDS.test(text) ? structured(text) : []
        // Every entry: a sentinel render must find the same entry even when it holds no image-like text.
        found.push({where, template, value: text, kind: 'text', ...(inner.length > 0 ? {structured: true} : {})})
        for (const [position, part] of inner.entries()) visitDocument(part, template, `${where}|${position}`, found)
      }
      return found
    }),
  }
}

/**
 * Every image field, container argument, environment value and other image-like field of the rendered
 * output, and the text of every ConfigMap and Secret entry. Text that holds YAML or JSON (a pod template
 * an injector or a controller reads at run time) is read like a manifest too. CustomResourceDefinitions
 * (schemas, which run nothing) are not read, and are told apart without a full parse when their kind comes
 * before their spec; a document without a word kod looks for is not parsed at all. Either still counts,
 * so every other document keeps its `where`. With `cache`, a chunk read by an earlier call is not parsed
 * again.
 */
export function occurrences(output: string, cache?: ReadingCache): Occurrence[] {
  const found: Occurrence[] = []
  const counters = new Map<string, number>()
  for (const chunk of output.split(/^---\s*$/m)) {
    if (!chunk.trim()) continue
    let reading = cache?.get(chunk)
    if (!reading) {
      reading = readChunk(chunk)
      cache?.set(chunk, reading)
    }
    const {template} = reading
    for (const document of reading.documents) {
      const index = counters.get(template) ?? 0
      counters.set(template, index + 1)
      const base = `${template}#${index}`
      for (const occurrence of document) found.push({...occurrence, where: `${base}${occurrence.where}`})
    }
  }
  return found
}

export function imagesInManifests(output: string): RenderedImage[] {
  const byRef = new Map<string, Set<string>>()
  for (const occurrence of occurrences(output)) {
    if (occurrence.kind !== 'image') continue
    if (!byRef.has(occurrence.value)) byRef.set(occurrence.value, new Set())
    byRef.get(occurrence.value)!.add(occurrence.template)
  }
  return [...byRef].map(([ref, sources]) => ({ref, foundIn: [...sources].sort()})).sort((a, b) => a.ref.localeCompare(b.ref))
}

/** helm's rendering knobs, passed to every render and recorded in the package. */
export interface RenderKnobs {
  kubeVersion?: string
  apiVersions?: string[]
  set?: string[]
}

export interface RenderOptions extends RenderKnobs {
  release: string
  namespace: string
  valuesFiles: string[]
}

/** helm template, as the install will render: same release, namespace, values files and knobs. */
export function templateArgs(chart: string, options: RenderOptions): string[] {
  return ['template', options.release, chart, '--namespace', options.namespace, ...knobArgs(options), ...options.valuesFiles.flatMap((file) => ['-f', file])]
}

/** --kube-version, --api-versions and --set as helm takes them. */
export function knobArgs(knobs: RenderKnobs): string[] {
  return [
    ...(knobs.kubeVersion ? ['--kube-version', knobs.kubeVersion] : []),
    ...(knobs.apiVersions ?? []).flatMap((api) => ['--api-versions', api]),
    ...(knobs.set ?? []).flatMap((value) => ['--set', value]),
  ]
}

export async function render(ctx: SourceContext, chart: string, options: RenderOptions): Promise<string> {
  return (await ctx.tools.run('helm', templateArgs(chart, options))).stdout
}


/**
 * The values a list of --set flags means, as helm parses them: rendered through a scratch chart whose
 * only template prints its values. kod writes them to a values file so its own values files can come
 * after them (helm always lets --set win over -f).
 */
export async function setValues(ctx: SourceContext, sets: readonly string[]): Promise<Record<string, unknown>> {
  if (sets.length === 0) return {}
  const dir = await mkdtemp(path.join(ctx.tmpDir, 'set-'))
  await mkdir(path.join(dir, 'templates'))
  await writeFile(path.join(dir, 'Chart.yaml'), 'apiVersion: v2\nname: kod-set\nversion: 0.0.0\n')
  await writeFile(path.join(dir, 'templates', 'values.yaml'), '{{ toYaml .Values }}\n')
  const parse = async (only: readonly string[]): Promise<string> =>
    (await ctx.tools.run('helm', ['template', 'kod', dir, '--show-only', 'templates/values.yaml', ...only.flatMap((value) => ['--set', value])])).stdout
  // kod's exit code for a tool that ran and failed (ctx.tools errors carry it): on this chart, only a --set can fail.
  const toolFailed = (error: unknown): boolean => (error as {exit?: number} | null)?.exit === TOOL_FAILED_EXIT
  let stdout: string
  try {
    stdout = await parse(sets)
  } catch (error) {
    if (!toolFailed(error)) throw error
    // Bad input, not a failing tool (exit 2): name the --set helm refuses, with helm's reason.
    let bad = sets
    for (const value of sets) {
      const refused = await parse([value]).then(
        () => false,
        (alone: unknown) => {
          if (!toolFailed(alone)) throw alone
          return true
        },
      )
      if (refused) {
        bad = [value]
        break
      }
    }
    const message = error instanceof Error ? error.message : String(error)
    const reason = /failed parsing --set data: (.*)$/.exec(message)?.[1] ?? message.replace(/^helm template failed: (Error: )?/, '')
    throw Object.assign(new Error(`bad ${bad.map((value) => `--set ${JSON.stringify(value)}`).join(' ')}: ${reason}`), {exit: 2})
  }
  const values = YAML.parse(stdout.replace(/^---\s*$/m, '').replace(/^# Source:.*$/m, '')) as unknown
  return typeof values === 'object' && values !== null && !Array.isArray(values) ? (values as Record<string, unknown>) : {}
}
