import {realpath, stat} from 'node:fs/promises'
import path from 'node:path'

import {createToolRunner, ExitCode, KodError, missingTool, readExecutableInfo, registeredTools, resolveExecutable, sha256File, toolBinary, toolDefinition, usageError} from 'kod/sdk'

import type {BundledExecutable, BundledTool} from './bundle-kind.js'

/** The tools package-tools bundles when none is named: kod's own. */
export const DEFAULT_TOOLS = ['helm', 'helmfile', 'skopeo', 'regctl', 'kubectl']

/** Tools that can be bundled: declared with a version command (kod's own, and those plugins declare so). */
export function bundleableTools(): string[] {
  return registeredTools()
    .filter((tool) => tool.versionArgs !== undefined)
    .map((tool) => tool.name)
}

/** One --tool value: NAME, or NAME=PATH. */
export interface ToolRequest {
  name: string
  path?: string
  /** Asked for by name (--tool): missing is an error, not a warning. */
  named: boolean
}

/** --tool values as requests; without any, every default tool, optional. Bad names and repeats are usage errors. */
export function toolRequests(values: string[] | undefined): ToolRequest[] {
  if (!values || values.length === 0) return DEFAULT_TOOLS.map((name) => ({name, named: false}))
  const known = bundleableTools()
  const seen = new Set<string>()
  return values.map((value) => {
    const at = value.indexOf('=')
    const name = (at === -1 ? value : value.slice(0, at)).trim()
    const file = at === -1 ? undefined : value.slice(at + 1)
    if (name === 'kod') throw usageError('--tool kod: kod itself is always bundled (with its node); name the other tools')
    if (!known.includes(name)) throw usageError(`--tool ${value}: package-tools bundles ${known.join(', ')}; "${name}" is none of them`)
    if (file !== undefined && file.trim() === '') throw usageError(`--tool ${value}: give the path after =, e.g. --tool ${name}=/usr/local/bin/${name}`)
    if (seen.has(name)) throw usageError(`--tool ${name} is given twice`)
    seen.add(name)
    return {name, named: true, ...(file === undefined ? {} : {path: path.resolve(file)})}
  })
}

/** A tool found to bundle: its real file (links followed). */
export interface FoundTool {
  name: string
  file: string
  /** As the user would know it: the PATH entry, KOD_<TOOL>'s value, or --tool's path. */
  from: string
}

/**
 * Where each tool is: --tool's path, else KOD_<TOOL>, else PATH. A named tool that is not there is an
 * error (exit 3, as when kod runs a missing tool); a default one is a warning.
 */
export async function findTools(requests: ToolRequest[], warn: (message: string) => void, env: NodeJS.ProcessEnv = process.env): Promise<FoundTool[]> {
  const found: FoundTool[] = []
  for (const request of requests) {
    const given = request.path ?? toolBinary(request.name, env)
    const file = await resolveExecutable(given, env)
    if (!file) {
      const runner = createToolRunner({binaries: {[request.name]: given}})
      const missing = missingTool(runner, request.name)
      if (request.named) throw new KodError(`${missing.message} (asked for with --tool ${request.name}${request.path ? `=${request.path}` : ''})`, {exit: ExitCode.toolMissing})
      warn(`${request.name} not found${given === request.name ? ' on PATH' : ` at ${given}`}, so not bundled: ${toolDefinition(request.name).installHint}; or name it with --tool ${request.name}=PATH`)
      continue
    }
    found.push({name: request.name, file: await realpath(file), from: file})
  }
  return found
}

/** The version in what a version command printed: the first x.y.z, with its v and suffix. */
export function parseVersion(output: string): string | undefined {
  return /\bv?\d+\.\d+\.\d+(?:[-+][\w.+-]*)?/.exec(output)?.[0]
}

/** An executable's sha256, size and ELF facts. */
export async function describeExecutable(file: string, inBundle: string, version: string): Promise<BundledExecutable> {
  const info = await readExecutableInfo(file)
  return {
    file: inBundle,
    sha256: await sha256File(file),
    size: (await stat(file)).size,
    version,
    ...(info.platform ? {platform: info.platform} : {}),
    ...(info.linking ? {linking: info.linking} : {}),
    ...(info.interpreter ? {interpreter: info.interpreter} : {}),
    ...(info.needs ? {needs: info.needs} : {}),
  }
}

/**
 * A found tool as the bundle records it: its version from its own version command (run on that very
 * file), sha256, size, platform and linking. What deserves a warning — dynamically linked, another
 * platform than kod's, no ELF executable at all — is said through `warn`.
 */
export async function describeTool(tool: FoundTool, kodPlatform: string, warn: (message: string) => void, signal?: AbortSignal): Promise<BundledTool> {
  const versionArgs = toolDefinition(tool.name).versionArgs ?? ['--version']
  const runner = createToolRunner({binaries: {[tool.name]: tool.file}, cancelSignal: signal})
  const {stdout, stderr} = await runner.run(tool.name, versionArgs, {timeoutMs: 60_000})
  const output = `${stdout}\n${stderr}`
  const firstLine = output.split('\n').map((line) => line.trim()).find(Boolean) ?? ''
  const version = parseVersion(output) ?? firstLine.slice(0, 100)
  if (!version) throw new KodError(`${tool.name} ${versionArgs.join(' ')} (${tool.file}) printed no version: is it ${tool.name}?`, {exit: ExitCode.toolFailed})
  const described = await describeExecutable(tool.file, `bin/${tool.name}`, version)
  const info = await readExecutableInfo(tool.file)
  if (info.note) warn(`${tool.name} (${tool.from}) is ${info.note}: bundled as it is; it may need what the bundle does not carry`)
  else if (described.platform && described.platform !== kodPlatform) warn(`${tool.name} (${tool.from}) is built for ${described.platform}, kod's node for ${kodPlatform}: the bundle holds both; check the target host's platform`)
  if (described.linking === 'dynamic') warn(dynamicWarning(tool.name, tool.from, described))
  return {name: tool.name, ...described, versionCommand: [tool.name, ...versionArgs], versionOutput: firstLine.slice(0, 200), from: tool.from}
}

/** The warning for a dynamically linked executable: bundled without its libraries, which the target host must have. */
export function dynamicWarning(name: string, from: string, executable: Pick<BundledExecutable, 'needs' | 'interpreter'>): string {
  const needs = executable.needs?.length ? executable.needs.join(', ') : 'the system C library'
  return `${name} (${from}) is dynamically linked: bundled without its shared libraries (${needs}${executable.interpreter ? `; loader ${executable.interpreter}` : ''}), which the target host must provide; deploy-tools checks them there`
}
