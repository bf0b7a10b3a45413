import {constants} from 'node:fs'
import {access, readFile, stat} from 'node:fs/promises'
import path from 'node:path'

import {
  type ArchiveHead,
  checkSignature,
  ExitCode,
  Flags,
  formatSize,
  hostPlatform,
  hostStepCommands,
  KodCommand,
  KodError,
  listCommandsFlag,
  openBundle,
  packageError,
  parseSums,
  readBundleHead,
  runHostSteps,
  runSteps,
  step,
  SUMS_FILE,
  usageError,
  verifyKeyFrom,
} from 'kod/sdk'

import {toolsBundle, type ToolsBundleManifest} from '../bundle-kind.js'
import {cachedLibraries, missingLibraries} from '../host-libs.js'
import {DirectoryInTheWay, type Planned, planInstall} from '../install-plan.js'

type KeyObject = Awaited<ReturnType<typeof verifyKeyFrom>>

export default class DeployTools extends KodCommand {
  static override summary = 'Install a tools bundle (kod package-tools) into <prefix>/bin, kod into <prefix>/lib/kod, after verifying it.'

  static override description = `Runs on the air-gapped side. Verifies every checksum of the bundle (and with --verify-key its signature) before touching anything, then installs each tool into <prefix>/bin (mode 0755), kod into <prefix>/lib/kod with its own node, and <prefix>/bin/kod, a launcher that runs it and puts <prefix>/bin first on kod's PATH, so kod finds the tools installed with it (docs/tools.md).

A file that is already there with the same content is left alone, and said so. One with other content is refused (exit 2, nothing installed) unless --force, which replaces it. --list-commands prints every step as a shell command instead (install, cp, chmod), changing nothing: a bundle file is then unpacked into ./kod-tools-<version>-<os>-<arch>, which the commands copy from. A step that fails undoes the steps before it: nothing is left half-installed.`

  static override examples = [
    '<%= config.bin %> <%= command.id %> -c kod-tools-0.1.0-linux-amd64.kodbundle',
    {description: 'Into /opt/kod, replacing what is there:', command: '<%= config.bin %> <%= command.id %> -c kod-tools-0.1.0-linux-amd64.kodbundle --prefix /opt/kod --force'},
    {description: 'Print the steps, to review or run yourself:', command: '<%= config.bin %> <%= command.id %> -c kod-tools-0.1.0-linux-amd64.kodbundle --list-commands'},
    {description: 'Only a bundle signed with your key:', command: '<%= config.bin %> <%= command.id %> -c kod-tools-0.1.0-linux-amd64.kodbundle --verify-key kod-signing.pub'},
  ]

  static override enableJsonFlag = true

  static override flags = {
    bundle: Flags.string({char: 'c', summary: 'The tools bundle kod package-tools wrote (a file, or a directory it was unpacked into).', required: true}),
    prefix: Flags.string({summary: 'Install into <prefix>/bin and <prefix>/lib/kod.', default: '/usr/local'}),
    force: Flags.boolean({summary: 'Replace a tool (or kod) installed there with other content; without it, that is refused (exit 2).'}),
    'list-commands': listCommandsFlag,
    'verify-key': Flags.string({summary: 'Refuse the bundle unless its SHA256SUMS is signed with this Ed25519 key (PEM public key), checked before anything else.'}),
  }

