import type {KeyObject} from 'node:crypto'
import {createReadStream, createWriteStream} from 'node:fs'
import {type FileHandle, open, rename, rm, stat} from 'node:fs/promises'
import path from 'node:path'
import {pipeline} from 'node:stream/promises'
import * as tar from 'tar'

import {type ArchiveHeadFiles, IMAGES_DIR, partialFile, stageHead, writeFully} from './kodpkg.js'

/**
 * Writes a package archive while its images are still being pulled (docs/kodpkg.md, "Entry order"): each
 * image's blobs are appended as soon as its pull is done, while the next one pulls, so that the archive is
 * not written in a second pass over every byte once the last pull ends. The head (kod-package.yaml,
 * SHA256SUMS, its signature, then the layout's oci-layout and index.json) can only be known at the end: it
 * is written last, into room left at the start of the file, and whatever room it does not fill is taken by
 * a pax global header holding only a comment, which every tar reader skips. A head larger than its room
 * (far more images than usual) costs one copy of the archive, as before. The archive appears under its
 * name only when complete; `abort` removes what was written.
 */
export class StreamingArchive {
  private readonly written = new Set<string>()
  /** The blob entries being appended, one after another; the first failure stops the rest and is reported by finish. */
  private appending: Promise<void> = Promise.resolve()
  private failure: unknown
  private stopped = false
  /** Where the next entry starts. */
  private position: number
  /** One buffer for every blob: whatever the set's size, kod holds no more of it than this. */
  private readonly buffer = Buffer.allocUnsafe(READ_SIZE)

  private constructor(
    private readonly staging: string,
    private readonly outFile: string,
    private readonly partial: string,
    private readonly out: FileHandle,
    private readonly room: number,
  ) {
    this.position = room
  }

  /**
   * Starts `outFile`'s archive (as `.<outFile>.partial-<pid>`, partialFile) for files of `staging`, with room for the
   * head of a package of `images` images (or `room` bytes, a multiple of 512, at most 960 KiB).
   */
  static async start(staging: string, outFile: string, images: number, room = headRoom(images)): Promise<StreamingArchive> {
    const partial = partialFile(outFile)
    return new StreamingArchive(staging, outFile, partial, await open(partial, 'w'), room)
  }

  /**
   * Appends these files of the staging directory (paths relative to it, with the size each must have), each
   * once, in this order, while the caller goes on. A file that is not there is not written (a layer skopeo
   * left out); one of another size is left to `finish` (it may be being written); one that changes while it
   * is copied fails the archive. Throws what an earlier append
   * failed with, so that the pulls stop at once.
   */
  add(files: Iterable<{file: string; size: number}>): void {
    if (this.failure !== undefined) throw this.failure
    for (const {file, size} of files) {
      if (this.written.has(file)) continue
      this.written.add(file)
      this.appending = this.appending.then(async () => {
        if (this.failure !== undefined || this.stopped) return
        const appended = await this.append(file, size).catch((error: unknown) => void (this.failure ??= error))
        if (appended === false) this.written.delete(file)
      })
    }
  }

  /**
   * Writes the head files into the staging directory (SHA256SUMS over every file there), appends every
   * file not added yet, writes the head into its room and renames the archive to its name. Every file
   * added before must still be in the staging directory, unchanged.
   */
  async finish(head: ArchiveHeadFiles, signal?: AbortSignal, signingKey?: KeyObject): Promise<{files: number; bytes: number}> {
    await this.appending
    if (this.failure !== undefined) throw this.failure
    const {first, rest} = await stageHead(this.staging, head, signal, signingKey)
    const present = new Set(rest)
    const gone = [...this.written].find((file) => !present.has(file))
    if (gone) throw new Error(`${gone} was written into the package and then removed from its staging directory`)
    const layout = [`${IMAGES_DIR}/oci-layout`, `${IMAGES_DIR}/index.json`].filter((file) => present.has(file))
    const leading = [...first, ...layout]
    // The other files (charts, values, hints: any name, any size) and the end of the archive, as node-tar writes them.
    const others = rest.filter((file) => !leading.includes(file) && !this.written.has(file))
    const pack = new tar.Pack({cwd: this.staging, portable: true, noDirRecurse: true, maxReadSize: READ_SIZE})
    for (const file of others) pack.add(file)
    pack.end()
    for await (const chunk of pack as AsyncIterable<Buffer>) {
      await writeFully(this.out, chunk, this.position)
      this.position += chunk.length
    }
    signal?.throwIfAborted()
    const headBytes = await tarOf(this.staging, leading)
    if (fits(headBytes.length, this.room)) {
      await writeFully(this.out, Buffer.concat([headBytes, padding(this.room - headBytes.length)]), 0)
      await this.out.close()
    } else {
      await this.out.close()
      await this.moveBody(headBytes, signal)
    }
    signal?.throwIfAborted()
    await rename(this.partial, this.outFile)
    return {files: leading.length + this.written.size + others.length, bytes: (await stat(this.outFile)).size}
  }

  /** Removes the unfinished archive. */
  async abort(): Promise<void> {
    this.stopped = true
    await this.appending
    await this.out.close().catch(() => {})
    await rm(this.partial, {force: true})
  }

