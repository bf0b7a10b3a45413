import {Flags} from '@oclif/core'
import {stat} from 'node:fs/promises'
import path from 'node:path'

import {isRegistryInput, pullArchive} from '../lib/actions/registry-package.js'
import {KodCommand, verifyKeyFlag, verifyKeyFrom} from '../lib/base-command.js'
import {usageError} from '../lib/errors.js'
import {formatSize} from '../lib/format.js'
import {packageBaseName} from '../lib/kodpkg.js'

export default class Pull extends KodCommand {
  static override summary = 'Get back a package file that populate --as-artifact pushed into a registry.'

  static override description = `Sites that stage packages in their registry before unpacking push the .kodpkg file itself with kod populate --as-artifact, to <registry>/<prefix>/packages/<name>:<version>.kodpkg. kod pull fetches it (skopeo, checking its digest), verifies it as every package is verified (every checksum, every image blob; the signature too with --verify-key), and only then writes it, as ./kod-<name>-<version>.kodpkg or where -o says. Nothing is written when verification fails.

A populated package's metadata (<prefix>/packages/<name>:<version>, without .kodpkg) is not a package file: deploy it with kod deploy -c oci://…, or look at it with kod inspect -c oci://….`

  static override examples = [
    '<%= config.bin %> <%= command.id %> -c oci://registry.local:5000/kod/packages/mychart:1.2.3.kodpkg --plain-http',
    '<%= config.bin %> <%= command.id %> -c oci://harbor.corp/airgap/packages/mychart:1.2.3.kodpkg -o /data/packages --verify-key kod-signing.pub',
  ]

  static override enableJsonFlag = true

  static override flags = {
    package: Flags.string({char: 'c', summary: 'The package in the registry: oci://<registry>/<prefix>/packages/<name>:<version>.kodpkg.', required: true}),
    output: Flags.string({char: 'o', summary: 'Directory to write the package into (default: the current one), or a file path ending in .kodpkg.'}),
    'verify-key': verifyKeyFlag,
    'plain-http': Flags.boolean({summary: 'Talk to the registry over plain HTTP.', exclusive: ['insecure-skip-tls-verify']}),
    'insecure-skip-tls-verify': Flags.boolean({summary: "Use HTTPS but don't verify the registry's certificate."}),
  }

  public async run(): Promise<{file: string; name: string; version: string; bytes: number}> {
    const {flags} = await this.parse(Pull)
    if (!isRegistryInput(flags.package)) throw usageError(`-c ${flags.package}: kod pull takes a package in a registry, oci://<registry>/<prefix>/packages/<name>:<version>.kodpkg`)
    const output = path.resolve(flags.output ?? '.')
    const info = await stat(output).catch(() => undefined)
    const asFile = /\.kodpkg$/.test(output) && !info?.isDirectory()
    if (info && !info.isDirectory() && !asFile) throw usageError(`-o ${flags.output} is a file: give a directory, or a file name ending in .kodpkg`)
    // The file it will write, when the reference names it (…/packages/<name>:<version>.kodpkg): one in the way is said before pulling.
    const named = /\/packages\/([^/:@]+):([^/:@]+)\.kodpkg$/.exec(flags.package)
    const expected = asFile ? output : named ? path.join(output, `${packageBaseName(named[1], named[2])}.kodpkg`) : undefined
    if (expected && (await stat(expected).then(() => true, () => false))) throw usageError(`${expected} already exists: remove it or choose another name with -o`)
    const verifyKey = await verifyKeyFrom(flags['verify-key'])
    const ctx = await this.context()
    const result = await pullArchive(flags.package, asFile ? {dir: path.dirname(output), file: output} : {dir: output}, {
      tools: ctx.tools,
      insecure: {plainHttp: flags['plain-http'], skipTlsVerify: flags['insecure-skip-tls-verify']},
      verifyKey,
      quiet: this.quiet(flags),
      signal: this.abort.signal,
      onCleanup: (fn) => this.onCleanup(fn),
    })
    this.log(`${path.relative(process.cwd(), result.file) || result.file}: ${result.manifest.name} ${result.manifest.version}, ${formatSize(result.bytes)}, verified`)
    return {file: result.file, name: result.manifest.name, version: result.manifest.version, bytes: result.bytes}
  }
}
