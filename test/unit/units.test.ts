import {expect} from 'chai'

import type {Unit} from '../../src/api.js'
import {scopedValuesFile} from '../../src/lib/units.js'
import {demoManifest} from '../support/manifest.js'

const unit = (id: string, release: string, namespace?: string, installed = true): Unit => ({
  id,
  release,
  ...(namespace ? {namespace} : {}),
  chart: 'charts/demo-1.0.0.tgz',
  values: [],
  installed,
  needs: [],
  images: [],
})

describe('deploy -f RELEASE=FILE', function () {
  const manifest = demoManifest({
    units: [unit('web', 'web', 'frontend'), unit('shop/api', 'api', 'shop'), unit('ops/api', 'api', 'ops'), unit('db', 'db'), unit('old', 'old', 'frontend', false)],
  })

  it('names a release by its id, or by namespace/name whatever its id', function () {
    expect(scopedValuesFile('web=my.yaml', manifest)).to.deep.equal({unit: 'web', file: 'my.yaml'})
    expect(scopedValuesFile('frontend/web=my.yaml', manifest)).to.deep.equal({unit: 'web', file: 'my.yaml'})
    expect(scopedValuesFile('shop/api=my.yaml', manifest)).to.deep.equal({unit: 'shop/api', file: 'my.yaml'})
    // A release without a namespace is in default, as helm installs it.
    expect(scopedValuesFile('default/db=my.yaml', manifest)).to.deep.equal({unit: 'db', file: 'my.yaml'})
    expect(scopedValuesFile('plain.yaml', manifest)).to.deep.equal({file: 'plain.yaml'})
  })

  it('refuses a release the package does not install, naming its releases', function () {
    expect(() => scopedValuesFile('frontend/old=my.yaml', manifest)).to.throw(/frontend\/old is no release of this package; its releases: web, shop\/api, ops\/api, db/)
    expect(() => scopedValuesFile('old=my.yaml', manifest)).to.throw(/old is a release this package records but does not install/)
  })
})
