import {expect} from 'chai'

import {debugEnabled} from '../../src/lib/base-command.js'
import {parseErrorMessage} from '../../src/lib/errors.js'

describe('DEBUG and one-line parse errors', function () {
  it('reads DEBUG as the debug package does', function () {
    const cases: Array<[string | undefined, string, boolean]> = [
      ['kod*', 'kod:package', true],
      ['kod:*', 'kod:deploy', true],
      ['*', 'kod:images', true],
      ['kod:images', 'kod:images', true],
      ['kod:images', 'kod:package', false],
      ['oclif*,kod*', 'kod:inspect', true],
      ['oclif* kod:package', 'kod:package', true],
      ['kod*,-kod:images', 'kod:images', false],
      ['kod*,-kod:images', 'kod:unpack', true],
      ['oclif*', 'kod:package', false],
      ['', 'kod:package', false],
      [undefined, 'kod:package', false],
      ['kod.', 'kod:', false],
    ]
    for (const [setting, namespace, enabled] of cases) expect(debugEnabled(namespace, setting), `${setting} ${namespace}`).to.equal(enabled)
  })

  it("puts oclif's parse errors on one line", function () {
    expect(parseErrorMessage(new Error('Nonexistent flag: --bogus\nSee more help with --help'))).to.equal('Nonexistent flag: --bogus')
    expect(parseErrorMessage(new Error('The following error occurred:\n  \u001B[2mMissing required flag chart\u001B[22m\nSee more help with --help'))).to.equal(
      'Missing required flag chart',
    )
    expect(parseErrorMessage(new Error('The following errors occurred:\n \u001B[2ma is bad\nb is bad\u001B[22m\nSee more help with --help'))).to.equal('a is bad; b is bad')
    expect(parseErrorMessage(new Error('Missing 1 required arg:\nname  the name\nSee more help with --help'))).to.equal('Missing 1 required arg: name  the name')
    expect(parseErrorMessage(new Error('Flag --chart expects a value'))).to.equal('Flag --chart expects a value')
  })
})
