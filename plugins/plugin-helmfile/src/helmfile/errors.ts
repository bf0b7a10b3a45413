/**
 * Errors the CLI turns into exit code 2: what the user wrote cannot be packaged as written.
 * `needsHelmfile` marks the ones the helmfile binary could resolve (templates), so a caller that has
 * the binary can fall back to `helmfile build --embed-values` instead of failing.
 */
export class HelmfileError extends Error {
  readonly exit = 2
  constructor(
    message: string,
    readonly needsHelmfile = false,
  ) {
    super(message)
    this.name = 'HelmfileError'
  }
}

/** Refuse, naming the file first: one line, always. */
export function refuse(file: string, message: string): never {
  throw new HelmfileError(`${file}: ${message}`.replace(/\s*\n\s*/g, ' '))
}

export function needsHelmfile(file: string, why: string): never {
  throw new HelmfileError(`${file}: ${why} — this needs the helmfile binary (kod reads only plain-YAML helmfiles without it)`, true)
}

/**
 * Why a URL with user:password@ is refused: the helmfile is carried in the package byte for byte, and
 * the URL would reach helm's argument list. Said without echoing the URL.
 */
export const CREDENTIALS_IN_URL =
  'credentials do not belong in its URL (the helmfile is carried in the package, and helm would show them to every process): remove them, and log in with helm registry login (OCI) before kod package'

/** Whether a URL carries user:password@ (or user@) before its host. */
export function hasUserinfo(url: string): boolean {
  return /^[a-z][\w+.-]*:\/\/[^/@\s]*@/i.test(url.trim())
}
