import {Flags} from '@oclif/core'

import {describeOutcome, planCommands, planPopulate, runPopulate} from '../lib/actions/populate.js'
import {openPackage, packageWarnings} from '../lib/actions/open.js'
import {KodCommand, packageFlag, targetFlags, targetFrom, verifyKeyFlag, verifyKeyFrom} from '../lib/base-command.js'
import {formatCommand} from '../lib/tools.js'

export default class Populate extends KodCommand {
  static override summary = "Push a package's images and charts into a private registry."

  static override description = `Runs on the air-gapped side. Every image goes to <registry>/<prefix>/<original-host>/<original-repository> with its original tag and digest (skopeo copy --all --preserve-digests); a port in the original host becomes "-<port>". Each chart is pushed as an OCI artifact to oci://<registry>/<prefix>/charts with helm push. Credentials come from --registry-username with --registry-password-stdin (the password piped into kod, handed to skopeo and helm in a temporary auth file, never an argument), or else from your own logins (skopeo login, helm registry login).

Before pushing, populate repeats as warnings what the package records for the operator: images kod cannot relocate through values, and anything else found at package time.

A package file is unpacked into ./kod-<chart>-<version>, as deploy does (reused if it already holds the same package, replaced if it holds an unchanged unpack of an earlier build of the same version), so printed commands stay valid after kod exits and an interrupted populate resumes without extracting again.

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
      summary: 'Move tags the registry already holds with other content to this package\'s images and charts (refused otherwise, exit 7).',
      aliases: ['force-push'],
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
    // Unpacked where deploy unpacks, never into a temporary copy: printed commands name its files and
    // must outlive this run, and a populate that is interrupted resumes from it without extracting again.
    const pkg = await openPackage(flags.package, {
      verifyKey: await verifyKeyFrom(flags['verify-key']),
      unpackTo: {parent: process.cwd()},
      reuse: true,
      quiet: this.quiet(flags) || listCommands,
      signal: this.abort.signal,
    })
    if (pkg.note) this.logToStderr(pkg.note)
    const warnings = packageWarnings(pkg.manifest)
    for (const warning of warnings) ctx.log.warn(warning)
    const source = (await this.sources()).get(pkg.manifest.source.kind)
    const plan = planPopulate(ctx, source, pkg, target)
    const commands = planCommands(plan).map((command) => formatCommand(ctx.tools, command))
    if (listCommands) {
      for (const line of commands) this.log(line)
    } else {
      const outcome = await runPopulate(ctx, plan, {quiet: this.quiet(flags), force: flags.force})
      this.logToStderr(describeOutcome(outcome, target.registry))
    }
    return {registry: target.registry, images: plan.images.map((image) => image.to), commands, warnings}
  }
}
