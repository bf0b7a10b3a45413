import {lstat, readdir, readFile, realpath, stat} from 'node:fs/promises'
import path from 'node:path'

/**
 * kod as a self-contained install (docs/tools.md): its own files, and every package it needs at run time
 * — its production dependencies, their dependencies, and its plugins — found the way Node finds them
 * (node_modules directories, from each package up), so that it works from a development checkout (npm
 * workspaces: kod's plugins are links to plugins/…) and from an installed kod alike, without npm. Each
 * package keeps the place below node_modules where Node finds it from its dependents; devDependencies
 * are never followed.
 */
export interface TreeFile {
  /** The file to copy (links followed). */
  source: string
  /** Its path below lib/kod, posix. */
  target: string
}

export interface KodTree {
  files: TreeFile[]
  /** Packages below node_modules: name@version and where. */
  packages: Array<{name: string; version: string; location: string}>
  /** Symbolic links and other non-files found inside packages and left out. */
  skipped: string[]
}

interface PackageJson {
  name?: string
  version?: string
  files?: string[]
  dependencies?: Record<string, string>
  optionalDependencies?: Record<string, string>
  peerDependencies?: Record<string, string>
  peerDependenciesMeta?: Record<string, {optional?: boolean}>
}

interface Visited {
  name: string
  version: string
  /** The directory its files are read from (links followed). */
  real: string
  /** Where it is below the install, posix ('' for kod itself). */
  location: string
  /** Installed from a link (a workspace package): only what it publishes ("files") is taken. */
  linked: boolean
}

async function readPackage(dir: string): Promise<PackageJson> {
  return JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8')) as PackageJson
}

const exists = (file: string): Promise<boolean> =>
  stat(file).then(
    () => true,
    () => false,
  )

/** Where Node finds `name` from a package at `dir`: <dir or an ancestor>/node_modules/<name>. */
async function findPackage(name: string, dir: string): Promise<string | undefined> {
  for (let current = dir; ; current = path.dirname(current)) {
    if (path.basename(current) !== 'node_modules') {
      const candidate = path.join(current, 'node_modules', name)
      if (await exists(path.join(candidate, 'package.json'))) return candidate
    }
    if (path.dirname(current) === current) return undefined
  }
}

/** Files npm always publishes, whatever "files" says. */
const ALWAYS = /^(package\.json|readme(\..*)?|licen[cs]e(\..*)?|changelog(\..*)?|notice(\..*)?)$/i
/** Never carried: build caches and editor files. */
const NEVER = /(\.tsbuildinfo|\.DS_Store)$/

/** Every regular file below `dir` (but its node_modules), as paths relative to it; links and the rest are reported. */
async function walk(dir: string, skipped: string[], top = true, base = dir): Promise<string[]> {
  const out: string[] = []
  for (const entry of await readdir(dir, {withFileTypes: true})) {
    const full = path.join(dir, entry.name)
    if (top && entry.name === 'node_modules') continue
    if (entry.isDirectory()) out.push(...(await walk(full, skipped, false, base)))
    else if (entry.isFile()) {
      if (!NEVER.test(entry.name)) out.push(path.relative(base, full))
    } else skipped.push(full)
  }
  return out
}

/** What a package publishes: its "files" (names of files or directories) and the files npm always takes; everything when it has no "files". */
async function publishedFiles(dir: string, manifest: PackageJson, skipped: string[]): Promise<string[]> {
  const all = await walk(dir, skipped)
  if (!manifest.files) return all
  const roots = manifest.files.map((entry) => entry.replace(/^\.\//, '').replace(/\/+$/, ''))
  return all.filter((file) => {
    const posix = file.split(path.sep).join('/')
    return (!posix.includes('/') && ALWAYS.test(posix)) || roots.some((root) => posix === root || posix.startsWith(`${root}/`))
  })
}

/** Whether Node, resolving `name` from a package at `from`, finds the one at `location` (all below the install, posix). */
export function visibleFrom(from: string, location: string, name: string): boolean {
  for (let ancestor = from; ; ancestor = path.posix.dirname(ancestor) === '.' ? '' : path.posix.dirname(ancestor)) {
    if (path.posix.basename(ancestor) !== 'node_modules' && path.posix.join(ancestor, 'node_modules', name) === location) return true
    if (ancestor === '') return false
  }
}

/**
 * The files of kod at `root` and of every package it needs at run time. Throws (with the package and
 * what to do) when a dependency is not installed or sits where the install could not find it.
 */
export async function collectKod(root: string): Promise<KodTree> {
  const realRoot = await realpath(root)
  const rootManifest = await readPackage(realRoot)
  const visited = new Map<string, Visited>()
  const byLocation = new Map<string, string>()
  const kod: Visited = {name: rootManifest.name ?? 'kod', version: rootManifest.version ?? '0.0.0', real: realRoot, location: '', linked: true}
  visited.set(realRoot, kod)
  const queue: Array<{pkg: Visited; manifest: PackageJson; root: boolean}> = [{pkg: kod, manifest: rootManifest, root: true}]
  /** Where a directory found by Node's lookup sits below the install: below the deepest package holding it. */
  const locate = (dir: string): string | undefined => {
    let best: Visited | undefined
    for (const pkg of visited.values()) {
      if ((dir === pkg.real || dir.startsWith(pkg.real + path.sep)) && (!best || pkg.real.length > best.real.length)) best = pkg
    }
    if (!best) return undefined
    return path.posix.join(best.location, path.relative(best.real, dir).split(path.sep).join('/'))
  }
  while (queue.length > 0) {
    const {pkg, manifest, root: isRoot} = queue.shift()!
    const optional = new Set([...Object.keys(manifest.optionalDependencies ?? {}), ...Object.keys(manifest.peerDependencies ?? {})])
    const names = [...new Set([...Object.keys(manifest.dependencies ?? {}), ...(isRoot ? [] : optional)])]
    for (const name of names) {
      const found = await findPackage(name, pkg.real)
      if (!found) {
        if (optional.has(name) && !manifest.dependencies?.[name]) continue
        throw new Error(`${name}, which ${pkg.name} needs, is not installed below ${realRoot}: run npm ci --omit=dev there first`)
      }
      const real = await realpath(found)
      if (visited.has(real)) continue
      const location = locate(found)
      if (location === undefined || !visibleFrom(pkg.location, location, name)) {
        throw new Error(`${name} (${found}), which ${pkg.name} needs, is installed where a copy of kod would not find it: run npm ci --omit=dev in ${realRoot}`)
      }
      const own = await readPackage(real)
      const taken = byLocation.get(location)
      if (taken && taken !== real) throw new Error(`two packages would be installed as ${location} (${taken} and ${real})`)
      byLocation.set(location, real)
      const linked = (await lstat(found)).isSymbolicLink()
      const entry: Visited = {name, version: own.version ?? '0.0.0', real, location, linked}
      visited.set(real, entry)
      queue.push({pkg: entry, manifest: own, root: false})
    }
  }
  const skipped: string[] = []
  const files: TreeFile[] = []
  for (const pkg of visited.values()) {
    const manifest = await readPackage(pkg.real)
    const list = pkg.linked ? await publishedFiles(pkg.real, manifest, skipped) : await walk(pkg.real, skipped)
    for (const file of list) files.push({source: path.join(pkg.real, file), target: path.posix.join(pkg.location, file.split(path.sep).join('/'))})
  }
  files.sort((a, b) => (a.target < b.target ? -1 : a.target > b.target ? 1 : 0))
  const packages = [...visited.values()].filter((pkg) => pkg.location !== '').map(({name, version, location}) => ({name, version, location}))
  return {files, packages, skipped}
}
