import {existsSync, readFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

/** kod's package.json. */
function readPackage() {
  return JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
}

/**
 * Answers `kod --version` alone, as oclif would (`kod/0.1.0 linux-x64 node-v20.20.2`), without loading
 * oclif, the plugins or the SDK loader: a third of the time. Anything else (`--version --verbose`, a
 * command) goes to oclif.
 *
 * @param {string[]} argv the arguments after the program name
 * @returns {boolean} whether it answered
 */
export function quickVersion(argv) {
  if (argv.length !== 1 || argv[0] !== '--version') return false
  const {name, version} = readPackage()
  process.stdout.write(`${name}/${version} ${process.platform}-${process.arch} node-${process.version}\n`)
  return true
}

/**
 * Where oclif keeps the plugins a user installed or linked (its data directory's package.json), found
 * as oclif finds it: KOD_DATA_DIR, else $XDG_DATA_HOME/kod, else ~/.local/share/kod (%LOCALAPPDATA%\kod on
 * Windows).
 *
 * @param {NodeJS.ProcessEnv} env
 * @returns {string}
 */
export function userPluginsFile(env = process.env) {
  const dirname = readPackage().oclif?.dirname ?? 'kod'
  const home = env.HOME || os.homedir() || os.tmpdir()
  const base = env.XDG_DATA_HOME || (process.platform === 'win32' && env.LOCALAPPDATA) || path.join(home, '.local', 'share')
  return path.join(env.KOD_DATA_DIR || path.join(base, dirname), 'package.json')
}

/**
 * Whether this run may load a module that imports `kod` or `kod/sdk` at run time, and so needs the SDK's
 * module hooks (register-sdk.js): any plugin a user installed or linked (its commands, its hooks that kod's
 * own commands run), and every command that is not kod's own (plugin-tools', plugin-zot's, `plugins …`).
 * kod's own commands with only its first-party source plugins (which import kod's types only, never its
 * code) do without them: the hooks put every module kod loads through a worker thread, a quarter of a
 * second before the first helm call.
 *
 * @param {string[]} argv the arguments after the program name
 * @param {NodeJS.ProcessEnv} env
 * @returns {boolean}
 */
export function needsSdkHooks(argv, env = process.env) {
  if (existsSync(userPluginsFile(env))) return true
  const manifest = JSON.parse(readFileSync(new URL('../oclif.manifest.json', import.meta.url), 'utf8'))
  const own = new Set(Object.keys(manifest.commands ?? {}))
  const [first] = argv
  if (first === undefined || ((first === '--help' || first === '-h') && argv.length === 1)) return false
  return !own.has(first)
}
