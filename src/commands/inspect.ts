import {Flags} from '@oclif/core'
import type {KeyObject} from 'node:crypto'
import {stat} from 'node:fs/promises'
import path from 'node:path'

import type {PackageManifest} from '../api.js'
import {checkPackageInput, directorySignature, openPackage, packageWarnings} from '../lib/actions/open.js'
import {isRegistryInput} from '../lib/actions/registry-package.js'
import {KodCommand, verifyKeyFlag, verifyKeyFrom} from '../lib/base-command.js'
import {usageError} from '../lib/errors.js'
import {formatSize, table} from '../lib/format.js'
import {type ArchiveSummary, readArchiveHead, verifyArchive, verifyDirectory} from '../lib/kodpkg.js'
import {manifestSchema} from '../lib/kodpkg-schema.js'
import {runSteps, step} from '../lib/progress.js'
import {checkSignature, SIGNATURE_FILE} from '../lib/signing.js'

export default class Inspect extends KodCommand {
  static override summary = 'Show what a package holds, after verifying every checksum.'

  static override description = `Reads a package file (without unpacking it; recognised by its content, whatever its name) or an unpacked package directory, checks every file against SHA256SUMS, and lists the charts and images: each image's original reference, digest, platforms (and those dropped at package time, with the source index's digest), and the values paths that set it, then what the operator must know: images kod cannot relocate through values, and the warnings recorded at package time. --json prints the whole manifest (kod-package.yaml) as JSON, warnings included.`

  static override examples = [
    '<%= config.bin %> <%= command.id %> -c kod-mychart-1.2.3.kodpkg',
    '<%= config.bin %> <%= command.id %> -c ./kod-mychart-1.2.3 --json',
    {description: 'A package populate put into a registry (its metadata, verified; images and charts stay there):', command: '<%= config.bin %> <%= command.id %> -c oci://registry.local:5000/kod/packages/mychart:1.2.3 --plain-http'},
    {description: 'Print the JSON Schema of kod-package.yaml:', command: '<%= config.bin %> <%= command.id %> --schema'},
  ]

  static override enableJsonFlag = true

  static override flags = {
    package: Flags.string({
      char: 'c',
      summary: 'The package: a package file (.kodpkg, or any name), an unpacked package directory, or oci://<registry>/<prefix>/packages/<name>:<version> where populate put it.',
      exactlyOne: ['package', 'schema'],
    }),
    schema: Flags.boolean({summary: 'Print the JSON Schema of kod-package.yaml and exit.'}),
    'verify-key': verifyKeyFlag,
    'plain-http': Flags.boolean({summary: 'With -c oci://…: talk to the registry over plain HTTP.', exclusive: ['insecure-skip-tls-verify']}),
    'insecure-skip-tls-verify': Flags.boolean({summary: "With -c oci://…: use HTTPS but don't verify the registry's certificate."}),
  }

  public async run(): Promise<PackageManifest | typeof manifestSchema> {
    const {flags} = await this.parse(Inspect)
    if (flags.schema) {
      if (!this.jsonEnabled()) this.log(JSON.stringify(manifestSchema, null, 2))
      return manifestSchema
    }
    const input = flags.package!
    await checkPackageInput(input)
    const verifyKey = await verifyKeyFrom(flags['verify-key'])
    const summary: Partial<ArchiveSummary> & Pick<ArchiveSummary, 'manifest'> & {signed?: boolean} = isRegistryInput(input)
      ? await this.fromRegistry(input, flags, verifyKey)
      : await this.verifyLocal(input, verifyKey, flags)
    const signature = verifyKey
      ? `signature verified with ${flags['verify-key']}`
      : summary.signed === undefined
        ? undefined
        : summary.signed
          ? `signed (${SIGNATURE_FILE}), signature not checked: give --verify-key PUBLIC_KEY`
          : 'not signed'
    return this.show(summary, signature)
  }

  /** A package in a registry: its metadata (kodinfo) pulled into scratch space and verified. */
  private async fromRegistry(input: string, flags: {json?: boolean; 'plain-http'?: boolean; 'insecure-skip-tls-verify'?: boolean}, verifyKey?: KeyObject): Promise<Partial<ArchiveSummary> & Pick<ArchiveSummary, 'manifest'>> {
    const ctx = await this.context()
    const opened = await openPackage(input, {
      unpackTo: {parent: process.cwd()},
      verifyKey,
      quiet: this.quiet(flags),
      signal: this.abort.signal,
      registry: {tools: ctx.tools, scratch: ctx.tmpDir, insecure: {plainHttp: Boolean(flags['plain-http']), skipTlsVerify: Boolean(flags['insecure-skip-tls-verify'])}, charts: false},
    })
    return {manifest: opened.manifest}
  }

