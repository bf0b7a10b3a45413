import {getPath, isMap, joinPath, type PathKey, type Values} from './values.js'

/** Keys whose empty value may still decide where an image comes from (global.imageRegistry, hub, …). */
const LOCATION_KEY = /(registry|hub|repository|repo|image|imagenamespace|namespace|organization|org|owner|prefix)$/i
/** Keys that only ever hold the tag or digest part: never relocated, never rewritten. */
const VERSION_KEY = /(tag|version|digest|sha|pullpolicy)$/i

/** A value that may decide where an image comes from: sentinel renders tell whether it does. */
export interface Candidate {
  keys: PathKey[]
  path: string
  original: string
}

/** Candidate values: strings found in the name part of an image, and empty location-like values (in maps and lists). */
export function findCandidates(values: Values, names: string[], templatePaths: string[][] = []): Candidate[] {
  const found = new Map<string, Candidate>()
  const consider = (key: string, value: unknown, here: PathKey[]): void => {
    if (isMap(value)) {
      walk(Object.entries(value), here)
    } else if (Array.isArray(value)) {
      walk(value.map((item, index) => [index, item] as [number, unknown]), here, key)
    } else if (typeof value === 'string' && !VERSION_KEY.test(key)) {
      const text = value.trim()
      const inName = text.length >= 2 && names.some((name) => name.includes(text) || text.includes(name))
      if (inName || (text === '' && LOCATION_KEY.test(key))) found.set(joinPath(here), {keys: here, path: joinPath(here), original: value})
    } else if (value === null && LOCATION_KEY.test(key)) {
      found.set(joinPath(here), {keys: here, path: joinPath(here), original: ''})
    }
  }
  // A list item is judged by its list's key (a list of images under "images").
  const walk = (entries: Array<[PathKey, unknown]>, keys: PathKey[], listKey?: string): void => {
    for (const [key, value] of entries) consider(typeof key === 'number' ? (listKey ?? '') : key, value, [...keys, key])
  }
  walk(Object.entries(values), [])
  // Location-like values the templates read but values.yaml does not declare (a commented-out registry).
  for (const keys of templatePaths) {
    if (!LOCATION_KEY.test(keys.at(-1)!) || getPath(values, keys) !== undefined) continue
    // Only where nothing on the way is a scalar already.
    if (keys.slice(1, -1).some((_, index) => {
      const at = getPath(values, keys.slice(0, index + 2))
      return at !== undefined && !isMap(at)
    })) continue
    found.set(joinPath(keys), {keys, path: joinPath(keys), original: ''})
  }
  return [...found.values()]
}
