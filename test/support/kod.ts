import {execa, type ResultPromise} from 'execa'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
export const FIXTURES = path.join(ROOT, 'test', 'fixtures')
export const TOOLS_BIN = path.join(ROOT, '.tools', 'bin')

/** PATH with the test tools (helm from npm, see scripts/tools.mjs) first. */
export function toolPath(extra: string[] = []): string {
  return [...extra, TOOLS_BIN, process.env.PATH ?? ''].join(path.delimiter)
}

export interface KodResult {
  exitCode: number
  stdout: string
  stderr: string
}

/** Runs the built CLI (bin/run.js) as a user would, never throwing on a non-zero exit. */
/** `input` is written to kod's stdin (as --password-stdin reads it); without it stdin is closed. */
export async function kod(args: string[], options: {cwd?: string; env?: Record<string, string>; input?: string} = {}): Promise<KodResult> {
  const result = await execa(process.execPath, [path.join(ROOT, 'bin', 'run.js'), ...args], {
    cwd: options.cwd ?? ROOT,
    env: {PATH: toolPath(), ...options.env},
    ...(options.input === undefined ? {stdin: 'ignore' as const} : {input: options.input}),
    reject: false,
    timeout: 10 * 60 * 1000,
  })
  return {exitCode: result.exitCode ?? 1, stdout: String(result.stdout), stderr: String(result.stderr)}
}

/** kod started in the background, as a user's shell would (stdin closed, never throwing on its exit). */
export function startKod(args: string[], options: {cwd?: string; env?: Record<string, string>} = {}): ResultPromise<{reject: false; stdin: 'ignore'}> {
  return execa(process.execPath, [path.join(ROOT, 'bin', 'run.js'), ...args], {cwd: options.cwd ?? ROOT, env: {PATH: toolPath(), ...options.env}, reject: false, stdin: 'ignore'})
}
