import {chmod, copyFile, link, mkdir, mkdtemp, rm, stat, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {
  Flags,
  formatSize,
  KodCommand,
  loadSigningKey,
  mapLimit,
  readBundleHead,
  readExecutableInfo,
  runSteps,
  sha256File,
  step,
  usageError,
  writeBundle,
} from 'kod/sdk'

import {
  type BundledKod,
  type BundledTool,
  bundleFileName,
  KOD_DIR,
  LAUNCHER_FILE,
  launcherScript,
  NODE_FILE,
  TOOLS_BUNDLE_KIND,
  toolsBundle,
  type ToolsBundleManifest,
} from '../bundle-kind.js'
import {describeExecutable, describeTool, dynamicWarning, findTools, toolRequests} from '../find.js'
import {collectKod} from '../kod-tree.js'
import {treeDigest} from '../tree-digest.js'

/**
 * Puts `source` at `target` with mode 0755 (anything executable) or 0644: a hard link when it can (same
 * file system, already that mode, an inode not in the bundle yet), else a copy.
 */
async function stage(source: string, target: string, linked: Set<string>): Promise<void> {
  await mkdir(path.dirname(target), {recursive: true})
  const info = await stat(source)
  const key = `${info.dev}:${info.ino}`
  const mode = info.mode & 0o111 ? 0o755 : 0o644
  // tar writes a second name of one inode as a hard link, which bundles may not hold: copy those.
  if (!linked.has(key) && (info.mode & 0o7777) === mode) {
    linked.add(key)
    const done = await link(source, target).then(
      () => true,
      () => false,
    )
    if (done) return
  }
  await copyFile(source, target)
  await chmod(target, mode)
}

export default class PackageTools extends KodCommand {
  static override summary = 'Bundle helm, helmfile, skopeo, regctl, kubectl and kod itself (with its node) for an air-gapped host.'

  static override description = `Runs on the connected side. Finds each tool on PATH (or where KOD_<TOOL> or --tool NAME=PATH says), asks it its version with its own version command, and writes one bundle (docs/tools.md): the tools, and kod as a self-contained install — its code, production dependencies and plugins, and the node binary it runs on — with a manifest of each one's version, platform, linking and sha256, SHA256SUMS, and with --sign-key a signature. kod deploy-tools installs it on the far side.

Without --tool, every tool kod knows is bundled when found, and a missing one is a warning. --tool NAME (repeatable) bundles only those named, and a named tool that is missing stops kod (exit 3). A dynamically linked tool (Debian's skopeo) is bundled as it is, with a warning naming the shared libraries the target host must have: the bundle does not carry them.`

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    {description: 'Only helm and skopeo, into a directory:', command: '<%= config.bin %> <%= command.id %> --tool helm --tool skopeo -o /media/usb'},
    {description: 'A tool that is not on PATH:', command: '<%= config.bin %> <%= command.id %> --tool helm=/opt/helm-4.1/helm --tool skopeo'},
    {description: 'Signed (see docs/security.md for the key):', command: '<%= config.bin %> <%= command.id %> -o kod-tools.kodbundle --sign-key kod-signing.pem'},
  ]

  static override enableJsonFlag = true

  static override flags = {
    output: Flags.string({
      char: 'o',
      summary: 'Where to write the bundle: a directory (default: the current one; the file is kod-tools-<version>-<os>-<arch>.kodbundle), or a file path.',
      default: '.',
    }),
    tool: Flags.string({
      summary: 'Bundle this tool, NAME or NAME=PATH (repeatable): helm, helmfile, skopeo, regctl, kubectl. Named tools must be there (exit 3 otherwise); without --tool, every one found is bundled.',
      multiple: true,
      multipleNonGreedy: true,
    }),
    'sign-key': Flags.string({summary: 'Sign the bundle with this Ed25519 private key (unencrypted PEM): SHA256SUMS.sig beside SHA256SUMS (docs/security.md).'}),
  }

  public async run(): Promise<{file: string; bytes: number; platform: string; tools: Array<Pick<BundledTool, 'name' | 'version' | 'platform' | 'linking' | 'sha256'>>; kod: {version: string; node: string; files: number}; warnings: string[]}> {
    const {flags} = await this.parse(PackageTools)
    const requests = toolRequests(flags.tool)
    const signingKey = flags['sign-key'] === undefined ? undefined : await loadSigningKey(flags['sign-key'])
    const warnings: string[] = []
    const warn = (message: string): void => {
      warnings.push(message)
      this.logger().warn(message)
    }
    const kodPlatform = (await readExecutableInfo(process.execPath)).platform ?? `${process.platform}/${process.arch}`
    const outFile = await this.outputFile(flags.output, kodPlatform)
    // Every tool is found before anything is written: a named one that is missing stops here (exit 3).
    const found = await findTools(requests, warn)

    const quiet = this.quiet(flags)
    const tools: BundledTool[] = []
    let kod: BundledKod | undefined
    let written: {bytes: number} | undefined
    const staging = await mkdtemp(path.join(path.dirname(outFile), `.kod-staging-${process.pid}-`)).catch((error: NodeJS.ErrnoException) => {
      throw usageError(`cannot write into ${path.dirname(outFile)} (${error.code ?? error.message}): choose a directory you can write to with -o`)
    })
    this.onCleanup(() => rm(staging, {recursive: true, force: true}))
    const linked = new Set<string>()
    await runSteps(
      [
        step('Ask each tool its version', `Found ${found.map((tool) => tool.name).join(', ') || 'no tool'}`, async () => {
          for (const tool of found) tools.push(await describeTool(tool, kodPlatform, warn, this.abort.signal))
          for (const tool of tools) await stage(path.resolve(found.find((entry) => entry.name === tool.name)!.file), path.join(staging, tool.file), linked)
        }),
        step(`Collect kod ${this.config.version} and its node`, `Collected kod ${this.config.version} and node ${process.version}`, async () => {
          kod = await this.stageKod(staging, linked, kodPlatform, warn)
        }),
        step(`Write ${path.basename(outFile)}`, `Wrote ${path.basename(outFile)}`, async () => {
          const manifest: ToolsBundleManifest = {
            apiVersion: 'kod.dev/v1',
            kind: TOOLS_BUNDLE_KIND,
            bundleFormat: 1,
            kodVersion: this.config.version,
            created: new Date().toISOString(),
            name: 'kod-tools',
            version: this.config.version,
            platform: kodPlatform,
            tools,
            kod: kod!,
            ...(warnings.length > 0 ? {warnings: [...warnings]} : {}),
          }
          written = await writeBundle(toolsBundle, staging, manifest, outFile, {signal: this.abort.signal, signingKey})
        }),
      ],
      {quiet},
    )
    const shown = path.relative(process.cwd(), outFile) || outFile
    const names = tools.map((tool) => `${tool.name} ${tool.version}`)
    this.log(`${shown}: kod ${this.config.version} (node ${process.version})${names.length > 0 ? ` with ${names.join(', ')}` : ', no other tool'} for ${kodPlatform}, ${formatSize(written!.bytes)}${signingKey ? ', signed' : ''}`)
    return {
      file: outFile,
      bytes: written!.bytes,
      platform: kodPlatform,
      tools: tools.map(({name, version, platform, linking, sha256}) => ({name, version, ...(platform ? {platform} : {}), ...(linking ? {linking} : {}), sha256})),
      kod: {version: this.config.version, node: process.version, files: kod!.files},
      warnings,
    }
  }

  /** -o: a directory (the default name inside it) or a file; an existing file is replaced only if it is a tools bundle. */
  private async outputFile(output: string, platform: string): Promise<string> {
    const resolved = path.resolve(output)
    const info = await stat(resolved).catch(() => undefined)
    const file = info?.isDirectory() || output.endsWith('/') ? path.join(resolved, bundleFileName(this.config.version, platform)) : resolved
    if (!info && output.endsWith('/')) throw usageError(`-o ${output}: no such directory; create it first, or give a file name`)
    const there = file === resolved ? info : await stat(file).catch(() => undefined)
    if (there?.isDirectory()) throw usageError(`-o ${file} is a directory where the bundle file belongs: choose another name`)
    if (there) {
      const bundle = await readBundleHead(toolsBundle, file, this.abort.signal).then(
        () => true,
        () => false,
      )
      if (!bundle) throw usageError(`-o ${file} exists and is no kod tools bundle: remove it or choose another name`)
    }
    const parent = await stat(path.dirname(file)).catch(() => undefined)
    if (!parent?.isDirectory()) throw usageError(`-o ${file}: ${path.dirname(file)} is not a directory; create it first`)
    return file
  }

  /** kod's files below lib/kod, node at lib/kod/node/bin/node, and the launcher; what the manifest says of them. */
  private async stageKod(staging: string, linked: Set<string>, platform: string, warn: (message: string) => void): Promise<BundledKod> {
    const tree = await collectKod(this.config.root)
    for (const skipped of tree.skipped) this.debug(`not bundled (not a regular file): ${skipped}`)
    const kodDir = path.join(staging, KOD_DIR)
    await mapLimit(tree.files, 16, (file) => stage(file.source, path.join(kodDir, file.target), linked), this.abort.signal)
    const nodeBinary = process.execPath
    await stage(nodeBinary, path.join(staging, NODE_FILE), linked)
    const node = await describeExecutable(nodeBinary, NODE_FILE, process.version)
    if (node.platform && node.platform !== platform) warn(`node (${nodeBinary}) is built for ${node.platform}`)
    if (node.linking === 'dynamic') warn(dynamicWarning('node', nodeBinary, node))
    const launcher = path.join(staging, LAUNCHER_FILE)
    await mkdir(path.dirname(launcher), {recursive: true})
    await writeFile(launcher, launcherScript(this.config.version))
    await chmod(launcher, 0o755)
    const digest = await treeDigest(kodDir, this.abort.signal)
    const plugins = (this.config.pjson.oclif.plugins ?? [])
      .map((name) => tree.packages.find((pkg) => pkg.name === name))
      .filter((pkg): pkg is {name: string; version: string; location: string} => pkg !== undefined)
      .map((pkg) => `${pkg.name}@${pkg.version}`)
    return {
      version: this.config.version,
      launcher: {file: LAUNCHER_FILE, sha256: await sha256File(launcher)},
      dir: KOD_DIR,
      files: digest.files,
      bytes: digest.bytes,
      treeSha256: digest.sha256,
      node,
      plugins,
      packages: tree.packages.length,
    }
  }
}

