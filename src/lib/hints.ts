import type {Config} from '@oclif/core'
import type {ValidateFunction} from 'ajv'
import {readFile} from 'node:fs/promises'
import path from 'node:path'
import YAML from 'yaml'

import {HINTS_API, type HintFile, type LoadedHints, type Logger} from '../api.js'
import {messageOf, usageError, yamlProblem} from './errors.js'
import {validatorFor} from './vendor/validators.js'

/**
 * Hint files (docs/hints.md): YAML, validated against this schema wherever they come from — --hints
 * on the command line, or a library a plugin contributes through the kod:hints hook.
 */
export const HINTS_HOOK = 'kod:hints'
const HOOK_TIMEOUT_MS = 10_000

export {hintSchema} from './hint-schema.js'

const validator = (): ValidateFunction<HintFile> => validatorFor('hints') as ValidateFunction<HintFile>

export async function loadHintFile(file: string, library: string): Promise<LoadedHints> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'EISDIR') throw usageError(`hint file ${file} is a directory: give --hints a hint file (docs/hints.md), one --hints per file`)
    if (code === 'ENOENT' || code === 'ENOTDIR') throw usageError(`hint file not found: ${file}`)
    throw usageError(`cannot read hint file ${file} (${code ?? messageOf(error)}): check that it is a file you may read`)
  }
  const problem = yamlProblem(text, {uniqueKeys: true})
  if (problem) throw usageError(`hint file ${file} is not valid YAML: ${problem}`)
  const data: unknown = YAML.parse(text)
  const validate = validator()
  if (!validate(data)) {
    const first = validate.errors?.[0]
    throw usageError(`${file} is not a kod hint file: ${first?.instancePath || '/'} ${first?.message ?? ''} (see docs/hints.md)`.trim())
  }
  return {file: path.resolve(file), library, hints: data}
}

/** --hints files first, then every plugin's library (a broken library is reported and skipped). */
export async function loadHints(config: Config, files: readonly string[], log: Logger): Promise<LoadedHints[]> {
  const loaded: LoadedHints[] = []
  for (const file of files) loaded.push(await loadHintFile(file, '--hints'))
  const result = await config.runHook(HINTS_HOOK, {api: HINTS_API}, HOOK_TIMEOUT_MS, true)
  for (const failure of result.failures) log.warn(`plugin ${failure.plugin.name} could not provide its hints: ${messageOf(failure.error)}`)
  const libraries = result.successes.flatMap(({plugin, result: provided}) =>
    (Array.isArray(provided) ? provided : []).map((library) => ({plugin: plugin.name, library: library as {api?: string; name?: string; files?: unknown}})),
  )
  libraries.sort((a, b) => a.plugin.localeCompare(b.plugin))
  for (const {plugin, library} of libraries) {
    if (library.api !== HINTS_API || !Array.isArray(library.files)) {
      log.warn(`plugin ${plugin} provides hints for API ${String(library.api)}, but this kod speaks ${HINTS_API}; update the plugin`)
      continue
    }
    for (const file of library.files) {
      try {
        loaded.push(await loadHintFile(String(file), `${plugin}${library.name ? ` (${library.name})` : ''}`))
      } catch (error) {
        log.warn(`plugin ${plugin}: ${messageOf(error)}; skipped`)
      }
    }
  }
  return loaded
}
