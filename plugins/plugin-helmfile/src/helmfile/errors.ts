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
