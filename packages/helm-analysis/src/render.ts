import {mkdir, mkdtemp, writeFile} from 'node:fs/promises'
import path from 'node:path'
import YAML from 'yaml'

import type {SourceContext} from 'kod'

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
  /** For an env value, the variable's name; for an argument, the flag ("--sidecar-image"). */
  name?: string
}

/** Values of image fields that are not images: istio's gateway chart sets `image: auto`, which its injector replaces. */
const NOT_IMAGES = new Set(['auto'])

/** Image-like tokens in text: a path and a tag or digest (registry optional). */
const IMAGE_TOKEN = /(?<![\w./:@-])(?:[a-z0-9][a-z0-9.-]*(?::\d+)?\/)?[a-z0-9][a-z0-9._-]*(?:\/[a-z0-9][a-z0-9._-]*)+(?::\w[\w.-]{0,127}(?:@sha256:[a-f0-9]{64})?|@sha256:[a-f0-9]{64})(?![\w./@-])/g

export function imageTokens(text: string): string[] {
  return [...new Set(text.match(IMAGE_TOKEN) ?? [])]
}

/**
 * `image:` lines of text that holds YAML (a pod template a controller or an injector reads from a
 * ConfigMap): their values are image fields, even without a registry or a path (`image: busybox:1.28`).
 * Values still holding a template (`{{ .ProxyImage }}`) and values with neither tag, digest nor path
 * (`image: true`) are left out.
 */
const TEXT_IMAGE_FIELD = /^[ \t]*(?:-[ \t]+)?["']?image["']?[ \t]*:[ \t]*["']?([^\s"'#{}]+)["']?[ \t]*(?:#.*)?$/gm

export function imageFieldsInText(text: string): string[] {
  const found = [...text.matchAll(TEXT_IMAGE_FIELD)].map((match) => match[1]).filter((value) => /[/:@]/.test(value))
  return [...new Set(found)]
}

/** Whether an argument flag or env variable is named for an image (--acme-http01-solver-image, RELATED_IMAGE_X). */
export function namedForImage(name: string | undefined): boolean {
  return name !== undefined && /image/i.test(name)
}

/**
 * A custom resource that splits an image into sibling keys: `repository` (registry and path), `image`
 * (the name) and `version` or `tag` (a digest when it starts with sha256:). The GPU operator's
 * ClusterPolicy does this for every component. Undefined when the object has no such shape.
 */
export function composedImage(record: Record<string, unknown>): string | undefined {
  const {image, repository} = record
  if (typeof image !== 'string' || !image.trim() || typeof repository !== 'string' || !repository.trim()) return undefined
  let ref = `${repository.trim().replace(/\/+$/, '')}/${image.trim().replace(/^\/+/, '')}`
  const version = [record.version, record.tag].find((value) => (typeof value === 'string' && value.trim() !== '') || typeof value === 'number')
  const last = ref.slice(ref.lastIndexOf('/') + 1)
  if (version !== undefined && !/[:@]/.test(last)) {
    const text = String(version).trim()
    ref += /^sha256:/.test(text) ? `@${text}` : `:${text}`
  }
  return ref
}

const SOURCE_COMMENT = /^# Source: (.+)$/m

/** Every image field, container argument and environment value of the rendered output. */
export function occurrences(output: string): Occurrence[] {
  const found: Occurrence[] = []
  const counters = new Map<string, number>()
  for (const chunk of output.split(/^---\s*$/m)) {
    if (!chunk.trim()) continue
    const template = SOURCE_COMMENT.exec(chunk)?.[1]?.trim() ?? '(unknown template)'
    let documents: unknown[]
    try {
      documents = YAML.parseAllDocuments(chunk).map((document) => document.toJS())
    } catch {
      continue
    }
    for (const document of documents) {
      const index = counters.get(template) ?? 0
      counters.set(template, index + 1)
      const visit = (node: unknown, at: string, parentKey: string): void => {
        if (Array.isArray(node)) {
          for (const [position, item] of node.entries()) {
            if (typeof item === 'string' && (parentKey === 'args' || parentKey === 'command') && item.trim()) {
              const flag = /^(-{1,2}[\w.-]+)=/.exec(item.trim())?.[1]
              found.push({where: `${template}#${index}${at}/${position}`, template, value: item.trim(), kind: 'arg', ...(flag ? {name: flag} : {})})
            } else {
              visit(item, `${at}/${position}`, parentKey)
            }
          }
        } else if (typeof node === 'object' && node !== null) {
          const record = node as Record<string, unknown>
          const composed = composedImage(record)
          for (const [key, value] of Object.entries(record)) {
            const where = `${template}#${index}${at}/${key}`
            if (key === 'image' && typeof value === 'string') {
              const image = composed ?? value.trim()
              if (image && !NOT_IMAGES.has(image)) found.push({where, template, value: image, kind: 'image'})
            } else if (key === 'value' && parentKey === 'env' && typeof value === 'string' && value.trim()) {
              found.push({where, template, value: value.trim(), kind: 'env', ...(typeof record.name === 'string' ? {name: record.name} : {})})
            } else if (/image/i.test(key) && typeof value === 'string' && value.trim()) {
              found.push({where, template, value: value.trim(), kind: 'other'})
            } else if (key === 'image' && typeof value === 'object' && value !== null && typeof (value as Record<string, unknown>).repository === 'string') {
              const {repository, tag} = value as {repository: string; tag?: unknown}
              found.push({where, template, value: tag ? `${repository}:${String(tag)}` : repository, kind: 'other'})
            } else {
              visit(value, `${at}/${key}`, key)
            }
          }
        }
      }
      visit(document, '', '')
      // ConfigMap data: configuration text that may name images the workload starts at run time.
      const configMap = document as {kind?: unknown; data?: unknown} | null
      if (configMap?.kind === 'ConfigMap' && typeof configMap.data === 'object' && configMap.data !== null) {
        for (const [key, value] of Object.entries(configMap.data)) {
          // Every entry: a sentinel render must find the same entry even when it holds no image-like text.
          if (typeof value === 'string' && value.trim()) found.push({where: `${template}#${index}/data/${key}`, template, value, kind: 'text'})
        }
      }
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
  const toolFailed = (error: unknown): boolean => (error as {exit?: number} | null)?.exit === 4
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
