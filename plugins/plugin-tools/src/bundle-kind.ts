import type {BundleKind, BundleManifest} from 'kod/sdk'

/**
 * The tools bundle (docs/tools.md): kod-bundle.yaml of kind ToolsBundle. Its files mirror the prefix
 * deploy-tools installs into: bin/<tool> for each tool, bin/kod (the launcher), lib/kod/ (kod, its
 * production dependencies and plugins, and node at lib/kod/node/bin/node).
 */
export const TOOLS_BUNDLE_KIND = 'ToolsBundle'
export const LAUNCHER_FILE = 'bin/kod'
export const KOD_DIR = 'lib/kod'
export const NODE_FILE = `${KOD_DIR}/node/bin/node`

/** An executable in the bundle: where it is, what it is, and what it needs to run. */
export interface BundledExecutable {
  /** Its path in the bundle. */
  file: string
  sha256: string
  size: number
  /** What its version command printed, cut to the version (v4.1.4+g05fa379, 1.9.3). */
  version: string
  /** linux/amd64, …; absent when it is no ELF executable kod knows. */
  platform?: string
  /** static: runs anywhere with the kernel; dynamic: needs the host's loader and `needs`. */
  linking?: 'static' | 'dynamic'
  interpreter?: string
  /** Shared libraries it needs (DT_NEEDED), which the bundle does not carry. */
  needs?: string[]
}

export interface BundledTool extends BundledExecutable {
  /** helm, skopeo, …: installed as <prefix>/bin/<name>. */
  name: string
  /** The command that printed the version, and the first line it printed. */
  versionCommand: string[]
  versionOutput: string
  /** Where package-tools found it (PATH, KOD_<TOOL> or --tool NAME=PATH). */
  from: string
}

export interface BundledKod {
  version: string
  /** The launcher, installed as <prefix>/bin/kod: runs lib/kod/bin/run.js with the bundled node. */
  launcher: {file: string; sha256: string}
  /** The directory installed as <prefix>/lib/kod. */
  dir: string
  /** Files below it, their bytes, and the sha256 of its listing ("<sha256>  <path>" lines, sorted, paths relative to it): what deploy-tools compares an installed copy with. */
  files: number
  bytes: number
  treeSha256: string
  node: BundledExecutable
  /** kod's plugins (oclif.plugins that are packages of their own), name@version. */
  plugins: string[]
  /** npm packages below lib/kod/node_modules. */
  packages: number
}

export interface ToolsBundleFields {
  /** The platform of kod's node, which the bundle is for. */
  platform: string
  tools: BundledTool[]
  kod: BundledKod
  /** What package-tools warned about, repeated by deploy-tools. */
  warnings?: string[]
}

export type ToolsBundleManifest = BundleManifest & ToolsBundleFields

const sha256 = {type: 'string', pattern: '^[0-9a-f]{64}$'}
const platform = {type: 'string', pattern: '^[a-z0-9]+/[a-z0-9]+(/[a-z0-9]+)?$'}
const executable = {
  file: {type: 'string', minLength: 1},
  sha256,
  size: {type: 'integer', minimum: 0},
  version: {type: 'string', minLength: 1},
  platform,
  linking: {enum: ['static', 'dynamic']},
  interpreter: {type: 'string'},
  needs: {type: 'array', items: {type: 'string'}},
}

export const toolsBundleSchema = {
  properties: {
    platform,
    tools: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'file', 'sha256', 'size', 'version', 'versionCommand', 'versionOutput', 'from'],
        properties: {
          ...executable,
          name: {type: 'string', pattern: '^[a-z0-9][a-z0-9_-]*$'},
          versionCommand: {type: 'array', items: {type: 'string'}},
          versionOutput: {type: 'string'},
          from: {type: 'string'},
        },
      },
    },
    kod: {
      type: 'object',
      additionalProperties: false,
      required: ['version', 'launcher', 'dir', 'files', 'bytes', 'treeSha256', 'node', 'plugins', 'packages'],
      properties: {
        version: {type: 'string', minLength: 1},
        launcher: {type: 'object', additionalProperties: false, required: ['file', 'sha256'], properties: {file: {const: LAUNCHER_FILE}, sha256}},
        dir: {const: KOD_DIR},
        files: {type: 'integer', minimum: 1},
        bytes: {type: 'integer', minimum: 0},
        treeSha256: sha256,
        node: {type: 'object', additionalProperties: false, required: ['file', 'sha256', 'size', 'version'], properties: {...executable, file: {const: NODE_FILE}}},
        plugins: {type: 'array', items: {type: 'string'}},
        packages: {type: 'integer', minimum: 0},
      },
    },
    warnings: {type: 'array', items: {type: 'string'}},
  },
  required: ['platform', 'tools', 'kod'],
}

/** What the schema cannot say: each tool once, at bin/<name>, none of them kod. */
export function toolsBundleProblem(manifest: ToolsBundleFields): string | undefined {
  const seen = new Set<string>()
  for (const tool of manifest.tools) {
    if (tool.name === 'kod') return 'a tool is named kod, which is the launcher'
    if (seen.has(tool.name)) return `tool ${tool.name} is listed twice`
    seen.add(tool.name)
    if (tool.file !== `bin/${tool.name}`) return `tool ${tool.name} is at ${tool.file}, not bin/${tool.name}`
  }
  return undefined
}

/** Every file the manifest names (SHA256SUMS must list each). */
export function toolsBundleFiles(manifest: ToolsBundleFields): string[] {
  return [...manifest.tools.map((tool) => tool.file), manifest.kod.launcher.file, manifest.kod.node.file]
}

export const toolsBundle: BundleKind<ToolsBundleManifest> = {
  kind: TOOLS_BUNDLE_KIND,
  schema: toolsBundleSchema,
  files: toolsBundleFiles,
  check: toolsBundleProblem,
  deployedBy: 'kod deploy-tools',
}

/** The bundle's default file name: kod-tools-<kod version>-<os>-<arch>.kodbundle. */
export function bundleFileName(version: string, platformName: string): string {
  return `kod-tools-${version}-${platformName.replaceAll('/', '-')}.kodbundle`
}

/**
 * The launcher (bin/kod): a POSIX shell script that runs the kod installed beside it, in ../lib/kod, with
 * the node bundled there, and puts its own directory first on PATH so that kod runs the tools installed
 * with it (KOD_HELM and the like still win).
 */
export function launcherScript(kodVersion: string): string {
  return `#!/bin/sh
# kod ${kodVersion}, installed by kod deploy-tools: runs ../lib/kod with the node bundled there.
# kod finds the tools installed beside this launcher first (KOD_HELM, KOD_SKOPEO, ... still win).
here=$(dirname -- "$(readlink -f -- "$0")")
lib=$(dirname -- "$here")/lib/kod
PATH="$here\${PATH:+:$PATH}"
export PATH
exec "$lib/node/bin/node" "$lib/bin/run.js" "$@"
`
}
