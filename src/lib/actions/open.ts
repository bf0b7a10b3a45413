import {readFile, rename, rm, stat} from 'node:fs/promises'
import path from 'node:path'

import type {OpenedPackage} from '../../api.js'
import {KodError, packageError, usageError} from '../errors.js'
import {EXTENSION, extractPackage, MANIFEST_FILE, packageBaseName, readArchiveManifest, verifyDirectory} from '../kodpkg.js'

async function kindOf(file: string): Promise<'directory' | 'file' | undefined> {
  try {
    const info = await stat(file)
    return info.isDirectory() ? 'directory' : 'file'
  } catch {
    return undefined
  }
}

export interface OpenOptions {
  /** Where a .kodpkg file is unpacked: `dir` if given, else parent/kod-<name>-<version>. */
  unpackTo: {dir?: string; parent: string}
  /** When the unpack directory already exists and holds this same package, use it instead of failing. */
  reuse?: boolean
  signal?: AbortSignal
}

/**
 * Opens a package given with -c: a directory is verified in place; a .kodpkg file is extracted
 * (atomically, verified) into the unpack directory.
 */
export async function openPackage(input: string, options: OpenOptions): Promise<OpenedPackage & {unpacked: boolean}> {
  const kind = await kindOf(input)
  if (kind === undefined) throw usageError(`package not found: ${input}`)
  if (kind === 'directory') {
    const dir = path.resolve(input)
    return {dir, manifest: await verifyDirectory(dir, options.signal), unpacked: false}
  }
  if (!input.endsWith(EXTENSION)) throw usageError(`${input} is not a kod package: give a ${EXTENSION} file or an unpacked package directory`)
  const {dir: fixed, parent} = options.unpackTo
  // The manifest names the directory; an existing one holding the same package is used as it is,
  // without unpacking the archive again.
  const {text, manifest: named} = await readArchiveManifest(input)
  const dir = path.resolve(fixed ?? path.join(parent, packageBaseName(named.name, named.version)))
  if ((await kindOf(dir)) !== undefined) {
    if (!options.reuse) throw usageError(`${dir} already exists: remove it or choose another directory with -o`)
    const existing = await readFile(path.join(dir, MANIFEST_FILE), 'utf8').catch(() => '')
    if (existing !== text) {
      throw new KodError(`${dir} already exists and holds something else than ${input}: remove it, or deploy from that directory with -c`)
    }
    const manifest = await verifyDirectory(dir, options.signal).catch((error: Error) => {
      throw packageError(`${error.message} (in the existing ${dir}: remove it to unpack afresh)`)
    })
    return {dir, manifest, unpacked: false}
  }
  const partialTarget = `${dir}.extracting-${process.pid}`
  try {
    const manifest = await extractPackage(input, partialTarget, options.signal)
    await rename(partialTarget, dir)
    return {dir, manifest, unpacked: true}
  } finally {
    await rm(partialTarget, {recursive: true, force: true})
  }
}
