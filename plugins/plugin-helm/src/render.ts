import YAML from 'yaml'

import type {SourceContext} from 'kod'

/** Images in rendered manifests: every non-empty string under a key named "image", at any depth. */
export interface RenderedImage {
  ref: string
  /** Templates it appears in, as helm names them (chart/templates/x.yaml). */
  foundIn: string[]
}

const SOURCE_COMMENT = /^# Source: (.+)$/m

export function imagesInManifests(output: string): RenderedImage[] {
  const byRef = new Map<string, Set<string>>()
  for (const chunk of output.split(/^---\s*$/m)) {
    if (!chunk.trim()) continue
    const source = SOURCE_COMMENT.exec(chunk)?.[1]?.trim() ?? '(unknown template)'
    let documents: unknown[]
    try {
      documents = YAML.parseAllDocuments(chunk).map((document) => document.toJS())
    } catch {
      continue
    }
    const visit = (node: unknown): void => {
      if (Array.isArray(node)) {
        for (const item of node) visit(item)
      } else if (typeof node === 'object' && node !== null) {
        for (const [key, value] of Object.entries(node)) {
          if (key === 'image' && typeof value === 'string' && value.trim()) {
            const ref = value.trim()
            if (!byRef.has(ref)) byRef.set(ref, new Set())
            byRef.get(ref)!.add(source)
          } else {
            visit(value)
          }
        }
      }
    }
    for (const document of documents) visit(document)
  }
  return [...byRef].map(([ref, sources]) => ({ref, foundIn: [...sources].sort()})).sort((a, b) => a.ref.localeCompare(b.ref))
}

export interface RenderOptions {
  release: string
  namespace: string
  valuesFiles: string[]
}

/** helm template, as the install will render: same release, namespace and values files. */
export function templateArgs(chart: string, options: RenderOptions): string[] {
  return [
    'template',
    options.release,
    chart,
    '--namespace',
    options.namespace,
    ...options.valuesFiles.flatMap((file) => ['-f', file]),
  ]
}

export async function renderImages(ctx: SourceContext, chart: string, options: RenderOptions): Promise<RenderedImage[]> {
  const {stdout} = await ctx.tools.run('helm', templateArgs(chart, options))
  return imagesInManifests(stdout)
}
