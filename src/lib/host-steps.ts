import {Flags} from '@oclif/core'
import {randomBytes} from 'node:crypto'
import {lstat, rename, rm} from 'node:fs/promises'
import path from 'node:path'

import type {ToolName, ToolRunner} from '../api.js'
import {KodError, messageOf} from './errors.js'
import {runSteps, step} from './progress.js'
import {registerTool} from './tool-registry.js'
import {formatCommand} from './tools.js'

/**
 * Steps that change the host (docs/plugins.md, "Commands that install on the host"): a command that
 * installs files, users or services plans each change as one command — an argument array, run without a
 * shell — so that `--list-commands` prints exactly what running would do, one copy-pasteable line a step,
 * and running does it in order. A step that fails (or Ctrl-C) rolls back the run: what the steps created
 * is removed, what they replaced is put back, and each done step's `undo` runs.
 */
export interface HostStep {
  /** What the step does, while it runs ("Install helm into /usr/local/bin/helm"). */
  doing: string
  /** What it did, once done ("Installed helm into /usr/local/bin/helm"): the plain progress line. */
  did: string
  tool: ToolName
  args: string[]
  /**
   * Paths the step creates, replaces or removes. Before it runs, kod moves what is there aside (a
   * replaced file, a removed directory) and notes what is not there yet; when a later step fails, it
   * removes what the run created there and puts back what it moved aside. After a good run, what was
   * moved aside is deleted.
   */
  replaces?: string[]
  /** Paths the step may create (a directory): when absent before it, removed if the run fails; when there, left alone. */
  creates?: string[]
  /** A command undoing the step when a later one fails (useradd's: userdel). */
  undo?: {tool: ToolName; args: string[]}
}

/** The commands host steps run, each a coreutils, shadow-utils or systemd command every Linux host has. */
registerTool({name: 'install', installHint: 'install coreutils (it provides install)', timeoutMs: 10 * 60 * 1000})
registerTool({name: 'cp', installHint: 'install coreutils (it provides cp)', timeoutMs: 30 * 60 * 1000})
registerTool({name: 'rm', installHint: 'install coreutils (it provides rm)', timeoutMs: 10 * 60 * 1000})
registerTool({name: 'chmod', installHint: 'install coreutils (it provides chmod)', timeoutMs: 10 * 60 * 1000})
registerTool({name: 'chown', installHint: 'install coreutils (it provides chown)', timeoutMs: 10 * 60 * 1000})
registerTool({name: 'useradd', installHint: 'install the shadow utilities (Debian: passwd, RHEL: shadow-utils), which provide useradd', timeoutMs: 60 * 1000})
registerTool({name: 'userdel', installHint: 'install the shadow utilities (Debian: passwd, RHEL: shadow-utils), which provide userdel', timeoutMs: 60 * 1000})
registerTool({name: 'groupadd', installHint: 'install the shadow utilities (Debian: passwd, RHEL: shadow-utils), which provide groupadd', timeoutMs: 60 * 1000})
registerTool({name: 'systemctl', installHint: 'run this on a host managed by systemd (systemctl is part of systemd)', timeoutMs: 5 * 60 * 1000})

/** --list-commands for a command that installs on the host. */
export const listCommandsFlag = Flags.boolean({
  summary: 'Print every step as a shell command, one a line, instead of running them; nothing is installed (a bundle file is unpacked beside you, for the printed commands to read).',
})

/** Who owns what a step installs: `install`'s -o and -g (default: whoever runs kod). */
export interface Ownership {
  /** Permission bits, e.g. 0o755. */
  mode: number
  owner?: string
  group?: string
}

function octal(mode: number): string {
  return mode.toString(8).padStart(4, '0')
}

function ownership({mode, owner, group}: Ownership): string[] {
  return ['-m', octal(mode), ...(owner ? ['-o', owner] : []), ...(group ? ['-g', group] : [])]
}

