import {expect} from 'chai'
import {execa} from 'execa'
import {mkdir, mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import * as tar from 'tar'

import {kod} from '../support/kod.js'
import {startRegistry, type TestRegistry} from '../support/registry.js'

/**
 * Signed packages (docs/security.md): kod package --sign-key writes SHA256SUMS.sig (Ed25519 over
 * SHA256SUMS); --verify-key on inspect, unpack, populate and deploy refuses an unsigned or wrongly signed
 * package before anything else. Keys are made with openssl, and openssl verifies the signature too.
 */
describe('signed packages (e2e)', function () {
  let work: string
  let registry: TestRegistry
  let signed: string
  let unsigned: string
  const key = (name: string): string => path.join(work, name)

  before(async function () {
    work = await mkdtemp(path.join(os.tmpdir(), 'kod-signing-'))
    registry = await startRegistry()
    for (const name of ['key', 'other']) {
      await execa('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', key(`${name}.pem`)])
      await execa('openssl', ['pkey', '-in', key(`${name}.pem`), '-pubout', '-out', key(`${name}.pub`)])
    }
    const chart = path.join(work, 'plain')
    await mkdir(path.join(chart, 'templates'), {recursive: true})
    await writeFile(path.join(chart, 'Chart.yaml'), 'apiVersion: v2\nname: plain\nversion: 1.0.0\n')
    await writeFile(path.join(chart, 'templates', 'cm.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: plain}\ndata: {a: b}\n')
    signed = path.join(work, 'signed.kodpkg')
    unsigned = path.join(work, 'unsigned.kodpkg')
    const made = await kod(['package', '-c', chart, '-o', signed, '--sign-key', key('key.pem')])
    expect(made.exitCode, made.stderr).to.equal(0)
    expect((await kod(['package', '-c', chart, '-o', unsigned])).exitCode).to.equal(0)
  })

  after(async function () {
    await registry?.stop()
    if (work) await rm(work, {recursive: true, force: true})
  })

  const catalog = async (): Promise<string[]> => ((await (await fetch(`http://${registry.host}/v2/_catalog`)).json()) as {repositories: string[]}).repositories

  it('writes SHA256SUMS.sig right after SHA256SUMS, and openssl verifies it', async function () {
    const entries: string[] = []
    const bytes = new Map<string, Buffer>()
    await tar.list({
      file: signed,
      onReadEntry(entry) {
        entries.push(entry.path)
        const chunks: Buffer[] = []
        entry.on('data', (chunk: Buffer) => chunks.push(chunk))
        entry.on('end', () => bytes.set(entry.path, Buffer.concat(chunks)))
      },
    })
    expect(entries.slice(0, 3)).to.deep.equal(['kod-package.yaml', 'SHA256SUMS', 'SHA256SUMS.sig'])
    await writeFile(key('SHA256SUMS'), bytes.get('SHA256SUMS')!)
    await writeFile(key('SHA256SUMS.sig'), bytes.get('SHA256SUMS.sig')!)
    const checked = await execa('openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', key('key.pub'), '-rawin', '-in', key('SHA256SUMS'), '-sigfile', key('SHA256SUMS.sig')])
    expect(checked.stdout).to.match(/Signature Verified Successfully/)
  })

  it('inspect accepts the right key and refuses another key or an unsigned package (exit 5)', async function () {
    const right = await kod(['inspect', '-c', signed, '--verify-key', key('key.pub')])
    expect(right.exitCode, right.stderr).to.equal(0)
    expect(right.stderr).to.not.match(/Warning/)
    expect(right.stdout).to.match(/^signature verified with .*key\.pub$/m)
    // Without a key, inspect says whether there is a signature at all.
    expect((await kod(['inspect', '-c', signed])).stdout).to.match(/^signed \(SHA256SUMS\.sig\), signature not checked: give --verify-key PUBLIC_KEY$/m)
    expect((await kod(['inspect', '-c', unsigned])).stdout).to.match(/^not signed$/m)
    // The private key verifies too, with a warning: it belongs where packages are made.
    const privateKey = await kod(['inspect', '-c', signed, '--verify-key', key('key.pem')])
    expect(privateKey.exitCode, privateKey.stderr).to.equal(0)
    expect(privateKey.stderr).to.match(/^Warning: --verify-key .*key\.pem is a private key: kod verifies with its public half, but keep the signing key where packages are made/m)
    const other = await kod(['inspect', '-c', signed, '--verify-key', key('other.pub')])
    expect(other.exitCode).to.equal(5)
    expect(other.stderr).to.match(/^Error: .*signed\.kodpkg: the signature does not match --verify-key/m)
    const bare = await kod(['inspect', '-c', unsigned, '--verify-key', key('key.pub')])
    expect(bare.exitCode).to.equal(5)
    expect(bare.stderr).to.match(/unsigned\.kodpkg is not signed \(no SHA256SUMS\.sig\)/)
  })

  it('populate refuses a wrongly signed package before anything reaches the registry', async function () {
    const refused = await kod(['populate', '-c', signed, '-r', registry.host, '--plain-http', '--verify-key', key('other.pub')], {cwd: work})
    expect(refused.exitCode).to.equal(5)
    expect(await catalog()).to.deep.equal([])
    const pushed = await kod(['populate', '-c', signed, '-r', registry.host, '--plain-http', '--verify-key', key('key.pub')], {cwd: work})
    expect(pushed.exitCode, pushed.stderr).to.equal(0)
    expect(await catalog()).to.deep.equal(['kod/charts/plain', 'kod/packages/plain'])
  })

  it('the populated metadata carries the signature: inspect and deploy -c oci://… --verify-key accept the key and refuse another before anything else', async function () {
    const reference = `oci://${registry.host}/kod/packages/plain:1.0.0`
    const accepted = await kod(['inspect', '-c', reference, '--plain-http', '--verify-key', key('key.pub')], {cwd: work})
    expect(accepted.exitCode, accepted.stderr).to.equal(0)
    const refused = await kod(['inspect', '-c', reference, '--plain-http', '--verify-key', key('other.pub')], {cwd: work})
    expect(refused.exitCode).to.equal(5)
    expect(refused.stderr).to.match(/^Error: .*the signature does not match --verify-key/m)
    const cwd = await mkdtemp(path.join(work, 'oci-deploy-'))
    const deployRefused = await kod(['deploy', '-c', reference, '-r', registry.host, '--plain-http', '--list-commands', '--verify-key', key('other.pub')], {cwd})
    expect(deployRefused.exitCode).to.equal(5)
    expect(await readdir(cwd)).to.deep.equal([])
  })

  it('unpack and deploy check an unpacked directory too; a SHA256SUMS changed after signing is refused', async function () {
    const cwd = await mkdtemp(path.join(work, 'cwd-'))
    const wrong = await kod(['unpack', '-c', signed, '--verify-key', key('other.pub')], {cwd})
    expect(wrong.exitCode).to.equal(5)
    expect(await readdir(cwd), 'nothing unpacked').to.deep.equal([])
    expect((await kod(['unpack', '-c', signed, '--verify-key', key('key.pub')], {cwd})).exitCode).to.equal(0)
    const dir = path.join(cwd, 'kod-plain-1.0.0')
    const args = ['deploy', '-c', dir, '-r', registry.host, '--plain-http', '--list-commands', '--verify-key', key('key.pub')]
    const listed = await kod(args, {cwd})
    expect(listed.exitCode, listed.stderr).to.equal(0)
    await writeFile(path.join(dir, 'SHA256SUMS'), `${await readFile(path.join(dir, 'SHA256SUMS'), 'utf8')}\n`)
    const changed = await kod(args, {cwd})
    expect(changed.exitCode).to.equal(5)
    expect(changed.stderr).to.match(/the signature does not match --verify-key/)
  })

  it('a key kod cannot use is bad input, said before any work', async function () {
    const out = await mkdtemp(path.join(work, 'out-'))
    await writeFile(key('junk.pem'), 'not a key')
    const result = await kod(['package', '-c', path.join(work, 'plain'), '-o', out, '--sign-key', key('junk.pem')])
    expect(result.exitCode).to.equal(2)
    expect(result.stderr).to.match(/^Error: --sign-key .*junk\.pem is not a PEM private key$/m)
    expect(await readdir(out)).to.deep.equal([])
  })
})
