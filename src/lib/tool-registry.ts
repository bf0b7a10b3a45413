import type {ToolDefinition, ToolName} from '../api.js'

/**
 * The tools kod knows: its own, and those plugins declare (registerTool, exported by kod/sdk). A tool's
 * definition says where kod finds it (PATH, or its environment variable), what to tell a user who lacks
 * it, how long a call may take when the caller gives no limit, and how it prints its version.
 *
 * One registry per kod process: plugins get kod/sdk from the running kod (docs/plugins.md), so a tool a
 * plugin registers is known to the runner kod hands every command.
 */
const registry = new Map<string, Required<Pick<ToolDefinition, 'name' | 'installHint' | 'env'>> & ToolDefinition>()

const NAME = /^[a-z0-9][a-z0-9_-]*$/

/** KOD_<NAME>: upper-case, `-` as `_`. */
export function defaultToolEnv(name: string): string {
  return `KOD_${name.toUpperCase().replaceAll('-', '_')}`
}

/**
 * Declares a tool (or redeclares it: the last declaration wins, so a plugin may sharpen a hint). Throws on
 * a name that is no plain command name, an environment variable that is no plain name, or a limit that is
 * no positive number: programming errors, found the first time the plugin loads.
 */
export function registerTool(definition: ToolDefinition): void {
  const {name} = definition
  if (!NAME.test(name)) throw new Error(`registerTool: "${name}" is not a tool name (lower-case letters, digits, - and _)`)
  const env = definition.env ?? defaultToolEnv(name)
  if (!/^[A-Z_][A-Z0-9_]*$/.test(env)) throw new Error(`registerTool(${name}): env "${env}" is not an environment variable name`)
  if (definition.timeoutMs !== undefined && !(Number.isFinite(definition.timeoutMs) && definition.timeoutMs > 0)) {
    throw new Error(`registerTool(${name}): timeoutMs must be a positive number of milliseconds`)
  }
  registry.set(name, {...definition, env, ...(definition.versionArgs ? {versionArgs: [...definition.versionArgs]} : {})})
}

/** A tool's definition; one that nobody declared gets a generic one (PATH or KOD_<NAME>). */
export function toolDefinition(name: ToolName): Required<Pick<ToolDefinition, 'name' | 'installHint' | 'env'>> & ToolDefinition {
  const known = registry.get(name)
  if (known) return known
  const env = defaultToolEnv(name)
  return {name, env, installHint: `install ${name} or set ${env} to its path`}
}

/** Whether a tool was declared (by kod or a plugin). */
export function isRegisteredTool(name: string): boolean {
  return registry.has(name)
}

/** Every declared tool, in the order declared. */
export function registeredTools(): ToolDefinition[] {
  return [...registry.values()].map((definition) => ({...definition}))
}

// kod's own tools. Their limits depend on what each call does (bounds.ts, defaultTimeoutMs).
registerTool({name: 'helm', installHint: 'install helm (https://helm.sh/docs/intro/install/) or set KOD_HELM to its path', versionArgs: ['version', '--short']})
registerTool({
  name: 'helmfile',
  installHint: 'install helmfile or set KOD_HELMFILE to its path (a helmfile package also deploys without it: kod deploy --helm)',
  versionArgs: ['--version'],
})
registerTool({name: 'skopeo', installHint: 'install skopeo (apt-get install skopeo) or set KOD_SKOPEO to its path', versionArgs: ['--version']})
registerTool({name: 'regctl', installHint: 'install regctl or set KOD_REGCTL to its path', versionArgs: ['version']})
registerTool({
  name: 'kubectl',
  installHint: 'install kubectl (https://kubernetes.io/docs/tasks/tools/) or set KOD_KUBECTL to its path; only kod deploy --create-secret runs it',
  versionArgs: ['version', '--client'],
})
