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