  public async run(): Promise<{prefix: string; installed: Planned[]; listed?: string[]}> {
    const {flags} = await this.parse(DeployTools)
    const input = path.resolve(flags.bundle)
    const prefix = path.resolve(flags.prefix)
    const info = await stat(input).catch(() => undefined)
    if (!info) throw usageError(`bundle not found: ${flags.bundle}`)
    const verifyKey = await verifyKeyFrom(flags['verify-key'])
    await checkPrefix(prefix)
    const listing = flags['list-commands']
    const quiet = this.quiet(flags) || listing
    const shown = path.relative(process.cwd(), input) || input

    // First what the bundle says: a directory is verified whole where it is; a file's head is read
    // (manifest, SHA256SUMS, signature, checked with --verify-key), its body verified below, before any step.
    let manifest: ToolsBundleManifest | undefined
    let sumsText: string
    let head: ArchiveHead<ToolsBundleManifest> | undefined
    if (info.isDirectory()) {
      await runSteps([step(`Verify ${shown}`, `Verified ${shown}`, async () => void (manifest = (await openBundle(toolsBundle, input, {verifyKey, signal: this.abort.signal})).manifest))], {quiet})
      sumsText = await readFile(path.join(input, SUMS_FILE), 'utf8')
    } else {
      head = await readBundleHead(toolsBundle, input, this.abort.signal)
      if (verifyKey) checkSignature(head.sumsBytes, head.signature, verifyKey, input, 'bundle')
      if (head.sumsText === undefined) throw packageError(`${input}: ${SUMS_FILE} is missing; the bundle is incomplete`)
      manifest = head.manifest
      sumsText = head.sumsText
    }
    const bundle = manifest!
    checkAgreement(bundle, sumsText, input)
    await this.warnAboutHost(bundle)

    // Where the steps copy from: the directory given; for a file, scratch space (removed at the end), or
    // with --list-commands ./<name>-<version>-<os>-<arch>, which the printed commands need after kod exits.
    const bundleDir = info.isDirectory()
      ? input
      : listing
        ? path.resolve(`${bundle.name}-${bundle.version}-${bundle.platform.replaceAll('/', '-')}`)
        : path.join(await this.scratch(), 'bundle')
    const plan = await planInstall(bundle, bundleDir, prefix, flags.force, this.abort.signal).catch((error: unknown) => {
      if (error instanceof DirectoryInTheWay) throw usageError(`${error.dest} is a directory where deploy-tools installs a file: remove it or choose another --prefix`)
      throw error
    })
    if (plan.conflicts.length > 0) {
      const [first, ...rest] = plan.conflicts
      throw new KodError(
        `${first.path} holds ${first.there}, not the bundle's ${first.what}${rest.length > 0 ? `, and ${rest.length} more (${rest.map((conflict) => conflict.path).join(', ')})` : ''}: deploy-tools replaces installed files only with --force; nothing was installed`,
        {exit: ExitCode.usage, suggestions: [`${this.config.bin} deploy-tools -c ${flags.bundle} --prefix ${flags.prefix} --force`]},
      )
    }
    if (head) await this.verifyBody(input, head, listing || plan.steps.length > 0 ? bundleDir : undefined, verifyKey, quiet, shown, info.size)

    const ctx = await this.context()
    if (listing) {
      if (head) process.stderr.write(`The bundle is unpacked in ${bundleDir}: the commands below copy from there\n`)
      const commands = hostStepCommands(plan.steps, ctx.tools)
      for (const line of commands) this.log(line)
      if (plan.steps.length === 0) process.stderr.write(`Everything in the bundle is installed in ${prefix} already: nothing to do\n`)
      return {prefix, installed: plan.planned, listed: commands}
    }
    await this.checkWritable(prefix)
    await runHostSteps(plan.steps, {tools: ctx.tools, quiet: this.quiet(flags), signal: this.abort.signal})
    for (const entry of plan.planned) this.log(reportLine(entry, bundle))
    return {prefix, installed: plan.planned}
  }

  /**
   * Every checksum of a bundle file, against the head already read: extracted into `into` (which the steps
   * copy from) as it is verified, or only verified when nothing is to be installed. With --list-commands an
   * earlier unpack of the same bundle in `into` is verified and reused.
   */
  private async verifyBody(input: string, head: ArchiveHead<ToolsBundleManifest>, into: string | undefined, verifyKey: KeyObject, quiet: boolean, shown: string, size: number): Promise<void> {
    const sized = `${shown} (${formatSize(size)})`
    const there = into === undefined ? undefined : await stat(into).catch(() => undefined)
    if (into && there) {
      const same = there.isDirectory() && (await readFile(path.join(into, SUMS_FILE), 'utf8').catch(() => undefined)) === head.sumsText
      if (!same) throw usageError(`${into} exists and is not this bundle unpacked: remove it, or run kod deploy-tools from another directory`)
      await runSteps([step(`Verify ${shown} unpacked in ${into}`, `Verified ${shown} unpacked in ${into}`, () => openBundle(toolsBundle, into, {verifyKey, signal: this.abort.signal}))], {quiet})
      return
    }
    const [doing, did] = into ? [`Verify and unpack ${sized}`, `Verified and unpacked ${sized}`] : [`Verify ${sized}`, `Verified ${sized}`]
    await runSteps([step(doing, did, () => openBundle(toolsBundle, input, {into, head, verifyKey, signal: this.abort.signal}))], {quiet})
  }

