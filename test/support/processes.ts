import {readdir, readFile} from 'node:fs/promises'

/** A process as /proc shows it: its id, its parent's, and its command line. */
export interface ProcInfo {
  pid: number
  ppid: number
  cmdline: string
}

/** Every process /proc lists now (those that vanish while it is read are skipped). */
export async function processes(): Promise<ProcInfo[]> {
  const found: ProcInfo[] = []
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8')
      // pid (comm) state ppid …: comm may hold spaces and parentheses, so read after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      const cmdline = (await readFile(`/proc/${entry}/cmdline`, 'utf8')).split('\0').join(' ').trim()
      found.push({pid: Number(entry), ppid, cmdline})
    } catch {
      // gone meanwhile
    }
  }
  return found
}

/** The processes whose parent is `pid`. */
export async function childrenOf(pid: number): Promise<ProcInfo[]> {
  return (await processes()).filter((info) => info.ppid === pid)
}

/** The processes whose command line contains `text` (a unique test path or address). */
export async function processesNaming(text: string): Promise<ProcInfo[]> {
  return (await processes()).filter((info) => info.cmdline.includes(text) && info.pid !== process.pid)
}

/** Polls `check` every 50 ms until it returns something truthy or `ms` pass; returns the last result. */
export async function waitFor<T>(check: () => Promise<T>, ms: number): Promise<T> {
  const deadline = Date.now() + ms
  let result = await check()
  while (!result && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    result = await check()
  }
  return result
}
