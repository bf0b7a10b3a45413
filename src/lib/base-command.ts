import {Command, Errors, Flags, type Interfaces} from '@oclif/core'
import type {KeyObject} from 'node:crypto'
import {mkdtemp, readFile, rm, stat} from 'node:fs/promises'
import path from 'node:path'
import {format} from 'node:util'

import {type ChartCredentials, type LoadedHints, type Logger, type PackageRequest, type RenderKnobs, SOURCE_API, type SourceContext, type SourceFlag, type Target} from '../api.js'
import {authFileEnvironment, hasUserinfo, loginFrom, redactLine, stripUserinfo, withEnvironment, writeAuthFile} from './credentials.js'
import {ExitCode, fileSystemError, KodError, messageOf, parseErrorMessage, usageError, yamlProblem} from './errors.js'
import {loadHints} from './hints.js'
import {scratchPrefix, sweepScratch} from './leftovers.js'
import {checkKubeVersion} from './names.js'
import {refHelpers} from './refs.js'
import {loadVerifyKey} from './signing.js'
import {type SourceFlagsGiven, splitSourceFlags} from './source-flags.js'
import {loadSources, type SourceRegistry} from './sources.js'
import {parseTarget} from './target.js'
import {createToolRunner} from './tools.js'

/** Flags every command that talks to the target registry shares. */
export const targetFlags = {
  registry: Flags.string({
    char: 'r',
    summary: 'Private registry to push to: host[:port][/path], optionally with http:// or https://.',
    required: true,
  }),
  prefix: Flags.string({summary: 'Repository prefix below the registry.', default: 'kod'}),
  'plain-http': Flags.boolean({summary: 'Talk to the registry over plain HTTP.', exclusive: ['insecure-skip-tls-verify']}),
  'insecure-skip-tls-verify': Flags.boolean({summary: "Use HTTPS but don't verify the registry's certificate."}),
  'registry-username': Flags.string({
    summary: 'User to log in to the registry as, with --registry-password-stdin; without them, your own skopeo and helm registry logins are used.',
  }),
  'registry-password-stdin': Flags.boolean({
    summary: 'Read the registry password from stdin (with --registry-username); it reaches skopeo and helm in a temporary auth file, never an argument, and --list-commands never prints it.',
  }),
}

/** The target registry from the shared target flags. */
export function targetFrom(flags: {registry: string; prefix: string; 'plain-http': boolean; 'insecure-skip-tls-verify': boolean}): Target {
  return parseTarget({
    registry: flags.registry,
    prefix: flags.prefix,
    plainHttp: flags['plain-http'],
    insecureSkipTlsVerify: flags['insecure-skip-tls-verify'],
  })
}

/**
 * -f files as absolute paths, each checked to be a readable file holding valid YAML: a bad one is
 * refused here, naming the file and the problem (line and column), rather than by whatever reads it later.
 */
export async function valuesFilesFrom(files: string[] | undefined): Promise<string[]> {
  const resolved = (files ?? []).map((file) => path.resolve(file))
  for (const file of resolved) {
    const info = await stat(file).catch(() => undefined)
    if (!info) throw usageError(`values file not found: ${file}`)
    if (info.isDirectory()) throw usageError(`values file ${file} is a directory: give -f a YAML file (one -f per file)`)
    let text: string
    try {
      text = await readFile(file, 'utf8')
    } catch (error) {
      throw usageError(`cannot read values file ${file} (${(error as NodeJS.ErrnoException).code ?? messageOf(error)}): check that it is a file you may read`)
    }
    const problem = yamlProblem(text)
    if (problem) throw usageError(`values file ${file} is not valid YAML: ${problem}`)
  }
  return resolved
}

/** A registry host with an optional port: a name, an IPv4 address or a bracketed IPv6 address. */
const HOST_PORT = /^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*|\[[\da-f:.]+\])(?::(\d{1,5}))?$/i

