import type {KeyObject} from 'node:crypto'
import {lstat, mkdir, readFile, rm, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {
  createToolRunner,
  errorDetail,
  ExitCode,
  Flags,
  hostPlatform,
  hostStepCommands,
  type HostStep,
  hostSteps,
  KodCommand,
  KodError,
  listCommandsFlag,
  missingTool,
  openBundle,
  packageError,
  readBundleHead,
  runHostSteps,
  runSteps,
  sha256File,
  shellCommand,
  step,
  SUMS_FILE,
  toolAvailable,
  type ToolRunner,
  usageError,
  verifyKeyFlag,
  verifyKeyFrom,
} from 'kod/sdk'

import {zotBundle, type ZotBundleManifest} from '../bundle-kind.js'
import {addressProblem, checkConfig, portProblem, type ZotConfig} from '../config.js'
import {checkHtpasswd} from '../htpasswd.js'
import {DEFAULT_ADDRESS, DEFAULT_PORT, DEFAULT_STORAGE, normalStorage, PATHS, SERVICE_NAME, storageProblem, underRoot, ZOT_GROUP, ZOT_USER} from '../layout.js'
import {binaryOf, BUNDLE_FILES} from '../manifest.js'
import {type InstallFile, type InstallPlan, planInstall, useraddArgs} from '../plan.js'
import {registerZotTools} from '../tools.js'

export default class DeployZot extends KodCommand {
  static override summary = 'Install the zot registry from a bundle of package-zot as a hardened systemd service: binary, config, unit, user, directories.'

  static override description = `Verifies the bundle (every checksum, and the signature with --verify-key), the flags and the files they name before touching anything; runs the bundle's \`zot verify\` on the config it writes when that zot answers it; then installs zot (and zli) into /usr/local/bin, the config into /etc/zot, the unit into /etc/systemd/system, makes the user zot and the storage directory, and runs systemctl daemon-reload and enable --now zot.service (not with --no-start). A step that fails undoes the ones before it. A different file already installed is replaced only with --force.

--root DIR writes every file below DIR (an image being built, a test) with the paths inside the config and the unit unchanged; it never runs useradd or systemctl: systemd makes the user and gives zot its storage at boot (sysusers.d and tmpfiles.d entries kod installs), and kod says what it skipped. --list-commands prints every step, installing nothing: a bundle file is unpacked into ./kod-zot-<version>/bundle, which the printed commands read (docs/zot.md).`

  static override examples = [
    {description: 'Install and start zot on this host, on port 5000 of every address:', command: '<%= config.bin %> <%= command.id %> -c kod-zot-v2.1.2-linux-amd64.kodbundle'},
    {description: 'With TLS and a login (bcrypt htpasswd: htpasswd -nbB user password):', command: '<%= config.bin %> <%= command.id %> -c zot.kodbundle --tls-cert server.crt --tls-key server.key --htpasswd htpasswd'},
    {description: 'See every step first:', command: '<%= config.bin %> <%= command.id %> -c zot.kodbundle --list-commands'},
    {description: 'Into an image being built (nothing run on this host):', command: '<%= config.bin %> <%= command.id %> -c zot.kodbundle --root /mnt/image'},
  ]

  static override flags = {
    bundle: Flags.string({char: 'c', summary: 'The zot bundle: a .kodbundle file from kod package-zot, or the directory it was unpacked into.', required: true}),
    root: Flags.string({summary: 'Install below this directory instead of / (an image being built); runs no useradd and no systemctl.'}),
    port: Flags.integer({summary: 'The TCP port zot listens on.', default: DEFAULT_PORT}),
    address: Flags.string({summary: "The address zot listens on (zot's own default would be 127.0.0.1 only).", default: DEFAULT_ADDRESS}),
    storage: Flags.string({summary: 'The directory zot stores images in: the only one the unit lets zot write.', default: DEFAULT_STORAGE}),
    'tls-cert': Flags.string({summary: 'Serve HTTPS with this PEM certificate (with --tls-key); installed as /etc/zot/tls/server.crt.', dependsOn: ['tls-key']}),
    'tls-key': Flags.string({summary: 'The PEM private key of --tls-cert (unencrypted); installed as /etc/zot/tls/server.key, readable by zot only.', dependsOn: ['tls-cert']}),
    htpasswd: Flags.string({summary: 'Require a login: an htpasswd file of bcrypt hashes only (htpasswd -nbB user password); installed as /etc/zot/htpasswd.'}),
    'no-start': Flags.boolean({summary: 'Install, and run systemctl daemon-reload, but do not enable or start zot.service.'}),
    'list-commands': listCommandsFlag,
    'verify-key': verifyKeyFlag,
    force: Flags.boolean({summary: 'Replace a zot, config or unit already installed that differs from what this deploy installs.'}),
  }

  public async run(): Promise<void> {
    const {flags} = await this.parse(DeployZot)
    registerZotTools()
    const list = flags['list-commands']
    const log = this.logger()

    // 1. The flags and the files they name, before anything else.
    const addressIssue = addressProblem(flags.address)
    if (addressIssue) throw usageError(addressIssue)
    const portIssue = portProblem(flags.port)
    if (portIssue) throw usageError(portIssue)
    const storageIssue = storageProblem(flags.storage)
    if (storageIssue) throw usageError(storageIssue)
    const storage = normalStorage(flags.storage)
    const root = await rootDirectory(flags.root)
    const htpasswd = flags.htpasswd === undefined ? undefined : await checkedHtpasswd(flags.htpasswd)
    const tls = flags['tls-cert'] && flags['tls-key'] ? await checkedTls(flags['tls-cert'], flags['tls-key']) : undefined
    if (!list && root === undefined && process.getuid?.() !== 0) {
      throw usageError('deploy-zot installs into /usr/local/bin, /etc and systemd and adds a user: run it as root (sudo), or give --root DIR to install below a directory, or --list-commands to see the steps')
    }
    const verifyKey = await verifyKeyFrom(flags['verify-key'])

    // 2. The bundle: every checksum (and the signature), then what it says.
    const input = path.resolve(flags.bundle)
    const quiet = this.quiet({}) || list
    const {manifest, dir} = await this.openZotBundle(input, list, {verifyKey, quiet})
    const template = await checkedBundle(manifest, dir, input)
    const zot = binaryOf(manifest, 'zot')!
    const host = hostPlatform()
    const runnable = zot.platform === undefined || zot.platform === host
    if (zot.platform === undefined) log.warn(`the bundle's zot is ${zot.note ?? 'of no platform kod knows'}: kod cannot check that it runs on this ${host} host`)
    else if (!runnable && root === undefined) throw usageError(`${input} holds zot for ${zot.platform}; this host is ${host}: bundle the ${host} release with kod package-zot`)
    else if (!runnable) log.warn(`the bundle's zot is for ${zot.platform}, not this ${host} host: installed below ${root} as it is, and not run`)

    // 3. What to install, and the files kod generates for it.
    const plan = planInstall(template, {settings: {address: flags.address, port: flags.port, storage}, zli: binaryOf(manifest, 'zli') !== undefined, start: !flags['no-start']}, {
      ...(htpasswd ? {htpasswd} : {}),
      ...(tls ? {tlsCert: tls.cert, tlsKey: tls.key} : {}),
    })
    const filesDir = list ? path.join(this.keptDir(manifest), 'files') : path.join(await this.scratch(), 'files')
    await rm(filesDir, {recursive: true, force: true})
    await mkdir(filesDir, {recursive: true})
    const sourceOf = (file: InstallFile): string => (file.source.kind === 'bundle' ? path.join(dir, file.source.file) : file.source.kind === 'given' ? file.source.file : path.join(filesDir, file.source.name))
    for (const file of plan.files) if (file.source.kind === 'generated') await writeFile(sourceOf(file), file.source.content, {mode: 0o644})

    // 4. What is there already: identical files are installed again (their mode and owner set), different ones only with --force.
    const replaced = await this.checkInstalled(plan, root, sourceOf, flags.force)
    const tools = (await this.context()).tools
    const {steps, skipped} = await this.hostSteps(plan, root, sourceOf, tools, replaced.length > 0)
    const verify = zot.verify && runnable ? {binary: path.join(dir, BUNDLE_FILES.zot), config: path.join(filesDir, 'config.json')} : undefined
    if (zot.verify && !runnable) log.warn(`zot verify not run: the bundle's zot is for ${zot.platform}`)

    if (list) {
      if (verify) this.log(shellCommand([verify.binary, 'verify', verify.config]))
      for (const line of hostStepCommands(steps, tools)) this.log(line)
      for (const line of skipped) log.info(line)
      log.info(`The printed commands read ${dir === input ? input : path.dirname(filesDir) + '/bundle'} (the bundle${dir === input ? '' : ', unpacked'}) and ${filesDir} (the files deploy-zot generated): keep them until the commands have run`)
      return
    }

    // 5. Every tool a step runs is there, and zot accepts the config, before the first change.
    for (const tool of new Set(steps.map((entry) => entry.tool))) if (!(await toolAvailable(tools, tool))) throw missingTool(tools, tool)
    if (verify) await runSteps([step('Check the config with zot verify', 'zot verify accepted the config', () => this.zotVerify(verify))], {quiet})
    for (const file of replaced) log.warn(`--force: replacing ${file}`)
    await runHostSteps(steps, {tools, quiet, signal: this.abort.signal})
    for (const line of skipped) log.info(line)
    const scheme = tls ? 'https' : 'http'
    const where = root === undefined ? '' : ` below ${root}`
    const state = root !== undefined ? 'not started (--root)' : flags['no-start'] ? `not started (--no-start): systemctl enable --now ${SERVICE_NAME}` : 'running'
    this.log(`zot installed${where}: ${scheme}://${flags.address}:${flags.port}, storage ${storage}${htpasswd ? ', login required' : ''}; ${SERVICE_NAME} ${state}`)
  }

  /**
   * The verified bundle directory: -c itself when it is a directory, else the file extracted (verified as it
   * is) into scratch space, or for --list-commands into ./kod-zot-<version>/bundle, where the printed
   * commands read it (reused when it holds the same bundle).
   */
  private async openZotBundle(input: string, list: boolean, options: {verifyKey?: KeyObject; quiet: boolean}): Promise<{manifest: ZotBundleManifest; dir: string}> {
    const isDirectory = (await lstat(input).catch(() => undefined))?.isDirectory()
    let into: string | undefined
    if (!isDirectory) {
      if (list) {
        const head = await readBundleHead(zotBundle, input, this.abort.signal)
        const kept = path.join(this.keptDir(head.manifest), 'bundle')
        const keptSums = await readFile(path.join(kept, SUMS_FILE), 'utf8').catch(() => undefined)
        if (keptSums !== undefined && keptSums === head.sumsText) {
          // The same bundle, unpacked before: verified where it is.
          const opened = await this.verified(kept, options)
          return opened
        }
        if (await lstat(kept).catch(() => undefined)) {
          throw usageError(`${kept} holds something other than ${input}: remove it, or run from another directory`)
        }
        into = kept
        // What this run makes for the printed commands goes again if the bundle is refused.
        const made = await mkdir(path.dirname(kept), {recursive: true})
        if (made) this.onCleanup(async () => (await lstat(kept).catch(() => undefined)) || rm(made, {recursive: true, force: true}))
      } else {
        into = path.join(await this.scratch(), 'bundle')
      }
    }
    let opened: {manifest: ZotBundleManifest; dir: string} | undefined
    await runSteps(
      [step(`Verify ${path.basename(input)}`, `Verified ${path.basename(input)}`, async () => void (opened = await openBundle(zotBundle, input, {signal: this.abort.signal, ...(into ? {into} : {}), ...(options.verifyKey ? {verifyKey: options.verifyKey} : {})})))],
      {quiet: options.quiet},
    )
    return opened!
  }

  private async verified(dir: string, options: {verifyKey?: KeyObject; quiet: boolean}): Promise<{manifest: ZotBundleManifest; dir: string}> {
    let opened: {manifest: ZotBundleManifest; dir: string} | undefined
    await runSteps([step(`Verify ${dir}`, `Verified ${dir}`, async () => void (opened = await openBundle(zotBundle, dir, {signal: this.abort.signal, ...(options.verifyKey ? {verifyKey: options.verifyKey} : {})})))], {quiet: options.quiet})
    return opened!
  }

  /** Where --list-commands keeps what its printed commands read: ./kod-zot-<version>. */
  private keptDir(manifest: ZotBundleManifest): string {
    return path.resolve(`kod-zot-${manifest.version}`)
  }

  /**
   * The installed files that differ from what this deploy installs: refused (exit 2, naming them) unless
   * --force. A directory where a file belongs is refused always.
   */
  private async checkInstalled(plan: InstallPlan, root: string | undefined, sourceOf: (file: InstallFile) => string, force: boolean): Promise<string[]> {
    const differing: string[] = []
    for (const file of plan.files) {
      const target = underRoot(root, file.path)
      const info = await lstat(target).catch(() => undefined)
      if (!info) continue
      if (!info.isFile()) throw usageError(`${target} is in the way: it is ${info.isDirectory() ? 'a directory' : 'no regular file'} where deploy-zot installs ${file.what}; remove it`)
      if ((await sha256File(target)) !== (await sha256File(sourceOf(file)))) differing.push(target)
    }
    for (const directory of plan.directories) {
      const target = underRoot(root, directory.path)
      const info = await lstat(target).catch(() => undefined)
      if (info && !info.isDirectory()) throw usageError(`${target} is in the way: it is a file where deploy-zot needs a directory (${directory.what}); remove it`)
    }
    if (differing.length > 0 && !force) {
      throw new KodError(`${differing.join(', ')} ${differing.length === 1 ? 'is' : 'are'} installed already and differ${differing.length === 1 ? 's' : ''} from what this deploy installs: --force replaces ${differing.length === 1 ? 'it' : 'them'}`, {
        exit: ExitCode.usage,
        suggestions: ['add --force to replace what differs (zot.service is restarted)'],
      })
    }
    return differing
  }

  /**
   * The plan as host steps. With --root: every path below it, no owners (the files are whoever runs kod's;
   * systemd gives zot its own at boot), and no useradd or systemctl, which are said as skipped instead.
   */
  private async hostSteps(plan: InstallPlan, root: string | undefined, sourceOf: (file: InstallFile) => string, tools: ToolRunner, replacing: boolean): Promise<{steps: HostStep[]; skipped: string[]}> {
    const steps: HostStep[] = []
    const skipped: string[] = []
    const owned = (entry: {mode: number; user: string; group: string}) => (root === undefined ? {mode: entry.mode, owner: entry.user, group: entry.group} : {mode: entry.mode})
    if (root === undefined) {
      if (!(await toolAvailable(tools, 'getent'))) throw missingTool(tools, 'getent')
      const exists = async (database: string, name: string): Promise<boolean> => (await tools.run('getent', [database, name]).catch(() => undefined)) !== undefined
      if (!(await exists('passwd', ZOT_USER))) {
        const args = useraddArgs({user: ZOT_USER, home: plan.config.storage.rootDirectory}).slice(1)
        // A group zot that exists already (made by hand, or left by an earlier userdel) is joined, not made.
        if (await exists('group', ZOT_GROUP)) args.splice(args.indexOf('--user-group'), 1, '--gid', ZOT_GROUP)
        steps.push({doing: `Add system user ${ZOT_USER}`, did: `Added system user ${ZOT_USER}`, tool: 'useradd', args, undo: {tool: 'userdel', args: [ZOT_USER]}})
      }
    } else {
      const [useradd] = plan.before
      if (useradd?.kind === 'useradd') {
        skipped.push(`Skipped (--root): ${shellCommand(useraddArgs(useradd))}: systemd-sysusers makes user ${ZOT_USER} at boot from ${PATHS.sysusers}`)
      }
    }
    for (const directory of plan.directories) {
      const target = underRoot(root, directory.path)
      if (directory.keepExisting && (await lstat(target).catch(() => undefined))) continue
      steps.push(hostSteps.makeDirectory(target, owned(directory)))
    }
    for (const file of plan.files) steps.push(hostSteps.copyFile(sourceOf(file), underRoot(root, file.path), owned(file), file.what))
    const after = plan.after.flatMap((entry) => (entry.kind === 'systemctl' ? [entry.args] : []))
    // zot already running from files now replaced would keep running the old ones: enable, then restart.
    const systemctl = replacing && after.some((args) => args.includes('--now')) ? [['daemon-reload'], ['enable', SERVICE_NAME], ['restart', SERVICE_NAME]] : after
    if (root === undefined) {
      for (const args of systemctl) steps.push(hostSteps.systemctl(args, args[0] === 'enable' ? ['disable', ...args.slice(1)] : undefined))
    } else {
      skipped.push(
        `Skipped (--root): ${systemctl.map((args) => `systemctl ${args.join(' ')}`).join('; ')}${plan.after.length > 1 ? `: to start zot when the image boots, run systemctl --root=${root} enable ${SERVICE_NAME}` : ''}`,
      )
    }
    return {steps, skipped}
  }

  /** The bundle's zot checks the config kod wrote: exit 4 with zot's own words when it refuses it. */
  private async zotVerify(verify: {binary: string; config: string}): Promise<void> {
    const tools = createToolRunner({cancelSignal: this.abort.signal, binaries: {zot: verify.binary}, onRun: (line) => this.debug(`run: ${line}`)})
    try {
      await tools.run('zot', ['verify', verify.config], {timeoutMs: 60_000})
    } catch (error) {
      const detail = error instanceof KodError ? error.message : errorDetail(String(error))
      throw new KodError(`zot verify refused the config kod wrote (${verify.config}), so nothing was installed: ${detail}`, {exit: ExitCode.toolFailed, cause: error})
    }
  }
}

/** --root: an existing directory, as an absolute path; `/` is no root at all. */
async function rootDirectory(root: string | undefined): Promise<string | undefined> {
  if (root === undefined) return undefined
  const resolved = path.resolve(root)
  if (resolved === '/') return undefined
  const info = await lstat(resolved).catch(() => undefined)
  if (!info) throw usageError(`--root ${root} does not exist: create the directory to install below first`)
  if (!info.isDirectory()) throw usageError(`--root ${root} is not a directory: give the directory to install below`)
  return resolved
}

async function readGiven(file: string, flag: string): Promise<{resolved: string; text: string}> {
  const resolved = path.resolve(file)
  const info = await lstat(resolved).catch(() => undefined)
  if (!info) throw usageError(`${flag} ${file} does not exist: check the path`)
  try {
    return {resolved, text: await readFile(resolved, 'utf8')}
  } catch (error) {
    const code = (error as {code?: string}).code
    throw usageError(`${flag} ${file} cannot be read (${code === 'EISDIR' ? 'it is a directory' : (code ?? 'unreadable')}): give a file you may read`)
  }
}

/** --htpasswd: bcrypt hashes only (exit 2 naming each bad line, never a password). */
async function checkedHtpasswd(file: string): Promise<string> {
  const {resolved, text} = await readGiven(file, '--htpasswd')
  const {problems} = checkHtpasswd(text)
  if (problems.length > 0) {
    throw new KodError(`--htpasswd ${file}: ${problems.slice(0, 3).join('; ')}${problems.length > 3 ? `; and ${problems.length - 3} more` : ''}: kod accepts bcrypt hashes only`, {
      exit: ExitCode.usage,
      suggestions: ['htpasswd -nbB USER PASSWORD >> FILE (apache2-utils) writes a bcrypt line'],
    })
  }
  return resolved
}

/** --tls-cert and --tls-key: PEM, the key unencrypted (zot cannot ask for a passphrase). */
async function checkedTls(cert: string, key: string): Promise<{cert: string; key: string}> {
  const certificate = await readGiven(cert, '--tls-cert')
  if (!certificate.text.includes('-----BEGIN CERTIFICATE-----')) throw usageError(`--tls-cert ${cert} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`)
  const privateKey = await readGiven(key, '--tls-key')
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(privateKey.text)) {
    throw usageError(`--tls-key ${key} is encrypted, and zot cannot ask for its passphrase: give an unencrypted copy (openssl pkey -in ${key} -out server.key)`)
  }
  if (!/-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----/.test(privateKey.text)) throw usageError(`--tls-key ${key} holds no PEM private key`)
  return {cert: certificate.resolved, key: privateKey.resolved}
}

/**
 * What the bundle says beyond its checksums: each binary's sha256 as the manifest records it, and a config
 * template in zot's documented format that keeps untagged manifests (exit 5 otherwise). Returns the template.
 */
async function checkedBundle(manifest: ZotBundleManifest, dir: string, input: string): Promise<ZotConfig> {
  for (const entry of [...manifest.binaries, manifest.config, manifest.unit]) {
    if ((await sha256File(path.join(dir, entry.file))) !== entry.sha256) throw packageError(`${input}: ${entry.file} does not match the sha256 kod-bundle.yaml records for it; the bundle was tampered with`)
  }
  let template: unknown
  try {
    template = JSON.parse(await readFile(path.join(dir, manifest.config.file), 'utf8'))
  } catch (error) {
    throw packageError(`${input}: ${manifest.config.file} is not valid JSON (${(error as Error).message})`)
  }
  const problems = checkConfig(template)
  if (problems.length > 0) throw packageError(`${input}: ${manifest.config.file} is no config kod installs: ${problems.slice(0, 3).join('; ')}`)
  return template as ZotConfig
}
