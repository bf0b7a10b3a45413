import {constants} from 'node:fs'
import {access} from 'node:fs/promises'
import path from 'node:path'
import {execa, type ExecaError} from 'execa'

import type {PlannedCommand, RunOptions, RunResult, ToolName, ToolRunner} from '../api.js'
import {ExitCode, KodError} from './errors.js'
import {shellCommand} from './shell.js'

/** A single tool invocation may take this long before kod gives up on it (image copies can be large). */
export const TOOL_TIMEOUT_MS = 30 * 60 * 1000

const INSTALL_HINT: Record<ToolName, string> = {
  helm: 'install helm (https://helm.sh/docs/intro/install/) or set KOD_HELM to its path',
  helmfile: 'install helmfile or set KOD_HELMFILE to its path (a helmfile package also deploys without it: kod deploy --helm)',
  skopeo: 'install skopeo (apt-get install skopeo) or set KOD_SKOPEO to its path',
  regctl: 'install regctl or set KOD_REGCTL to its path',
}

/** How many trailing stderr lines an error carries. */
const STDERR_TAIL_LINES = 3

export function toolBinary(tool: ToolName, env: NodeJS.ProcessEnv = process.env): string {
  return env[`KOD_${tool.toUpperCase()}`] || tool
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
}

export function createToolRunner(options: RunnerOptions = {}): ToolRunner {
  const runner: ToolRunner = {
    binary: (tool) => toolBinary(tool),
    async run(tool: ToolName, args: string[], runOptions: RunOptions = {}): Promise<RunResult> {
      const file = runner.binary(tool)
      options.onRun?.(formatCommand(runner, {tool, args, env: runOptions.env}))
      try {
        const result = await execa(file, args, {
          cwd: runOptions.cwd,
          env: runOptions.env,
          stdin: 'ignore',
          stdout: runOptions.stream ? ['pipe', 'inherit'] : 'pipe',
          stderr: runOptions.stream ? ['pipe', 'inherit'] : 'pipe',
          timeout: runOptions.timeoutMs ?? TOOL_TIMEOUT_MS,
          cancelSignal: options.cancelSignal,
          // kod cancels its tools itself (SIGINT aborts cancelSignal); execa's own exit hook would make
          // signal-exit re-raise SIGINT and kill kod before it can clean up.
          cleanup: false,
          maxBuffer: 512 * 1024 * 1024,
        })
        return {stdout: String(result.stdout), stderr: String(result.stderr)}
      } catch (error) {
        throw toolError(tool, file, args, error as ExecaError, Boolean(runOptions.stream))
      }
    },
  }
  return runner
}

function toolError(tool: ToolName, file: string, args: string[], error: ExecaError, streamed: boolean): KodError {
  const code = (error as {code?: string}).code
  if (code === 'ENOENT') {
    return new KodError(`${tool} not found${file === tool ? ' on PATH' : ` at ${file}`}: ${INSTALL_HINT[tool]}`, {
      exit: ExitCode.toolMissing,
      cause: error,
    })
  }
  if (error.isCanceled) return new KodError('interrupted', {exit: ExitCode.interrupted, cause: error})
  if (error.timedOut) {
    return new KodError(`${tool} ${args[0] ?? ''} timed out after ${Math.round((error.durationMs ?? 0) / 1000)}s`, {
      exit: ExitCode.toolFailed,
      cause: error,
    })
  }
  // A streamed tool has already said why, on the user's terminal: say so instead of repeating it.
  const detail = streamed
    ? `exit ${error.exitCode ?? '?'}, its own message is above`
    : errorDetail(String(error.stderr ?? '')) || errorDetail(String(error.stdout ?? '')) || errorDetail(error.shortMessage ?? '')
  return new KodError(`${tool} ${args[0] ?? ''} failed: ${detail}`, {exit: ExitCode.toolFailed, cause: error})
}

/** Whether a tool can be run: its binary is an executable file, given as a path or found on PATH. */
export async function toolAvailable(runner: ToolRunner, tool: ToolName, env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  const file = runner.binary(tool)
  const candidates = file.includes(path.sep) ? [file] : (env.PATH ?? '').split(path.delimiter).filter(Boolean).map((dir) => path.join(dir, file))
  for (const candidate of candidates) {
    if (await access(candidate, constants.X_OK).then(() => true, () => false)) return true
  }
  return false
}

/** The one-line error for a tool that is not there (the same as running it gives). */
export function missingTool(runner: ToolRunner, tool: ToolName): KodError {
  const file = runner.binary(tool)
  return new KodError(`${tool} not found${file === tool ? ' on PATH' : ` at ${file}`}: ${INSTALL_HINT[tool]}`, {exit: ExitCode.toolMissing})
}
