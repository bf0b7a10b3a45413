import {expect} from 'chai'

import {
  addressProblem,
  applySettings,
  checkConfig,
  configProblems,
  configTemplate,
  DIST_SPEC_VERSION,
  keepsUntagged,
  portProblem,
  stringifyConfig,
  type ZotConfig,
} from '../../plugins/plugin-zot/src/config.js'
import {storageProblem} from '../../plugins/plugin-zot/src/layout.js'

// zot's config as kod writes it, checked against zot's documented format (examples/README.md and
// examples/config-*.json of project-zot/zot). No zot runs here: these are kod's own checks.
describe('zot config', () => {
  it('the template has the documented keys and types: distSpecVersion, storage, http (address and port as a string), log', () => {
    const config = configTemplate()
    expect(config.distSpecVersion).to.equal(DIST_SPEC_VERSION)
    expect(config.storage.rootDirectory).to.equal('/var/lib/zot')
    expect(config.http).to.deep.equal({address: '0.0.0.0', port: '5000'})
    expect(config.log).to.deep.equal({level: 'info'})
    expect(configProblems(config)).to.deep.equal([])
    expect(checkConfig(config)).to.deep.equal([])
    // What zot reads: JSON.
    expect(JSON.parse(stringifyConfig(config))).to.deep.equal(config)
  })

  it('keeps garbage collection of orphan blobs and a retention policy for every repository that deletes no untagged manifest', () => {
    const {storage} = configTemplate()
    expect(storage.gc).to.equal(true)
    expect(storage.gcDelay).to.equal('1h')
    expect(storage.retention?.policies).to.deep.equal([{repositories: ['**'], deleteReferrers: false, deleteUntagged: false, keepTags: [{patterns: ['.*']}]}])
    expect(keepsUntagged(configTemplate())).to.equal(true)
  })

  it('always sets the listen address (zot alone would listen on 127.0.0.1 only)', () => {
    const config = applySettings(configTemplate(), {address: '10.0.0.5', port: 443, storage: '/srv/zot'})
    expect(config.http.address).to.equal('10.0.0.5')
    expect(config.http.port).to.equal('443')
    expect(config.storage.rootDirectory).to.equal('/srv/zot')
  })

  it('adds tls and htpasswd only when given, and removes a template that names them when not', () => {
    const settings = {address: '0.0.0.0', port: 5000, storage: '/var/lib/zot'}
    const secured = applySettings(configTemplate(), {...settings, tls: {cert: '/etc/zot/tls/server.crt', key: '/etc/zot/tls/server.key'}, htpasswd: '/etc/zot/htpasswd'})
    expect(secured.http.tls).to.deep.equal({cert: '/etc/zot/tls/server.crt', key: '/etc/zot/tls/server.key'})
    expect(secured.http.auth).to.deep.equal({htpasswd: {path: '/etc/zot/htpasswd'}})
    expect(checkConfig(secured)).to.deep.equal([])
    const plain = applySettings(secured, settings)
    expect(plain.http).to.not.have.property('tls')
    expect(plain.http).to.not.have.property('auth')
    // Other auth settings of a template are kept.
    const kept = applySettings({...secured, http: {...secured.http, auth: {htpasswd: {path: '/x'}, failDelay: 5}}}, settings)
    expect(kept.http.auth).to.deep.equal({failDelay: 5})
  })

  it('refuses configs that depart from the documented format, naming the key', () => {
    const base = configTemplate()
    type Loose = {http: Record<string, unknown>; storage: Record<string, unknown> & {retention: {policies: Array<Record<string, unknown>>}}; log: Record<string, unknown>}
    const bad = (change: (config: Loose) => void): string[] => {
      const config = structuredClone(base) as unknown as Loose
      change(config)
      return configProblems(config)
    }
    expect(bad((config) => (config.http.port = 5000))).to.deep.equal(['config.http.port must be a port number in a string, e.g. "5000"'])
    expect(bad((config) => delete config.http.address)).to.deep.equal(['config.http.address is missing'])
    expect(bad((config) => (config.storage.gcDelay = '1 hour'))).to.deep.equal(['config.storage.gcDelay must be a Go duration such as "24h" or "90m"'])
    expect(bad((config) => (config.storage.rootDirectory = 'relative'))).to.deep.equal(['config.storage.rootDirectory must be an absolute path'])
    expect(bad((config) => (config.storage.bogus = 1))).to.deep.equal(['config.storage.bogus is not a key zot knows here'])
    expect(bad((config) => (config.log.level = 'verbose'))).to.deep.equal(['config.log.level must be one of debug, info, warn, error'])
    expect(bad((config) => (config.http.tls = {cert: '/c'}))).to.deep.equal(['config.http.tls.key is missing'])
    expect(bad((config) => (config.storage.retention.policies[0].deleteUntagged = 'no'))).to.deep.equal(['config.storage.retention.policies[0].deleteUntagged must be true or false'])
    expect(configProblems([])).to.deep.equal(['config must be an object'])
    // viper reads keys case-insensitively, as zot does.
    expect(bad((config) => {
      config.storage.GCDelay = '2h'
      delete config.storage.gcDelay
    })).to.deep.equal([])
  })

  it('refuses a config that would let zot delete untagged manifests', () => {
    const without = (change: (config: ZotConfig) => void): string[] => {
      const config = configTemplate()
      change(config)
      return checkConfig(config)
    }
    // No policy: zot >= 2.1.9 deletes untagged manifests by default when gc is on.
    expect(without((config) => delete config.storage.retention)).to.have.length(1).and.match(/untagged/)
    // A policy that does not say deleteUntagged: zot defaults it to true.
    expect(without((config) => delete config.storage.retention!.policies![0].deleteUntagged)).to.have.length(1)
    // A first policy for some repositories that deletes them.
    expect(without((config) => config.storage.retention!.policies!.unshift({repositories: ['tmp/**'], deleteUntagged: true}))).to.have.length(1)
    // gc off: nothing is deleted at all.
    expect(without((config) => {
      config.storage.gc = false
      delete config.storage.retention
    })).to.deep.equal([])
  })

  it('checks --address, --port and --storage', () => {
    for (const ok of ['0.0.0.0', '::', '10.0.0.5', 'fe80::1', 'registry.lab']) expect(addressProblem(ok), ok).to.equal(undefined)
    for (const bad of ['', '0.0.0.0:5000', 'http://x', 'a b', '[::]']) expect(addressProblem(bad), bad).to.match(/^--address /)
    expect(portProblem(5000)).to.equal(undefined)
    expect(portProblem(0)).to.match(/out of range/)
    expect(portProblem(70_000)).to.match(/out of range/)
    expect(storageProblem('/var/lib/zot')).to.equal(undefined)
    expect(storageProblem('/srv/registry/zot')).to.equal(undefined)
    expect(storageProblem('var/lib/zot')).to.match(/not an absolute path/)
    expect(storageProblem('/')).to.match(/whole file system/)
    expect(storageProblem('/home/me/zot')).to.match(/ProtectHome/)
    expect(storageProblem('/etc/zot')).to.match(/system directory/)
    expect(storageProblem('/var/lib')).to.match(/shared system directory/)
    expect(storageProblem('/srv/my zot')).to.match(/characters/)
    expect(storageProblem('/srv/zot%i')).to.match(/characters/)
  })
})
