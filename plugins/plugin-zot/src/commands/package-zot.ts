import {copyFile, chmod, mkdir, stat, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {BUNDLE_API_VERSION, BUNDLE_FORMAT, createToolRunner, Flags, formatSize, hostPlatform, KodCommand, loadSigningKey, readExecutableInfo, runSteps, sha256File, step, usageError, writeBundle} from 'kod/sdk'

import {answersVerify, parseVersion} from '../binary.js'
import {bundleFileName, zotBundle, type ZotBundleManifest} from '../bundle-kind.js'
import {configTemplate, stringifyConfig} from '../config.js'
import {BUNDLE_FILES, type BinaryName, type BundledBinary} from '../manifest.js'
import {registerZotTools} from '../tools.js'
import {DEFAULT_UNIT, renderUnit} from '../unit.js'

/** How long `zot --version` and `zot verify --help` may take: they print and exit. */
const PROBE_MS = 15_000

export default class PackageZot extends KodCommand {
  static override summary = 'Bundle the zot OCI registry for an air-gapped host: binary, config, hardened systemd unit, checksums.'

  static override description = `Writes a .kodbundle (kod's bundle format: tar, kod-bundle.yaml, SHA256SUMS, optional SHA256SUMS.sig) holding zot (and zli), zot's config with kod's defaults (listening on 0.0.0.0:5000, storage /var/lib/zot, no untagged manifest ever garbage-collected) and the hardened systemd unit deploy-zot installs. kod deploy-zot installs it (docs/zot.md).

The version is what \`zot --version\` reports (recorded as unknown when it reports none); the platform comes from the binary's ELF header. zot is not downloaded: give the release binary you fetched (https://github.com/project-zot/zot/releases).`

  static override examples = [
    {description: 'Bundle a zot release binary:', command: '<%= config.bin %> <%= command.id %> --zot-binary ./zot-linux-amd64'},
    {description: 'With zli, signed, into a file you name:', command: '<%= config.bin %> <%= command.id %> --zot-binary ./zot-linux-amd64 --zli-binary ./zli-linux-amd64 --sign-key kod-signing.pem -o zot.kodbundle'},
  ]

  static override flags = {
    'zot-binary': Flags.string({summary: 'The zot binary to bundle (a release binary, e.g. zot-linux-amd64).', required: true}),
    'zli-binary': Flags.string({summary: "zot's command-line client to bundle too (optional)."}),
    output: Flags.string({
      char: 'o',
      summary: 'Where to write the bundle: a directory (default: the current one) or a file path ending in .kodbundle (or .tar).',
      default: '.',
    }),
    'sign-key': Flags.string({summary: 'Sign the bundle with this Ed25519 private key (unencrypted PEM): SHA256SUMS.sig beside SHA256SUMS (docs/security.md).'}),
  }

  public async run(): Promise<void> {
    const {flags} = await this.parse(PackageZot)
    registerZotTools()
    // Everything given is checked before any work.
    const given: Array<{name: BinaryName; file: string}> = [
      {name: 'zot', file: await executableFile(flags['zot-binary'], '--zot-binary')},
      ...(flags['zli-binary'] ? [{name: 'zli' as const, file: await executableFile(flags['zli-binary'], '--zli-binary')}] : []),
    ]
    const signingKey = flags['sign-key'] === undefined ? undefined : await loadSigningKey(flags['sign-key'])
    const output = await outputFile(flags.output)

    const staging = path.join(await this.scratch(), 'bundle')
    await mkdir(path.join(staging, 'bin'), {recursive: true})
    await mkdir(path.join(staging, 'zot'), {recursive: true})
    const binaries: BundledBinary[] = []
    const quiet = this.quiet({})
    await runSteps(
      given.map(({name, file}) =>
        step(`Read ${name} (${file})`, `Read ${name} (${file})`, async () => {
          binaries.push(await this.bundleBinary(name, file, staging))
        }),
      ),
      {quiet},
    )
    for (const binary of binaries) {
      if (binary.note) this.logger().warn(`${binary.name} ${binary.file === BUNDLE_FILES.zot ? flags['zot-binary'] : flags['zli-binary']}: ${binary.note}`)
    }
    const zot = binaries.find((binary) => binary.name === 'zot')!
    const configText = stringifyConfig(configTemplate())
    const unitText = renderUnit(DEFAULT_UNIT)
    await writeFile(path.join(staging, BUNDLE_FILES.config), configText)
    await writeFile(path.join(staging, BUNDLE_FILES.unit), unitText)
    const version = zot.version ?? 'unknown'
    const manifest: ZotBundleManifest = {
      apiVersion: BUNDLE_API_VERSION,
      kind: zotBundle.kind,
      bundleFormat: BUNDLE_FORMAT,
      kodVersion: this.config.version,
      created: new Date().toISOString(),
      name: 'zot',
      version: version.replace(/^[^A-Za-z0-9]+/, '').replaceAll(/[^A-Za-z0-9._+-]/g, '-') || 'unknown',
      binaries,
      config: {file: BUNDLE_FILES.config, sha256: await sha256File(path.join(staging, BUNDLE_FILES.config))},
      unit: {file: BUNDLE_FILES.unit, sha256: await sha256File(path.join(staging, BUNDLE_FILES.unit))},
    }
    const file = 'file' in output ? output.file : path.join(output.directory, bundleFileName(manifest.version, zot.platform))
    let written = {files: 0, bytes: 0}
    await runSteps(
      [step(`Write ${file}`, `Wrote ${file}`, async () => void (written = await writeBundle(zotBundle, staging, manifest, file, {signal: this.abort.signal, ...(signingKey ? {signingKey} : {})})))],
      {quiet},
    )
    const what = [`zot ${zot.version ?? '(version unknown)'}`, zot.platform ?? '(platform unknown)', ...(binaries.length > 1 ? ['with zli'] : []), ...(signingKey ? ['signed'] : [])]
    this.log(`${path.relative(process.cwd(), file) || file}: ${what.join(', ')}, ${formatSize(written.bytes)}`)
  }

  /** Copies a binary into the bundle and says what it is: sha256, size, platform, version, whether zot verify answers. */
  private async bundleBinary(name: BinaryName, file: string, staging: string): Promise<BundledBinary> {
    const inBundle = BUNDLE_FILES[name]
    const target = path.join(staging, inBundle)
    await copyFile(file, target)
    await chmod(target, 0o755)
    const kind = await readExecutableInfo(target)
    const notes = kind.note ? [kind.note] : []
    // A binary for another platform cannot be asked anything here.
    const runnable = kind.platform === undefined || kind.platform === hostPlatform()
    if (!runnable) notes.push(`built for ${kind.platform}, so kod did not run it on this ${hostPlatform()} host to read its version`)
    const tools = createToolRunner({cancelSignal: this.abort.signal, binaries: {[name]: target}, onRun: (line) => this.debug(`run: ${line}`)})
    const answer = async (args: string[]): Promise<string | undefined> => {
      if (!runnable) return undefined
      const result = await tools.run(name, args, {timeoutMs: PROBE_MS}).catch(() => undefined)
      return result === undefined ? undefined : `${result.stdout}\n${result.stderr}`
    }
    let version: string | undefined
    for (const args of [['--version'], ['-v']]) {
      version = parseVersion((await answer(args)) ?? '')
      if (version) break
    }
    if (!version && runnable) notes.push(`\`${name} --version\` and \`${name} -v\` reported no ${name} version (recorded as unknown): is it ${name}?`)
    const verify = name === 'zot' ? answersVerify((await answer(['verify', '--help'])) ?? '') : undefined
    const info = await stat(target)
    return {
      name,
      file: inBundle,
      sha256: await sha256File(target),
      size: info.size,
      ...(kind.platform ? {platform: kind.platform} : {}),
      ...(version ? {version} : {}),
      ...(notes.length > 0 ? {note: notes.join('; ')} : {}),
      ...(verify === undefined ? {} : {verify}),
    }
  }
}

/** A given binary: an executable regular file (exit 2 otherwise, naming the flag and the file). */
async function executableFile(file: string, flag: string): Promise<string> {
  const resolved = path.resolve(file)
  const info = await stat(resolved).catch(() => undefined)
  if (!info) throw usageError(`${flag} ${file} does not exist: give the path of the binary`)
  if (!info.isFile()) throw usageError(`${flag} ${file} is not a file: give the path of the binary`)
  if ((info.mode & 0o111) === 0) throw usageError(`${flag} ${file} is not executable: chmod +x it, or give the right file`)
  return resolved
}

/** -o: a directory to write the bundle into (created if needed), or the bundle's file path. */
async function outputFile(output: string): Promise<{directory: string} | {file: string}> {
  const resolved = path.resolve(output)
  const info = await stat(resolved).catch(() => undefined)
  const named = /\.(kodbundle|tar)$/.test(output)
  if (info?.isDirectory()) return {directory: resolved}
  if (info && !named) throw usageError(`-o ${output} is an existing file, not a directory: give a directory to write the bundle into, or a file name ending in .kodbundle`)
  if (named) {
    const parent = await stat(path.dirname(resolved)).catch(() => undefined)
    if (!parent?.isDirectory()) throw usageError(`-o ${output}: ${path.dirname(resolved)} is not a directory: create it first, or choose another path`)
    return {file: resolved}
  }
  await mkdir(resolved, {recursive: true})
  return {directory: resolved}
}
