import {expect} from 'chai'

import {relocationValues} from '../../packages/helm-analysis/src/values.js'
import {mergeImages} from '../../src/lib/actions/package.js'
import {refHelpers} from '../../src/lib/refs.js'

const target = {registry: 'air.local:5000', prefix: 'kod', plainHttp: true, insecureSkipTlsVerify: false}

describe('merging images rendered under two spellings', function () {
  const found = [
    {ref: 'docker.io/library/nginx:1.25', foundIn: ['c/templates/a.yaml'], values: [{path: 'a.registry', value: 'docker.io', replace: 0}]},
    {ref: 'nginx:1.25', foundIn: ['c/templates/b.yaml'], values: [{path: 'b.image', value: 'nginx:1.25', replace: 0}]},
    {ref: 'nginx:1.25', foundIn: ['c/templates/hard.yaml'], values: [], note: 'hard-coded in c/templates/hard.yaml'},
  ]

  it('keeps one image, every binding with the spelling it was computed for, and every note', function () {
    const [image, ...rest] = mergeImages(found)
    expect(rest).to.deep.equal([])
    expect(image.name).to.equal('docker.io/library/nginx:1.25')
    expect(image.values).to.deep.equal([
      {path: 'a.registry', value: 'docker.io', replace: 0},
      {path: 'b.image', value: 'nginx:1.25', replace: 0, ref: 'nginx:1.25'},
    ])
    expect(image.foundIn).to.deep.equal(['c/templates/a.yaml', 'c/templates/b.yaml', 'c/templates/hard.yaml'])
    expect(image.note).to.equal('hard-coded in c/templates/hard.yaml')
  })

  it('relocates each binding against its own spelling', function () {
    expect(relocationValues(refHelpers, mergeImages(found), target)).to.deep.equal({
      a: {registry: 'air.local:5000/kod/docker.io'},
      b: {image: 'air.local:5000/kod/docker.io/library/nginx:1.25'},
    })
  })
})
