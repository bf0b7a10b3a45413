import {mkdir, readdir, rename, rm, stat} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import type {Logger} from '../api.js'
import {sha256File} from './kodpkg.js'

/**
 * What interrupted runs leave behind, and how the next run deals with it (docs/security.md). Every
 * temporary name kod makes carries its process id: `.kod-staging-<pid>-*` beside a package being
 * written, `.<file>.partial-<pid>` (`<file>.partial-<pid>` by earlier kod), `<dir>.extracting-<pid>`, `<dir>.partial-<pid>`,
 * `<dir>.discard-<pid>-*`, `<dir>.replaced-<pid>`, and `$TMPDIR/kod-<pid>-*`. A later run removes those
 * whose process is gone (a live one, or one of another user, is never touched), keeping what is worth
 * keeping: the image blobs a killed package had pulled, each checked against its sha256 name.
 */

/** Whether process `pid` still runs (one kod cannot signal counts as running: it is not ours to clean). */
export function isRunning(pid: number): boolean {
  if (pid === process.pid) return true
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** The entries of `dir` whose name matches `pattern` (its first group the pid) and whose process is gone. */
async function deadEntries(dir: string, pattern: RegExp): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[])
  return names.filter((name) => {
    const pid = Number(pattern.exec(name)?.[1])
    return Number.isSafeInteger(pid) && pid > 0 && !isRunning(pid)
  })
}

function escaped(text: string): string {
  return text.replaceAll(/[$()*+.?[\\\]^{|}]/g, '\\$&')
}

async function remove(file: string): Promise<void> {
  await rm(file, {recursive: true, force: true, maxRetries: 3})
}

/** The prefix of a package run's staging directory beside its output (mkdtemp adds the rest). */
export function stagingPrefix(outDir: string): string {
  return path.join(outDir, `.kod-staging-${process.pid}-`)
}

/** The prefix of a run's scratch directory in $TMPDIR. */
export function scratchPrefix(): string {
  return path.join(os.tmpdir(), `kod-${process.pid}-`)
}

/** Scratch directories of kod runs that are gone (credentials files included), removed from $TMPDIR. */
export async function sweepScratch(log?: Pick<Logger, 'debug'>): Promise<void> {
  const dir = os.tmpdir()
  for (const name of await deadEntries(dir, /^kod-(\d+)-\w+$/)) {
    log?.debug(`removing ${path.join(dir, name)}, left by an interrupted kod run`)
    await remove(path.join(dir, name))
  }
}

/**
 * Before writing `outFile` from a staging directory in `outDir`: what interrupted package runs left
 * there goes. Their pulled image blobs are moved into `layout` (this run's OCI layout) when their
 * content matches their name, so skopeo finds them there and does not pull them again; partial
 * archives are removed. Says what it reused.
 */
export async function sweepPackageLeftovers(outDir: string, layout: string, log: Pick<Logger, 'debug' | 'info'>): Promise<{blobs: number; bytes: number}> {
  const reused = {blobs: 0, bytes: 0}
  for (const name of await deadEntries(outDir, /^\.kod-staging-(\d+)-/)) {
    const staging = path.join(outDir, name)
    const blobs = path.join(staging, 'images', 'blobs', 'sha256')
    const into = path.join(layout, 'blobs', 'sha256')
    for (const blob of await readdir(blobs).catch(() => [] as string[])) {
      if (!/^[\da-f]{64}$/.test(blob)) continue
      const from = path.join(blobs, blob)
      const info = await stat(from).catch(() => undefined)
      if (!info?.isFile() || (await sha256File(from).catch(() => '')) !== blob) continue
      await mkdir(into, {recursive: true})
      if (await stat(path.join(into, blob)).then(() => true, () => false)) continue
      await rename(from, path.join(into, blob))
      reused.blobs++
      reused.bytes += info.size
    }
    log.debug(`removing ${staging}, left by an interrupted kod package`)
    await remove(staging)
  }
  await sweepPartialFiles(outDir, log)
  return reused
}

/**
 * Archives (packages, bundles) that interrupted runs were writing in `outDir` (`.<file>.partial-<pid>`,
 * `<file>.partial-<pid>` by earlier kod), whose process is gone: removed.
 */
export async function sweepPartialFiles(outDir: string, log?: Pick<Logger, 'debug'>): Promise<void> {
  for (const name of await deadEntries(outDir, /\.partial-(\d+)$/)) {
    log?.debug(`removing ${path.join(outDir, name)}, left by an interrupted kod run`)
    await remove(path.join(outDir, name))
  }
}

/**
 * Before unpacking into `dir`: what interrupted unpacks of it left beside it goes (`.extracting-`,
 * `.partial-`, `.discard-` siblings). A `.replaced-` sibling is the earlier package an interrupted
 * replacement had moved aside: put back when `dir` is gone, removed otherwise.
 */
export async function sweepUnpackLeftovers(dir: string, log: Pick<Logger, 'debug'>): Promise<void> {
  const parent = path.dirname(dir)
  const base = escaped(path.basename(dir))
  for (const name of await deadEntries(parent, new RegExp(`^${base}\\.(?:extracting|partial|discard)-(\\d+)(?:[.-].*)?$`))) {
    log.debug(`removing ${path.join(parent, name)}, left by an interrupted kod run`)
    await remove(path.join(parent, name))
  }
  for (const name of await deadEntries(parent, new RegExp(`^${base}\\.replaced-(\\d+)$`))) {
    const aside = path.join(parent, name)
    const present = await stat(dir).then(() => true, () => false)
    if (present) {
      log.debug(`removing ${aside}, left by an interrupted kod run`)
      await remove(aside)
    } else {
      log.debug(`putting back ${aside} as ${dir}: an interrupted kod run had moved it aside`)
      await rename(aside, dir)
    }
  }
}
