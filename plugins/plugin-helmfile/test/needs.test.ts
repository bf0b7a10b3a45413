import {expect} from 'chai'

import {HelmfileError} from '../src/index.js'
import {installOrder, releaseId, resolveNeed} from '../src/helmfile/needs.js'

describe('needs', () => {
  it('builds release IDs as helmfile ReleaseToID does', () => {
    expect(releaseId('a')).to.equal('a')
    expect(releaseId('a', 'ns')).to.equal('ns/a')
    expect(releaseId('a', 'ns', 'ctx')).to.equal('ctx/ns/a')
    expect(releaseId('a', '', 'ctx')).to.equal('ctx//a')
  })

  it('resolves name, namespace/name and kubecontext/namespace/name against the needing release', () => {
    expect(resolveNeed('b', 'ns')).to.equal('ns/b')
    expect(resolveNeed('other/b', 'ns')).to.equal('other/b')
    expect(resolveNeed('ctx/other/b', 'ns')).to.equal('ctx/other/b')
    expect(resolveNeed('b', 'ns', 'ctx')).to.equal('ctx/ns/b')
    expect(resolveNeed('b')).to.equal('b')
  })

  it('orders by dependency level, each level in file order', () => {
    const order = installOrder('f', [
      {id: 'c', needs: ['a']},
      {id: 'a', needs: []},
      {id: 'b', needs: []},
      {id: 'd', needs: ['c', 'b']},
    ])
    expect(order).to.deep.equal(['a', 'b', 'c', 'd'])
  })

  it('refuses cycles and undefined needs', () => {
    expect(() => installOrder('f', [{id: 'a', needs: ['a']}])).to.throw(HelmfileError, /cycle: a → a/)
    expect(() => installOrder('f', [{id: 'a', needs: ['zz']}])).to.throw(HelmfileError, /undefined release "zz"/)
  })
})
