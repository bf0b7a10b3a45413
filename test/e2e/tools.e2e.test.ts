import {expect} from 'chai'
import {execa} from 'execa'
import {createHash, generateKeyPairSync} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {mkdir, mkdtemp, open, readdir, readFile, rm, stat, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import YAML from 'yaml'

import {oneLineError} from '../support/assertions.js'
import {kod, type KodResult, TOOLS_BIN} from '../support/kod.js'

/**
 * plugin-tools (docs/tools.md), with the real tools of this machine: helm and kubectl from .tools/bin (static),
 * Debian's skopeo from /usr/bin (dynamically linked), kod itself with the node running these tests. One bundle
 * is made, signed, and deployed into temporary prefixes; the installed helm and kod then run with PATH holding
 * only that prefix's bin and /usr/bin.
 */
const PATH = [TOOLS_BIN, '/usr/bin', '/bin'].join(path.delimiter)

async function sha256(file: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

/** Where a file's content starts in a tar archive, read from its headers. */
async function entryOffset(archive: string, name: string): Promise<{offset: number; size: number}> {
  const handle = await open(archive, 'r')
  try {
    let at = 0
    let longName: string | undefined
    for (;;) {
      const header = Buffer.alloc(512)
      await handle.read(header, 0, 512, at)
      if (header.every((byte) => byte === 0)) throw new Error(`${name} not in ${archive}`)
      const text = (start: number, length: number): string => header.subarray(start, start + length).toString('latin1').replace(/\0.*$/s, '')
      const size = Number.parseInt(text(124, 12).trim() || '0', 8)
      const type = text(156, 1)
      const entry = longName ?? (text(345, 155) ? `${text(345, 155)}/${text(0, 100)}` : text(0, 100))
      longName = undefined
      if (type === 'x') {
        const body = Buffer.alloc(size)
        await handle.read(body, 0, size, at + 512)
        longName = /\d+ path=([^\n]*)\n/.exec(body.toString('utf8'))?.[1]
      } else if (entry === name) {
        return {offset: at + 512, size}
      }
      at += 512 + Math.ceil(size / 512) * 512
    }
  } finally {
    await handle.close()
  }
}

describe('package-tools and deploy-tools, with the real tools (e2e)', function () {
  let work: string
  let tmp: string
  let out: string
  let bundle: string
  let pkg: string
  let chart: string
  let signingKey: string
  let verifyKey: string
  let otherKey: string
  let manifest: {tools: Array<{name: string; file: string; version: string; sha256: string; linking?: string; needs?: string[]; from: string}>; kod: {version: string; node: {version: string; linking?: string}; plugins: string[]; files: number}; platform: string; warnings?: string[]}
  let packaged: KodResult
  let byHand: string

  const tools = (args: string[], options: {cwd?: string; env?: Record<string, string>} = {}): Promise<KodResult> =>
    kod(args, {cwd: options.cwd ?? work, env: {PATH, TMPDIR: tmp, ...options.env}})

  async function expectTmpEmpty(): Promise<void> {
    expect(await readdir(tmp), 'nothing left in TMPDIR').to.deep.equal([])
  }

  before(async function () {
    work = await mkdtemp(path.join(os.tmpdir(), 'kod-tools-'))
    tmp = path.join(work, 'tmp')
    byHand = path.join(work, 'by-hand')
    out = path.join(work, 'out')
    await mkdir(tmp)
    await mkdir(out)
    const pair = generateKeyPairSync('ed25519')
    signingKey = path.join(work, 'signing.pem')
    verifyKey = path.join(work, 'signing.pub')
    otherKey = path.join(work, 'other.pub')
    await writeFile(signingKey, pair.privateKey.export({type: 'pkcs8', format: 'pem'}))
    await writeFile(verifyKey, pair.publicKey.export({type: 'spki', format: 'pem'}))
    await writeFile(otherKey, generateKeyPairSync('ed25519').publicKey.export({type: 'spki', format: 'pem'}))

    // A small package to inspect with the installed kod: a chart without images.
    chart = path.join(work, 'plain')
    await mkdir(path.join(chart, 'templates'), {recursive: true})
    await writeFile(path.join(chart, 'Chart.yaml'), 'apiVersion: v2\nname: plain\nversion: 1.0.0\n')
    await writeFile(path.join(chart, 'templates', 'cm.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: plain}\ndata: {a: b}\n')
    pkg = path.join(work, 'kod-plain-1.0.0.kodpkg')
    const made = await kod(['package', '-c', chart, '-o', pkg])
    expect(made.exitCode, made.stderr).to.equal(0)

    // Every tool kod knows, from PATH: helm and kubectl (.tools/bin), skopeo (/usr/bin); helmfile and regctl are not there.
    packaged = await tools(['package-tools', '-o', out, '--sign-key', signingKey, '--json'])
    expect(packaged.exitCode, packaged.stderr).to.equal(0)
    const [name] = await readdir(out)
    bundle = path.join(out, name)
    const {stdout} = await execa('tar', ['-xOf', bundle, 'kod-bundle.yaml'])
    manifest = YAML.parse(stdout)
  })

  after(async function () {
    if (work) await rm(work, {recursive: true, force: true})
  })

  it('package-tools bundles the tools found on PATH with their versions, platform and sha256, and kod with its node', async function () {
    expect(path.basename(bundle)).to.equal(`kod-tools-${manifest.kod.version}-linux-amd64.kodbundle`)
    expect(manifest.platform).to.equal('linux/amd64')
    expect(manifest.tools.map((tool) => tool.name)).to.deep.equal(['helm', 'skopeo', 'kubectl'])
    const helm = manifest.tools.find((tool) => tool.name === 'helm')!
    expect(helm.version).to.equal((await execa(path.join(TOOLS_BIN, 'helm'), ['version', '--short'])).stdout.trim())
    expect(helm).to.include({file: 'bin/helm', from: path.join(TOOLS_BIN, 'helm'), linking: 'static', sha256: await sha256(path.join(TOOLS_BIN, 'helm'))})
    const skopeo = manifest.tools.find((tool) => tool.name === 'skopeo')!
    expect(`skopeo version ${skopeo.version}`).to.equal((await execa('/usr/bin/skopeo', ['--version'])).stdout.trim())
    expect(skopeo).to.include({linking: 'dynamic', sha256: await sha256('/usr/bin/skopeo')})
    expect(skopeo.needs).to.include('libc.so.6')
    const kubectl = manifest.tools.find((tool) => tool.name === 'kubectl')!
    expect((await execa(path.join(TOOLS_BIN, 'kubectl'), ['version', '--client'])).stdout).to.include(`Client Version: ${kubectl.version}`)
    expect(manifest.kod.node.version).to.equal(process.version)
    expect(manifest.kod.plugins).to.include.members(['@kod/plugin-helm@0.1.0', '@kod/plugin-helmfile@0.1.0', '@kod/plugin-tools@0.1.0'])

    // Warnings: the tools not found, and the dynamically linked ones, on stderr and recorded.
    const warnings = packaged.stderr.split('\n').filter((line) => line.startsWith('Warning: '))
    expect(warnings.some((line) => /^Warning: helmfile not found on PATH, so not bundled: install helmfile/.test(line)), packaged.stderr).to.equal(true)
    expect(warnings.some((line) => /^Warning: regctl not found on PATH, so not bundled/.test(line))).to.equal(true)
    expect(warnings.some((line) => /^Warning: skopeo \(\/usr\/bin\/skopeo\) is dynamically linked: bundled without its shared libraries \(libgpgme\.so\.11, .*libc\.so\.6; loader \/lib64\/ld-linux-x86-64\.so\.2\), which the target host must provide/.test(line))).to.equal(true)
    expect(manifest.warnings?.some((line) => line.startsWith('skopeo (/usr/bin/skopeo) is dynamically linked'))).to.equal(true)
    const summary = JSON.parse(packaged.stdout)
    expect(summary).to.include({file: bundle, platform: 'linux/amd64'})
    expect(summary.tools.map((tool: {name: string}) => tool.name)).to.deep.equal(['helm', 'skopeo', 'kubectl'])
    expect(await readdir(out), 'no staging left beside the bundle').to.deep.equal([path.basename(bundle)])
    await expectTmpEmpty()
  })

  it('the bundle is readable without kod: tar, sha256sum -c, openssl', async function () {
    await mkdir(byHand)
    await execa('tar', ['-xf', bundle, '-C', byHand])
    await execa('sha256sum', ['-c', '--quiet', 'SHA256SUMS'], {cwd: byHand})
    await execa('openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', verifyKey, '-rawin', '-in', 'SHA256SUMS', '-sigfile', 'SHA256SUMS.sig'], {cwd: byHand})
    expect((await stat(path.join(byHand, 'bin', 'helm'))).mode & 0o755).to.equal(0o755)
  })

  it('a tool asked for by name and missing is exit 3, and nothing is written', async function () {
    const before = await readdir(out)
    const missing = await tools(['package-tools', '-o', path.join(out, 'x.kodbundle'), '--tool', 'helm', '--tool', 'regctl'])
    expect(missing.exitCode).to.equal(3)
    oneLineError(missing, /^Error: regctl not found on PATH: install regctl or set KOD_REGCTL to its path \(asked for with --tool regctl\)$/)
    const notThere = await tools(['package-tools', '-o', path.join(out, 'x.kodbundle'), '--tool', `helm=${path.join(work, 'nowhere', 'helm')}`])
    expect(notThere.exitCode).to.equal(3)
    oneLineError(notThere, /^Error: helm not found at .*nowhere\/helm: install helm .*\(asked for with --tool helm=/)
    const unknown = await tools(['package-tools', '--tool', 'zsh'])
    expect(unknown.exitCode).to.equal(2)
    oneLineError(unknown, /^Error: --tool zsh: package-tools bundles helm, helmfile, skopeo, regctl, kubectl.*; "zsh" is none of them$/)
    expect(await readdir(out)).to.deep.equal(before)
    await expectTmpEmpty()
  })

  describe('deployed into a prefix', function () {
    let prefix: string
    let deployed: KodResult
    const bin = (): string => path.join(prefix, 'bin')
    const installed = (args: string[], file = 'kod'): Promise<{exitCode?: number; stdout: string; stderr: string}> =>
      execa(path.join(bin(), file), args, {env: {PATH: `${bin()}:/usr/bin`, TMPDIR: tmp, HOME: work}, extendEnv: false, reject: false, cwd: work})

    before(async function () {
      prefix = path.join(work, 'prefix')
      deployed = await tools(['deploy-tools', '-c', bundle, '--prefix', prefix, '--verify-key', verifyKey])
    })

    it('verifies, installs every tool into <prefix>/bin and kod into <prefix>/lib/kod, and reports it', async function () {
      expect(deployed.exitCode, deployed.stderr).to.equal(0)
      expect(deployed.stdout.trim().split('\n')).to.deep.equal([
        `installed kod ${manifest.kod.version} (node ${process.version}) into ${path.join(prefix, 'lib', 'kod')}, launcher ${path.join(prefix, 'bin', 'kod')}`,
        ...manifest.tools.map((tool) => `installed ${tool.name} ${tool.version} into ${path.join(prefix, 'bin', tool.name)}`),
      ])
      expect((await readdir(bin())).sort()).to.deep.equal(['helm', 'kod', 'kubectl', 'skopeo'])
      for (const tool of manifest.tools) {
        expect((await stat(path.join(bin(), tool.name))).mode & 0o777, tool.name).to.equal(0o755)
        expect(await sha256(path.join(bin(), tool.name)), tool.name).to.equal(tool.sha256)
      }
      expect((await stat(path.join(prefix, 'lib', 'kod', 'node', 'bin', 'node'))).mode & 0o777).to.equal(0o755)
      expect((await stat(path.join(prefix, 'lib', 'kod', 'package.json'))).mode & 0o777).to.equal(0o644)
      await expectTmpEmpty()
    })

    it('the installed helm and kod run with PATH holding only <prefix>/bin and /usr/bin', async function () {
      expect((await installed(['version', '--short'], 'helm')).stdout.trim()).to.equal(manifest.tools.find((tool) => tool.name === 'helm')!.version)
      const version = await installed(['--version'])
      expect(version.exitCode, version.stderr).to.equal(0)
      expect(version.stdout.trim()).to.equal(`kod/${manifest.kod.version} linux-x64 node-${process.version}`)
      const inspected = await installed(['inspect', '-c', pkg])
      expect(inspected.exitCode, inspected.stderr).to.equal(0)
      expect(inspected.stdout).to.match(/^plain 1\.0\.0 {2}\(helm from /)
      // kod finds the helm installed beside it: a render needs it.
      const images = await installed(['images', '-c', chart, '--json'])
      expect(images.exitCode, images.stderr).to.equal(0)
      expect(JSON.parse(images.stdout).images).to.deep.equal([])
      // Every plugin's commands are found from its manifest, none imported to be listed: nothing said but the answer.
      for (const args of [['sources'], ['--help'], ['deploy-tools', '--help'], ['deploy-zot', '--help']]) {
        const ran = await installed(args)
        expect(ran.exitCode, `kod ${args.join(' ')}: ${ran.stderr}`).to.equal(0)
        expect(ran.stderr, `kod ${args.join(' ')}`).to.equal('')
      }
      expect((await installed(['deploy-tools', '--help'])).stdout).to.match(/Install a tools bundle/)
    })

    it('deployed again: everything is there with the same content, said so, nothing done', async function () {
      const again = await tools(['deploy-tools', '-c', bundle, '--prefix', prefix])
      expect(again.exitCode, again.stderr).to.equal(0)
      expect(again.stdout.trim().split('\n')).to.deep.equal([
        `unchanged: ${path.join(prefix, 'lib', 'kod')} holds kod ${manifest.kod.version} (node ${process.version}) already (same content, ${manifest.kod.files} files)`,
        ...manifest.tools.map((tool) => `unchanged: ${path.join(prefix, 'bin', tool.name)} holds ${tool.name} ${tool.version} already (same content)`),
      ])
      expect(again.stderr).to.not.match(/^(Installed|Copied|Created)/m)
    })

    it('a different binary or another kod in the way is refused (exit 2, nothing installed) unless --force, which replaces them', async function () {
      const helm = path.join(bin(), 'helm')
      await writeFile(helm, '#!/bin/sh\necho another helm\n', {mode: 0o755})
      await rm(path.join(bin(), 'kubectl'))
      await writeFile(path.join(prefix, 'lib', 'kod', 'extra-file'), 'not kod\n')
      const refused = await tools(['deploy-tools', '-c', bundle, '--prefix', prefix])
      expect(refused.exitCode).to.equal(2)
      oneLineError(
        refused,
        new RegExp(`^Error: ${path.join(prefix, 'lib', 'kod')} holds other content \\(\\d+ files\\), not the bundle's kod, and 1 more \\(${helm}\\): deploy-tools replaces installed files only with --force; nothing was installed$`),
      )
      expect(refused.stderr).to.match(/^Try: kod deploy-tools -c .* --force$/m)
      expect(await readFile(helm, 'utf8')).to.equal('#!/bin/sh\necho another helm\n')
      expect(await readdir(bin()), 'the missing kubectl was not installed either').to.not.include('kubectl')

      const forced = await tools(['deploy-tools', '-c', bundle, '--prefix', prefix, '--force'])
      expect(forced.exitCode, forced.stderr).to.equal(0)
      expect(forced.stdout.trim().split('\n')).to.deep.equal([
        `replaced ${path.join(prefix, 'lib', 'kod')} with kod ${manifest.kod.version} (node ${process.version}), launcher ${path.join(bin(), 'kod')}`,
        `replaced ${helm} with helm ${manifest.tools[0].version}`,
        `unchanged: ${path.join(bin(), 'skopeo')} holds skopeo ${manifest.tools[1].version} already (same content)`,
        `installed kubectl ${manifest.tools[2].version} into ${path.join(bin(), 'kubectl')}`,
      ])
      expect(await sha256(helm)).to.equal(manifest.tools[0].sha256)
      expect(await readdir(path.join(prefix, 'lib', 'kod'))).to.not.include('extra-file')
      expect((await installed(['--version'])).exitCode).to.equal(0)
      expect((await readdir(prefix)).sort(), 'nothing moved aside is left').to.deep.equal(['bin', 'lib'])
      expect(await readdir(path.join(prefix, 'lib'))).to.deep.equal(['kod'])
      await expectTmpEmpty()
    })
  })

  it('--list-commands prints every step, installs nothing, and the printed commands install when run', async function () {
    const prefix = path.join(work, 'listed')
    const cwd = path.join(work, 'list-here')
    await mkdir(cwd)
    const listed = await tools(['deploy-tools', '-c', bundle, '--prefix', prefix, '--list-commands'], {cwd})
    expect(listed.exitCode, listed.stderr).to.equal(0)
    const unpacked = path.join(cwd, `kod-tools-${manifest.kod.version}-linux-amd64`)
    expect(listed.stdout.trim().split('\n')).to.deep.equal([
      `install -d -m 0755 ${prefix}/bin`,
      `install -d -m 0755 ${prefix}/lib`,
      `cp -R ${unpacked}/lib/kod ${prefix}/lib/kod`,
      `chmod -R u=rwX,go=rX ${prefix}/lib/kod`,
      ...manifest.tools.map((tool) => `install -m 0755 ${unpacked}/bin/${tool.name} ${prefix}/bin/${tool.name}`),
      `install -m 0755 ${unpacked}/bin/kod ${prefix}/bin/kod`,
    ])
    expect(listed.stderr).to.include(`The bundle is unpacked in ${unpacked}: the commands below copy from there`)
    expect(await stat(prefix).catch(() => undefined), 'nothing installed').to.equal(undefined)
    // Listed again: the unpacked bundle is reused (verified), the same commands printed.
    const again = await tools(['deploy-tools', '-c', bundle, '--prefix', prefix, '--list-commands'], {cwd})
    expect(again.stdout).to.equal(listed.stdout)
    await execa('sh', ['-e', '-c', listed.stdout])
    const version = await execa(path.join(prefix, 'bin', 'kod'), ['--version'], {env: {PATH: `${prefix}/bin:/usr/bin`}, extendEnv: false})
    expect(version.stdout).to.match(/^kod\/0\.1\.0 /)
    // What the commands installed is what kod installs; a directory the bundle was unpacked into (tar xf) is a bundle too.
    const same = await tools(['deploy-tools', '-c', byHand, '--prefix', prefix, '--verify-key', verifyKey])
    expect(same.exitCode, same.stderr).to.equal(0)
    expect(same.stdout.trim().split('\n').every((line) => line.startsWith('unchanged: ')), same.stdout).to.equal(true)
    await expectTmpEmpty()
  })

  it('a flipped byte, or a signature by another key, is refused (exit 5) with nothing installed', async function () {
    const prefix = path.join(work, 'refused')
    const {offset, size} = await entryOffset(bundle, 'bin/helm')
    const handle = await open(bundle, 'r+')
    const byte = Buffer.alloc(1)
    const at = offset + Math.floor(size / 2)
    try {
      await handle.read(byte, 0, 1, at)
      await handle.write(Buffer.from([byte[0] ^ 0x01]), 0, 1, at)
      const flipped = await tools(['deploy-tools', '-c', bundle, '--prefix', prefix])
      expect(flipped.exitCode).to.equal(5)
      oneLineError(flipped, /^Error: .*\.kodbundle: checksum mismatch for bin\/helm: the bundle was changed or damaged after it was written; get a fresh copy$/)
      const listed = await tools(['deploy-tools', '-c', bundle, '--prefix', prefix, '--list-commands'], {cwd: tmp})
      expect(listed.exitCode).to.equal(5)
      expect(listed.stdout).to.equal('')
    } finally {
      await handle.write(byte, 0, 1, at)
      await handle.close()
    }
    expect(await stat(prefix).catch(() => undefined), 'nothing installed').to.equal(undefined)
    await expectTmpEmpty()

    const otherSigner = await tools(['deploy-tools', '-c', bundle, '--prefix', prefix, '--verify-key', otherKey])
    expect(otherSigner.exitCode).to.equal(5)
    oneLineError(otherSigner, /the signature does not match --verify-key/)
    expect(await stat(prefix).catch(() => undefined)).to.equal(undefined)
  })

  it('bad inputs are one line with exit 2, before anything is done', async function () {
    const missing = await tools(['deploy-tools', '-c', path.join(work, 'none.kodbundle')])
    expect(missing.exitCode).to.equal(2)
    oneLineError(missing, /^Error: bundle not found: .*none\.kodbundle$/)
    const aPackage = await tools(['deploy-tools', '-c', pkg, '--prefix', path.join(work, 'p')])
    expect(aPackage.exitCode).to.equal(2)
    oneLineError(aPackage, /is not a kod bundle: it is a kod package \(kod-package\.yaml\), not a bundle: inspect it with kod inspect -c/)
    const toInspect = await tools(['inspect', '-c', bundle])
    expect(toInspect.exitCode).to.equal(2)
    oneLineError(toInspect, /is not a kod package: it is a kod bundle \(kod-bundle\.yaml\), not a package: give it to the command that deploys it \(kod deploy-tools/)
    const file = path.join(work, 'a-file')
    await writeFile(file, 'x')
    const fileAsPrefix = await tools(['deploy-tools', '-c', bundle, '--prefix', file])
    expect(fileAsPrefix.exitCode).to.equal(2)
    oneLineError(fileAsPrefix, /a-file is a file, not a directory/)
    expect(await readdir(path.join(work))).to.not.include('p')
    await expectTmpEmpty()
  })
})

