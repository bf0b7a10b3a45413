import {Flags} from '@oclif/core'

import {planCommands, planPopulate, runPopulate} from '../lib/actions/deploy.js'
import {openPackage} from '../lib/actions/open.js'
import {KodCommand, packageFlag, targetFlags, targetFrom} from '../lib/base-command.js'
import {formatCommand} from '../lib/tools.js'

export default class Populate extends KodCommand {
  static override summary = "Push a package's images and charts into a private registry."

  static override description = `Runs on the air-gapped side. Every image goes to <registry>/<prefix>/<original-host>/<original-repository> with its original tag and digest (skopeo copy --all --preserve-digests); a port in the original host becomes "-<port>". Each chart is pushed as an OCI artifact to oci://<registry>/<prefix>/charts with helm push. Credentials come from the usual auth files (skopeo login, helm registry login).`

  static override examples = [
    '<%= config.bin %> <%= command.id %> -c kod-mychart-1.2.3.kodpkg -r registry.local:5000 --plain-http',
    '<%= config.bin %> <%= command.id %> -c ./kod-mychart-1.2.3 -r https://harbor.corp/airgap --prefix mirror',
    {description: 'Print the commands instead of running them:', command: '<%= config.bin %> <%= command.id %> -c ./kod-mychart-1.2.3 -r registry.local:5000 --list-commands'},
  ]

  static override enableJsonFlag = true

  static override flags = {
    package: packageFlag,
    ...targetFlags,
    'list-commands': Flags.boolean({summary: 'Print the commands, one per line, instead of running them (needs an unpacked package directory).'}),
  }

  public async run(): Promise<{registry: string; images: string[]; commands: string[]}> {
    const {flags} = await this.parse(Populate)
    const target = targetFrom(flags)
    const ctx = await this.context()
    const pkg = await openPackage(flags.package, {unpackTo: {parent: ctx.tmpDir}, signal: this.abort.signal})
    const source = (await this.sources()).get(pkg.manifest.source.kind)
    const plan = planPopulate(ctx, source, pkg, target)
    const commands = planCommands(plan).map((command) => formatCommand(ctx.tools, command))
    if (flags['list-commands']) {
      if (pkg.unpacked) this.warn('the package was unpacked into a temporary directory that is removed on exit; unpack it first (kod unpack) to run these commands')
      for (const line of commands) this.log(line)
    } else {
      await runPopulate(ctx, plan, this.quiet(flags))
      this.logToStderr(`pushed ${plan.images.length} image(s) and ${plan.charts.length} chart(s) to ${target.registry}`)
    }
    return {registry: target.registry, images: plan.images.map((image) => image.to), commands}
  }
}
