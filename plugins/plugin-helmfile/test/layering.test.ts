import {expect} from 'chai'

import {readHelmfile} from '../src/index.js'
import {fixture} from './helpers.js'

describe('readHelmfile: layering', () => {
  it('layers --- parts as helmfile v1: later lists replace, maps and environment values merge', async () => {
    const m = await readHelmfile(fixture('parts', 'helmfile.yaml'))
    expect(m.releases.map((r) => r.name)).to.deep.equal(['second'])
    expect(m.environment.values).to.deep.equal({a: 1, nested: {x: 1, y: 2}})
    expect(m.helmDefaults).to.include({wait: true, timeout: 100})
  })

  it('merges bases before the helmfile: base repositories and environments, paths relative to the helmfile', async () => {
    const m = await readHelmfile(fixture('shop'), {environment: 'prod'})
    // prod's values: the base's two files, then the helmfile's own inline map
    expect(m.environment.values).to.have.property('replicas', 3)
    expect(m.environment.values).to.have.property('domain', 'shop.example.com')
  })

  it('honours YAML merge keys (<<:) with per-release overrides', async () => {
    const m = await readHelmfile(fixture('merge', 'helmfile.yaml'))
    expect(m.releases.map((r) => [r.id, r.wait, r.values])).to.deep.equal([
      ['apps/one', true, [{kind: 'inline', values: {replicas: 1}}]],
      ['other/two', true, [{kind: 'inline', values: {replicas: 2}}]],
    ])
  })

  it('reads sub-helmfiles by glob and by directory (its *.y*ml in name order), warning that selectors are ignored', async () => {
    const m = await readHelmfile(fixture('nested'))
    expect(m.releases.map((r) => r.id)).to.deep.equal(['team-a/a', 'team-b/b', 'team-b/b2', 'top'])
    expect(m.installOrder).to.deep.equal(['team-a/a', 'team-b/b', 'team-b/b2', 'top'])
    expect(m.warnings.some((w) => w.includes('selectors of sub-helmfile "team-b" are ignored'))).to.equal(true)
  })
})
