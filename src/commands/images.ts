import {Flags} from '@oclif/core'
import {writeFile} from 'node:fs/promises'
import path from 'node:path'

import {findImages, relocatedReference} from '../lib/actions/images.js'
import {chartFlagsFor, KodCommand, packageRequestFrom} from '../lib/base-command.js'
import {makeDirectories} from '../lib/bounds.js'
import {fileSystemError, usageError} from '../lib/errors.js'
import {table} from '../lib/format.js'
import {unitValuesFileName} from '../lib/units.js'
import {DEFAULT_PREFIX, parseTarget} from '../lib/target.js'

interface ImageRow {
  /** The unit (release) that runs it. */
  unit: string
  ref: string
  name: string
  foundIn: string[]
  values: string[]
  relocatable: boolean
  note?: string
  relocatedTo?: string
}

export default class Images extends KodCommand {
  static override summary = 'List every image a chart or helmfile will run, where it was found, and how kod will relocate it. Pulls nothing.'

  static override description = `Renders the chart (or every release of a helmfile) as kod package would, with the same flags (nothing is recorded: there is no package), and lists each image: the release that runs it, the templates it appears in, the values path that sets where it is pulled from, and whether deploy can relocate it.

With --relocate-to, writes the values file deploy would generate for that registry (to -o FILE, or stdout; for a helmfile, one kod-values-<release>.yaml per release into -o DIR): for sites that already mirror images by other means (registry replication, a proxy cache) and only need the values. Images are expected at <registry>/<prefix>/<original-host>/<original-repository>, as kod populate pushes them.`

  static override examples = [
    '<%= config.bin %> <%= command.id %> -c ./mychart',
    '<%= config.bin %> <%= command.id %> -c oci://ghcr.io/org/charts/mychart --version 1.2.3 --json',
    {description: 'Every release of a helmfile:', command: '<%= config.bin %> <%= command.id %> -c ./helmfile.yaml -e prod'},
    {
      description: 'Write the values that point every image at a mirror:',
      command: '<%= config.bin %> <%= command.id %> -c ./mychart --relocate-to harbor.corp:443 --prefix mirror -o relocate.yaml',
    },
  ]

  static override enableJsonFlag = true

  static override flags = {
    ...chartFlagsFor('images'),
    'relocate-to': Flags.string({summary: 'Write the values file deploy would generate for this registry.'}),
    prefix: Flags.string({summary: 'Repository prefix below that registry.', default: DEFAULT_PREFIX}),
    output: Flags.string({char: 'o', summary: 'File for the values (default: stdout); a directory when the source has several releases (kod-values-<release>.yaml each).', dependsOn: ['relocate-to']}),
  }

  public async run(): Promise<{images: ImageRow[]; warnings: string[]; values?: string; valuesByUnit?: Record<string, string>}> {
    const {flags, sourceFlags} = await this.parseWithSourceFlags(Images, 'images')
    // --prefix has a default, so oclif's dependsOn cannot tell it was given: a --prefix with nothing to apply to is said.
    if (!flags['relocate-to'] && this.argv.some((arg) => arg === '--prefix' || arg.startsWith('--prefix='))) throw usageError('--prefix applies to --relocate-to REGISTRY: give both, or leave --prefix out')
    const target = flags['relocate-to'] ? parseTarget({registry: flags['relocate-to'], prefix: flags.prefix}) : undefined
    const ctx = await this.context()
    const {source, found, units} = await findImages(ctx, await this.sources(), await packageRequestFrom(flags, await this.hints(flags.hints)), flags.kind, sourceFlags)
    const installed = units.filter((unit) => unit.installed)
    const several = installed.length > 1
    const rows: ImageRow[] = installed.flatMap((unit) =>
      unit.images.map((image) => ({
        unit: unit.id,
        ref: image.ref,
        name: image.name,
        foundIn: image.foundIn,
        values: image.values.map((binding) => binding.path),
        relocatable: image.values.length > 0 && !image.note,
        ...(image.note ? {note: image.note} : {}),
        ...(target ? {relocatedTo: relocatedReference(image.ref, target)} : {}),
      })),
    )
    for (const row of rows.filter((entry) => entry.note)) {
      ctx.log.warn(`${row.ref}${several ? ` (release ${row.unit})` : ''} cannot be relocated through values: ${row.note}; kod package refuses it unless a hint or your values relocate it, or you accept it with --allow-external`)
    }
    const result = {images: rows, warnings: found.warnings ?? []}
    if (target && several) {
      // One values file per release: they cannot share one file (or one stdout).
      if (!flags.output) throw usageError(`${flags.chart} holds ${installed.length} releases: give -o DIR for their values files (kod-values-<release>.yaml each)`)
      const dir = path.resolve(flags.output)
      await makeDirectories(dir).catch((error: unknown) => {
        const code = (error as NodeJS.ErrnoException).code
        if (code === 'EEXIST' || code === 'ENOTDIR') throw usageError(`-o ${flags.output}: ${(error as NodeJS.ErrnoException).path ?? dir} is a file; with several releases -o names a directory for their values files`)
        throw fileSystemError(error) ?? error
      })
      const valuesByUnit: Record<string, string> = {}
      for (const unit of installed) {
        valuesByUnit[unit.id] = source.relocation(ctx, unit, target)
        await writeFile(path.join(dir, unitValuesFileName(unit.id)), valuesByUnit[unit.id])
      }
      this.logToStderr(`wrote ${installed.length} values files into ${flags.output}`)
      this.printTable(rows, several)
      return {...result, valuesByUnit}
    }
    const values = target && installed[0] ? source.relocation(ctx, installed[0], target) : undefined
    if (values !== undefined && flags.output) {
      const output = flags.output
      await writeFile(path.resolve(output), values).catch((error: unknown) => {
        const code = (error as NodeJS.ErrnoException).code
        if (code === 'EISDIR') throw usageError(`-o ${output} is a directory: give -o the name of the values file to write (a directory is for a source with several releases)`)
        if (code === 'ENOENT' || code === 'ENOTDIR') throw usageError(`cannot write -o ${output}: ${path.dirname(path.resolve(output))} is not a directory; create it first or choose another path`)
        throw fileSystemError(error) ?? error
      })
      this.logToStderr(`wrote ${flags.output}`)
    }
    if (values !== undefined && !flags.output) {
      if (!this.jsonEnabled()) process.stdout.write(values)
    } else {
      this.printTable(rows, several)
    }
    return {...result, ...(values === undefined ? {} : {values})}
  }

  private printTable(rows: ImageRow[], several: boolean): void {
    const lines = [[...(several ? ['RELEASE'] : []), 'IMAGE', 'SET BY', 'FOUND IN']]
    // A value that relocates the image in one place does not make it relocatable where it is hard-coded.
    const setBy = (row: ImageRow): string => (row.relocatable ? row.values.join(', ') : ['NOT RELOCATABLE', ...row.values.map((value) => `(${value} only in part)`)].join(' '))
    for (const row of rows) lines.push([...(several ? [row.unit] : []), row.ref, setBy(row), row.foundIn.join(', ')])
    for (const line of table(lines)) this.log(line)
    this.log(`${rows.length} image(s), ${rows.filter((row) => row.relocatable).length} relocatable through values`)
  }
}
