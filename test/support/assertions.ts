import {expect} from 'chai'

/** kod's promise for every failure: exactly one `Error:` line on stderr, matching `pattern`, and no stack trace. */
export function oneLineError(result: {stderr: string}, pattern: RegExp): void {
  const errors = result.stderr
    .trim()
    .split('\n')
    .filter((line) => line.startsWith('Error: '))
  expect(errors, result.stderr).to.have.length(1)
  expect(errors[0], result.stderr).to.match(pattern)
  expect(result.stderr, 'no stack trace').to.not.match(/\n\s+at /)
}

/** The error a synchronous call throws (its exit code and message); a call that does not throw fails the test. */
export function refusal(fn: () => void): {exit?: number; message: string} {
  try {
    fn()
  } catch (error) {
    return error as {exit?: number; message: string}
  }
  throw new Error('not refused')
}
