import {Flags} from '@oclif/core'

import type {KeyObject} from 'node:crypto'
import {stat} from 'node:fs/promises'
import path from 'node:path'

import type {SourceContext, Target} from '../api.js'
import {openPackage, packageWarnings} from '../lib/actions/open.js'
import {describeOutcome, type HeldAnswers, planCommands, planPopulate, populatedAlready, prepareKodinfo, pushArtifact, runPopulate} from '../lib/actions/populate.js'
import {isRegistryInput} from '../lib/actions/registry-package.js'
import {KodCommand, packageFlag, targetFlags, targetFrom, verifyKeyFlag, verifyKeyFrom} from '../lib/base-command.js'
import {usageError} from '../lib/errors.js'
import {ARCHIVE_TAG_SUFFIX, artifactPushCommand, kodinfoReference, writeArchiveArtifact} from '../lib/kodinfo.js'
import {packageBaseName, readArchiveHead, verifyArchive} from '../lib/kodpkg.js'
import {runSteps, step} from '../lib/progress.js'
import {checkSignature} from '../lib/signing.js'
import {formatCommand} from '../lib/tools.js'

export default class Populate extends KodCommand {
  static override summary = "Push a package's images and charts into a private registry."

  static override description = `Runs on the air-gapped side. Every image goes to <registry>/<prefix>/<original-host>/<original-repository> with its original tag and digest (skopeo copy --all --preserve-digests); a port in the original host becomes "-<port>". Each chart is pushed as an OCI artifact to oci://<registry>/<prefix>/charts with helm push. Credentials come from --registry-username with --registry-password-stdin (the password piped into kod, handed to skopeo and helm in a temporary auth file, never an argument), or else from your own logins (skopeo login, helm registry login).

Before pushing, populate repeats as warnings what the package records for the operator: images kod cannot relocate through values, and anything else found at package time.

A package file is unpacked into ./kod-<chart>-<version>, as deploy does (reused if it already holds the same package, replaced if it holds an unchanged unpack of an earlier build of the same version), so printed commands stay valid after kod exits and an interrupted populate resumes without extracting again. When the registry already holds every image, every chart and the package's metadata with the digests the package records, nothing is unpacked or pushed: only the package's head is read.

What the registry already holds under the same tag with the same digest is not pushed again, so a populate that was interrupted finishes the rest when run again (and skopeo sends only the blobs the registry lacks). A tag that holds different content is refused (exit 7) unless --force. A registry that stops answering mid-push is retried with backoff (1, 2, 4, 8, 16 s).`

  static override examples = [
    '<%= config.bin %> <%= command.id %> -c kod-mychart-1.2.3.kodpkg -r registry.local:5000 --plain-http',
    '<%= config.bin %> <%= command.id %> -c ./kod-mychart-1.2.3 -r https://harbor.corp/airgap --prefix mirror',
    {
      description: 'A registry that needs a login, the password read from a file:',
      command: 'cat registry-password.txt | <%= config.bin %> <%= command.id %> -c ./kod-mychart-1.2.3 -r harbor.corp --registry-username robot --registry-password-stdin',
    },
    {description: 'Print the commands instead of running them:', command: '<%= config.bin %> <%= command.id %> -c ./kod-mychart-1.2.3 -r registry.local:5000 --list-commands'},
  ]

  static override enableJsonFlag = true

  static override flags = {
    package: packageFlag,
    'verify-key': verifyKeyFlag,
    ...targetFlags,
    force: Flags.boolean({
      summary: 'Move tags the registry already holds with other content to this package\'s images and charts (refused otherwise, exit 7). Also spelt --force-push, as deploy names it.',
      aliases: ['force-push'],
    }),
    'as-artifact': Flags.boolean({
      summary: 'Push the package file itself as one OCI artifact to <registry>/<prefix>/packages/<name>:<version>.kodpkg (kod pull gets it back), instead of its images and charts.',
    }),
    'list-commands': Flags.boolean({
      summary: 'Print the commands, one per line, instead of running them; a package file is unpacked into ./kod-<chart>-<version> so they stay valid. They rely on your own skopeo and helm registry logins, never on --registry-username.',
    }),
  }

  public async run(): Promise<{registry: string; images: string[]; commands: string[]; warnings: string[]}> {
    const {flags} = await this.parse(Populate)
    const target = targetFrom(flags)
    await this.loginTarget(flags, target)
    const ctx = await this.context()
    const listCommands = flags['list-commands']
    if (flags['as-artifact']) return this.asArtifact(flags, target, ctx)
    const verifyKey = await verifyKeyFrom(flags['verify-key'])
    // What the registry answered when asked whether it holds the package already: not asked again before the pushes.
    const answers: HeldAnswers = new Map()
    if (!listCommands) {
      const done = await this.populatedAlready(flags.package, verifyKey, target, ctx, answers)
      if (done) return done
    }
    // Unpacked where deploy unpacks, never into a temporary copy: printed commands name its files and
    // must outlive this run, and a populate that is interrupted resumes from it without extracting again.
    const pkg = await openPackage(flags.package, {
      verifyKey,
      unpackTo: {parent: process.cwd()},
      reuse: true,
      quiet: this.quiet(flags) || listCommands,
      signal: this.abort.signal,
    })
    if (pkg.note) this.logToStderr(pkg.note)
    const warnings = packageWarnings(pkg.manifest)
    for (const warning of warnings) ctx.log.warn(warning)
    const source = (await this.sources()).get(pkg.manifest.source.kind)
    const plan = planPopulate(ctx, source, pkg, target, await prepareKodinfo(ctx, pkg, target))
    const commands = planCommands(plan).map((command) => formatCommand(ctx.tools, command))
    if (listCommands) {
      for (const line of commands) this.log(line)
    } else {
      const outcome = await runPopulate(ctx, plan, {quiet: this.quiet(flags), force: flags.force, answers})
      this.logToStderr(describeOutcome(outcome, target.registry))
    }
    return {registry: target.registry, images: plan.images.map((image) => image.to), commands, warnings, ...(plan.kodinfo ? {package: `oci://${plan.kodinfo.to}`} : {})}
  }

