import {expect} from 'chai'

import {findCandidates} from '../../../packages/helm-analysis/src/candidates.js'
import {PROBE_TARGET} from '../../../packages/helm-analysis/src/probe.js'
import {alignFirst} from '../../../packages/helm-analysis/src/sentinels.js'
import {joinPath, mergeValues, nameOf, relocatedValue, replaceLength, setPath, splitPath} from '../../../packages/helm-analysis/src/values.js'
import {refHelpers} from '../../../src/lib/refs.js'

const target = {registry: 'air.local:5000', prefix: 'kod', plainHttp: true, insecureSkipTlsVerify: false}
const digest = `sha256:${'c'.repeat(64)}`

/** What the binding's path must be set to for `reference` (whose start `value` renders) to land in `target`. */
function relocate(value: string, reference: string): string {
  const replace = replaceLength(refHelpers, value, reference, PROBE_TARGET)
  expect(replace, `${value} in ${reference}`).to.not.equal(undefined)
  return relocatedValue(refHelpers, {path: 'x', value, replace: replace!}, reference, target)
}

describe('plugin-helm: values and relocation', function () {
  it('merges values files as helm does (null deletes)', function () {
    expect(mergeValues({a: {b: 1, c: 2}, d: [1]}, {a: {c: 3, e: null}, d: [2], f: null})).to.deep.equal({a: {b: 1, c: 3}, d: [2]})
  })

  it('writes values paths with escaped dots and list indices, and reads them back', function () {
    const keys = ['podAnnotations', 'example.com/image', 'x']
    expect(joinPath(keys)).to.equal('podAnnotations.example\\.com/image.x')
    expect(splitPath(joinPath(keys))).to.deep.equal(keys)
    const listed = ['sidecars', 0, 'image']
    expect(joinPath(listed)).to.equal('sidecars[0].image')
    expect(splitPath('sidecars[0].image')).to.deep.equal(listed)
    expect(splitPath(joinPath(['a[b', 2, 3, 'c']))).to.deep.equal(['a[b', 2, 3, 'c'])
  })

  it('sets a value inside a list by copying the whole list (helm replaces lists)', function () {
    const source = {sidecars: [{name: 'a', image: 'x:1', args: ['-v']}, {name: 'b', image: 'y:1'}]}
    const values = {}
    setPath(values, ['sidecars', 1, 'image'], 'r/y:1', source)
    setPath(values, ['sidecars', 0, 'image'], 'r/x:1', source)
    expect(values).to.deep.equal({sidecars: [{name: 'a', image: 'r/x:1', args: ['-v']}, {name: 'b', image: 'r/y:1'}]})
    expect(source.sidecars[0].image).to.equal('x:1')
  })

  it('takes the name part of a reference as written', function () {
    expect(nameOf('nginx')).to.equal('nginx')
    expect(nameOf('127.0.0.1:5000/a/b:1.0')).to.equal('127.0.0.1:5000/a/b')
    expect(nameOf(`quay.io/a/b:1@${digest}`)).to.equal('quay.io/a/b')
  })

  it('relocates whatever part of the reference the value renders at the start', function () {
    // the whole reference
    expect(relocate('nginx:1.25', 'nginx:1.25')).to.equal('air.local:5000/kod/docker.io/library/nginx:1.25')
    // the registry only: it must carry the whole path in front of the repository
    expect(relocate('docker.io', 'docker.io/bitnami/redis:7')).to.equal('air.local:5000/kod/docker.io')
    // a registry with a port, which becomes a path component
    expect(relocate('127.0.0.1:5000', '127.0.0.1:5000/team/app:1')).to.equal('air.local:5000/kod/127.0.0.1-5000')
    // registry and repository in one value, pinned by digest
    expect(relocate('ghcr.io/org/app', `ghcr.io/org/app@${digest}`)).to.equal('air.local:5000/kod/ghcr.io/org/app')
    // istio's hub: registry plus the first path component
    expect(relocate('docker.io/istio', 'docker.io/istio/pilot:1.30.3')).to.equal('air.local:5000/kod/docker.io/istio')
  })

  it('aligns a sentinel with the text it replaced', function () {
    const s = (n: number): string => `kodsnt${String(n).padStart(4, '0')}x`
    expect(alignFirst(`${s(1)}/${s(2)}:7`, 'docker.io/bitnami/redis:7', 'docker.io')).to.equal('docker.io')
    // an empty value the template defaulted: found from the rest of the reference
    expect(alignFirst(`${s(1)}/bitnami/redis:7`, 'docker.io/bitnami/redis:7', '')).to.equal('docker.io')
    expect(alignFirst(`${s(3)}:1.0`, '127.0.0.1:5000/a/b:1.0', '127.0.0.1:5000/a/b')).to.equal('127.0.0.1:5000/a/b')
    expect(alignFirst(`docker.io/${s(1)}`, 'docker.io/x', 'x')).to.equal(undefined)
  })

  it('proposes values found in image names, and empty location values, as candidates', function () {
    const values = {
      global: {imageRegistry: '', storageClass: ''},
      image: {registry: 'docker.io', repository: 'bitnami/redis', tag: '7.2', digest: ''},
      service: {type: 'ClusterIP'},
      sidecar: {image: 'busybox:1.36'},
    }
    const paths = findCandidates(values, ['docker.io/bitnami/redis', 'busybox'], [['global', 'hub'], ['global', 'storageClass']]).map((c) => c.path)
    expect(paths.sort()).to.deep.equal(['global.hub', 'global.imageRegistry', 'image.registry', 'image.repository', 'sidecar.image'])
  })
})
