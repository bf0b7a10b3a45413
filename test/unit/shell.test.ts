import {expect} from 'chai'
import {execFileSync} from 'node:child_process'

import {shellCommand} from '../../src/lib/shell.js'

describe('shell quoting', function () {
  it('round-trips any word through a real shell', function () {
    const words = ['plain', 'with space', "it's", '$HOME', '', 'a"b', '--set=x=y', 'back\\slash', '*']
    const echoed = execFileSync('sh', ['-c', `${shellCommand(['printf', '%s\\n', ...words])}`]).toString()
    expect(echoed.split('\n').slice(0, -1)).to.deep.equal(words)
  })

  it('leaves safe words alone', function () {
    expect(shellCommand(['helm', 'upgrade', '--install', 'r', '/tmp/x-1.0.tgz', '--dry-run=client'])).to.equal(
      'helm upgrade --install r /tmp/x-1.0.tgz --dry-run=client',
    )
  })
})
