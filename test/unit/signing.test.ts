import {expect} from 'chai'
import {execa} from 'execa'
import {generateKeyPairSync} from 'node:crypto'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {checkSignature, loadSigningKey, loadVerifyKey, signSums} from '../../src/lib/signing.js'
import {refusal} from '../support/assertions.js'

/** Package signatures: Ed25519 over SHA256SUMS, keys made with openssl as docs/security.md says, checkable with openssl. */
describe('package signatures', function () {
  let dir: string
  const sums = Buffer.from('0123  kod-package.yaml\n')

  before(async function () {
    dir = await mkdtemp(path.join(os.tmpdir(), 'kod-signing-'))
    await execa('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', path.join(dir, 'key.pem')])
    await execa('openssl', ['pkey', '-in', path.join(dir, 'key.pem'), '-pubout', '-out', path.join(dir, 'key.pub')])
    await execa('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', path.join(dir, 'other.pem')])
    await execa('openssl', ['genpkey', '-algorithm', 'ed25519', '-aes256', '-pass', 'pass:x', '-out', path.join(dir, 'encrypted.pem')])
    const rsa = generateKeyPairSync('rsa', {modulusLength: 2048})
    await writeFile(path.join(dir, 'rsa.pem'), rsa.privateKey.export({type: 'pkcs8', format: 'pem'}))
    await writeFile(path.join(dir, 'junk.pem'), 'not a key')
  })

  after(async function () {
    await rm(dir, {recursive: true, force: true})
  })

  it('signs with an openssl key, verifies with its public key, and openssl agrees', async function () {
    const signature = signSums(sums, await loadSigningKey(path.join(dir, 'key.pem')))
    expect(signature).to.have.length(64)
    checkSignature(sums, signature, await loadVerifyKey(path.join(dir, 'key.pub')), 'pkg')
    await writeFile(path.join(dir, 'SHA256SUMS'), sums)
    await writeFile(path.join(dir, 'SHA256SUMS.sig'), signature)
    const checked = await execa('openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', path.join(dir, 'key.pub'), '-rawin', '-in', path.join(dir, 'SHA256SUMS'), '-sigfile', path.join(dir, 'SHA256SUMS.sig')])
    expect(checked.stdout).to.match(/Signature Verified Successfully/)
  })

  it('refuses unsigned, wrongly signed and changed sums (exit 5)', async function () {
    const key = await loadVerifyKey(path.join(dir, 'key.pub'))
    const good = signSums(sums, await loadSigningKey(path.join(dir, 'key.pem')))
    const other = signSums(sums, await loadSigningKey(path.join(dir, 'other.pem')))
    expect(refusal(() => checkSignature(sums, undefined, key, 'pkg'))).to.include({exit: 5})
    expect(refusal(() => checkSignature(sums, undefined, key, 'pkg')).message).to.match(/pkg is not signed/)
    expect(refusal(() => checkSignature(sums, other, key, 'pkg')).message).to.match(/does not match --verify-key/)
    expect(refusal(() => checkSignature(Buffer.from('changed'), good, key, 'pkg')).message).to.match(/does not match --verify-key/)
    expect(refusal(() => checkSignature(sums, good.subarray(0, 10), key, 'pkg')).exit).to.equal(5)
  })

  it('says what is wrong with a key, in one line (exit 2)', async function () {
    const message = async (promise: Promise<unknown>): Promise<string> => promise.then(() => 'accepted', (error: Error & {exit?: number}) => `${error.exit}: ${error.message}`)
    expect(await message(loadSigningKey(path.join(dir, 'encrypted.pem')))).to.match(/^2: .* is encrypted: give kod an unencrypted copy/)
    expect(await message(loadSigningKey(path.join(dir, 'rsa.pem')))).to.match(/^2: .* is a rsa key; kod signs with Ed25519/)
    expect(await message(loadSigningKey(path.join(dir, 'junk.pem')))).to.match(/^2: .* is not a PEM private key/)
    expect(await message(loadVerifyKey(path.join(dir, 'missing.pub')))).to.match(/^2: --verify-key .* cannot read the key file/)
    // A private key given to --verify-key verifies with its public half.
    expect(await message(loadVerifyKey(path.join(dir, 'key.pem')))).to.equal('accepted')
  })
})
