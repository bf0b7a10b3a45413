import {existsSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

/**
 * `kod plugins install PATH` from the disk. oclif's plugin-plugins reads any argument with a slash as a
 * GitHub repository (`./plugin.tgz` becomes https://github.com/./plugin.tgz) and any other as an npm
 * package name, and npm resolves a relative `file:` spec against kod's data directory, not where the
 * user stands. So before oclif sees them, the plugin arguments of `plugins install` (and its alias
 * `plugins add`) that npm itself would read as a path — ./x, ../x, /x, ~/x, or a name ending in .tgz,
 * .tar.gz or .tar — and relative `file:` specs become `file:<absolute path>`, which npm installs from the
 * file or directory without the registry (a plugin's own dependencies still need one, unless bundled).
 *
 * @param {string[]} argv the arguments after the program name
 * @param {string} [cwd]
 * @returns {{args: string[], missing?: string}} the arguments to run, or the local path that does not exist
 */
export function localPluginArgs(argv, cwd = process.cwd()) {
  const first = installArgsStart(argv)
  if (first === undefined) return {args: argv}
  let missing
  const args = argv.map((arg, index) => {
    if (index < first || arg.startsWith('-')) return arg
    const file = localPath(arg, cwd)
    if (file === undefined) return arg
    if (!existsSync(file)) missing ??= file
    return `file:${file}`
  })
  return missing === undefined ? {args} : {args, missing}
}

/** Where the plugin arguments start, when argv runs plugins install. */
function installArgsStart(argv) {
  if (argv[0] === 'plugins' && (argv[1] === 'install' || argv[1] === 'add')) return 2
  if (argv[0] === 'plugins:install' || argv[0] === 'plugins:add') return 1
  return undefined
}

/** The absolute path a plugin argument names, when npm would read it as one. */
function localPath(arg, cwd) {
  if (arg.startsWith('file:')) {
    const spec = arg.slice('file:'.length)
    return spec.startsWith('//') ? undefined : path.resolve(cwd, expandHome(spec))
  }
  // A URL or another npm spec with a scheme (https:, git+ssh:, github:, npm:): not a path.
  if (/^[a-z][\w+.-]*:/i.test(arg)) return undefined
  if (/^(\.{1,2}|~)?\//.test(arg) || arg === '.' || arg === '..' || /\.(tgz|tar\.gz|tar)$/.test(arg)) {
    return path.resolve(cwd, expandHome(arg))
  }
  return undefined
}

function expandHome(spec) {
  return spec.startsWith('~/') ? path.join(os.homedir(), spec.slice(2)) : spec
}