  /**
   * A package file whose images, charts and metadata the registry holds already, with the same digests
   * (populatedAlready, from the archive's head and the registry alone): nothing to push, and nothing is
   * unpacked. Undefined when -c is no package file or something is missing: the full populate runs.
   */
  private async populatedAlready(
    input: string,
    verifyKey: KeyObject | undefined,
    target: Target,
    ctx: SourceContext,
    answers: HeldAnswers,
  ): Promise<{registry: string; images: string[]; commands: string[]; warnings: string[]; package: string} | undefined> {
    const info = isRegistryInput(input) ? undefined : await stat(input).catch(() => undefined)
    if (!info?.isFile()) return undefined
    // The plugins' sources load while the head is read (the plan of the chart pushes needs one).
    const sources = this.sources()
    sources.catch(() => {})
    const head = await readArchiveHead(input, this.abort.signal)
    // The signature first, as when unpacking: the package's claims are believed only once it is checked.
    if (verifyKey) checkSignature(head.sumsBytes, head.signature, verifyKey, input)
    const source = (await sources).get(head.manifest.source.kind)
    const dir = path.resolve(packageBaseName(head.manifest.name, head.manifest.version))
    const plan = await populatedAlready(ctx, source, head, dir, target, answers)
    if (!plan) return undefined
    const warnings = packageWarnings(head.manifest)
    for (const warning of warnings) ctx.log.warn(warning)
    const reference = kodinfoReference(target, head.manifest)
    this.logToStderr(
      `${target.registry} holds every image and chart of ${input} already, with the same digests, and its metadata at ${reference}: nothing to push, nothing unpacked; deploy from the registry with kod deploy -c oci://${reference}`,
    )
    return {registry: target.registry, images: plan.images.map((image) => image.to), commands: [], warnings, package: `oci://${reference}`}
  }

  /**
   * --as-artifact: the package file itself, verified, pushed as one OCI artifact to
   * <registry>/<prefix>/packages/<name>:<version>.kodpkg, for sites that stage packages in the registry
   * (kod pull gets it back). Nothing is unpacked and no image is pushed.
   */
  private async asArtifact(
    flags: {package: string; 'verify-key'?: string; 'list-commands': boolean; force: boolean; json?: boolean},
    target: Target,
    ctx: SourceContext,
  ): Promise<{registry: string; images: string[]; commands: string[]; warnings: string[]; package: string}> {
    const file = flags.package
    const info = await stat(file).catch(() => undefined)
    if (!info) throw usageError(`package not found: ${file}`)
    if (!info.isFile()) throw usageError(`--as-artifact pushes a package file, and ${file} is a directory: give the .kodpkg file with -c`)
    const verifyKey = await verifyKeyFrom(flags['verify-key'])
    const head = await readArchiveHead(file, this.abort.signal)
    if (verifyKey) checkSignature(head.sumsBytes, head.signature, verifyKey, file)
    await runSteps([step(`Verify ${path.basename(file)}`, `Verified ${path.basename(file)}`, () => verifyArchive(file, this.abort.signal))], {quiet: this.quiet(flags) || flags['list-commands']})
    const to = kodinfoReference(target, head.manifest, ARCHIVE_TAG_SUFFIX)
    // Printed commands name the layout: it goes beside the user then, else into scratch space.
    const layoutDir = flags['list-commands'] ? path.join(process.cwd(), `${packageBaseName(head.manifest.name, head.manifest.version)}.artifact`) : path.join(ctx.tmpDir, 'artifact')
    const layout = await writeArchiveArtifact(layoutDir, file, head.manifest)
    const command = artifactPushCommand(layout.layout, layout.name, to, target)
    const line = formatCommand(ctx.tools, command)
    if (flags['list-commands']) {
      this.log(line)
    } else {
      await pushArtifact(ctx, {layout: layout.layout, name: layout.name, digest: layout.digest, to, command}, target, {quiet: this.quiet(flags), force: flags.force})
      this.logToStderr(`pushed ${path.basename(file)} to ${to}; get it back with kod pull -c oci://${to}`)
    }
    return {registry: target.registry, images: [], commands: [line], warnings: [], package: `oci://${to}`}
  }
}
