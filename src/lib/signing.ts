import {createPrivateKey, createPublicKey, type KeyObject, sign, verify} from 'node:crypto'
import {readFile} from 'node:fs/promises'

import {packageError, usageError} from './errors.js'

/**
 * Package signatures (docs/security.md): a detached Ed25519 signature over SHA256SUMS, stored as the raw
 * 64 signature bytes in SHA256SUMS.sig beside it. SHA256SUMS names every other file with its sha256, so
 * the signature covers the whole package; `openssl pkeyutl -verify -rawin` checks it without kod.
 */
export const SIGNATURE_FILE = 'SHA256SUMS.sig'

async function readKey(file: string, flag: string): Promise<string> {
  try {
    return await readFile(file, 'utf8')
  } catch {
    throw usageError(`${flag} ${file}: cannot read the key file`)
  }
}

function ed25519(key: KeyObject, flag: string, file: string): KeyObject {
  if (key.asymmetricKeyType !== 'ed25519') {
    throw usageError(`${flag} ${file} is a ${key.asymmetricKeyType ?? 'non-asymmetric'} key; kod signs with Ed25519 (openssl genpkey -algorithm ed25519 -out key.pem)`)
  }
  return key
}

/** --sign-key: an unencrypted PEM Ed25519 private key. */
export async function loadSigningKey(file: string): Promise<KeyObject> {
  const text = await readKey(file, '--sign-key')
  let key: KeyObject
  try {
    key = createPrivateKey(text)
  } catch (error) {
    const encrypted = /passphrase|encrypted/i.test((error as Error).message) || text.includes('ENCRYPTED')
    throw usageError(
      encrypted
        ? `--sign-key ${file} is encrypted: give kod an unencrypted copy (openssl pkey -in ${file} -out plain.pem), kept where only the packaging job can read it`
        : `--sign-key ${file} is not a PEM private key`,
    )
  }
  return ed25519(key, '--sign-key', file)
}

/** --verify-key: a PEM Ed25519 public key (a private key works too: its public half is used). */
export async function loadVerifyKey(file: string): Promise<KeyObject> {
  const text = await readKey(file, '--verify-key')
  try {
    return ed25519(createPublicKey(text), '--verify-key', file)
  } catch (error) {
    if ((error as {exit?: number}).exit !== undefined) throw error
    throw usageError(`--verify-key ${file} is not a PEM public key`)
  }
}

export function signSums(sums: Buffer, key: KeyObject): Buffer {
  return sign(null, sums, key)
}

/**
 * Refuses a package (or a bundle: `noun`) whose SHA256SUMS is not signed by the key: unsigned, or signed
 * by another key, or changed after signing. Exit 5, as for any package that is not what it claims to be.
 */
export function checkSignature(sums: Buffer | undefined, signature: Buffer | undefined, key: KeyObject, origin: string, noun = 'package'): void {
  if (sums === undefined) throw packageError(`${origin}: SHA256SUMS is missing; the ${noun} cannot be verified`)
  if (signature === undefined) throw packageError(`${origin} is not signed (no ${SIGNATURE_FILE}); --verify-key accepts only ${noun}s signed with its key`)
  let valid = false
  try {
    valid = signature.length === 64 && verify(null, sums, key, signature)
  } catch {
    valid = false
  }
  if (!valid) throw packageError(`${origin}: the signature does not match --verify-key: signed with another key, or SHA256SUMS was changed after signing`)
}
