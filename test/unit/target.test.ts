import {expect} from 'chai'

import {parseTarget} from '../../src/lib/target.js'

describe('target registry (-r)', function () {
  it('accepts host[:port][/path] with or without a scheme', function () {
    expect(parseTarget({registry: 'registry.local:5000'})).to.deep.equal({
      registry: 'registry.local:5000',
      prefix: 'kod',
      plainHttp: false,
      insecureSkipTlsVerify: false,
    })
    expect(parseTarget({registry: 'https://myregistry:8080/'}).registry).to.equal('myregistry:8080')
    expect(parseTarget({registry: 'http://10.0.0.1:5000'}).plainHttp).to.equal(true)
    expect(parseTarget({registry: 'harbor.corp/airgap', prefix: 'mirror/x'})).to.include({registry: 'harbor.corp/airgap', prefix: 'mirror/x'})
    expect(parseTarget({registry: 'localhost:5000', prefix: ''}).prefix).to.equal('')
  })

  it('rejects what is not a registry, with a one-line reason', function () {
    expect(() => parseTarget({registry: 'ftp://x.io'})).to.throw(/host\[:port\]/)
    expect(() => parseTarget({registry: 'justaname'})).to.throw(/not a registry address/)
    expect(() => parseTarget({registry: 'r.io', prefix: 'Bad Prefix'})).to.throw(/--prefix/)
  })

  it('refuses contradictory schemes and flags, and never echoes a password', function () {
    expect(() => parseTarget({registry: 'https://r.io:5000/', plainHttp: true})).to.throw(/keep one/)
    expect(() => parseTarget({registry: 'http://r.io:5000/', insecureSkipTlsVerify: true})).to.throw(/drop --insecure-skip-tls-verify/)
    for (const registry of ['https://user:s3cr3t@r.io/', 'user:s3cr3t@r.io:5000']) {
      let message = ''
      try {
        parseTarget({registry})
      } catch (error) {
        message = (error as Error).message
      }
      expect(message).to.match(/credentials do not belong/)
      expect(message).to.not.include('s3cr3t')
      expect(message).to.include('***@')
    }
  })
})
