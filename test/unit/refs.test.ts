import {expect} from 'chai'

import {hostComponent, isValidRepositoryPath, normalizeRef, parseRef, relocatedRepository} from '../../src/lib/refs.js'

describe('image references', function () {
  const cases: Array<[string, string]> = [
    ['nginx', 'docker.io/library/nginx:latest'],
    ['nginx:1.25', 'docker.io/library/nginx:1.25'],
    ['bitnami/redis:7', 'docker.io/bitnami/redis:7'],
    ['docker.io/nginx', 'docker.io/library/nginx:latest'],
    ['index.docker.io/library/nginx:1', 'docker.io/library/nginx:1'],
    ['quay.io/prometheus/prometheus:v2.50.0', 'quay.io/prometheus/prometheus:v2.50.0'],
    ['localhost/app', 'localhost/app:latest'],
    ['127.0.0.1:5000/team/app:1.0', '127.0.0.1:5000/team/app:1.0'],
    [`ghcr.io/a/b@sha256:${'a'.repeat(64)}`, `ghcr.io/a/b@sha256:${'a'.repeat(64)}`],
    [`registry.k8s.io/pause:3.9@sha256:${'b'.repeat(64)}`, `registry.k8s.io/pause:3.9@sha256:${'b'.repeat(64)}`],
  ]
  for (const [input, expected] of cases) {
    it(`normalises ${input}`, function () {
      expect(normalizeRef(input)).to.equal(expected)
    })
  }

  it('rejects what is not a reference', function () {
    for (const bad of ['', 'a b', 'nginx:', 'nginx@sha256:xyz', 'http://nginx', 'Upper:1']) {
      expect(() => parseRef(bad), bad).to.throw(/invalid/)
    }
  })

  it('relocates below registry and prefix, keeping the original host as a path component', function () {
    const target = {registry: 'airgap.local:5000', prefix: 'kod'}
    expect(relocatedRepository(parseRef('nginx:1'), target)).to.equal('airgap.local:5000/kod/docker.io/library/nginx')
    expect(relocatedRepository(parseRef('127.0.0.1:5000/x/y:1'), target)).to.equal('airgap.local:5000/kod/127.0.0.1-5000/x/y')
    expect(relocatedRepository(parseRef('quay.io/a/b'), {registry: 'r.io/team', prefix: ''})).to.equal('r.io/team/quay.io/a/b')
    expect(hostComponent('[::1]:5000')).to.equal('1-5000')
    // Every host becomes a component a registry accepts.
    for (const host of ['[::1]:5000', 'Registry.Example.COM:443', 'localhost', '10.0.0.1:5000']) {
      expect(isValidRepositoryPath(hostComponent(host)), host).to.equal(true)
    }
  })
})
