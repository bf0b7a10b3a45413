import {readdir, stat} from 'node:fs/promises'
import path from 'node:path'
import {createHash} from 'node:crypto'

import {mapLimit, sha256File} from 'kod/sdk'

/**
 * The digest of a directory tree, as the bundle records kod's (kod.treeSha256): the sha256 of its
 * listing, one "<sha256>  <path>" line per regular file (paths relative to it, posix, sorted), as
 * `sha256sum` prints them. Anything but files and directories makes the tree differ ("<type>  <path>").
 */
export async function treeDigest(dir: string, signal?: AbortSignal): Promise<{sha256: string; files: number; bytes: number}> {
  const entries = await readdir(dir, {recursive: true, withFileTypes: true})
  const files: string[] = []
  const others: string[] = []
  for (const entry of entries) {
    const name = path.relative(dir, path.join(entry.parentPath, entry.name)).split(path.sep).join('/')
    if (entry.isFile()) files.push(name)
    else if (!entry.isDirectory()) others.push(`${entry.isSymbolicLink() ? 'symlink' : 'special'}  ${name}`)
  }
  files.sort()
  const hashes = await mapLimit(files, 8, (file) => sha256File(path.join(dir, file)), signal)
  const sizes = await mapLimit(files, 16, async (file) => (await stat(path.join(dir, file))).size, signal)
  const listing = [...files.map((file, index) => `${hashes[index]}  ${file}`), ...others.sort()].map((line) => `${line}\n`).join('')
  return {sha256: createHash('sha256').update(listing).digest('hex'), files: files.length, bytes: sizes.reduce((sum, size) => sum + size, 0)}
}
