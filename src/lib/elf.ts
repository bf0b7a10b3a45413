import {endianness} from 'node:os'
import {type FileHandle, open} from 'node:fs/promises'

/**
 * What kod can tell about an executable without running it (nor ldd, which may run it): its platform from
 * the ELF header, and whether it is dynamically linked — it names a program interpreter (PT_INTERP, the
 * dynamic loader) — with the shared libraries it needs (DT_NEEDED). A file that is no ELF executable (a
 * script, a Mach-O or PE file) has no platform kod knows, and is said so.
 */
export interface ExecutableInfo {
  /** linux/amd64, linux/arm64, …; undefined when kod cannot tell (see note). */
  platform?: string
  /** static: no program interpreter; dynamic: the system's loader and libraries are needed to run it. */
  linking?: 'static' | 'dynamic'
  /** The program interpreter it names (/lib64/ld-linux-x86-64.so.2). */
  interpreter?: string
  /** The shared libraries it needs by name (libc.so.6, …), in the order it names them. */
  needs?: string[]
  /** What the file is when kod cannot tell its platform: "a script (#!)", "not an ELF executable", … */
  note?: string
}

/** ELF e_machine values, as Go and OCI name the architectures. */
const MACHINES: Record<number, string> = {
  0x03: '386',
  0x28: 'arm',
  0x3e: 'amd64',
  0xb7: 'arm64',
  0x15: 'ppc64le',
  0x16: 's390x',
  0xf3: 'riscv64',
}

const PT_LOAD = 1
const PT_DYNAMIC = 2
const PT_INTERP = 3
const DT_NEEDED = 1
const DT_STRTAB = 5
/** Bounds on what is read of a hostile file. */
const MAX_HEADERS = 256
const MAX_DYNAMIC = 4096
const MAX_STRING = 4096

interface Reader {
  u16(offset: number): number
  u32(offset: number): number
  word(offset: number): number
}

function reader(buffer: Buffer, littleEndian: boolean, is64: boolean): Reader {
  const u16 = (offset: number): number => (littleEndian ? buffer.readUInt16LE(offset) : buffer.readUInt16BE(offset))
  const u32 = (offset: number): number => (littleEndian ? buffer.readUInt32LE(offset) : buffer.readUInt32BE(offset))
  const u64 = (offset: number): number => Number(littleEndian ? buffer.readBigUInt64LE(offset) : buffer.readBigUInt64BE(offset))
  return {u16, u32, word: is64 ? u64 : u32}
}

async function readAt(handle: FileHandle, offset: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length)
  const {bytesRead} = await handle.read(buffer, 0, length, offset)
  return buffer.subarray(0, bytesRead)
}

async function cString(handle: FileHandle, offset: number): Promise<string> {
  const bytes = await readAt(handle, offset, MAX_STRING)
  const end = bytes.indexOf(0)
  return bytes.subarray(0, end === -1 ? bytes.length : end).toString('utf8')
}

/** Reads an executable's ELF headers (see ExecutableInfo). Throws only when the file cannot be read. */
export async function readExecutableInfo(file: string): Promise<ExecutableInfo> {
  const handle = await open(file, 'r')
  try {
    const head = await readAt(handle, 0, 64)
    if (head.length < 20 || head.readUInt32BE(0) !== 0x7f454c46) {
      if (head.subarray(0, 2).toString('latin1') === '#!') return {note: 'a script (#!), not an executable binary'}
      return {note: 'not an ELF executable'}
    }
    const is64 = head[4] === 2
    const littleEndian = head[5] === 1
    if (head.length < (is64 ? 64 : 52)) return {note: 'a truncated ELF file'}
    const elf = reader(head, littleEndian, is64)
    const type = elf.u16(16)
    const machine = elf.u16(18)
    if (type !== 2 && type !== 3) return {note: 'an ELF file that is no executable'}
    // ppc64 big-endian shares e_machine 0x15 with ppc64le.
    const arch = machine === 0x15 && !littleEndian ? 'ppc64' : MACHINES[machine]
    const platform = arch ? `linux/${arch}` : undefined
    const phoff = is64 ? elf.word(32) : elf.word(28)
    const phentsize = elf.u16(is64 ? 54 : 42)
    const phnum = Math.min(elf.u16(is64 ? 56 : 44), MAX_HEADERS)
    const table = await readAt(handle, phoff, phentsize * phnum)
    const ph = reader(table, littleEndian, is64)
    const headers = Array.from({length: Math.floor(table.length / Math.max(phentsize, 1))}, (_, index) => {
      const at = index * phentsize
      return is64
        ? {type: ph.u32(at), offset: ph.word(at + 8), vaddr: ph.word(at + 16), filesz: ph.word(at + 32)}
        : {type: ph.u32(at), offset: ph.word(at + 4), vaddr: ph.word(at + 8), filesz: ph.word(at + 16)}
    })
    const note = platform ? {} : {note: `an ELF executable for a machine kod does not know (e_machine ${machine})`}
    const interp = headers.find((header) => header.type === PT_INTERP)
    if (!interp) return {...(platform ? {platform} : {}), linking: 'static', ...note}
    const interpreter = await cString(handle, interp.offset)
    return {...(platform ? {platform} : {}), linking: 'dynamic', interpreter, needs: await neededLibraries(handle, headers, littleEndian, is64), ...note}
  } finally {
    await handle.close()
  }
}

/** DT_NEEDED names, read through DT_STRTAB (an address, mapped to the file by the PT_LOAD segments). */
async function neededLibraries(handle: FileHandle, headers: Array<{type: number; offset: number; vaddr: number; filesz: number}>, littleEndian: boolean, is64: boolean): Promise<string[]> {
  const dynamic = headers.find((header) => header.type === PT_DYNAMIC)
  if (!dynamic) return []
  const entrySize = is64 ? 16 : 8
  const table = await readAt(handle, dynamic.offset, Math.min(dynamic.filesz, MAX_DYNAMIC * entrySize))
  const entries = reader(table, littleEndian, is64)
  const needed: number[] = []
  let strtab: number | undefined
  for (let at = 0; at + entrySize <= table.length; at += entrySize) {
    const tag = entries.word(at)
    const value = entries.word(at + entrySize / 2)
    if (tag === 0) break
    if (tag === DT_NEEDED) needed.push(value)
    if (tag === DT_STRTAB) strtab = value
  }
  if (strtab === undefined) return []
  const segment = headers.find((header) => header.type === PT_LOAD && header.vaddr <= strtab! && strtab! < header.vaddr + header.filesz)
  if (!segment) return []
  const base = strtab - segment.vaddr + segment.offset
  const names: string[] = []
  for (const offset of needed) names.push(await cString(handle, base + offset))
  return names
}

/** This machine's platform, as OCI and Go name it (linux/amd64). */
export function hostPlatform(): string {
  const arches: Record<string, string> = {x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: endianness() === 'LE' ? 'ppc64le' : 'ppc64', s390x: 's390x', riscv64: 'riscv64'}
  return `${process.platform}/${arches[process.arch] ?? process.arch}`
}
