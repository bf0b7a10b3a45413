import {Flags} from '@oclif/core'
import {stat} from 'node:fs/promises'
import path from 'node:path'

import {outputTarget, packageAction} from '../lib/actions/package.js'
import {chartFlags, KodCommand, packageRequestFrom} from '../lib/base-command.js'
import {parseMirrors} from '../lib/images.js'
import {usageError} from '../lib/errors.js'
import {formatSize} from '../lib/format.js'
import {platformChoice} from '../lib/platforms.js'
import {loadSigningKey} from '../lib/signing.js'

export default class Package extends KodCommand {
  static override summary = 'Package a Helm chart or a helmfile, and every container image it runs, into one .kodpkg file.'

  static override description = `Runs on the connected side. kod fetches the chart (a directory, .tgz, https:// URL, oci:// URL, or a chart name in a repository given with -r), renders it with helm template (with your -f files), finds every image the rendered manifests reference, pulls them with skopeo into one OCI image layout (a layer shared by several images is stored once; digests are preserved), and writes kod-<chart>-<version>.kodpkg (or the file -o names).

A helmfile (-c helmfile.yaml, or a directory holding one) is packaged release by release: every release's chart (each fetched once), its own values, set and setString, and every image it runs, each image stored once however many releases run it (docs/helmfile.md). helmfile's -e ENV chooses the environment; kod sources lists what each kind of package source adds.

Progress goes to stderr: a live display when stderr is a terminal, one line per finished step (each pulled image with its count and size) when it is not, nothing under --json. stdout holds only the result line, or the JSON.

Image registry credentials come from the usual auth files (skopeo login / docker login). A chart repository (-r) or oci:// chart registry that needs a login: --username USER --password-stdin, the password piped into kod; helm gets it in temporary files, for that host only, and it is never recorded (without them, helm uses your own helm registry login for oci://). An image no value can relocate (hard-coded in a template) would be pulled by the cluster from outside the private registry: kod package stops (exit 6) before pulling anything, naming each such image and where the chart has it. Relocate it with a hint (--hints) or your -f values, or accept it with --allow-external IMAGE: it is packaged and recorded, and deploy lets it through with a warning.

Platforms: a multi-platform image (an image index) is stored with only the platforms the cluster needs. kod cannot know the cluster's, so by default it keeps this machine's (linux/amd64 on an x86-64 machine, linux/arm64 on an ARM64 one) and says so; --platform os/arch[/variant] (repeatable) chooses, --all-platforms keeps every one, byte for byte. A trimmed index is a new image index (a new digest); when the chart pins the image by its index's digest in the value that relocates it, deploy's values point at the trimmed one, which populate pushes (when the digest is a value of its own, kod keeps every platform of that image, and says so). An image with none of the platforms asked for is refused (exit 2), naming the platforms it has; a single-platform image built for another platform is packaged as it is, with a warning the package records.

The file appears only when complete: a failed or interrupted run leaves nothing behind; a run killed outright leaves at most a hidden staging directory and partial file, whose pulled image blobs the next run into the same directory reuses.`

  static override examples = [
    {description: 'Package a local chart directory:', command: '<%= config.bin %> <%= command.id %> -c ./mychart'},
    {
      description: 'Package with base values, into ./out:',
      command: '<%= config.bin %> <%= command.id %> -c ./mychart -f base-values.yaml -o ./out',
    },
    {
      description: 'Name the file yourself:',
      command: '<%= config.bin %> <%= command.id %> -c ./mychart -o /media/usb/mychart-prod.kodpkg',
    },
    {
      description: 'A chart from a repository:',
      command: '<%= config.bin %> <%= command.id %> -r https://charts.bitnami.com/bitnami -c redis --version 23.1.1',
    },
    {
      description: 'A chart from a repository that needs a login, the password read from a file:',
      command: 'cat repo-password.txt | <%= config.bin %> <%= command.id %> -r https://charts.corp/stable -c mychart --version 1.2.3 --username ci --password-stdin',
    },
    {
      description: 'A chart from an OCI registry:',
      command: '<%= config.bin %> <%= command.id %> -c oci://ghcr.io/org/charts/mychart --version 1.2.3',
    },
    {
      description: 'Sign the package (make the key with openssl, see docs/security.md):',
      command: '<%= config.bin %> <%= command.id %> -c ./mychart --sign-key kod-signing.pem',
    },
    {
      description: 'A helmfile, every release of its prod environment:',
      command: '<%= config.bin %> <%= command.id %> -c ./deploy/helmfile.yaml -e prod --version 2026.11',
    },
    {
      description: 'Pull through a proxy cache, recording the original references:',
      command: '<%= config.bin %> <%= command.id %> -c ./mychart --registry-mirror docker.io=harbor.local/dockerhub-proxy',
    },
    {
      description: 'Accept an image the chart hard-codes (no value can point it at the private registry):',
      command: '<%= config.bin %> <%= command.id %> -c ./mychart --allow-external docker.io/library/busybox:1.36',
    },
    {
      description: 'Images for ARM64 and x86-64 nodes (the default is this machine\'s platform only):',
      command: '<%= config.bin %> <%= command.id %> -c ./mychart --platform linux/arm64 --platform linux/amd64',
    },
    {
      description: 'Every platform of every image, exactly as the registry serves it:',
      command: '<%= config.bin %> <%= command.id %> -c ./mychart --all-platforms',
    },
    {
      description: 'Pull images from a registry that serves plain HTTP:',
      command: '<%= config.bin %> <%= command.id %> -c ./mychart --insecure-registry registry.lab:5000',
    },
  ]

