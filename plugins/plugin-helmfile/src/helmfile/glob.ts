import {readdir, stat} from 'node:fs/promises'
import path from 'node:path'

/**
 * helmfile expands values paths and sub-helmfile paths with Go's filepath.Glob (`*`, `?`, `[…]`
 * within one path segment, no `**`), sorted. Node 20 has no fs.glob, so this is that, small.
 */
const MAGIC = /[*?[]/

function segmentRegExp(segment: string): RegExp {
  let re = ''
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i]
    if (c === '*') re += '[^/]*'
    else if (c === '?') re += '[^/]'
    else if (c === '[') {
      const end = segment.indexOf(']', i + 1)
      if (end < 0) re += '\\['
      else {
        const body = segment.slice(i + 1, end)
        re += `[${body.startsWith('^') ? '^' + body.slice(1) : body}]`
        i = end
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&')
  }
  return new RegExp(`^${re}$`)
}

export const hasMagic = (p: string): boolean => MAGIC.test(p)

/** Absolute matches of an absolute pattern, sorted; a pattern without magic matches itself if it exists. */
export async function glob(pattern: string): Promise<string[]> {
  const root = path.parse(pattern).root
  const segments = pattern.slice(root.length).split(path.sep).filter((s) => s !== '')
  let current = [root]
  for (const segment of segments) {
    const next: string[] = []
    for (const dir of current) {
      if (!MAGIC.test(segment)) {
        next.push(path.join(dir, segment))
        continue
      }
      const re = segmentRegExp(segment)
      let names: string[]
      try {
        names = await readdir(dir)
      } catch {
        continue
      }
      for (const name of names) if (re.test(name)) next.push(path.join(dir, name))
    }
    current = next
  }
  const found: string[] = []
  for (const p of current) {
    try {
      await stat(p)
      found.push(p)
    } catch {
      // no match
    }
  }
  return found.sort()
}
