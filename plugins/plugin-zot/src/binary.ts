import {open} from 'node:fs/promises'
import {endianness} from 'node:os'

/**
 * What kod can tell about a binary without running it: its platform, from the ELF header zot's releases
 * (static Go binaries for Linux) carry. Anything else (a script, a Mach-O or PE file) has no platform kod
 * knows, and is said so.
 */
export interface BinaryKind {
  /** linux/amd64, linux/arm64, …; undefined when the file is no ELF executable kod knows. */
  platform?: string
  /** What the file is when it has no platform: "a script (#!)", "not an ELF executable", … */
  note?: string
}

/** ELF e_machine values of the architectures zot is released for, as Go names them. */
const MACHINES: Record<number, string> = {
  0x03: '386',
  0x28: 'arm',
  0x3e: 'amd64',
  0xb7: 'arm64',
  0x15: 'ppc64le',
  0x16: 's390x',
  0xf3: 'riscv64',
}

/** The platform of an executable from its first bytes (64 are enough). */
export function binaryKind(head: Buffer): BinaryKind {
  if (head.length >= 20 && head.readUInt32BE(0) === 0x7f454c46) {
    const littleEndian = head[5] === 1
    const machine = littleEndian ? head.readUInt16LE(18) : head.readUInt16BE(18)
    // ppc64 big-endian shares e_machine 0x15 with ppc64le.
    const arch = machine === 0x15 && !littleEndian ? 'ppc64' : MACHINES[machine]
    const type = littleEndian ? head.readUInt16LE(16) : head.readUInt16BE(16)
    if (type !== 2 && type !== 3) return {note: 'an ELF file that is no executable'}
    return arch ? {platform: `linux/${arch}`} : {note: `an ELF executable for a machine kod does not know (e_machine ${machine})`}
  }
  if (head.subarray(0, 2).toString('latin1') === '#!') return {note: 'a script (#!), not a zot release binary'}
  return {note: 'not an ELF executable'}
}

export async function readBinaryKind(file: string): Promise<BinaryKind> {
  const handle = await open(file, 'r')
  try {
    const head = Buffer.alloc(64)
    const {bytesRead} = await handle.read(head, 0, 64, 0)
    return binaryKind(head.subarray(0, bytesRead))
  } finally {
    await handle.close()
  }
}

/** This machine's platform, as Go names it. */
export function hostPlatform(): string {
  const arches: Record<string, string> = {x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: endianness() === 'LE' ? 'ppc64le' : 'ppc64', s390x: 's390x', riscv64: 'riscv64'}
  return `${process.platform}/${arches[process.arch] ?? process.arch}`
}

/**
 * The version `zot -v` (or `zli -v`) reports. zot logs one JSON line, e.g.
 * {"level":"info","distribution-spec":"1.1.1","commit":"v2.1.2-0-gabcdef","binary-type":"…",…}
 * (pkg/cli/server/root.go): the commit is `git describe` of the release, so it starts with the tag. A
 * plain `zot version v2.1.2` line is read too. undefined when the output names no version.
 */
export function parseVersion(output: string): string | undefined {
  for (const line of output.split('\n')) {
    const trimmed = line.trim()
    if (!trimmed.startsWith('{')) continue
    try {
      const record = JSON.parse(trimmed) as Record<string, unknown>
      for (const key of ['release-tag', 'releaseTag', 'version', 'commit']) {
        const value = record[key]
        if (typeof value === 'string') {
          const match = /v?\d+\.\d+\.\d+(?:-[\w.-]+)?/.exec(value)
          if (match) return match[0].replace(/-0-g[\da-f]+$/, '')
        }
      }
    } catch {
      // not JSON: read as text below
    }
  }
  const match = /\bv?\d+\.\d+\.\d+(?:-[\w.]+)?\b/.exec(output.replaceAll(/"distribution-spec"\s*:\s*"[^"]*"/g, ''))
  return match?.[0]
}
