import type {KodSource, SourceFlag, SourceOptions} from '../api.js'
import {usageError} from './errors.js'

type Command = SourceFlag['commands'][number]

/** The source flags of one command line, before the source is known. */
export type SourceFlagsGiven = readonly Given[]

/** A source flag found on the command line, and the source kinds that declare it. */
export interface Given {
  flag: string
  kinds: string[]
  name: string
  value: string | boolean
}

/**
 * Takes the flags source kinds declare for this command out of argv, before oclif parses the rest (oclif
 * knows only the host's flags). Which source handles the package is known only later: `optionsFor` then
 * keeps the flags that source declares and refuses the others.
 */
export function splitSourceFlags(argv: readonly string[], sources: readonly KodSource[], command: Command): {argv: string[]; given: Given[]} {
  const declared = sources.flatMap((source) => (source.flags ?? []).filter((flag) => flag.commands.includes(command)).map((flag) => ({...flag, kind: source.kind})))
  const find = (token: string): typeof declared => {
    const long = /^--([^=]+)/.exec(token)?.[1]
    const short = /^-([A-Za-z])$/.exec(token)?.[1]
    return declared.filter((flag) => (long !== undefined && flag.name === long) || (short !== undefined && flag.char === short))
  }
  const rest: string[] = []
  const given: Given[] = []
  for (let index = 0; index < argv.length; index++) {
    const token = argv[index]
    if (token === '--') {
      rest.push(...argv.slice(index))
      break
    }
    const matches = find(token)
    if (matches.length === 0) {
      rest.push(token)
      continue
    }
    const [flag] = matches
    const kinds = [...new Set(matches.map((match) => match.kind))]
    if (flag.type === 'boolean') {
      given.push({flag: token, kinds, name: flag.name, value: true})
      continue
    }
    const inline = token.includes('=') ? token.slice(token.indexOf('=') + 1) : undefined
    const value = inline ?? argv[++index]
    if (value === undefined) throw usageError(`Flag ${token} expects a value`)
    given.push({flag: token.split('=')[0], kinds, name: flag.name, value})
  }
  return {argv: rest, given}
}

/** The options of the source that handles the package; a flag only other sources declare is bad input. */
export function optionsFor(source: KodSource, given: readonly Given[]): SourceOptions {
  const options: SourceOptions = {}
  for (const entry of given) {
    const flag = source.flags?.find((candidate) => candidate.name === entry.name)
    if (!flag || !entry.kinds.includes(source.kind)) {
      throw usageError(`${entry.flag} is a flag of ${entry.kinds.join(', ')} sources, but this is a ${source.kind} source`)
    }
    if (flag.multiple) options[flag.name] = [...((options[flag.name] as string[] | undefined) ?? []), String(entry.value)]
    else options[flag.name] = entry.value
  }
  return options
}
