import {Flags} from '@oclif/core'
import {stat} from 'node:fs/promises'
import path from 'node:path'

import {openPackage} from '../lib/actions/open.js'
import {KodCommand, verifyKeyFlag, verifyKeyFrom} from '../lib/base-command.js'
import {usageError} from '../lib/errors.js'

async function isDirectory(file: string): Promise<boolean> {
  return stat(file).then(
    (info) => info.isDirectory(),
    () => false,
  )
}

export default class Unpack extends KodCommand {
  static override summary = 'Unpack a package file into a directory, verifying every checksum.'

  static override description = `The unpacked directory is plain files, for people and for security scanners, with kod out of the way: kod-package.yaml (what is inside), SHA256SUMS (check with "sha256sum -c SHA256SUMS"), charts/ (helm .tgz), values/ (package-time values), hints/ (hint files that applied), and images/, one OCI image layout holding every image (scan it with any tool that reads OCI layouts, or copy an image out with "skopeo copy oci:images:<name> …"). Every kod command that takes a package with -c accepts the directory as well as the file.

A package is recognised by its content, whatever the file is called (kod-mychart-1.2.3.kodpkg, kod-mychart-1.2.3.tgz, …). The directory must not exist: unpack never replaces one (deploy does replace an unchanged earlier unpack of the same chart version).`

  static override examples = [
    '<%= config.bin %> <%= command.id %> -c kod-mychart-1.2.3.kodpkg',
    '<%= config.bin %> <%= command.id %> -c kod-mychart-1.2.3.kodpkg -o /tmp/kod-mychart-1.2.3',
  ]

  static override flags = {
    package: Flags.string({char: 'c', summary: 'The package file (.kodpkg, or any name: kod reads its content).', required: true}),
    output: Flags.string({char: 'o', summary: 'Directory to create (default: ./kod-<chart>-<version>).'}),
    'verify-key': verifyKeyFlag,
  }

  public async run(): Promise<void> {
    const {flags} = await this.parse(Unpack)
    if (await isDirectory(flags.package)) throw usageError(`${flags.package} is a directory: give a package file (a directory needs no unpacking)`)
    if (flags.output) await checkOutputPath(flags.output)
    const verifyKey = await verifyKeyFrom(flags['verify-key'])
    const opened = await openPackage(flags.package, {
      verifyKey,
      unpackTo: {dir: flags.output, parent: process.cwd()},
      quiet: this.quiet({}),
      signal: this.abort.signal,
    })
    this.log(`${path.relative(process.cwd(), opened.dir) || '.'}: ${opened.manifest.name} ${opened.manifest.version}, ${opened.manifest.images.length} image(s), checksums verified`)
  }
}

/** -o must be a directory kod can create: refused (naming the file) when a file stands where it or a parent would be. */
async function checkOutputPath(output: string): Promise<void> {
  const dir = path.resolve(output)
  for (let parent = path.dirname(dir); ; parent = path.dirname(parent)) {
    const info = await stat(parent).catch(() => undefined)
    if (info && !info.isDirectory()) throw usageError(`cannot unpack into ${output}: ${parent} is a file, not a directory; choose another directory with -o`)
    if (info || parent === path.dirname(parent)) return
  }
}
