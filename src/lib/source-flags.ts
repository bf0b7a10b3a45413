import type {KodSource, SourceFlag, SourceOptions} from '../api.js'
import {usageError} from './errors.js'

type Command = SourceFlag['commands'][number]

/** A source flag found on the command line, and the source kinds that declare it. */
export interface Given {
  flag: string
  kinds: string[]
  name: string
  value: string | boolean
}

/** The source flags of one command line, before the source is known. */
export type SourceFlagsGiven = readonly Given[]

/** kod's own flags of the command: a source flag may not take one of their names or letters. */
export interface HostFlags {
  names: ReadonlySet<string>
  chars: ReadonlySet<string>
}

/** The source flags declared for this command that clash with none of kod's own; the others are reported and ignored. */
function declaredFor(sources: readonly KodSource[], command: Command, host: HostFlags, warn: (message: string) => void): Array<SourceFlag & {kind: string}> {
  const declared: Array<SourceFlag & {kind: string}> = []
  for (const source of sources) {
    for (const flag of (source.flags ?? []).filter((candidate) => candidate.commands.includes(command))) {
      const clash = host.names.has(flag.name) ? `--${flag.name}` : flag.char && host.chars.has(flag.char) ? `-${flag.char}` : undefined
      const other = declared.find((known) => (known.name === flag.name || (flag.char && known.char === flag.char)) && known.type !== flag.type)
      if (clash || other) {
        warn(`source ${source.kind} declares ${clash ?? `--${flag.name}`}, which is ${clash ? "one of kod's own flags" : `a ${other!.type} flag of ${other!.kind}`}; ignored`)
        continue
      }
      declared.push({...flag, kind: source.kind})
    }
  }
  return declared
}

/** "--name", "--name=value", "-c", "-cvalue", "-c=value": the flag and the value written with it. */
function split(token: string): {long?: string; short?: string; inline?: string} {
  const long = /^--([^=]+)(?:=(.*))?$/s.exec(token)
  if (long) return {long: long[1], inline: long[2]}
  const short = /^-([A-Za-z])(?:=?(.+))?$/s.exec(token)
  return short ? {short: short[1], inline: short[2]} : {}
}

/**
 * Takes the flags source kinds declare for this command out of argv, before oclif parses the rest (oclif
 * knows only the host's flags). Which source handles the package is known only later: `optionsFor` then
 * keeps the flags that source declares and refuses the others.
 */
export function splitSourceFlags(
  argv: readonly string[],
  sources: readonly KodSource[],
  command: Command,
  host: HostFlags = {names: new Set(), chars: new Set()},
  warn: (message: string) => void = () => {},
): {argv: string[]; given: Given[]} {
  const declared = declaredFor(sources, command, host, warn)
  const rest: string[] = []
  const given: Given[] = []
  for (let index = 0; index < argv.length; index++) {
    const token = argv[index]
    if (token === '--') {
      rest.push(...argv.slice(index))
      break
    }
    const {long, short, inline} = split(token)
    const matches = declared.filter((flag) => (long !== undefined && flag.name === long) || (short !== undefined && flag.char === short))
    // A short flag with text attached is one of kod's own when no source declares it (-fvalues.yaml).
    if (matches.length === 0) {
      rest.push(token)
      continue
    }
    const [flag] = matches
    const kinds = [...new Set(matches.map((match) => match.kind))]
    const shown = long !== undefined ? `--${long}` : `-${short}`
    if (flag.type === 'boolean') {
      if (inline !== undefined && !/^(true|false)$/.test(inline)) throw usageError(`${shown} takes no value but true or false, not "${inline}"`)
      given.push({flag: shown, kinds, name: flag.name, value: inline !== 'false'})
      continue
    }
    const value = inline ?? argv[++index]
    if (value === undefined || (inline === undefined && value.startsWith('-'))) throw usageError(`Flag ${shown} expects a value`)
    given.push({flag: shown, kinds, name: flag.name, value})
  }
  return {argv: rest, given}
}

/** The options of the source that handles the package; a flag only other sources declare is bad input. */
export function optionsFor(source: KodSource, given: readonly Given[]): SourceOptions {
  const options: SourceOptions = {}
  for (const entry of given) {
    const flag = source.flags?.find((candidate) => candidate.name === entry.name)
    if (!flag || !entry.kinds.includes(source.kind)) {
      throw usageError(
        `${entry.flag} is a flag of ${entry.kinds.join(', ')} sources, but this is a ${source.kind} source${entry.kinds.length === 1 ? ` (if -c is one, say so with --kind ${entry.kinds[0]})` : ''}`,
      )
    }
    if (flag.multiple) options[flag.name] = [...((options[flag.name] as string[] | undefined) ?? []), String(entry.value)]
    else options[flag.name] = entry.value
  }
  return options
}
