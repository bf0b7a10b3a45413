import {Flags} from '@oclif/core'
import {existsSync} from 'node:fs'
import path from 'node:path'

import {AUTH_FILE_VARIABLE, checkPullSecretFlags, deployAction, type DeployResult} from '../lib/actions/deploy.js'
import {openPackage} from '../lib/actions/open.js'
import {optionsFor} from '../lib/source-flags.js'
import {ExitCode, KodError} from '../lib/errors.js'
import {checkNamespace, checkReleaseName} from '../lib/names.js'
import {checkReleaseFlag, scopedValuesFile, valuesFilesByUnit} from '../lib/units.js'
import {missingTool, toolAvailable} from '../lib/tools.js'
import {KodCommand, renderFlags, renderKnobsFrom, targetFlags, targetFrom, valuesFilesFrom, verifyKeyFlag, verifyKeyFrom} from '../lib/base-command.js'

export default class Deploy extends KodCommand {
  static override summary = 'Populate the private registry, then install the chart (or every release of a helmfile), every image pointed at that registry.'

  static override description = `Runs on the air-gapped side: kod populate, then a generated values file (kod-values-<chart>.yaml, written into the unpacked package) that points every image at the private registry, then

  helm upgrade --install <release> <chart> -n <namespace> --create-namespace \\
    -f <package-time values…> -f kod-values-<chart>.yaml -f <your -f files…>

so your own -f files win (and your --set, which helm ranks above every file). --set given to kod package becomes kod-set-<chart>.yaml, passed just before kod's file. Before pushing anything, kod renders the chart with exactly those values and refuses (exit 6) if any image — in an image field, a container argument or env value, or a pod template kept in a ConfigMap — would be pulled from anywhere but the private registry, unless it was accepted when the package was made (kod package --allow-external) or you accept it by name with --allow-external; before installing, it refuses if an image is missing from the registry. It pushes as populate does: what the registry already holds with the same digest is not pushed again, and a tag holding other content is refused (exit 7) unless --force-push. What the package recorded as not relocatable is repeated first. Nothing is installed into the cluster besides your chart; the chart itself is never modified.

--no-install and --list-commands:
  (neither)                        populate, check, helm upgrade --install
  --no-install                     populate, check, write the values; stderr says which helm command to run
  --no-install --list-commands     populate, check, write the values; stdout holds only the helm command(s),
                                   to extend and run yourself (the air-gap workflow)
  --list-commands                  print the pushes and the helm command(s); push and install nothing
                                   (the package is unpacked and the values written, so they run as printed)

A helmfile package installs every release: through a derived helmfile written beside the packaged one (helmfile apply; --sync for helmfile sync), or with --helm release by release in needs order (no helmfile binary needed). -n is the namespace of releases that name none, -d is refused (each release keeps its name), -f FILE goes to every release and -f RELEASE=FILE to that release only (docs/helmfile.md).

Pull secrets: --image-pull-secret NAME (repeatable) gives every pod of every release the pull secret NAME. kod finds the chart's values that set pull secrets as it finds images, by rendering (global.imagePullSecrets, imagePullSecrets, image.pullSecrets, per-component keys; lists of names or of {name} maps, whichever the chart takes), writes the fewest that reach every pod into kod's values file (kod-values-<chart>.yaml; one per release for a helmfile), keeping the secrets the package-time values already give, and warns about pods no value reaches and values your own -f files or --set set (yours win: add NAME there). --create-secret also creates or updates that secret (the first NAME) in each release namespace before helm runs, as a docker-registry secret holding the --registry-username login, with kubectl (KOD_KUBECTL; the password is in no argument). With --list-commands or --no-install it is printed instead, reading the login from the docker config.json named by $${AUTH_FILE_VARIABLE} (docs/pull-secrets.md).

A package file given with -c is unpacked into ./kod-<chart>-<version> (reused if it already holds the same package; replaced if it holds an unchanged unpack of another build of the same version; otherwise refused with the fix), so the generated values file and the printed commands stay valid after kod exits.`

