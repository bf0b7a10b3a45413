import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {expect} from 'chai'

import {HelmfileError} from '../src/index.js'

export const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures')
export const fixture = (...p: string[]): string => path.join(fixtures, ...p)

/** Expect a one-line HelmfileError with exit 2 that names the file and matches the message. */
export async function refused(promise: Promise<unknown>, file: string, message: RegExp): Promise<HelmfileError> {
  let error: unknown
  try {
    await promise
  } catch (e) {
    error = e
  }
  expect(error, 'expected a refusal').to.be.instanceOf(HelmfileError)
  const e = error as HelmfileError
  expect(e.exit).to.equal(2)
  expect(e.message).to.not.include('\n')
  expect(e.message).to.include(file)
  expect(e.message).to.match(message)
  return e
}
