// Module resolution hooks (node:module register, see register-sdk.js): a plugin's `import … from 'kod/sdk'`
// (or 'kod') resolves to the running kod's own files, wherever the plugin is installed (docs/plugins.md).
// Resolved as kod resolves itself (its package.json "exports"), so only what kod exports is reachable.

/** URL of a module inside kod's package, from which `kod/…` resolves through kod's own exports. */
let host

/** @param {{host: string}} data */
export async function initialize(data) {
  host = data.host
}

/**
 * @param {string} specifier
 * @param {{parentURL?: string}} context
 * @param {(specifier: string, context?: object) => Promise<unknown>} nextResolve
 */
export async function resolve(specifier, context, nextResolve) {
  if (host && (specifier === 'kod' || specifier.startsWith('kod/'))) return nextResolve(specifier, {...context, parentURL: host})
  return nextResolve(specifier, context)
}
