// Timing, peak memory and the printed table.
import {execa} from 'execa'
import {readFile, rm} from 'node:fs/promises'
import path from 'node:path'

export interface Timed {
  seconds: number
  /** Peak RSS in KiB (GNU time's %M: the largest of the process and the children it waited for), when asked. */
  rssKiB?: number
  stdout: string
  stderr: string
}

export class CommandFailed extends Error {
  constructor(
    readonly command: string,
    readonly exitCode: number | undefined,
    readonly stderr: string,
  ) {
    super(`${command} failed (exit ${exitCode ?? 'signal'}):\n${stderr.trim().split('\n').slice(-15).join('\n')}`)
  }
}

export interface RunOptions {
  cwd?: string
  env?: Record<string, string>
  /** Wrap in /usr/bin/time -f %M, writing its figure to this file: peak RSS. */
  rssFile?: string
}

/** Runs one command to its end, timed (wall clock); throws CommandFailed on a non-zero exit. */
export async function timed(file: string, args: string[], options: RunOptions = {}): Promise<Timed> {
  const [command, argv] = options.rssFile ? ['/usr/bin/time', ['-f', '%M', '-o', options.rssFile, file, ...args]] : [file, args]
  const started = process.hrtime.bigint()
  const result = await execa(command, argv, {cwd: options.cwd, env: options.env, stdin: 'ignore', reject: false, maxBuffer: 256 * 1024 * 1024})
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  const stdout = String(result.stdout)
  const stderr = String(result.stderr)
  if (result.exitCode !== 0) throw new CommandFailed([path.basename(file), ...args].join(' '), result.exitCode, stderr)
  let rssKiB: number | undefined
  if (options.rssFile) {
    rssKiB = Number((await readFile(options.rssFile, 'utf8')).trim().split('\n').at(-1))
    await rm(options.rssFile, {force: true})
  }
  return {seconds, rssKiB, stdout, stderr}
}

export function median(values: number[]): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

export const seconds = (value: number): string => (Number.isFinite(value) ? `${value.toFixed(2)} s` : '—')
export const megabytes = (bytes: number): string => `${(bytes / 1e6).toFixed(1)} MB`
export const mebibytes = (kib: number): string => `${(kib / 1024).toFixed(0)} MiB`

/** `min–max` of the samples, to show the spread behind a median. */
export function spread(values: number[], format: (value: number) => string = (value) => value.toFixed(2)): string {
  if (values.length < 2) return `n=${values.length}`
  return `n=${values.length}, ${format(Math.min(...values))}–${format(Math.max(...values))}`
}

export interface Row {
  figure: string
  kod: string
  baseline: string
  /** kod ÷ baseline; undefined when there is none (or it failed). */
  ratio?: number
  ratioDigits?: number
  /** e.g. `≤ 1.2×`; empty for a figure with no target. */
  target: string
  /** Whether the target is met; undefined when there is no target or no figure. */
  met?: boolean
  notes?: string
}

export function ratioText(row: Row): string {
  return row.ratio === undefined || !Number.isFinite(row.ratio) ? '—' : `${row.ratio.toFixed(row.ratioDigits ?? 2)}×`
}

const metText = (row: Row): string => (row.met === undefined ? (row.target ? '?' : '') : row.met ? 'yes' : 'NO')

const HEADER = ['figure', 'kod', 'baseline', 'ratio', 'target', 'met', 'notes']

function cells(row: Row): string[] {
  return [row.figure, row.kod, row.baseline, ratioText(row), row.target, metText(row), row.notes ?? '']
}

/** A plain text table, columns padded. */
export function textTable(rows: Row[]): string {
  const lines = [HEADER, ...rows.map(cells)]
  const widths = HEADER.map((_, column) => Math.max(...lines.map((line) => [...line[column]].length)))
  const format = (line: string[]): string =>
    line
      .map((cell, column) => cell + ' '.repeat(widths[column] - [...cell].length))
      .join('  ')
      .trimEnd()
  return [format(HEADER), widths.map((width) => '-'.repeat(width)).join('  '), ...rows.map((row) => format(cells(row)))].join('\n')
}

/** The same table in Markdown, for docs/performance.md. */
export function markdownTable(rows: Row[]): string {
  const escape = (cell: string): string => cell.replaceAll('|', '\\|')
  return [
    `| ${HEADER.join(' | ')} |`,
    `|${HEADER.map(() => '---').join('|')}|`,
    ...rows.map((row) => `| ${cells(row).map(escape).join(' | ')} |`),
  ].join('\n')
}
