import {readdir} from 'node:fs/promises'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import type {HintLibrary} from 'kod'

/** oclif hook `kod:hints`: plugin-helm's own hint library, the YAML files in its hints/ directory. */
export default async function hints(): Promise<HintLibrary[]> {
  const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'hints')
  const files = (await readdir(dir).catch(() => [] as string[])).filter((file) => /\.ya?ml$/.test(file)).sort()
  return [{api: 'kod.hints/v1', name: 'plugin-helm built-in hints', files: files.map((file) => path.join(dir, file))}]
}