  static override examples = [
    '<%= config.bin %> <%= command.id %> -c kod-mychart-1.2.3.kodpkg -r registry.local:5000 -n mynamespace -d myrelease',
    {
      description: 'Deploy what an earlier populate put into the registry, with no local package (images checked by digest, the chart installed from the registry):',
      command: '<%= config.bin %> <%= command.id %> -c oci://registry.local:5000/kod/packages/mychart:1.2.3 -r registry.local:5000 -n mynamespace -d myrelease',
    },
    '<%= config.bin %> <%= command.id %> -c kod-mychart-1.2.3.kodpkg -r registry.local:5000 --plain-http -f prod.yaml --wait',
    {
      description: 'Fill the registry, then print the helm command to extend and run yourself:',
      command: '<%= config.bin %> <%= command.id %> --no-install --list-commands -c /tmp/kod-mychart-1.2.3/ -r https://myregistry:8080/ -n mynamespace',
    },
    {
      description: 'Print every command (pushes and helm) without running any:',
      command: '<%= config.bin %> <%= command.id %> --list-commands -c kod-mychart-1.2.3.kodpkg -r registry.local:5000 -n mynamespace',
    },
    {
      description: 'Accept an image the chart hard-codes, pulled from outside the private registry:',
      command: '<%= config.bin %> <%= command.id %> -c ./kod-mychart-1.2.3 -r registry.local:5000 --allow-external docker.io/library/busybox:1.28',
    },
    {
      description: 'A registry that needs a login, the password read from a file:',
      command: 'cat registry-password.txt | <%= config.bin %> <%= command.id %> -c ./kod-mychart-1.2.3 -r harbor.corp --registry-username robot --registry-password-stdin',
    },
    {description: "Helm's client-side dry run:", command: '<%= config.bin %> <%= command.id %> -c ./kod-mychart-1.2.3 -r registry.local:5000 --dry-run'},
    {
      description: 'Give every pod a pull secret, created from the registry login before helm runs:',
      command:
        'cat registry-password.txt | <%= config.bin %> <%= command.id %> -c ./kod-mychart-1.2.3 -r harbor.corp -n shop --registry-username robot --registry-password-stdin --image-pull-secret harbor-pull --create-secret',
    },
    {
      description: 'The same, printed: the secret step reads a docker config.json you make (no password in what is printed):',
      command: '<%= config.bin %> <%= command.id %> --no-install --list-commands -c ./kod-mychart-1.2.3 -r harbor.corp -n shop --image-pull-secret harbor-pull --create-secret',
    },
    {
      description: 'A helmfile package, installed release by release with helm (no helmfile binary needed):',
      command: '<%= config.bin %> <%= command.id %> -c kod-shop-2026.11.kodpkg -r registry.local:5000 --helm -f web=web-prod.yaml',
    },
  ]

  static override enableJsonFlag = true

  static override flags = {
    package: Flags.string({
      char: 'c',
      summary: 'The package: a .kodpkg file, an unpacked package directory, or oci://<registry>/<prefix>/packages/<name>:<version> where populate put it (nothing local needed: docs/registry.md).',
      required: true,
    }),
    'verify-key': verifyKeyFlag,
    ...targetFlags,
    namespace: Flags.string({char: 'n', summary: "Namespace to install into (helm's -n; created if missing); with several releases, the namespace of each release that names none."}),
    release: Flags.string({char: 'd', summary: 'Release name (default: the chart name); only for a package with one release.'}),
    values: Flags.string({
      char: 'f',
      summary: "Your values file (repeatable), passed to helm after kod's, so it wins; RELEASE=FILE gives it to that release only (a package with several releases).",
      multiple: true,
      multipleNonGreedy: true,
    }),
    wait: Flags.boolean({summary: "Passed to helm: wait until the release's resources are ready."}),
    'dry-run': Flags.boolean({summary: "Passed to helm as --dry-run=client: render and simulate the install, change nothing in the cluster."}),
    'no-install': Flags.boolean({summary: 'Stop before helm: populate the registry and write the values files; say which helm command to run.'}),
    'list-commands': Flags.boolean({
      summary: 'Print commands on stdout, one per line: alone, the pushes and helm, running nothing; with --no-install, only helm, after populating. They rely on your own skopeo and helm registry logins, never on --registry-username.',
    }),
    'allow-external': Flags.string({
      summary: 'Accept this image from outside the private registry (repeatable; any spelling of the reference): deploy warns instead of refusing.',
      multiple: true,
      multipleNonGreedy: true,
    }),
    'image-pull-secret': Flags.string({
      summary: "Give every pod of the release(s) this pull secret (repeatable): kod finds the chart's pull-secret values by rendering and writes them into kod's values file, keeping those the values already give.",
      multiple: true,
      multipleNonGreedy: true,
    }),
    'create-secret': Flags.boolean({
      summary:
        'Create or update the first --image-pull-secret in each release namespace before helm runs: a docker-registry secret holding the --registry-username login, made with kubectl (the password in no argument). With --list-commands or --no-install, printed instead, reading the login from the file named by $' +
        AUTH_FILE_VARIABLE +
        '.',
    }),
    'force-push': Flags.boolean({
      summary: "Move tags the registry already holds with other content to this package's images and charts (refused otherwise, exit 7). Not helm's --force, which kod does not pass.",
    }),
    ...renderFlags,
  }

