import {createToolRunner, registerTool, resolveExecutable} from 'kod/sdk'

registerTool({name: 'ldconfig', installHint: 'ldconfig comes with the C library (glibc); kod only reads its cache listing', timeoutMs: 30_000})

/** Where ldconfig usually is: on PATH, or in /sbin, which a user's PATH may lack. */
const CANDIDATES = ['ldconfig', '/sbin/ldconfig', '/usr/sbin/ldconfig']

/** The library names (libc.so.6, …) the dynamic loader's cache lists (`ldconfig -p`), or undefined when kod cannot ask. */
export async function cachedLibraries(): Promise<Set<string> | undefined> {
  for (const candidate of CANDIDATES) {
    const file = await resolveExecutable(candidate)
    if (!file) continue
    try {
      const {stdout} = await createToolRunner({binaries: {ldconfig: file}}).run('ldconfig', ['-p'])
      return new Set([...stdout.matchAll(/^\s+(\S+)\s+\(/gm)].map((match) => match[1]))
    } catch {
      return undefined
    }
  }
  return undefined
}

/** The libraries of `needs` the host's loader cache does not list (the loader itself is found by path, not by the cache). */
export function missingLibraries(needs: readonly string[], cached: ReadonlySet<string>): string[] {
  return needs.filter((library) => !cached.has(library) && !/^ld-linux.*\.so/.test(library))
}
