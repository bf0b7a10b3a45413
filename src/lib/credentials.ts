import {mkdir, writeFile} from 'node:fs/promises'
import path from 'node:path'

import type {RunOptions, ToolRunner} from '../api.js'
import {usageError} from './errors.js'
import {redactSecrets} from './tools.js'

/**
 * Credentials reach kod by flags and stdin only (helm's --password-stdin), and reach helm and skopeo by
 * files in kod's scratch directory and the environment naming them, never by arguments: an argument list
 * is visible to every process on the machine (ps, /proc/<pid>/cmdline). Nothing here is ever recorded or
 * printed (docs/security.md, "Credentials").
 */

/** A user name and a password. */
export interface Login {
  username: string
  password: string
}

/** What a URL's user:password@ looks like, for refusing it without echoing it. */
const USERINFO = /^([a-z][\w+.-]*:\/\/)?[^/@\s]*@/i

/** Whether a URL or registry address carries user:password@. */
export function hasUserinfo(address: string): boolean {
  return USERINFO.test(address.trim())
}

/** An address as it may be printed: any user:password@ replaced by ***@. */
export function stripUserinfo(address: string): string {
  return address.replace(USERINFO, '$1***@')
}

/**
 * A line as kod may print it (debug output, which shows kod's own argument list): what redactSecrets
 * hides, and user:password@ before a host without a scheme too (-r user:pw@registry).
 */
export function redactLine(text: string): string {
  return redactSecrets(text).replaceAll(/(^|[\s'"[,=])[^\s'"/@,[\]]+:[^\s'"/@,[\]]*@(?=[\w[])(?!sha\d+:)/g, '$1***@')
}

/**
 * The password given on stdin (--password-stdin), as helm and docker read it: everything, without the
 * final line break. An empty one, or a terminal with nothing piped, is refused rather than waited for.
 */
export async function readPasswordStdin(flag: string, stdin: NodeJS.ReadStream = process.stdin): Promise<string> {
  if (stdin.isTTY) throw usageError(`${flag}: pipe the password into kod, e.g. cat password.txt | kod … ${flag}`)
  const chunks: Buffer[] = []
  for await (const chunk of stdin) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)))
  const password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '')
  if (!password) throw usageError(`${flag}: stdin held no password`)
  return password
}

/**
 * The login a pair of flags gives: both or neither (a user name without a password, or the reverse,
 * is refused naming both flags).
 */
export async function loginFrom(username: string | undefined, passwordStdin: boolean, names: {username: string; password: string}): Promise<Login | undefined> {
  if (username === undefined && !passwordStdin) return undefined
  if (username === undefined || !username.trim()) throw usageError(`--${names.password} needs --${names.username} USER: the password is for that user`)
  if (!passwordStdin) throw usageError(`--${names.username} needs --${names.password}, with the password piped into kod`)
  return {username: username.trim(), password: await readPasswordStdin(`--${names.password}`)}
}

/**
 * Writes a docker config.json (the format of `skopeo login`, `docker login` and `helm registry login`)
 * with one `auths` entry, mode 0600, into a private directory of kod's scratch space.
 */
export async function writeAuthFile(dir: string, host: string, login: Login): Promise<string> {
  await mkdir(dir, {recursive: true, mode: 0o700})
  const file = path.join(dir, 'auth.json')
  const auth = Buffer.from(`${login.username}:${login.password}`).toString('base64')
  await writeFile(file, `${JSON.stringify({auths: {[host]: {auth}}}, null, 2)}\n`, {mode: 0o600})
  return file
}

/**
 * The environment that makes skopeo (REGISTRY_AUTH_FILE: its --authfile) and helm (HELM_REGISTRY_CONFIG:
 * its `helm registry login` file) use an auth file instead of the user's own login. Paths only.
 */
export function authFileEnvironment(file: string): Record<string, string> {
  return {REGISTRY_AUTH_FILE: file, HELM_REGISTRY_CONFIG: file}
}

/**
 * A tool runner that adds `env` to every command it runs (a command's own env wins). What --list-commands
 * prints is not run through it: printed commands rely on the user's own login.
 */
export function withEnvironment(runner: ToolRunner, env: Record<string, string>): ToolRunner {
  if (Object.keys(env).length === 0) return runner
  return {
    binary: (tool) => runner.binary(tool),
    run: (tool, args, options: RunOptions = {}) => runner.run(tool, args, {...options, env: {...env, ...options.env}}),
  }
}

/** The words helm and skopeo use when a registry wants a login it did not get. */
const UNAUTHORIZED = /\b401\b|unauthorized|authentication required|basic (?:credential|\*\*\*) not found|no basic auth credentials|denied: requested access/i

/** How to log in to the target registry, when a tool error says it refused kod for want of one. */
export function loginSuggestion(message: string, registry: string): string[] {
  if (!UNAUTHORIZED.test(message)) return []
  const host = registry.split('/')[0]
  return [`log in to ${host}: add --registry-username USER --registry-password-stdin (the password piped into kod; if you did, check them), or run skopeo login ${host} and helm registry login ${host}`]
}
