import {constants, statSync} from 'node:fs'
import {access} from 'node:fs/promises'
import path from 'node:path'
import {execa, type ExecaError} from './vendor/execa.js'

import type {PlannedCommand, RunOptions, RunResult, ToolName, ToolRunner} from '../api.js'
import {defaultTimeoutMs, formatDuration, registryHosts} from './bounds.js'
import {ExitCode, KodError} from './errors.js'
import {shellCommand} from './shell.js'
import {toolDefinition} from './tool-registry.js'

export {isRegisteredTool, registeredTools, registerTool, toolDefinition} from './tool-registry.js'

/** What to tell a user who lacks a tool: its install hint (registerTool), or a generic one. */
function installHint(tool: ToolName): string {
  return toolDefinition(tool).installHint
}


/** How many trailing stderr lines an error carries. */
const STDERR_TAIL_LINES = 3

/** The binary kod runs for a tool: the path its environment variable names (KOD_HELM, …), else its name (PATH). */
export function toolBinary(tool: ToolName, env: NodeJS.ProcessEnv = process.env): string {
  return env[toolDefinition(tool).env] || tool
}

/** The command line as a user would paste it. */
export function formatCommand(runner: ToolRunner, command: PlannedCommand): string {
  const env = Object.entries(command.env ?? {}).map(([key, value]) => `${key}=${value}`)
  return shellCommand([...env, runner.binary(command.tool), ...command.args])
}

function tail(text: string): string {
  const lines = text
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
  return lines.slice(-STDERR_TAIL_LINES).join(' | ')
}

/** How long the detail a tool error carries may be. */
export const ERROR_DETAIL_MAX = 300