  static override enableJsonFlag = true

  static override flags = {
    ...chartFlags,
    output: Flags.string({
      char: 'o',
      summary: 'Where to write the package: a directory (created if needed; default: the current one), or a file path ending in .kodpkg (or .tgz / .tar).',
      default: '.',
    }),
    'registry-mirror': Flags.string({
      summary: 'Pull SOURCE registry images through MIRROR, recording the original references (repeatable), e.g. docker.io=harbor.local/dockerhub-proxy.',
      multiple: true,
      multipleNonGreedy: true,
    }),
    'allow-external': Flags.string({
      summary: 'Accept this image although kod cannot relocate it through values (repeatable; any spelling): packaged, recorded, and deploy lets it be pulled from outside the private registry. Without it such an image stops kod package (exit 6).',
      multiple: true,
      multipleNonGreedy: true,
    }),
    platform: Flags.string({
      summary: "Keep this platform of multi-platform images, os/arch[/variant] (repeatable), e.g. linux/arm64. Default: this machine's platform, which kod says.",
      multiple: true,
      multipleNonGreedy: true,
    }),
    'all-platforms': Flags.boolean({
      summary: 'Keep every platform of multi-platform images, byte for byte as the registry serves them (not with --platform).',
    }),
    'sign-key': Flags.string({summary: 'Sign the package with this Ed25519 private key (unencrypted PEM): SHA256SUMS.sig beside SHA256SUMS (docs/security.md).'}),
  }

  public async run(): Promise<{
    file: string
    name: string
    version: string
    images: number
    bytes: number
    warnings: string[]
    platforms: string[] | 'all'
    platformsFromHost: boolean
  }> {
    const {flags, sourceFlags} = await this.parseWithSourceFlags(Package, 'package')
    if (!flags.output.trim()) throw usageError('-o is empty: give a directory to write the package into, or a file name ending in .kodpkg')
    const info = await stat(flags.output).catch(() => undefined)
    const isDirectory = Boolean(info?.isDirectory())
    if (info && !isDirectory && !/\.(kodpkg|tgz|tar)$/.test(flags.output)) {
      throw usageError(`-o ${flags.output} is an existing file, not a directory: give a directory to write the package into, or a file name ending in .kodpkg (or .tgz, .tar)`)
    }
    if (!info && /\.(zip|gz|xz|bz2|zst|7z)$/i.test(flags.output)) {
      throw usageError(`-o ${flags.output}: kod writes a package as a tar archive, named .kodpkg (or .tgz, .tar); give such a name, or a directory`)
    }
    // An unpacked package is deploy's directory and must hold only the package's files: a new package written into it would break that.
    const into = isDirectory ? flags.output : path.dirname(path.resolve(flags.output))
    if (await stat(path.join(into, 'kod-package.yaml')).then(() => true, () => false)) {
      throw usageError(`-o ${flags.output} is ${isDirectory ? 'an unpacked kod package' : 'inside an unpacked kod package'}: write the new package somewhere else`)
    }
    // A bad platform or key is said before any work.
    const platforms = platformChoice(flags.platform, flags['all-platforms'])
    const signingKey = flags['sign-key'] === undefined ? undefined : await loadSigningKey(flags['sign-key'])
    const result = await packageAction(await this.context(), await this.sources(), {
      signingKey,
      ...outputTarget(flags.output, isDirectory),
      request: await packageRequestFrom(flags, await this.hints(flags.hints)),
      mirrors: parseMirrors(flags['registry-mirror'] ?? []),
      allowExternal: flags['allow-external'],
      platforms,
      kind: flags.kind,
      sourceFlags,
      kodVersion: this.config.version,
      quiet: this.quiet(flags),
      onCleanup: (fn) => this.onCleanup(fn),
    })
    const {manifest} = result
    this.log(`${path.relative(process.cwd(), result.file) || result.file}: ${manifest.name} ${manifest.version}, ${manifest.images.length} image(s), ${formatSize(result.bytes)}`)
    return {
      file: result.file,
      name: manifest.name,
      version: manifest.version,
      images: manifest.images.length,
      bytes: result.bytes,
      warnings: manifest.warnings ?? [],
      platforms: manifest.platforms ?? 'all',
      platformsFromHost: Boolean(manifest.platformsFromHost),
    }
  }
}