/**
 * An --insecure-registry value as the host[:port] kod compares image and chart hosts with:
 * `http://host:port/` and `https://host:port` are taken as host:port; anything else that is no
 * host[:port] (a path, credentials, a bad port) is refused.
 */
export function insecureRegistryHost(value: string): string {
  const host = value.trim().replace(/^(?:https?|oci):\/\//i, '').replace(/\/+$/, '').toLowerCase()
  const fix = 'give the registry as host[:port], e.g. --insecure-registry registry.lab:5000'
  if (host.includes('@')) throw usageError(`--insecure-registry ${value.replace(/^((?:[a-z]+:)?\/\/)?[^@/]*@/i, '$1***@')}: credentials do not belong here; ${fix}`)
  if (host.includes('/')) throw usageError(`--insecure-registry ${value}: a registry is a host[:port], not a path; ${fix}`)
  const match = HOST_PORT.exec(host)
  const port = match?.[1] === undefined ? undefined : Number(match[1])
  if (!match || (port !== undefined && (port < 1 || port > 65_535))) throw usageError(`--insecure-registry ${JSON.stringify(value)} is not a registry host[:port]; ${fix}`)
  return host
}

/** The commands that take helm's rendering knobs; each says what it does with them. */
export type KnobCommand = 'package' | 'images' | 'deploy'

const KNOB_HELP: Record<KnobCommand, {kubeVersion: string; apiVersions: string; set: string}> = {
  package: {
    kubeVersion: "helm's --kube-version for every render (e.g. 1.30.0); recorded in the package, so deploy's render check uses it too unless given its own.",
    apiVersions: "helm's --api-versions for every render (repeatable); recorded in the package, so deploy's render check uses them too unless given its own.",
    set: "helm's --set for every render (repeatable; with a helmfile, of every release); recorded in the package, and deploy passes it to helm as a values file (kod-set-<release>.yaml) just before kod's own.",
  },
  images: {
    kubeVersion: "helm's --kube-version for every render (e.g. 1.30.0).",
    apiVersions: "helm's --api-versions for every render (repeatable).",
    set: "helm's --set for every render (repeatable).",
  },
  deploy: {
    kubeVersion: "helm's --kube-version for the render check (e.g. 1.30.0), instead of the one recorded at package time (helm upgrade takes no such flag).",
    apiVersions: "helm's --api-versions for the render check (repeatable), instead of those recorded at package time (helm upgrade takes no such flag).",
    set: "Passed to helm as --set (repeatable), in the render check and the install, so it wins over every values file; the package's own --set still applies, as kod-set-<release>.yaml.",
  },
}

/** helm's rendering knobs (--kube-version, --api-versions, --set), with help that says what this command does with them. */
export function renderFlagsFor(command: KnobCommand) {
  const help = KNOB_HELP[command]
  return {
    'kube-version': Flags.string({summary: help.kubeVersion}),
    'api-versions': Flags.string({summary: help.apiVersions, multiple: true, multipleNonGreedy: true}),
    set: Flags.string({summary: help.set, multiple: true, multipleNonGreedy: true}),
  }
}

/** deploy's rendering knobs (see renderFlagsFor). */
export const renderFlags = renderFlagsFor('deploy')

/** How a chart is named and rendered (package and images), with help that says what this command does with it. */
export function chartFlagsFor(command: 'package' | 'images') {
  const kept = command === 'package'
  return {
    chart: Flags.string({
      char: 'c',
      summary: 'What to package: a chart (directory, .tgz, https:// URL, oci:// URL, or a name with -r) or a helmfile (file or directory); kod sources lists the kinds.',
      required: true,
    }),
    repo: Flags.string({char: 'r', summary: 'Chart repository URL; -c is then the chart name.'}),
    version: Flags.string({summary: 'Chart version (for -r and oci:// charts; default: latest); for a helmfile, the package version (default: a digest of the helmfile).'}),
    values: Flags.string({
      char: 'f',
      summary: kept
        ? 'Values file used to render the chart (repeatable, in order); carried in the package, and deploy passes it to helm before its own. A helmfile names its own values.'
        : 'Values file used to render the chart (repeatable, in order). A helmfile names its own values.',
      multiple: true,
      multipleNonGreedy: true,
    }),
    'insecure-registry': Flags.string({
      summary: 'Registry host[:port] that may be read over plain HTTP or unverified TLS (repeatable).',
      multiple: true,
      multipleNonGreedy: true,
    }),
    kind: Flags.string({summary: 'Source kind, when kod cannot tell (e.g. helm).'}),
    username: Flags.string({summary: 'User for the chart repository (-r URL) or oci:// chart registry that needs a login, with --password-stdin.'}),
    'password-stdin': Flags.boolean({
      summary: 'Read the password for --username from stdin; it reaches helm in temporary files, only for that repository or registry host, and is never recorded.',
    }),
    ...renderFlagsFor(command),
    hints: Flags.string({
      summary: `Hint file (docs/hints.md) for charts kod cannot fully read by rendering (repeatable)${kept ? '; stored in the package' : ''}.`,
      multiple: true,
      multipleNonGreedy: true,
    }),
  }
}

/** package's chart flags (see chartFlagsFor). */
export const chartFlags = chartFlagsFor('package')

interface ChartFlagValues {
  chart: string
  repo?: string
  version?: string
  values?: string[]
  'insecure-registry'?: string[]
  'kube-version'?: string
  'api-versions'?: string[]
  set?: string[]
  username?: string
  'password-stdin'?: boolean
}

/**
 * --username / --password-stdin as the login for the one host they are for: that of -r REPO_URL or of
 * an oci:// chart. A URL with user:password@ in it is refused without echoing them: it would be recorded
 * in the package and shown in helm's argument list.
 */
export async function chartCredentialsFrom(flags: ChartFlagValues): Promise<ChartCredentials | undefined> {
  for (const [flag, value] of [['-r', flags.repo], ['-c', flags.chart]] as const) {
    if (value && /^[a-z][\w+.-]*:\/\//i.test(value) && hasUserinfo(value)) {
      throw usageError(`${flag} ${stripUserinfo(value)}: credentials do not belong in the URL (it is recorded in the package and visible to every process): give them with --username USER --password-stdin`)
    }
  }
  const login = await loginFrom(flags.username, Boolean(flags['password-stdin']), {username: 'username', password: 'password-stdin'})
  if (!login) return undefined
  const url = flags.repo ?? (flags.chart.startsWith('oci://') ? flags.chart : undefined)
  const host = url && /^(https?|oci):\/\//i.test(url) ? new URL(url.replace(/^oci:/i, 'https:')).host.toLowerCase() : undefined
  if (!host) throw usageError('--username is the login for a chart repository (-r https://…) or an oci:// chart (-c oci://…): give one of those, or log in with helm registry login')
  return {host, ...login}
}

/** The package request the chart flags describe, with the hints already loaded. */
export async function packageRequestFrom(flags: ChartFlagValues, hints: LoadedHints[]): Promise<PackageRequest> {
  const insecureRegistries = [...new Set((flags['insecure-registry'] ?? []).map((value) => insecureRegistryHost(value)))]
  const credentials = await chartCredentialsFrom(flags)
  return {
    ...(credentials ? {credentials} : {}),
    hints,
    ref: flags.chart,
    version: flags.version,
    repo: flags.repo,
    valuesFiles: await valuesFilesFrom(flags.values),
    insecureRegistries,
    render: renderKnobsFrom(flags),
  }
}

/**
 * The key=value parts of one --set, split as helm splits them: at commas, except an escaped one (`\,`) and
 * those inside a list (`{a,b}`).
 */
export function setParts(value: string): string[] {
  const parts: string[] = []
  let current = ''
  let depth = 0
  for (let index = 0; index < value.length; index++) {
    const char = value[index]
    if (char === '\\' && index + 1 < value.length) {
      current += char + value[++index]
      continue
    }
    if (char === '{') depth++
    if (char === '}' && depth > 0) depth--
    if (char === ',' && depth === 0) {
      parts.push(current)
      current = ''
      continue
    }
    current += char
  }
  parts.push(current)
  return parts
}

export function renderKnobsFrom(flags: {'kube-version'?: string; 'api-versions'?: string[]; set?: string[]}): RenderKnobs {
  checkKubeVersion(flags['kube-version'])
  // helm takes a --set with nothing before its "=" and sets nothing: a typo said, not ignored.
  const keyless = flags.set?.find((value) => value.trim() === '' || setParts(value).some((part) => part.trim().startsWith('=')))
  if (keyless !== undefined) throw usageError(`--set ${JSON.stringify(keyless)}: no key before "="; use --set key=value (a.b=value for a nested key)`)
  return {
    ...(flags['kube-version'] ? {kubeVersion: flags['kube-version']} : {}),
    ...(flags['api-versions']?.length ? {apiVersions: flags['api-versions']} : {}),
    ...(flags.set?.length ? {set: flags.set} : {}),
  }
}

/**
 * Whether DEBUG selects a namespace, as the debug package reads it: comma- or space-separated names, `*` for
 * any text, a leading `-` to exclude.
 */
export function debugEnabled(namespace: string, setting: string | undefined): boolean {
  const patterns = (setting ?? '').split(/[\s,]+/).filter(Boolean)
  const matches = (glob: string): boolean =>
    new RegExp(`^${glob.replaceAll(/[.+?^${}()|[\]\\]/g, '\\$&').replaceAll('*', '.*')}$`).test(namespace)
  if (patterns.some((pattern) => pattern.startsWith('-') && matches(pattern.slice(1)))) return false
  return patterns.some((pattern) => !pattern.startsWith('-') && matches(pattern))
}

/** Debug output for a namespace (kod:<command>): one line on stderr per call when DEBUG selects it. */
export function debugPrinter(namespace: string, setting = process.env.DEBUG): (...args: unknown[]) => void {
  if (!debugEnabled(namespace, setting)) return () => {}
  // %o as the debug package prints it (util.format's %o also shows hidden properties such as an array's length).
  // Redacted: oclif's own debug line shows kod's argument list, which may hold a URL's user:password@.
  return (first, ...rest) => process.stderr.write(`${namespace} ${redactLine(typeof first === 'string' ? format(first.replaceAll('%o', '%O'), ...rest) : format(first, ...rest))}\n`)
}

/** --verify-key: every command that reads a package takes it (docs/security.md). */
export const verifyKeyFlag = Flags.string({
  summary: 'Refuse the package (or bundle) unless its SHA256SUMS is signed with this Ed25519 key (PEM public key), checked before anything else.',
})

/** The --verify-key file, loaded (one-line errors for a bad key), or undefined. */
export async function verifyKeyFrom(file: string | undefined): Promise<KeyObject | undefined> {
  if (file === undefined) return undefined
  const key = await loadVerifyKey(file)
  // Its public half verifies; but the key that signs packages has no business on the side that checks them.
  if ((await readFile(file, 'utf8').catch(() => '')).includes('PRIVATE KEY')) {
    process.stderr.write(`Warning: --verify-key ${file} is a private key: kod verifies with its public half, but keep the signing key where packages are made and give this side the public key (openssl pkey -in ${file} -pubout)\n`)
  }
  return key
}

export const packageFlag = Flags.string({
  char: 'c',
  summary: 'The package: a .kodpkg file or an unpacked package directory.',
  required: true,
})

/** How long kod may take to stop after Ctrl-C or SIGTERM before it exits regardless. */
const FORCED_EXIT_MS = 20_000

/**
 * What every kod command shares: turning KodErrors into one-line oclif errors with fixed exit codes,
 * cancellation on SIGINT/SIGTERM, a scratch directory removed at the end, and the source registry.
 */
export abstract class KodCommand extends Command {
  protected readonly abort = new AbortController()
  /**
   * DEBUG=kod* (or kod:<command>) shows every tool command kod runs and what analysis decides. oclif's own
   * debug namespace for a command is oclif:kod:<command>, which DEBUG=kod* does not select.
   */
  protected override debug = debugPrinter(this.id ? `kod:${this.id.replaceAll(' ', ':')}` : 'kod')
  private readonly cleanups: Array<() => Promise<unknown>> = []
  /** The first Ctrl-C stops the work at the next safe point and cleans up; later ones only say so. */
  private readonly onSignal = (): void => {
    if (this.abort.signal.aborted) {
      process.stderr.write('kod: stopping, removing what was half-written…\n')
      return
    }
    this.abort.abort()
    // Always honoured: should anything not heed the abort (a wait in native code), kod exits all the same.
    // Its tools die with it (setpriv --pdeathsig, tools.ts).
    setTimeout(() => {
      process.stderr.write(`Error: interrupted; kod did not stop within ${FORCED_EXIT_MS / 1000}s of the signal and exits now: something may be left half-written\n`)
      process.exit(ExitCode.interrupted)
    }, FORCED_EXIT_MS).unref()
  }
  private scratchDir?: string
  /** Environment every tool kod runs gets: the temporary auth file of --registry-username (loginTarget). */
  private toolEnv: Record<string, string> = {}

  public override async init(): Promise<void> {
    await super.init()
    process.on('SIGINT', this.onSignal)
    process.on('SIGTERM', this.onSignal)
  }

  /** Run fn when the command ends, however it ends. */
  protected onCleanup(fn: () => Promise<unknown>): void {
    this.cleanups.unshift(fn)
  }

  protected async scratch(): Promise<string> {
    if (!this.scratchDir) {
      // Named for this process, so a later run can tell an interrupted run's scratch (and remove it).
      await sweepScratch(this.logger())
      const dir = await mkdtemp(scratchPrefix())
      this.scratchDir = dir
      this.onCleanup(() => rm(dir, {recursive: true, force: true}))
    }
    return this.scratchDir
  }

  protected logger(): Logger {
    return {
      info: (message) => this.logToStderr(message),
      // Warnings reach stderr even under --json (which keeps stdout for the data).
      warn: (message) => process.stderr.write(`Warning: ${message}\n`),
      debug: (message) => this.debug(message),
    }
  }

  /** --hints files, then every plugin's hint library. */
  protected async hints(files: string[] | undefined): Promise<LoadedHints[]> {
    return loadHints(this.config, files ?? [], this.logger())
  }

  private registry?: Promise<SourceRegistry>

  protected async sources(): Promise<SourceRegistry> {
    this.registry ??= loadSources(this.config, this.logger())
    return this.registry
  }

  /**
   * Parses the command line with kod's own flags and the flags source kinds add to this command: the
   * latter are taken out first (oclif knows only kod's), and checked once the source is known (optionsFor).
   */
  protected async parseWithSourceFlags<F extends Record<string, unknown>, B extends Record<string, unknown>, A extends Record<string, unknown>>(
    options: Interfaces.Input<F, B, A>,
    command: SourceFlag['commands'][number],
  ): Promise<{flags: F & B & {json?: boolean}; sourceFlags: SourceFlagsGiven}> {
    const registry = await this.sources()
    const own = Object.values(options.flags ?? {}) as Array<{name: string; char?: string}>
    const host = {names: new Set([...Object.keys(options.flags ?? {}), 'json', 'help']), chars: new Set([...own.map((flag) => flag.char).filter((char): char is string => Boolean(char)), 'h'])}
    const {argv, given} = splitSourceFlags(this.argv, registry.all(), command, host, (message) => this.logger().warn(message))
    const {flags} = await this.parse(options, argv)
    return {flags, sourceFlags: given}
  }

  /**
   * --registry-username / --registry-password-stdin: the target's login goes into a temporary auth file
   * in the scratch directory (removed at the end), which every skopeo and helm run then uses
   * (authFileEnvironment). Call it before context().
   */
  protected async loginTarget(flags: {'registry-username'?: string; 'registry-password-stdin'?: boolean}, target: Target): Promise<void> {
    const login = await loginFrom(flags['registry-username'], Boolean(flags['registry-password-stdin']), {username: 'registry-username', password: 'registry-password-stdin'})
    if (!login) return
    const file = await writeAuthFile(path.join(await this.scratch(), 'target-login'), target.registry.split('/')[0], login)
    this.toolEnv = authFileEnvironment(file)
    this.targetAuthFile = file
  }

  /** The auth file loginTarget wrote (a docker config.json, mode 0600, in scratch space), if it did. */
  protected targetAuthFile?: string

  protected async context(): Promise<SourceContext> {
    return {
      api: SOURCE_API,
      tools: withEnvironment(createToolRunner({cancelSignal: this.abort.signal, onRun: (line) => this.debug(`run: ${line}`)}), this.toolEnv),
      log: this.logger(),
      refs: refHelpers,
      tmpDir: await this.scratch(),
      cancelSignal: this.abort.signal,
    }
  }

  /**
   * Progress (on stderr, see progress.ts) is quiet under --json, where stderr keeps warnings and
   * errors only. Otherwise it shows whatever stdout is: live on a terminal, plain lines in a log.
   */
  protected quiet(flags: {json?: boolean}): boolean {
    return Boolean(flags.json)
  }

  protected override async catch(error: Interfaces.CommandError): Promise<unknown> {
    let failure: {message: string; exit: number; suggestions: string[]}
    if (this.abort.signal.aborted) {
      failure = {message: 'interrupted; nothing was left half-written', exit: ExitCode.interrupted, suggestions: []}
    } else if (error instanceof KodError) {
      failure = {message: error.message, exit: error.exit, suggestions: error.suggestions}
    } else if (!this.parsed && error instanceof Errors.CLIError && (error as {code?: string}).code !== 'EEXIT') {
      // oclif's flag parsing failed (unknown flag, missing flag or value, exclusive flags, …): a usage error,
      // told in one line instead of oclif's multi-line block and usage text.
      const command = `${this.config.bin} ${(this.id ?? '').replaceAll(':', ' ')}`.trim()
      failure = {message: parseErrorMessage(error), exit: ExitCode.usage, suggestions: [`${command} --help`]}
    } else if (error instanceof Errors.CLIError || (error as {oclif?: unknown}).oclif) {
      return super.catch(error)
    } else {
      this.debug(error.stack)
      // A file-system error nothing before caught (EISDIR, ENOENT, …) still names the path and what to do.
      const fsFailure = fileSystemError(error)
      failure = fsFailure
        ? {message: fsFailure.message, exit: fsFailure.exit, suggestions: fsFailure.suggestions}
        : {message: `${messageOf(error)} (run with DEBUG=kod* for details)`, exit: ExitCode.failure, suggestions: []}
    }
    if (this.jsonEnabled()) {
      // oclif prints the error as JSON on stdout and exits with process.exitCode (else 1).
      process.exitCode = failure.exit
      return super.catch(new Errors.CLIError(failure.message, {exit: failure.exit, suggestions: failure.suggestions}))
    }
    // One unwrapped line, whatever the terminal width, so it can be read and grepped as it is.
    process.stderr.write(`Error: ${failure.message}\n${failure.suggestions.map((text) => `Try: ${text}\n`).join('')}`)
    return this.exit(failure.exit)
  }

  protected override async finally(error: Error | undefined): Promise<unknown> {
    process.removeListener('SIGINT', this.onSignal)
    process.removeListener('SIGTERM', this.onSignal)
    for (const cleanup of this.cleanups) await cleanup().catch(() => {})
    return super.finally(error)
  }
}