/** Query parameters whose values are secrets: upload state, tokens, signatures, pre-signed URL credentials. */
const SECRET_PARAM = /([?&;](?:_state|[\w-]*token[\w-]*|[\w-]*signature[\w-]*|sig|x-amz-[\w-]+|x-goog-[\w-]+|googleaccessid|awsaccesskeyid|key|code|password|passwd|secret|client_secret|credential|auth)=)[^&\s"'\\]+/gi

/**
 * The text with everything that looks like a credential replaced by ***: userinfo in URLs (user:pass@),
 * Bearer/Basic authorisations, JWTs, secret query parameters (docker registry upload `_state`, `token`,
 * S3/GCS signatures) and upload session paths.
 */
export function redactSecrets(text: string): string {
  return text
    .replaceAll(/\b([a-z][\w+.-]*:\/\/)[^\s/@"']+@/gi, '$1***@')
    .replaceAll(/\b(bearer|basic)\s+[\w.~+/=-]{6,}/gi, '$1 ***')
    .replaceAll(/\beyJ[\w-]+\.[\w-]+\.[\w-]+/g, '***')
    .replaceAll(SECRET_PARAM, '$1***')
    .replaceAll(/(\/blobs\/uploads\/)[^\s"'?]+/g, '$1***')
    .replaceAll(/\b((?:password|passwd|secret|token|access_token|refresh_token)["']?\s*[:=]\s*["']?)[^\s"',&]+/gi, '$1***')
}

/** The registry host an error is about: from a docker://, https:// or `in host/repo` in its text. */
function hostIn(text: string): string | undefined {
  const match =
    /docker:\/\/([\w.-]+(?::\d+)?)\//.exec(text) ??
    /\bhttps?:\/\/(?:\*\*\*@)?([\w.-]+(?::\d+)?)/.exec(text) ??
    /\bin ([\w-]+(?:\.[\w-]+)+(?::\d+)?|[\w-]+:\d+)[/:]?/.exec(text)
  return match?.[1]
}

/** The HTTP status an error reports ("received unexpected HTTP status: 500 Internal Server Error"). */
function httpStatusIn(text: string): string | undefined {
  return /\b(?:HTTP status|status code|StatusCode)[:=]?\s*(\d{3}(?: [A-Z][\w ]*[a-z])?)/i.exec(text)?.[1]
}

/** The message of logrus-style lines (skopeo's `time="…" level=fatal msg="…"`), else the text. */
function logMessage(text: string): string {
  const messages = [...text.matchAll(/level=(?:fatal|error)\s+msg="((?:[^"\\]|\\.)*)"/g)].map((match) => match[1].replaceAll(/\\(["\\])/g, '$1'))
  return messages.length > 0 ? messages.join(' | ') : text
}

/**
 * What a tool error says, cut to its cause: skopeo's message without its log decoration; when that is
 * longer than ERROR_DETAIL_MAX, the last `: `-separated clauses (Go's wrapped errors put the cause
 * last), with the registry host and HTTP status when the kept clauses do not say them. Credentials and
 * upload tokens never survive (redactSecrets).
 */
export function errorDetail(text: string, max = ERROR_DETAIL_MAX): string {
  const message = redactSecrets(tail(logMessage(text))).replaceAll(/\s+/g, ' ').trim()
  if (message.length <= max) return message
  const clauses = message.split(/: (?=\S)/)
  const kept = [clauses.pop()!]
  // Short trailing clauses ("unauthorized: authentication required") say little alone: add the ones before.
  while (clauses.length > 0 && kept.join(': ').length < 80 && kept.join(': ').length + clauses.at(-1)!.length < max) kept.unshift(clauses.pop()!)
  let cause = kept.join(': ')
  const status = httpStatusIn(message)
  const host = hostIn(message)
  const extra = [status && !cause.includes(status.slice(0, 3)) ? `HTTP ${status}` : '', host && !cause.includes(host) ? `registry ${host}` : ''].filter(Boolean)
  const suffix = extra.length > 0 ? ` (${extra.join(', ')})` : ''
  const room = max - suffix.length
  if (cause.length > room) cause = `…${cause.slice(cause.length - room + 1)}`
  return `${cause}${suffix}`
}

export interface RunnerOptions {
  cancelSignal?: AbortSignal
  /** Called with each command before it runs (debug logging). */
  onRun?: (commandLine: string) => void
  /** setpriv's path, to test without it (default: found on PATH, see deathSignalWrapper). */
  setpriv?: string | false
  /** Binaries to run for some tools instead of what KOD_<TOOL> or PATH gives (e.g. a file about to be bundled). */
  binaries?: Partial<Record<ToolName, string>>
}

/** The first executable `file` on PATH (or `file` itself when it is a path), else undefined. */
export async function resolveExecutable(file: string, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  const candidates = file.includes(path.sep) ? [path.resolve(file)] : (env.PATH ?? '').split(path.delimiter).filter(Boolean).map((dir) => path.resolve(dir, file))
  for (const candidate of candidates) {
    if (await access(candidate, constants.X_OK).then(() => statSync(candidate).isFile(), () => false)) return candidate
  }
  return undefined
}

let setprivFound: Promise<string | undefined> | undefined

/**
 * util-linux's setpriv, when it can set a parent-death signal: `setpriv --pdeathsig KILL -- TOOL ARGS`
 * makes the kernel kill the tool when kod dies, even by SIGKILL (Node cannot call prctl itself). Looked
 * for once; without it tools run directly (and outlive a killed kod).
 */
export async function deathSignalWrapper(): Promise<string | undefined> {
  setprivFound ??= (async () => {
    const file = await resolveExecutable('setpriv')
    if (!file) return undefined
    const help = await execa(file, ['--help'], {reject: false, timeout: 5000, stdin: 'ignore'})
    return String(help.stdout).includes('--pdeathsig') ? file : undefined
  })()
  return setprivFound
}

export function createToolRunner(options: RunnerOptions = {}): ToolRunner {
  // Where each tool was found on PATH, so that a command running skopeo a hundred times searches PATH once
  // (a tool not found is looked for again: it may be installed meanwhile).
  const found = new Map<string, string>()
  const locate = async (file: string, env?: Record<string, string>): Promise<string | undefined> => {
    const merged = {...process.env, ...env}
    const key = `${file}\0${merged.PATH ?? ''}`
    const known = found.get(key)
    if (known) return known
    const resolved = await resolveExecutable(file, merged)
    if (resolved) found.set(key, resolved)
    return resolved
  }
  const runner: ToolRunner = {
    binary: (tool) => options.binaries?.[tool] ?? toolBinary(tool),
    async run(tool: ToolName, args: string[], runOptions: RunOptions = {}): Promise<RunResult> {
      const file = runner.binary(tool)
      // The command runs as planned (what --list-commands prints): kod, not skopeo's --command-timeout, keeps
      // the time, so the printed commands stay exactly those that run.
      const timeoutMs = runOptions.timeoutMs ?? defaultTimeoutMs(tool, args)
      const setpriv = options.setpriv === undefined ? await deathSignalWrapper() : options.setpriv || undefined
      // setpriv runs the tool by its resolved path, so a missing tool is still told as such (exit 3).
      const executable = setpriv ? await locate(file, runOptions.env) : file
      if (!executable) throw missingTool(runner, tool)
      const notes = [...(setpriv ? ['via setpriv --pdeathsig KILL'] : []), `killed after ${formatDuration(timeoutMs)}`]
      options.onRun?.(`${formatCommand(runner, {tool, args, env: runOptions.env})}  # ${notes.join(', ')}`)
      const started = Date.now()
      try {
        const result = await execa(setpriv ?? executable, setpriv ? ['--pdeathsig', 'KILL', '--', executable, ...args] : args, {
          cwd: runOptions.cwd,
          env: runOptions.env,
          stdin: 'ignore',
          stdout: runOptions.stream ? ['pipe', 'inherit'] : 'pipe',
          // A streamed tool's own error lines are marked as its (`helm: Error: …`): kod's one `Error:` line stays the only one.
          stderr: runOptions.stream ? [prefixLines(tool), 'pipe', 'inherit'] : 'pipe',
          timeout: timeoutMs,
          cancelSignal: options.cancelSignal,
          // kod cancels its tools itself (SIGINT aborts cancelSignal); execa's own exit hook would make
          // signal-exit re-raise SIGINT and kill kod before it can clean up.
          cleanup: false,
          stripFinalNewline: !runOptions.raw,
          maxBuffer: 512 * 1024 * 1024,
        })
        return {stdout: String(result.stdout), stderr: String(result.stderr)}
      } catch (error) {
        throw toolError(tool, file, args, error as ExecaError, Boolean(runOptions.stream), Date.now() - started)
      }
    },
  }
  return runner
}

/** An execa line transform marking each line as the tool's. */
function prefixLines(tool: ToolName): (line: unknown) => Generator<string> {
  return function* (line: unknown) {
    yield `${tool}: ${String(line)}`
  }
}

/** A tool that ran out of time, with how long it waited and for what (the registry, when it talks to one). */
export class ToolTimeout extends KodError {
  readonly timedOut = true
}

function toolError(tool: ToolName, file: string, args: string[], error: ExecaError, streamed: boolean, elapsedMs: number): KodError {
  const code = (error as {code?: string}).code
  if (code === 'ENOENT') {
    return new KodError(`${tool} not found${file === tool ? ' on PATH' : ` at ${file}`}${notThere(tool, file)}`, {
      exit: ExitCode.toolMissing,
      cause: error,
    })
  }
  if (error.isCanceled) return new KodError('interrupted', {exit: ExitCode.interrupted, cause: error})
  if (error.timedOut) {
    const hosts = registryHosts(args)
    const waitingFor = hosts.length > 0 ? `waiting for registry ${hosts.join(' and ')}` : 'waiting for it to finish'
    const fix = hosts.length > 0 ? 'check that the registry is up and answering' : 'see docs/security.md (Bounded waits)'
    return new ToolTimeout(`${tool} ${args[0] ?? ''} timed out after ${formatDuration(elapsedMs)} ${waitingFor}; ${fix}`, {
      exit: ExitCode.toolFailed,
      cause: error,
    })
  }
  // Killed by someone else (the OOM killer, an operator): its output says nothing useful, the signal does.
  if (error.signal) {
    return new KodError(`${tool} ${args[0] ?? ''} was killed by ${error.signal} before it finished (by the system or another process, not by kod); run kod again`, {
      exit: ExitCode.toolFailed,
      cause: error,
    })
  }
  // A streamed tool has said it all above, its lines marked as its own: the cause is repeated here, cut.
  const detail = streamed
    ? errorDetail(String(error.stderr ?? '').replaceAll(new RegExp(`^${tool}: `, 'gm'), '')) || `exit ${error.exitCode ?? '?'}, its own message is above`
    : errorDetail(String(error.stderr ?? '')) || errorDetail(String(error.stdout ?? '')) || errorDetail(error.shortMessage ?? '')
  // helm starts its message with "Error: ", which kod's own "Error: " line already says.
  return new KodError(`${tool} ${args[0] ?? ''} failed: ${detail.replace(/^Error: /, '')}`, {exit: ExitCode.toolFailed, cause: error})
}

/** Whether a tool can be run: its binary is an executable file, given as a path or found on PATH. */
export async function toolAvailable(runner: ToolRunner, tool: ToolName, env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  return (await resolveExecutable(runner.binary(tool), env)) !== undefined
}

/** The one-line error for a tool that is not there (the same as running it gives). */
export function missingTool(runner: ToolRunner, tool: ToolName): KodError {
  const file = runner.binary(tool)
  // Named as a path that is there, but no executable file (a directory, a file without x): say so.
  const there = file.includes(path.sep) ? (() => {
    try {
      return statSync(file)
    } catch {
      return undefined
    }
  })() : undefined
  if (there) {
    return new KodError(`${tool} at ${file} is not an executable file (${there.isDirectory() ? 'it is a directory' : 'it cannot be run'})${notThere(tool, file)}`, {exit: ExitCode.toolMissing})
  }
  return new KodError(`${tool} not found${file === tool ? ' on PATH' : ` at ${file}`}${notThere(tool, file)}`, {exit: ExitCode.toolMissing})
}

/**
 * What to do about a tool kod cannot run, after the sentence saying so: when its path came from
 * KOD_<TOOL>, that variable is what to fix (installing the tool would not help); otherwise, how to get it.
 */
function notThere(tool: ToolName, file: string): string {
  const {env} = toolDefinition(tool)
  if (file !== tool && process.env[env] === file) return ` (${env} names it): fix ${env}, or unset it to use ${tool} from PATH`
  return `: ${installHint(tool)}`
}
