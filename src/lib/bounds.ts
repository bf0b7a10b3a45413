import {mkdir, stat} from 'node:fs/promises'
import path from 'node:path'

import type {PlannedCommand, RunResult, ToolName, ToolRunner} from '../api.js'
import {KodError, usageError} from './errors.js'
import {transferBytes} from './oci.js'
import {toolDefinition} from './tool-registry.js'

/**
 * Bounded waits (docs/security.md): every tool kod runs has a time limit, from what the call moves.
 *
 * - a registry must answer a manifest request within ANSWER_MS (a registry that accepts connections and
 *   never answers fails in well under a minute, named);
 * - an image copy may take TRANSFER_BASE_MS plus its bytes at FLOOR_BYTES_PER_SECOND (pushes: sizes from
 *   the package's layout; pulls: from the manifests the first answer returned);
 * - the rest have fixed limits by what they do (defaultTimeoutMs).
 */
export const ANSWER_MS = 30_000
export const TRANSFER_BASE_MS = 60_000
export const FLOOR_BYTES_PER_SECOND = 1024 * 1024
/** A copy whose size kod cannot know beforehand. */
export const UNKNOWN_SIZE_MS = 30 * 60 * 1000
/** Rendering and reading charts: helm template, show, lint, package, dependency list. */
export const LOCAL_HELM_MS = 2 * 60 * 1000
/** helm's network calls that move a chart or two: pull, push, repo, registry, dependency build. */
export const NETWORK_HELM_MS = 5 * 60 * 1000
/** helm's own --timeout for install and upgrade when none is given, and what kod adds to it. */
const HELM_DEFAULT_WAIT_MS = 5 * 60 * 1000
const HELM_MARGIN_MS = 5 * 60 * 1000
/** helmfile runs helm once per release and more: generous. */
export const HELMFILE_MS = 60 * 60 * 1000
/** kubectl: making a Secret's manifest (client-side) and applying it, one small object, to the API server. */
export const KUBECTL_MS = 2 * 60 * 1000
/** Any other call (skopeo login, list-tags, …). */
export const OTHER_MS = 2 * 60 * 1000
/**
 * How many looks at a registry (skopeo inspect of one manifest) run at once: each is a process and a round
 * trip, so one by one they add up; a few at a time keep the registry and a 2-core machine unloaded. More
 * do not help there: a repeated populate's 32 looks took as long 6 and 8 at a time as 4 (each skopeo
 * process is ~15 ms of CPU, so two cores are busy at 4 already).
 */
export const LOOK_CONCURRENCY = 4

/** The time limit for moving `bytes` (undefined: unknown, UNKNOWN_SIZE_MS). */
export function transferTimeoutMs(bytes: number | undefined): number {
  if (bytes === undefined || !Number.isFinite(bytes) || bytes < 0) return UNKNOWN_SIZE_MS
  return TRANSFER_BASE_MS + Math.ceil((bytes / FLOOR_BYTES_PER_SECOND) * 1000)
}

/** A Go duration as helm takes it (5m0s, 300s, 1h, 90) in ms, or undefined. */
export function goDurationMs(text: string): number | undefined {
  if (/^\d+$/.test(text)) return Number(text) * 1000
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s)/g)]
  if (parts.length === 0 || parts.map((part) => part[0]).join('') !== text) return undefined
  const unit: Record<string, number> = {h: 3_600_000, m: 60_000, s: 1000, ms: 1}
  return parts.reduce((sum, [, value, name]) => sum + Number(value) * unit[name], 0)
}

/** The value of `--flag V` or `--flag=V` in args. */
function flagValue(args: readonly string[], flag: string): string | undefined {
  for (const [index, arg] of args.entries()) {
    if (arg === flag) return args[index + 1]
    if (arg.startsWith(`${flag}=`)) return arg.slice(flag.length + 1)
  }
  return undefined
}

/**
 * The limit of a call whose caller gave none, by what it does; for a tool a plugin declared, the limit it
 * declared (registerTool's timeoutMs), else UNKNOWN_SIZE_MS.
 */
