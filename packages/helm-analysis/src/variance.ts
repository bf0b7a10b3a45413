import {imageItems, type Item} from './items.js'
import type {Unpackaged} from './result.js'
import type {RenderSession} from './session.js'

/**
 * The Kubernetes version of the render that shows what depends on it: far from any helm's default (the
 * version of the client-go it is built with), and above the lower bounds charts set (kubeVersion: ">=1.2x").
 */
export const VARIANT_KUBE_VERSION = '1.99.0'

/** Templates that read the Kubernetes version (an image tagged with it: kubectl at the cluster's version). */
const READS_KUBE_VERSION = /\.Capabilities\.KubeVersion/
/** Templates that render otherwise on upgrade (a migration Job only an upgrade runs). */
const READS_UPGRADE = /\.Release\.Is(?:Upgrade|Install)\b/

type Variant = {kubeVersion?: string; upgrade?: boolean}

/** What one variant render shows that the first does not, as warnings. */
function differences(base: readonly Item[], variant: readonly Item[], what: 'kube' | 'upgrade'): Unpackaged[] {
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
          ? `changes with the Kubernetes version the chart is rendered for (it is ${item.ref} for ${VARIANT_KUBE_VERSION}): kod rendered helm's default version, as no --kube-version was given, and the cluster renders its own`
          : `renders only for another Kubernetes version than helm's default (${VARIANT_KUBE_VERSION} here): not packaged`,
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
 * image only an upgrade renders is named, not packaged). Both run beside the rest of the analysis. Never
 * rejects: a variant helm refuses to render (a chart that caps the version) is skipped, and said in debug.
 */
export async function varianceWarnings(session: RenderSession, templates: ReadonlyMap<string, string>, kubeVersionGiven: boolean, base: readonly Item[]): Promise<Unpackaged[]> {
  const texts = [...templates.values()]
  const variants: Array<[Variant, 'kube' | 'upgrade']> = [
    ...(!kubeVersionGiven && texts.some((text) => READS_KUBE_VERSION.test(text)) ? [[{kubeVersion: VARIANT_KUBE_VERSION}, 'kube'] as [Variant, 'kube']] : []),
    ...(texts.some((text) => READS_UPGRADE.test(text)) ? [[{upgrade: true}, 'upgrade'] as [Variant, 'upgrade']] : []),
  ]
  const found = await Promise.all(
    variants.map(async ([variant, what]) => {
      try {
        const output = await session.renderVariant(variant)
        return differences(base, imageItems(session.ctx.refs, session.occurrences(output)), what)
      } catch (error) {
        session.ctx.log.debug(`the render ${what === 'kube' ? `for Kubernetes ${VARIANT_KUBE_VERSION}` : 'as an upgrade'} failed, so what depends on it is not checked: ${(error as Error).message}`)
        return []
      }
    }),
  )
  return found.flat()
}
