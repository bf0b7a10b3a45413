import {expect} from 'chai'

import {bindingsFor, findCandidates, mergeValues, relocate, type Values} from '../../../plugins/plugin-helm/src/values.js'
import {parseRef, refHelpers} from '../../../src/lib/refs.js'

const target = {registry: 'air.local:5000', prefix: 'kod', plainHttp: true, insecureSkipTlsVerify: false}
const digest = `sha256:${'c'.repeat(64)}`

function pathsFor(values: Values, rendered: string, appVersion?: string): string[] {
  return bindingsFor(refHelpers, findCandidates(refHelpers, values, appVersion), rendered).map((binding) => binding.path)
}

describe('plugin-helm: values that set images', function () {
  it('merges values files as helm does (null deletes)', function () {
    expect(mergeValues({a: {b: 1, c: 2}, d: [1]}, {a: {c: 3, e: null}, d: [2], f: null})).to.deep.equal({a: {b: 1, c: 3}, d: [2]})
    expect(mergeValues({a: {b: 1}}, {a: {b: null}})).to.deep.equal({a: {}})
  })

  it('finds image: "repo:tag"', function () {
    expect(pathsFor({app: {image: 'nginx:1.25'}}, 'docker.io/library/nginx:1.25')).to.deep.equal(['app.image'])
  })

  it('finds {repository, tag}, the tag defaulting to appVersion (with or without v)', function () {
    expect(pathsFor({image: {repository: 'quay.io/x/y', tag: '2.0'}}, 'quay.io/x/y:2.0')).to.deep.equal(['image'])
    expect(pathsFor({image: {repository: 'quay.io/x/y', tag: ''}}, 'quay.io/x/y:1.4', '1.4')).to.deep.equal(['image'])
    expect(pathsFor({image: {repository: 'quay.io/x/y'}}, 'quay.io/x/y:v1.4', '1.4')).to.deep.equal(['image'])
    expect(pathsFor({image: {repository: 'quay.io/x/y', tag: '2.0'}}, 'quay.io/x/y:1.4', '1.4')).to.deep.equal([])
  })

  it('finds {registry, repository, tag, digest}', function () {
    const values = {db: {image: {registry: 'docker.io', repository: 'bitnami/postgresql', tag: '17', digest}}}
    expect(pathsFor(values, `docker.io/bitnami/postgresql:17@${digest}`)).to.deep.equal(['db.image'])
    expect(pathsFor(values, `docker.io/bitnami/postgresql@${digest}`)).to.deep.equal(['db.image'])
  })

  it('ignores values that do not render', function () {
    expect(pathsFor({a: {image: 'nginx:1'}, b: {image: {repository: 'redis'}}}, 'busybox:1')).to.deep.equal([])
  })

  it('relocates each layout into the target', function () {
    const values: Values = {}
    relocate(refHelpers, values, {path: 'a.image', form: 'string'}, parseRef('nginx:1.25'), target)
    relocate(refHelpers, values, {path: 'b.image', form: 'map', keys: {registry: 'registry', repository: 'repository', tag: 'tag'}}, parseRef('docker.io/bitnami/redis:7'), target)
    relocate(refHelpers, values, {path: 'c.image', form: 'map', keys: {repository: 'repository'}}, parseRef(`quay.io/x/y@${digest}`), target)
    expect(values).to.deep.equal({
      a: {image: 'air.local:5000/kod/docker.io/library/nginx:1.25'},
      b: {image: {registry: 'air.local:5000', repository: 'kod/docker.io/bitnami/redis'}},
      c: {image: {repository: 'air.local:5000/kod/quay.io/x/y'}},
    })
  })
})
