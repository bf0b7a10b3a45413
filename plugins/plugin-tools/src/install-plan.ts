import {lstat, stat} from 'node:fs/promises'
import path from 'node:path'

import {type HostStep, hostSteps, sha256File} from 'kod/sdk'

import {KOD_DIR, LAUNCHER_FILE, type ToolsBundleManifest} from './bundle-kind.js'
import {treeDigest} from './tree-digest.js'

/** What deploy-tools does with one thing of the bundle. */
export interface Planned {
  /** helm, skopeo, …, kod. */
  what: string
  version: string
  /** Where it goes: <prefix>/bin/<tool>, or <prefix>/lib/kod for kod (its launcher <prefix>/bin/kod). */
  path: string
  action: 'install' | 'replace' | 'unchanged'
}

/** Something installed already, with other content: replaced only with --force. */
export interface Conflict {
  what: string
  path: string
  /** What is there, in a few words. */
  there: string
}

export interface ToolsPlan {
  steps: HostStep[]
  planned: Planned[]
  conflicts: Conflict[]
}

type State = {state: 'absent'} | {state: 'same'} | {state: 'different'; there: string}

/** Whether `dest` holds the file whose sha256 is `sha256` (a link is followed). A directory there is reported, never replaced. */
export async function fileState(dest: string, sha256: string): Promise<State | {state: 'directory'}> {
  const link = await lstat(dest).catch(() => undefined)
  if (!link) return {state: 'absent'}
  const info = await stat(dest).catch(() => undefined)
  if (info?.isDirectory()) return {state: 'directory'}
  if (!info?.isFile()) return {state: 'different', there: link.isSymbolicLink() ? 'a symbolic link to nothing that can be read' : 'something that is no regular file'}
  const actual = await sha256File(dest).catch(() => undefined)
  if (actual === sha256) return {state: 'same'}
  return {state: 'different', there: `another file${link.isSymbolicLink() ? ' (through a symbolic link)' : ''}, sha256 ${actual?.slice(0, 12) ?? 'unreadable'}…`}
}

/** Whether `dest` is a copy of kod's tree (by its digest). */
export async function treeState(dest: string, treeSha256: string, signal?: AbortSignal): Promise<State> {
  const info = await lstat(dest).catch(() => undefined)
  if (!info) return {state: 'absent'}
  if (!info.isDirectory()) return {state: 'different', there: 'a file where kod\'s directory belongs'}
  const digest = await treeDigest(dest, signal)
  if (digest.sha256 === treeSha256) return {state: 'same'}
  return {state: 'different', there: `other content (${digest.files} files)`}
}

export class DirectoryInTheWay extends Error {
  constructor(readonly dest: string) {
    super(`${dest} is a directory where kod deploy-tools installs a file`)
  }
}

/**
 * The steps that install a verified bundle (unpacked in `bundleDir`) into `prefix`: <prefix>/bin and
 * <prefix>/lib made when missing; kod's tree copied to <prefix>/lib/kod (made readable by all whatever
 * the umask); each tool installed into <prefix>/bin with mode 0755; the launcher last, so that kod is
 * never runnable half-installed. What is there with the same content is left alone; with other content
 * it is a conflict, replaced only with `force`.
 */
export async function planInstall(manifest: ToolsBundleManifest, bundleDir: string, prefix: string, force: boolean, signal?: AbortSignal): Promise<ToolsPlan> {
  const bin = path.join(prefix, 'bin')
  const lib = path.join(prefix, 'lib')
  const planned: Planned[] = []
  const conflicts: Conflict[] = []
  const steps: HostStep[] = []
  const dirMode = {mode: 0o755}
  const present = async (dir: string): Promise<boolean> => (await stat(dir).catch(() => undefined))?.isDirectory() ?? false
  if (!(await present(bin))) steps.push(hostSteps.makeDirectory(bin, dirMode))

  const kodDest = path.join(prefix, KOD_DIR)
  const kodState = await treeState(kodDest, manifest.kod.treeSha256, signal)
  const launcherDest = path.join(bin, 'kod')
  const launcherState = await fileState(launcherDest, manifest.kod.launcher.sha256)
  if (launcherState.state === 'directory') throw new DirectoryInTheWay(launcherDest)
  const kodVersion = `${manifest.kod.version} (node ${manifest.kod.node.version})`
  if (kodState.state === 'different' && !force) conflicts.push({what: 'kod', path: kodDest, there: kodState.there})
  if (launcherState.state === 'different' && !force) conflicts.push({what: 'kod launcher', path: launcherDest, there: launcherState.there})
  if (kodState.state !== 'same') {
    if (!(await present(lib))) steps.push(hostSteps.makeDirectory(lib, dirMode))
    if (kodState.state === 'different') steps.push(hostSteps.remove(kodDest))
    steps.push(hostSteps.copyTree(path.join(bundleDir, KOD_DIR), kodDest, `kod ${manifest.kod.version}`), hostSteps.readableTree(kodDest))
  }
  planned.push({what: 'kod', version: kodVersion, path: kodDest, action: kodState.state === 'absent' ? 'install' : kodState.state === 'same' && launcherState.state === 'same' ? 'unchanged' : 'replace'})

  for (const tool of manifest.tools) {
    const dest = path.join(bin, tool.name)
    const state = await fileState(dest, tool.sha256)
    if (state.state === 'directory') throw new DirectoryInTheWay(dest)
    if (state.state === 'different' && !force) conflicts.push({what: tool.name, path: dest, there: state.there})
    if (state.state !== 'same') steps.push(hostSteps.copyFile(path.join(bundleDir, tool.file), dest, {mode: 0o755}, `${tool.name} ${tool.version}`))
    planned.push({what: tool.name, version: tool.version, path: dest, action: state.state === 'absent' ? 'install' : state.state === 'same' ? 'unchanged' : 'replace'})
  }
  if (launcherState.state !== 'same') steps.push(hostSteps.copyFile(path.join(bundleDir, LAUNCHER_FILE), launcherDest, {mode: 0o755}, 'the kod launcher'))
  return {steps, planned, conflicts}
}