export function defaultTimeoutMs(tool: ToolName, args: readonly string[]): number {
  const command = args.find((arg) => !arg.startsWith('-')) ?? ''
  switch (tool) {
    case 'helm': {
      if (['upgrade', 'install', 'uninstall', 'rollback', 'test'].includes(command)) {
        const own = goDurationMs(flagValue(args, '--timeout') ?? '') ?? HELM_DEFAULT_WAIT_MS
        return own + HELM_MARGIN_MS
      }
      if (['pull', 'push', 'repo', 'registry', 'fetch'].includes(command)) return NETWORK_HELM_MS
      if (command === 'dependency' || command === 'dep') return args.includes('list') ? LOCAL_HELM_MS : NETWORK_HELM_MS
      return LOCAL_HELM_MS
    }
    case 'skopeo': {
      if (command === 'inspect') return ANSWER_MS
      if (command === 'copy' || command === 'sync') return UNKNOWN_SIZE_MS
      return OTHER_MS
    }
    case 'helmfile': {
      return HELMFILE_MS
    }
    case 'kubectl': {
      return KUBECTL_MS
    }
    default: {
      return toolDefinition(tool).timeoutMs ?? UNKNOWN_SIZE_MS
    }
  }
}

/** 30s, 1m05s, 1h02m: how long, as the user reads it. */
export function formatDuration(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000))
  if (seconds < 60) return `${seconds}s`
  const minutes = Math.floor(seconds / 60)
  if (minutes < 60) return `${minutes}m${String(seconds % 60).padStart(2, '0')}s`
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, '0')}m`
}

/** The registry hosts a tool call talks to: docker://HOST/…, oci://HOST/…, http(s)://HOST…. */
export function registryHosts(args: readonly string[]): string[] {
  const hosts = args.flatMap((arg) => {
    const match = /^(?:docker|oci|https?):\/\/(?:[^@/\s]*@)?([^/\s]+)/i.exec(arg)
    return match ? [match[1].toLowerCase()] : []
  })
  return [...new Set(hosts)]
}

/** skopeo copy's flags for one side (`--src-` or `--dest-`) as skopeo inspect spells them, for the same registry. */
const VALUE_FLAGS = new Set(['authfile', 'cert-dir', 'creds', 'registry-token', 'username', 'password'])
const SIDE_FLAGS = new Set([...VALUE_FLAGS, 'tls-verify', 'no-creds'])

export function inspectFlags(copyArgs: readonly string[], side: '--src-' | '--dest-'): string[] {
  const flags: string[] = []
  for (let index = 0; index < copyArgs.length; index++) {
    const arg = copyArgs[index]
    if (!arg.startsWith(side)) continue
    const [name, value] = arg.slice(side.length).split(/=(.*)/s, 2)
    if (!SIDE_FLAGS.has(name)) continue
    if (value !== undefined) flags.push(`--${name}=${value}`)
    else if (VALUE_FLAGS.has(name) && index + 1 < copyArgs.length) flags.push(`--${name}`, copyArgs[++index])
    else flags.push(`--${name}`)
  }
  return flags
}

/** docker://host/path without its tag or digest. */
function repositoryOf(reference: string): string {
  const at = reference.indexOf('@')
  const base = at === -1 ? reference : reference.slice(0, at)
  const slash = base.lastIndexOf('/')
  const colon = base.indexOf(':', slash)
  return colon === -1 || slash === -1 ? base : base.slice(0, colon)
}

/** Whether a tool error is kod's bound for the call running out (tools.ts ToolTimeout). */
export function isTimeout(error: unknown): boolean {
  return error instanceof KodError && (error as KodError & {timedOut?: boolean}).timedOut === true
}

/** How many platform manifests of an index kod asks for to estimate its size: the first, then extrapolates. */
const SAMPLED_PLATFORMS = 1

/**
 * How many bytes `skopeo copy --all` will pull, asked of the source registry first with the short
 * ANSWER_MS bound (so a registry that never answers fails fast, named): the manifest's blobs, or for an
 * index, the first platform's, counted for each platform with a margin. Undefined when the registry
 * answered with anything but a manifest kod can read (the copy then says why, with its own bound).
 */
export async function pullBytes(tools: ToolRunner, command: PlannedCommand, known?: {top: string | undefined}): Promise<number | undefined> {
  const source = command.args.at(-2) ?? ''
  if (command.tool !== 'skopeo' || !source.startsWith('docker://')) return undefined
  const flags = inspectFlags(command.args, '--src-')
  const raw = async (reference: string): Promise<string | undefined> => {
    try {
      return (await tools.run('skopeo', ['inspect', '--raw', ...flags, reference], {env: command.env, timeoutMs: ANSWER_MS})).stdout
    } catch (error) {
      if (isTimeout(error)) throw error
      return undefined
    }
  }
  // `known`: the caller asked for the top manifest already, with the same source flags (sourceManifest).
  const top = known ? known.top : await raw(source)
  if (top === undefined) return undefined
  const counted = transferBytes(top)
  if (!counted) return undefined
  if (counted.platforms.length === 0) return counted.bytes
  let sampled = 0
  for (const digest of counted.platforms.slice(0, SAMPLED_PLATFORMS)) {
    const child = await raw(`${repositoryOf(source)}@${digest}`)
    const bytes = child === undefined ? undefined : transferBytes(child)
    if (!bytes || bytes.platforms.length > 0) return undefined
    sampled = Math.max(sampled, bytes.bytes)
  }
  // Platforms differ in size: count every platform as 1.5 times the largest sampled one.
  return counted.bytes + Math.ceil(sampled * 1.5) * counted.platforms.length
}

/**
 * A pull with its bounds: the source registry's first answer within ANSWER_MS, then the copy within
 * transferTimeoutMs of what it moves (the default, UNKNOWN_SIZE_MS, when the answer did not say).
 */
export async function runPull(tools: ToolRunner, command: PlannedCommand, known?: {bytes: number | undefined}): Promise<RunResult> {
  // `known`: what pullBytes said for this very command, asked beforehand (the answer was had then).
  const bytes = known ? known.bytes : await pullBytes(tools, command)
  return tools.run(command.tool, command.args, {env: command.env, ...(bytes === undefined ? {} : {timeoutMs: transferTimeoutMs(bytes)})})
}

/**
 * A push of `bytes` with its bounds: the target registry's first answer within ANSWER_MS (any answer,
 * "not there" included: only silence stops here), then the copy within transferTimeoutMs(bytes). A size
 * not known, or a push other than skopeo's (helm push of a chart), gets the default (defaultTimeoutMs).
 */
export async function runPush(tools: ToolRunner, command: PlannedCommand, bytes: number | undefined, options: {answered?: boolean} = {}): Promise<RunResult> {
  const target = command.args.at(-1) ?? ''
  // `answered`: the caller has just had the registry's answer for this very reference.
  if (command.tool === 'skopeo' && target.startsWith('docker://') && !options.answered) {
    await tools.run('skopeo', ['inspect', '--raw', ...inspectFlags(command.args, '--dest-'), target], {env: command.env, timeoutMs: ANSWER_MS}).catch((error: unknown) => {
      if (isTimeout(error)) throw error
    })
  }
  return tools.run(command.tool, command.args, {env: command.env, ...(bytes === undefined ? {} : {timeoutMs: transferTimeoutMs(bytes)})})
}

/** Path components kod walks at most when creating a directory. */
const MAX_DEPTH = 256

/**
 * mkdir -p that always ends: Node's recursive mkdir retries forever where a directory cannot be made
 * although its parent exists (/proc/x: ENOENT), spinning at 100% CPU and deaf to Ctrl-C. Resolves to the
 * first directory it created (as mkdir's recursive form does), undefined if `dir` was there. Such a place
 * is named by the directory that refuses (its own name may be a temporary one).
 */
export async function makeDirectories(dir: string): Promise<string | undefined> {
  const missing: string[] = []
  let current = path.resolve(dir)
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    const info = await stat(current).catch((error: NodeJS.ErrnoException) => {
      // ENOTDIR: something above is a file; walking up finds it and names it.
      if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return undefined
      throw error
    })
    if (info) {
      if (!info.isDirectory()) throw Object.assign(new Error(`EEXIST: file already exists, mkdir '${current}'`), {code: missing.length === 0 ? 'EEXIST' : 'ENOTDIR', path: current})
      break
    }
    missing.unshift(current)
    const parent = path.dirname(current)
    if (parent === current) break
    current = parent
  }
  for (const directory of missing) {
    await mkdir(directory).catch(async (error: NodeJS.ErrnoException) => {
      if (error.code === 'EEXIST' && (await stat(directory).then((info) => info.isDirectory(), () => false))) return
      if (error.code === 'ENOENT') throw usageError(`cannot create a directory in ${path.dirname(directory)}: it takes no new directories; choose a directory you can write to`)
      throw error
    })
  }
  return missing[0]
}