/** The builders of the usual steps. Anything else: `hostCommand`. */
export const hostSteps = {
  /** `install -m MODE [-o O] [-g G] FROM TO`: one file, replacing what is at TO. */
  copyFile(from: string, to: string, owned: Ownership, what = path.basename(to)): HostStep {
    return {doing: `Install ${what} into ${to}`, did: `Installed ${what} into ${to}`, tool: 'install', args: [...ownership(owned), from, to], replaces: [to]}
  },

  /** `install -d -m MODE [-o O] [-g G] DIR`: a directory (and its missing parents). */
  makeDirectory(dir: string, owned: Ownership): HostStep {
    return {doing: `Create ${dir}`, did: `Created ${dir}`, tool: 'install', args: ['-d', ...ownership(owned), dir], creates: [dir]}
  },

  /** `cp -R FROM TO`: a directory tree; TO must not exist (a `remove` step before it replaces one). */
  copyTree(from: string, to: string, what = path.basename(to)): HostStep {
    return {doing: `Copy ${what} into ${to}`, did: `Copied ${what} into ${to}`, tool: 'cp', args: ['-R', from, to], replaces: [to]}
  },

  /** `rm -rf PATH`: what is there goes (and comes back if the run fails). */
  remove(target: string): HostStep {
    return {doing: `Remove ${target}`, did: `Removed ${target}`, tool: 'rm', args: ['-rf', target], replaces: [target]}
  },

  /** `chmod -R u=rwX,go=rX DIR`: a tree readable by all, executables and directories searchable, whatever the umask was. */
  readableTree(dir: string): HostStep {
    return {doing: `Make ${dir} readable`, did: `Made ${dir} readable by all`, tool: 'chmod', args: ['-R', 'u=rwX,go=rX', dir]}
  },

  /** `useradd --system …`: a system user with its own group, no home directory created, no login shell; undone by userdel. */
  addSystemUser(name: string, options: {home: string; shell?: string; comment?: string}): HostStep {
    return {
      doing: `Add system user ${name}`,
      did: `Added system user ${name}`,
      tool: 'useradd',
      args: ['--system', '--user-group', '--no-create-home', '--home-dir', options.home, '--shell', options.shell ?? '/usr/sbin/nologin', ...(options.comment ? ['--comment', options.comment] : []), name],
      undo: {tool: 'userdel', args: [name]},
    }
  },

  /** `systemctl ARGS…`. */
  systemctl(args: string[], undo?: string[]): HostStep {
    const text = `systemctl ${args.join(' ')}`
    return {doing: `Run ${text}`, did: `Ran ${text}`, tool: 'systemctl', args, ...(undo ? {undo: {tool: 'systemctl', args: undo}} : {})}
  },
}

/** Any other command as a step. */
export function hostCommand(tool: ToolName, args: string[], options: Partial<Pick<HostStep, 'doing' | 'did' | 'replaces' | 'creates' | 'undo'>> = {}): HostStep {
  const text = [tool, ...args].join(' ')
  return {...options, doing: options.doing ?? `Run ${text}`, did: options.did ?? `Ran ${text}`, tool, args}
}

/** The steps as shell commands, one a line, as `--list-commands` prints them (the binary as kod would run it). */
export function hostStepCommands(steps: readonly HostStep[], tools: ToolRunner): string[] {
  return steps.map((entry) => formatCommand(tools, {tool: entry.tool, args: entry.args}))
}

/** What a path was before a step: moved aside to `backup`, or absent (`created`: the topmost directory or file the run made). */
interface Saved {
  target: string
  backup?: string
  created?: string
}

async function exists(target: string): Promise<boolean> {
  return lstat(target).then(
    () => true,
    () => false,
  )
}

/** The topmost of `target` and its ancestors that does not exist (what creating `target` creates). */
async function topmostMissing(target: string): Promise<string> {
  let missing = target
  for (let parent = path.dirname(missing); parent !== missing && !(await exists(parent)); parent = path.dirname(parent)) missing = parent
  return missing
}

/**
 * Runs the steps in order, with progress (quiet: none). On failure or interrupt, rolls back (see
 * HostStep.replaces and undo) and rethrows the step's error, saying when the rollback itself left
 * something behind.
 */
export async function runHostSteps(steps: readonly HostStep[], options: {tools: ToolRunner; quiet: boolean; signal?: AbortSignal}): Promise<void> {
  const saved: Saved[] = []
  const done: HostStep[] = []
  const run = async (entry: HostStep): Promise<void> => {
    options.signal?.throwIfAborted()
    for (const target of entry.replaces ?? []) {
      if (await exists(target)) {
        const backup = path.join(path.dirname(target), `.${path.basename(target)}.kod-backup-${process.pid}-${randomBytes(3).toString('hex')}`)
        await rename(target, backup)
        saved.push({target, backup})
      } else {
        saved.push({target, created: await topmostMissing(target)})
      }
    }
    for (const target of entry.creates ?? []) if (!(await exists(target))) saved.push({target, created: await topmostMissing(target)})
    await options.tools.run(entry.tool, entry.args)
    done.push(entry)
  }
  try {
    await runSteps(
      steps.map((entry) => step(entry.doing, entry.did, () => run(entry))),
      {quiet: options.quiet},
    )
  } catch (error) {
    const left = await rollback(saved, done, options.tools)
    if (left.length > 0 && error instanceof KodError) {
      throw new KodError(`${error.message}; rolling back left ${left.join(', ')}: see to it by hand`, {exit: error.exit, suggestions: error.suggestions, cause: error})
    }
    throw error
  }
  for (const {backup} of saved) if (backup) await rm(backup, {recursive: true, force: true})
}

/** Undoes a failed run, last change first; returns what it could not undo. */
async function rollback(saved: Saved[], done: HostStep[], tools: ToolRunner): Promise<string[]> {
  const left: string[] = []
  for (const entry of [...done].reverse()) {
    if (!entry.undo) continue
    await tools.run(entry.undo.tool, entry.undo.args).catch((error: unknown) => left.push(`${entry.undo!.tool} ${entry.undo!.args.join(' ')} failed (${messageOf(error)})`))
  }
  for (const {target, backup, created} of [...saved].reverse()) {
    try {
      if (created) await rm(created, {recursive: true, force: true})
      if (backup) {
        await rm(target, {recursive: true, force: true})
        await rename(backup, target)
      }
    } catch (error) {
      left.push(`${target} (${messageOf(error)})`)
    }
  }
  return left
}