  private async verifyLocal(input: string, verifyKey: KeyObject | undefined, flags: {json?: boolean}): Promise<Partial<ArchiveSummary> & Pick<ArchiveSummary, 'manifest'> & {signed: boolean}> {
    const info = await stat(input).catch(() => {
      throw usageError(`package not found: ${input}`)
    })
    const signed = info.isDirectory() ? await directorySignature(input) : await readArchiveHead(input, this.abort.signal).then((head) => ({sums: head.sumsBytes, signature: head.signature}))
    // Before anything else: the signature over SHA256SUMS, whose every line the verification then checks.
    if (verifyKey) checkSignature(signed.sums, signed.signature, verifyKey, input)
    // Verifying a large package takes seconds: a progress step says what kod is doing meanwhile.
    let summary: Partial<ArchiveSummary> | undefined
    await runSteps(
      [
        info.isDirectory()
          ? step(`Verify ${input}`, `Verified ${input}`, async () => void (summary = {manifest: await verifyDirectory(input, this.abort.signal)}))
          : step(`Verify ${path.basename(input)} (${formatSize(info.size)})`, `Verified ${path.basename(input)} (${formatSize(info.size)})`, async () => void (summary = await verifyArchive(input, this.abort.signal))),
      ],
      {quiet: this.quiet(flags)},
    )
    return {...(summary as Partial<ArchiveSummary> & Pick<ArchiveSummary, 'manifest'>), signed: signed.signature !== undefined}
  }

  private show(summary: Partial<ArchiveSummary> & Pick<ArchiveSummary, 'manifest'>, signature?: string): PackageManifest {
    const {manifest, files, bytes} = summary
    this.log(`${manifest.name} ${manifest.version}  (${manifest.source.kind} from ${manifest.source.ref}${manifest.source.version ? ` ${manifest.source.version}` : ''})`)
    this.log(`created ${manifest.created} by kod ${manifest.kodVersion}, format ${manifest.formatVersion}`)
    this.log(`checksums verified${files === undefined || bytes === undefined ? '' : `: ${files} files, ${formatSize(bytes)}`}`)
    if (signature) this.log(signature)
    this.log('')
    this.log('Charts:')
    for (const chart of manifest.charts) this.log(`  ${chart.name} ${chart.version}${chart.appVersion ? ` (app ${chart.appVersion})` : ''}  ${chart.file}`)
    const several = manifest.units.length > 1
    this.log(several ? `Releases (${manifest.units.length}, in install order):` : 'Release:')
    for (const unit of manifest.units) {
      const details = [
        unit.namespace ? `namespace ${unit.namespace}` : '',
        unit.chart,
        unit.needs.length > 0 ? `needs ${unit.needs.join(', ')}` : '',
        unit.installed ? '' : 'NOT INSTALLED (installed: false; not packaged)',
      ].filter(Boolean)
      this.log(`  ${unit.release}${unit.id === unit.release ? '' : ` (${unit.id})`}  ${details.join(', ')}`)
      for (const file of unit.values) this.log(`    values ${file}`)
    }
    this.log(`Platforms: ${platformsLine(manifest)}`)
    this.log(`Images (${manifest.images.length}):`)
    const rows = [['IMAGE', 'DIGEST', 'PLATFORMS', 'SET BY']]
    for (const image of manifest.images) {
      const setBy = manifest.units.flatMap((unit) =>
        unit.images
          .filter((entry) => entry.name === image.name)
          .map((entry) => {
            const paths = entry.note ? 'NOT RELOCATABLE (see below)' : entry.values.map((binding) => binding.path).join(', ') || 'NOT RELOCATABLE'
            return several ? `${unit.id}: ${paths}` : paths
          }),
      )
      const dropped = image.droppedPlatforms?.length ? ` (dropped ${image.droppedPlatforms.join(',')})` : ''
      rows.push([image.ref, image.digest.slice(0, 19), `${image.platforms.join(',') || '-'}${dropped}`, setBy.join('; ')])
    }
    for (const line of table(rows)) this.log(`  ${line}`)
    const trimmed = manifest.images.filter((image) => image.sourceDigest)
    if (trimmed.length > 0) {
      this.log(`Trimmed to the platforms kept (${trimmed.length}):`)
      for (const image of trimmed) {
        this.log(`  ${image.ref}: stored as ${image.digest} (${image.platforms.join(', ')}), from the source's ${image.sourceDigest} (dropped ${image.droppedPlatforms?.join(', ') ?? '-'})`)
      }
    }
    // Image notes and the package's warnings, each once: what populate and deploy repeat.
    const warnings = packageWarnings(manifest)
    if (warnings.length > 0) {
      this.log(`Warnings (${warnings.length}):`)
      for (const warning of warnings) this.log(`  ${warning}`)
    }
    if (manifest.hints.length > 0) {
      this.log('Hints:')
      for (const file of manifest.hints) this.log(`  ${file}`)
    }
    return manifest
  }
}

/** The platforms a package kept, and how they were chosen. */
function platformsLine(manifest: PackageManifest): string {
  const {platforms} = manifest
  if (platforms === undefined) return `all (format ${manifest.formatVersion}: kod kept every platform then)`
  if (platforms === 'all') return 'all (--all-platforms)'
  return `${platforms.join(', ')}${manifest.platformsFromHost ? " (the packaging machine's, by default)" : ' (--platform)'}`
}
