import type {Logger} from '../api.js'
import {isTimeout, registryHosts} from './bounds.js'
import {messageOf} from './errors.js'

/**
 * Retries with backoff (docs/security.md): a registry that answered earlier in this run and then stops
 * answering mid-transfer (restarting, a proxy in between going away) gets RETRY_DELAYS_MS to come back;
 * skopeo then sends only the blobs it does not hold yet. A registry that never answered fails at once
 * (a wrong address should not cost half a minute), and kod's own time limits are never retried (a
 * registry that accepts connections and never answers fails within its bound, not a multiple of it).
 */
export const RETRY_DELAYS_MS = [1000, 2000, 4000, 8000, 16_000]

/** What a tool says when the registry went away or is briefly unavailable, rather than refusing. */
const TRANSIENT =
  /connection refused|connection reset|broken pipe|use of closed network connection|unexpected EOF|: EOF\b|\bEOF$|server closed|TLS handshake timeout|\b50[234]\b|Service Unavailable|Bad Gateway|Gateway Time-?out|too many requests|\b429\b/i

/** Hosts that answered kod in this run (any answer: "not there" counts). */
const answered = new Set<string>()

export function noteAnswered(host: string): void {
  answered.add(host.toLowerCase())
}

export function isTransient(error: unknown): boolean {
  return !isTimeout(error) && TRANSIENT.test(messageOf(error))
}

/** The registry a tool command talks to last (a push's destination, a pull's source for pulls). */
export function commandHost(args: readonly string[]): string | undefined {
  return registryHosts(args).at(-1)
}

/**
 * Runs `work`, again after each of RETRY_DELAYS_MS while it fails transiently and `host` has answered
 * in this run, saying so each time; the last failure is thrown as it is. An abort stops the waiting.
 */
export async function withRetries<T>(
  host: string | undefined,
  what: string,
  log: Pick<Logger, 'warn'>,
  work: () => Promise<T>,
  options: {signal?: AbortSignal; delaysMs?: readonly number[]} = {},
): Promise<T> {
  const delays = options.delaysMs ?? RETRY_DELAYS_MS
  for (let attempt = 0; ; attempt++) {
    try {
      const result = await work()
      if (host) noteAnswered(host)
      return result
    } catch (error) {
      if (attempt >= delays.length || !host || !answered.has(host.toLowerCase()) || !isTransient(error) || options.signal?.aborted) throw error
      const cause = TRANSIENT.exec(messageOf(error))?.[0].replace(/^: /, '') ?? 'unavailable'
      log.warn(`registry ${host} stopped answering (${cause}) while kod was ${what}; trying again in ${delays[attempt] / 1000}s (retry ${attempt + 1} of ${delays.length})`)
      await sleep(delays[attempt], options.signal)
    }
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms)
    function done(): void {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    signal?.addEventListener('abort', done, {once: true})
  })
}