  public async run(): Promise<DeployResult> {
    const {flags, sourceFlags} = await this.parseWithSourceFlags(Deploy, 'deploy')
    const target = targetFrom(flags)
    checkReleaseName(flags.release)
    checkNamespace(flags.namespace)
    // kod runs the --create-secret step itself unless it only prints the commands.
    const createsSecret = flags['create-secret'] && !flags['list-commands'] && !flags['no-install']
    const pullSecrets = checkPullSecretFlags({
      names: flags['image-pull-secret'] ?? [],
      createSecret: flags['create-secret'],
      runs: createsSecret,
      login: flags['registry-username'] !== undefined || flags['registry-password-stdin'],
    })
    // Before unpacking anything: every -f names a file, as FILE or as RELEASE=FILE.
    await valuesFilesFrom((flags.values ?? []).map((value) => (existsSync(value) || !value.includes('=') ? value : value.slice(value.indexOf('=') + 1))))
    await this.loginTarget(flags, target)
    const ctx = await this.context()
    // Before the package is unpacked: the tool --create-secret runs.
    if (createsSecret && !(await toolAvailable(ctx.tools, 'kubectl'))) throw missingTool(ctx.tools, 'kubectl')
    const pkg = await openPackage(flags.package, {
      verifyKey: await verifyKeyFrom(flags['verify-key']),
      unpackTo: {parent: process.cwd()},
      reuse: true,
      // -c oci://…: the metadata and charts from the registry; kept beside the user only when printed helm commands name them.
      registry: {
        tools: ctx.tools,
        scratch: ctx.tmpDir,
        insecure: {plainHttp: target.plainHttp, skipTlsVerify: target.insecureSkipTlsVerify},
        charts: true,
        ...(flags['list-commands'] || flags['no-install'] ? {keep: process.cwd()} : {}),
      },
      quiet: this.quiet(flags) || (flags['list-commands'] && !flags['no-install']),
      signal: this.abort.signal,
    })
    if (pkg.note) this.logToStderr(pkg.note)
    const source = (await this.sources()).get(pkg.manifest.source.kind)
    checkReleaseFlag(pkg.manifest, flags.release)
    const given = (flags.values ?? []).map((value) => scopedValuesFile(value, pkg.manifest))
    const files = await valuesFilesFrom(given.map((entry) => entry.file))
    const valuesFiles = valuesFilesByUnit(pkg.manifest, given.map((entry, index) => ({...entry, file: files[index]})))
    const listCommands = flags['list-commands']
    const result = await deployAction(
      ctx,
      source,
      pkg,
      {
        target,
        namespace: flags.namespace,
        release: flags.release,
        valuesFiles,
        wait: flags.wait,
        dryRun: flags['dry-run'],
        render: renderKnobsFrom(flags),
        options: optionsFor(source, sourceFlags),
        ...(pullSecrets.length > 0 ? {imagePullSecrets: pullSecrets} : {}),
      },
      {
        listCommands,
        noInstall: flags['no-install'],
        quiet: this.quiet(flags) || (listCommands && !flags['no-install']),
        stream: !this.jsonEnabled(),
        allowExternal: flags['allow-external'],
        force: flags['force-push'],
        ...(flags['create-secret']
          ? {createSecret: {name: pullSecrets[0], ...(createsSecret ? {authFile: await this.targetLoginFile()} : {}), ...(flags['registry-username'] ? {username: flags['registry-username'].trim()} : {})}}
          : {}),
        print: (line) => this.log(line),
      },
    )
    if (result.installed) {
      this.logToStderr(`deployed ${pkg.manifest.name} ${pkg.manifest.version}${flags['dry-run'] ? ' (dry run)' : ''}`)
    } else if (result.populated) {
      this.logToStderr(`registry ${target.registry} populated; values for helm in ${result.valuesFiles.map((file) => path.relative(process.cwd(), file) || file).join(', ')}`)
      if (!listCommands) this.logToStderr(`to install, run:\n${[...result.createSecret, ...result.install].join('\n')}`)
    }
    return result
  }

  /**
   * The docker config.json --registry-username wrote for skopeo and helm (KodCommand.loginTarget: one
   * `auths` entry, for the target's host, mode 0600 in kod's scratch directory): what --create-secret's
   * secret holds, passed to kubectl by its path.
   */
  private async targetLoginFile(): Promise<string> {
    const file = this.targetAuthFile
    if (!file || !existsSync(file)) throw new KodError('--create-secret: the registry login file is missing (kod bug)', {exit: ExitCode.failure})
    return file
  }
}
