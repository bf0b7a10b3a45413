import {imageItems, type Item} from './items.js'
import type {Unpackaged} from './result.js'
import type {RenderSession} from './session.js'

/**
 * The Kubernetes versions of the render that shows what depends on it, tried in turn until helm renders one:
 * far from any helm's default (the version of the client-go it is built with) and above the lower bounds
 * charts set (kubeVersion: ">=1.2x"); then an older one, for a chart that caps the version.
 */
export const VARIANT_KUBE_VERSIONS = ['1.99.0', '1.25.0'] as const

/** Templates that read the Kubernetes version (an image tagged with it: kubectl at the cluster's version). */
const READS_KUBE_VERSION = /\.Capabilities\.KubeVersion/
/** Templates that render otherwise on upgrade (a migration Job only an upgrade runs). */
const READS_UPGRADE = /\.Release\.Is(?:Upgrade|Install)\b/

/** What one variant render shows that the first does not, as warnings. */
function differences(base: readonly Item[], variant: readonly Item[], what: 'kube' | 'upgrade', kubeVersion = ''): Unpackaged[] {
  const baseRefs = new Set(base.map((item) => item.ref))
  const byKey = new Map(base.map((item) => [item.key, item]))
  const found = new Map<string, Unpackaged>()
  for (const item of variant) {
    if (baseRefs.has(item.ref)) continue
    const before = byKey.get(item.key)
    if (what === 'kube') {
      // The packaged image (or, when the first render had nothing there, the other one) is named.
      const ref = before?.ref ?? item.ref
      const template = before?.template ?? item.template
      found.set(`${ref}\u0000${template}`, {
        ref,
        template,
        reason: before
          ? `changes with the Kubernetes version the chart is rendered for (it is ${item.ref} for ${kubeVersion}): kod rendered helm's default version, as no --kube-version was given, and the cluster renders its own`
          : `renders only for another Kubernetes version than helm's default (${kubeVersion} here): not packaged`,
        advice: "package again with --kube-version set to your cluster's version (kubectl version)",
      })
    } else {
      found.set(`${item.ref}\u0000${item.template}`, {
        ref: item.ref,
        template: item.template,
        reason: `renders only when helm upgrades the release (.Release.IsUpgrade), not on the first install, which kod renders${before ? ` (where install renders ${before.ref})` : ''}: not packaged`,
      })
    }
  }
  return [...found.values()]
}

/**
 * Images the first render cannot show, because the chart renders them from what helm knows only at install
 * time (docs/images.md): one more render for another Kubernetes version, when a template reads it and no
 * --kube-version was given (an image whose reference changes with it is named, since the cluster renders it
 * for its own version), and one as `helm upgrade` renders, when a template reads .Release.IsUpgrade (an
 * image only an upgrade renders is named, not packaged). Both run beside the rest of the analysis. Rejects
 * only when interrupted: a version helm refuses to render (a chart that caps it) is followed by an older
 * one, and when it renders neither, that is said; a failed upgrade render is said in debug.
 */
export async function varianceWarnings(session: RenderSession, templates: ReadonlyMap<string, string>, kubeVersionGiven: boolean, base: readonly Item[]): Promise<Unpackaged[]> {
  const texts = [...templates.values()]
  const items = (output: string): Item[] => imageItems(session.ctx.refs, session.occurrences(output))
  const kube = async (): Promise<Unpackaged[]> => {
    const refusals: string[] = []
    for (const kubeVersion of VARIANT_KUBE_VERSIONS) {
      try {
        return differences(base, items(await session.renderVariant({kubeVersion})), 'kube', kubeVersion)
      } catch (error) {
        session.rethrowIfCancelled(error)
        refusals.push(`${kubeVersion}: ${(error as Error).message}`)
      }
    }
    session.ctx.log.warn(`helm would not render the chart for another Kubernetes version (${refusals.join('; ')}), so kod cannot tell which images depend on it: give --kube-version your cluster's version`)
    return []
  }
  const upgrade = async (): Promise<Unpackaged[]> => {
    try {
      return differences(base, items(await session.renderVariant({upgrade: true})), 'upgrade')
    } catch (error) {
      session.rethrowIfCancelled(error)
      session.ctx.log.debug(`the render as an upgrade failed, so what only an upgrade renders is not checked: ${(error as Error).message}`)
      return []
    }
  }
  const found = await Promise.all([
    !kubeVersionGiven && texts.some((text) => READS_KUBE_VERSION.test(text)) ? kube() : [],
    texts.some((text) => READS_UPGRADE.test(text)) ? upgrade() : [],
  ])
  return found.flat()
}