  /** What the target host should know before running what it installs: another platform, missing shared libraries. */
  private async warnAboutHost(manifest: ToolsBundleManifest): Promise<void> {
    const log = this.logger()
    const host = hostPlatform()
    if (manifest.platform !== host) log.warn(`the bundle is for ${manifest.platform}, this host is ${host}: what it installs will not run here`)
    const dynamic = [...manifest.tools.map((tool) => ({name: tool.name, needs: tool.needs})), {name: 'node', needs: manifest.kod.node.needs}].filter((entry) => entry.needs && entry.needs.length > 0)
    if (dynamic.length === 0) return
    const cached = await cachedLibraries()
    for (const {name, needs} of dynamic) {
      if (!cached) {
        log.warn(`${name} is dynamically linked and needs ${needs!.join(', ')}; kod cannot list this host's libraries (no ldconfig) to check them`)
        continue
      }
      const missing = missingLibraries(needs!, cached)
      if (missing.length > 0) log.warn(`${name} is dynamically linked and needs ${missing.join(', ')}, which this host lacks (ldconfig -p): install them (the distribution's ${name} package brings them) before running it`)
    }
  }

  /** <prefix> (or the directory that would hold it) may be written: said before anything is done. */
  private async checkWritable(prefix: string): Promise<void> {
    for (const dir of [await nearestExisting(prefix), path.join(prefix, 'bin'), path.join(prefix, 'lib')]) {
      const there = await stat(dir).catch(() => undefined)
      if (!there?.isDirectory()) continue
      await access(dir, constants.W_OK).catch((error: NodeJS.ErrnoException) => {
        throw usageError(`cannot write into ${dir} (${error.code === 'EROFS' ? 'a read-only file system' : 'permission denied'}): run as a user who may (e.g. with sudo), or choose another --prefix`)
      })
    }
  }
}

/** The manifest's sha256 of each executable is the one SHA256SUMS vouches for (both are covered by the checks that follow). */
function checkAgreement(manifest: ToolsBundleManifest, sumsText: string, origin: string): void {
  const sums = parseSums(sumsText)
  for (const entry of [...manifest.tools, manifest.kod.node, manifest.kod.launcher]) {
    if (sums.get(entry.file) !== entry.sha256) {
      throw packageError(`${origin}: kod-bundle.yaml gives ${entry.file} the sha256 ${entry.sha256.slice(0, 12)}…, ${SUMS_FILE} another: the bundle was made by hand or tampered with; get a fresh copy`)
    }
  }
}

/** <prefix> itself, or the nearest directory above it that exists. */
async function nearestExisting(prefix: string): Promise<string> {
  let existing = prefix
  while (!(await stat(existing).catch(() => undefined))) existing = path.dirname(existing)
  return existing
}

/** --prefix names a directory, or a place one can be made: a file there (or above it) is refused before anything is read. */
async function checkPrefix(prefix: string): Promise<void> {
  const existing = await nearestExisting(prefix)
  if (!(await stat(existing)).isDirectory()) throw usageError(`--prefix ${prefix}: ${existing} is a file, not a directory`)
  for (const below of ['bin', 'lib']) {
    const there = await stat(path.join(prefix, below)).catch(() => undefined)
    if (there && !there.isDirectory()) throw usageError(`--prefix ${prefix}: ${path.join(prefix, below)} is a file where deploy-tools needs a directory: remove it or choose another --prefix`)
  }
}

/** One line of the report: what deploy-tools did with one thing. */
function reportLine(entry: Planned, manifest: ToolsBundleManifest): string {
  const kod = entry.what === 'kod' ? `, launcher ${path.join(path.dirname(path.dirname(entry.path)), 'bin', 'kod')}` : ''
  switch (entry.action) {
    case 'install': {
      return `installed ${entry.what} ${entry.version} into ${entry.path}${kod}`
    }
    case 'replace': {
      return `replaced ${entry.path} with ${entry.what} ${entry.version}${kod}`
    }
    default: {
      return `unchanged: ${entry.path} holds ${entry.what} ${entry.version} already (same content${entry.what === 'kod' ? `, ${manifest.kod.files} files` : ''})`
    }
  }
}
