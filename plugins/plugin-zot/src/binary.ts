/**
 * The version `zot -v` (or `zli -v`) reports. zot logs one JSON line, e.g.
 * {"level":"info","distribution-spec":"1.1.1","commit":"v2.1.2-0-gabcdef","binary-type":"…",…}
 * (pkg/cli/server/root.go of project-zot/zot): the commit is `git describe` of the release, so it starts
 * with the tag (`-0-g<hash>`, the release itself, is dropped). A plain `zot version v2.1.2`
 * (or zli's) line is read too. undefined when the output names no zot version.
 *
 * The platform of a binary comes from kod/sdk's readExecutableInfo (its ELF header, nothing run).
 */
export function parseVersion(output: string): string | undefined {
  for (const line of output.split('\n')) {
    const trimmed = line.trim()
    if (!trimmed.startsWith('{')) continue
    try {
      const record = JSON.parse(trimmed) as Record<string, unknown>
      for (const key of ['release-tag', 'releaseTag', 'version', 'commit']) {
        const value = record[key]
        if (typeof value === 'string') {
          const match = /v?\d+\.\d+\.\d+(?:-[\w.-]+)?/.exec(value)
          if (match) return match[0].replace(/-0-g[\da-f]+$/, '')
        }
      }
    } catch {
      // not JSON: read as text below
    }
  }
  // A plain line says `zot version …`: another program's version line is not zot's, even when it prints the
  // name it was run as (a distribution registry given as --zot-binary says `zot github.com/docker/distribution 2.8.2`).
  return /\bz(?:ot|li) version (v?\d+\.\d+\.\d+(?:-[\w.]+)?)\b/i.exec(output)?.[1]
}

/**
 * Whether `zot verify --help` printed zot's help for its verify command (cobra's "Usage:\n  zot verify
 * <config> [flags]"): a usage that names it, and no
 * complaint about an unknown command (another program's `Error: unknown command "verify"` names it too).
 */
export function answersVerify(output: string): boolean {
  return /usage:\s+\S*\s*verify\b/i.test(output) && !/unknown (?:command|subcommand)/i.test(output)
}