  /**
   * One file as a tar entry (a pax header when its size or name needs one, a ustar header, its content,
   * zeros to the next 512 bytes) at the end of the archive; false, writing nothing, when the file is not
   * there or not `expected` bytes.
   */
  private async append(file: string, expected: number): Promise<boolean> {
    const source = await open(path.join(this.staging, file), 'r').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined
      throw error
    })
    if (!source) return false
    try {
      const info = await source.stat()
      if (info.size !== expected) return false
      const fields = {path: file, mode: ((info.mode & 0o7777) | 0o600) & ~0o22, size: info.size, mtime: info.mtime}
      const block = Buffer.alloc(BLOCK)
      // A size of 8 GiB or more, or a name longer than a ustar header holds: a pax header first, as node-tar writes one.
      const needsPax = new tar.Header({...fields, type: 'File'}).encode(block, 0)
      let at = this.position
      for (const bytes of [...(needsPax ? [new tar.Pax(fields, false).encode()] : []), block]) {
        await writeFully(this.out, bytes, at)
        at += bytes.length
      }
      for (let done = 0; done < info.size; ) {
        if (this.stopped) throw new Error('stopped')
        const {bytesRead} = await source.read(this.buffer, 0, Math.min(this.buffer.length, info.size - done), done)
        if (bytesRead === 0) throw new Error(`${file} became shorter while it was written into the package`)
        await writeFully(this.out, this.buffer.subarray(0, bytesRead), at)
        done += bytesRead
        at += bytesRead
      }
      const after = await source.stat()
      if (after.size !== info.size || after.mtimeMs !== info.mtimeMs) throw new Error(`${file} changed while it was written into the package; run kod package again`)
      const tail = (BLOCK - (info.size % BLOCK)) % BLOCK
      if (tail > 0) await writeFully(this.out, Buffer.alloc(tail), at)
      this.position = at + tail
      return true
    } finally {
      await source.close()
    }
  }

  /** The head outgrew its room: the archive is written again, the head first, then the body as streamed. */
  private async moveBody(headBytes: Buffer, signal?: AbortSignal): Promise<void> {
    // Named so that the next run into this directory removes it, should this one be killed (leftovers.ts).
    const moved = partialFile(this.outFile, 'head')
    try {
      const out = createWriteStream(moved)
      out.write(headBytes)
      await pipeline(createReadStream(this.partial, {start: this.room, highWaterMark: READ_SIZE}), out, ...(signal ? [{signal}] : []))
      await rename(moved, this.partial)
    } catch (error) {
      await rm(moved, {force: true})
      throw error
    }
  }
}

const BLOCK = 512
const READ_SIZE = 1024 * 1024

/**
 * The largest padding record: node-tar skips a pax header over 1 MiB (its maxMetaEntrySize), and
 * libarchive (bsdtar) refuses a record of a million bytes or more.
 */
const MAX_PAX_RECORD = 960 * 1024

/**
 * Room for a package's head: its manifest (about 1 KiB an image), SHA256SUMS (150 bytes a blob), a
 * signature and index.json (300 bytes an image), generously: an image has rarely more than 15 blobs.
 * At most what a single padding header can fill.
 */
export function headRoom(images: number): number {
  return Math.min(32 * 1024 + images * 4 * 1024, MAX_PAX_RECORD)
}

/** Whether a head of `bytes` leaves its room empty or fillable by one padding header (a header block and at least one block of record). */
function fits(bytes: number, room: number): boolean {
  return bytes === room || (bytes + 2 * BLOCK <= room && room - bytes - BLOCK <= MAX_PAX_RECORD)
}

/**
 * `size` bytes (a multiple of 512, at least 1024, or 0) of tar that every reader skips: a pax global
 * header ('g') whose only record is a comment (POSIX pax: "comment", ignored by readers). A global header
 * stands alone, so the entry after it may have a pax header of its own ('x'), which bsdtar refuses
 * right after another 'x'.
 */
export function padding(size: number): Buffer {
  if (size === 0) return Buffer.alloc(0)
  const recordBytes = size - BLOCK
  const text = 'kod: room kept for this package\'s head, which is written last'
  const digits = String(recordBytes).length
  // "<length> comment=<value>\n", the length counting itself.
  const value = text.padEnd(recordBytes - digits - ' comment='.length - 1, ' ')
  const record = Buffer.from(`${recordBytes} comment=${value}\n`)
  if (record.length !== recordBytes || recordBytes % BLOCK !== 0) throw new Error(`cannot pad ${size} bytes of tar`)
  const header = Buffer.alloc(BLOCK)
  new tar.Header({path: 'PaxHeaders/kod-head-room', type: 'GlobalExtendedHeader', size: recordBytes, mode: 0o644, mtime: new Date(0)}).encode(header, 0)
  return Buffer.concat([header, record])
}

/** These files of `dir` as tar entries, without the end-of-archive blocks. */
async function tarOf(dir: string, files: string[]): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of tar.create({cwd: dir, portable: true, noDirRecurse: true}, files)) chunks.push(chunk as Buffer)
  const bytes = Buffer.concat(chunks)
  const end = bytes.length - 2 * BLOCK
  if (end < 0 || bytes.subarray(end).some((byte) => byte !== 0)) throw new Error('tar wrote no end-of-archive blocks')
  return bytes.subarray(0, end)
}
