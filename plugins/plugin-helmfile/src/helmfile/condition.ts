import {refuse} from './errors.js'
import {isMap} from './files.js'
import {type Values} from './model.js'

/**
 * pkg/state/state.go ConditionEnabled: `true`/`false`, or `a.b.enabled` looked up in the
 * environment values. Every map on the way must exist; a missing or non-boolean `enabled` is false.
 */
export function conditionEnabled(file: string, release: string, condition: string, values: Values): boolean {
  const lower = condition.toLowerCase()
  if (lower === 'true') return true
  if (lower === 'false') return false
  const keys = condition.split('.')
  const where = `condition "${condition}" of release "${release}"`
  if (keys[keys.length - 1] !== 'enabled') refuse(file, `${where} must be in the form 'foo.enabled'`)
  let at: Values = values
  let seen = ''
  for (const key of keys.slice(0, -1)) {
    seen += `.${key}`
    if (!(key in at)) refuse(file, `${where}: environment values field '${seen}' not found`)
    const next = at[key]
    if (!isMap(next)) refuse(file, `${where}: environment values field '${seen}' is not a map`)
    at = next
  }
  return at.enabled === true
}
