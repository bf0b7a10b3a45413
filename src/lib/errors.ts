import YAML from 'yaml'

/**
 * kod's errors: one line that says what is wrong and what to do. Commands turn them into oclif errors
 * with a fixed exit code; nothing else reaches the user as a stack trace.
 */
export const ExitCode = {
  /** Anything not covered below. */
  failure: 1,
  /** Bad flags or arguments (oclif's own parse errors use 2 too). */
  usage: 2,
  /** A required tool (helm, skopeo, …) is missing. */
  toolMissing: 3,
  /** A tool ran and failed (helm, skopeo, …). */
  toolFailed: 4,
  /** The package is unreadable, corrupt or tampered with. */
  badPackage: 5,
  /** deploy refused: an image would not come from the target registry. */
  notRelocated: 6,
  /** populate/deploy refused: the registry holds other content under a tag kod would push (--force moves it). */
  tagConflict: 7,
  /** Interrupted (SIGINT/SIGTERM). */
  interrupted: 130,
} as const

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode]

export class KodError extends Error {
  readonly exit: ExitCodeValue
  readonly suggestions: string[]

  constructor(message: string, options: {exit?: ExitCodeValue; suggestions?: string[]; cause?: unknown} = {}) {
    super(message, {cause: options.cause})
    this.name = 'KodError'
    this.exit = options.exit ?? ExitCode.failure
    this.suggestions = options.suggestions ?? []
  }
}

export function usageError(message: string): KodError {
  return new KodError(message, {exit: ExitCode.usage})
}

export function packageError(message: string): KodError {
  return new KodError(message, {exit: ExitCode.badPackage})
}

/** The message of anything thrown, on one line. */
export function messageOf(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error)
  return text.replaceAll(/\s*\n\s*/g, ' ').trim()
}

/**
 * oclif's flag-parsing error text on one line: without its "See more help with --help" line, its "The
 * following error occurred:" header and its colours, the reasons joined with "; ".
 */
export function parseErrorMessage(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error)
  const lines = text
    // eslint-disable-next-line no-control-regex
    .replaceAll(/\u001B\[[\d;]*m/g, '')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && line !== 'See more help with --help')
  const reasons = /^The following errors? occurred:$/.test(lines[0] ?? '') ? lines.slice(1) : lines
  return reasons.join('; ').replaceAll(':; ', ': ')
}

/** Whether a file-system error says kod may not write there (permissions, a read-only file system). */
export function isNotWritable(error: unknown): boolean {
  return ['EACCES', 'EPERM', 'EROFS'].includes((error as {code?: string} | null)?.code ?? '')
}

/**
 * What is wrong with a YAML text, on one line with its line and column ("… at line 2, column 1"), or
 * undefined when it parses. Duplicate keys are allowed unless `uniqueKeys`, as helm allows them in values
 * (the last one wins).
 */
export function yamlProblem(text: string, options: {uniqueKeys?: boolean} = {}): string | undefined {
  for (const document of YAML.parseAllDocuments(text, {uniqueKeys: options.uniqueKeys ?? false})) {
    const [error] = document.errors
    if (error) return error.message.split('\n')[0].replace(/:\s*$/, '')
  }
  return undefined
}

/** What each file-system error code means for the path it names, and what to do. */
const FS_ERRORS: Record<string, {exit: ExitCodeValue; text: (file: string) => string}> = {
  ENOENT: {exit: ExitCode.usage, text: (file) => `${file} does not exist: check the path`},
  EISDIR: {exit: ExitCode.usage, text: (file) => `${file} is a directory where kod needs a file: give the path of a file`},
  ENOTDIR: {exit: ExitCode.usage, text: (file) => `${file}: part of this path is a file, not a directory: give a path whose parents are directories`},
  EEXIST: {exit: ExitCode.usage, text: (file) => `${file} is in the way (it already exists): remove it or choose another path`},
  ENOTEMPTY: {exit: ExitCode.usage, text: (file) => `${file} is not empty: remove it or choose another path`},
  EACCES: {exit: ExitCode.usage, text: (file) => `${file}: permission denied: choose a path you may read and write`},
  EPERM: {exit: ExitCode.usage, text: (file) => `${file}: operation not permitted: choose a path you may read and write`},
  EROFS: {exit: ExitCode.usage, text: (file) => `${file} is on a read-only file system: choose a writable path`},
  ENAMETOOLONG: {exit: ExitCode.usage, text: (file) => `${file}: the name is too long: choose a shorter path`},
  ELOOP: {exit: ExitCode.usage, text: (file) => `${file}: too many symbolic links (a loop?): check the path`},
  ENOSPC: {exit: ExitCode.failure, text: (file) => `no space left on the device holding ${file}: free some space or choose another place`},
  EDQUOT: {exit: ExitCode.failure, text: (file) => `disk quota exceeded writing ${file}: free some space or choose another place`},
}

/**
 * A Node file-system error (one with a `code` and a `path`) as a one-line KodError naming the path and
 * saying what to do, or undefined for anything else. The last resort: callers that know what the path
 * was for say so themselves.
 */
export function fileSystemError(error: unknown): KodError | undefined {
  const {code, path: file, dest} = (error ?? {}) as {code?: unknown; path?: unknown; dest?: unknown}
  if (typeof code !== 'string' || typeof file !== 'string') return undefined
  const known = FS_ERRORS[code]
  // A copy or rename names two paths; the destination is the one in the way when it exists already.
  const named = typeof dest === 'string' && ['EEXIST', 'ENOTEMPTY', 'ENOTDIR', 'EROFS', 'ENOSPC'].includes(code) ? dest : file
  if (!known) return new KodError(`${named}: ${code} (${messageOf(error).replace(/^\w+: /, '').split(',')[0]})`, {cause: error})
  return new KodError(known.text(named), {exit: known.exit, cause: error})
}
