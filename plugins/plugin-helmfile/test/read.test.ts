import {expect} from 'chai'

import {readHelmfile, type Release} from '../src/index.js'
import {chartInput} from '../src/stage.js'
import {fixture} from './helpers.js'

const shop = fixture('shop')
const byName = (releases: Release[], name: string): Release => {
  const r = releases.find((x) => x.name === name)
  if (!r) throw new Error(`no release ${name}`)
  return r
}

describe('readHelmfile: the shop fixture', () => {
  it('accepts a directory holding helmfile.yaml and reports the file it read', async () => {
    const m = await readHelmfile(shop)
    expect(m.file).to.equal(fixture('shop', 'helmfile.yaml'))
    expect(m.environment.name).to.equal('default')
  })

  it('lists sub-helmfile releases first, then its own, in file order, over two namespaces and more', async () => {
    const m = await readHelmfile(fixture('shop', 'helmfile.yaml'))
    expect(m.releases.map((r) => r.id)).to.deep.equal(['jobs/worker', 'shop/web', 'shop/admin', 'data/redis', 'data/cache', 'data/metrics'])
  })

  it('resolves one local chart used twice, each release with its own values in order (files and inline maps)', async () => {
    const m = await readHelmfile(shop)
    const web = byName(m.releases, 'web')
    const admin = byName(m.releases, 'admin')
    expect(web.chart).to.deep.equal({kind: 'local', path: fixture('shop', 'charts', 'web')})
    expect(admin.chart).to.deep.equal(web.chart)
    expect(web.values).to.deep.equal([
      {kind: 'file', path: fixture('shop', 'values', 'web-common.yaml')},
      {kind: 'inline', values: {image: {tag: '1.27.1'}}},
    ])
    expect(admin.values).to.deep.equal([
      {kind: 'file', path: fixture('shop', 'values', 'web-common.yaml')},
      {kind: 'file', path: fixture('shop', 'values', 'web-admin.yaml')},
    ])
  })

  it('reads set (value, file, values) and setString', async () => {
    const admin = byName((await readHelmfile(shop)).releases, 'admin')
    expect(admin.set).to.deep.equal([
      {name: 'replicas', value: '2'},
      {name: 'config', file: fixture('shop', 'files', 'config.txt')},
      {name: 'hosts', values: ['a.example.com', 'b.example.com']},
    ])
    expect(admin.setString).to.deep.equal([{name: 'image.tag', value: '010'}])
  })

  it('resolves a repo/name chart to its repository URL, keeping a semver range as written', async () => {
    const redis = byName((await readHelmfile(shop)).releases, 'redis')
    expect(redis.chart).to.deep.equal({kind: 'repo', repository: 'bitnami', name: 'redis', url: 'https://charts.bitnami.com/bitnami', oci: false})
    expect(redis.version).to.equal('~18.1.0')
    expect(redis.versionIsRange).to.equal(true)
  })

  it('resolves a chart of an oci: true repository to an oci:// URL', async () => {
    const metrics = byName((await readHelmfile(shop)).releases, 'metrics')
    expect(metrics.chart).to.deep.equal({kind: 'repo', repository: 'ocirepo', name: 'metrics', url: 'oci://registry.example.com/charts/metrics', oci: true})
    // helm pulls it from there, its name once (it was added twice: …/charts/metrics/metrics).
    expect(chartInput(metrics.chart)).to.deep.equal({type: 'oci', url: 'oci://registry.example.com/charts/metrics'})
    expect(metrics.versionIsRange).to.equal(false)
  })

  it('keeps an oci:// chart and flags installed: false without installing it', async () => {
    const m = await readHelmfile(shop)
    const cache = byName(m.releases, 'cache')
    expect(cache.chart).to.deep.equal({kind: 'oci', url: 'oci://registry.example.com/charts/cache'})
    expect(cache.installed).to.equal(false)
    expect(cache.deploy).to.equal(false)
    expect(m.installOrder).to.not.include('data/cache')
  })

  it('lists repositories with oci and the file (here a base) that declares them', async () => {
    const m = await readHelmfile(shop)
    expect(m.repositories.map((r) => [r.name, r.oci, r.file])).to.deep.equal([
      ['bitnami', false, fixture('shop', 'bases', 'common.yaml')],
      ['ocirepo', true, fixture('shop', 'bases', 'common.yaml')],
    ])
  })

  it('resolves needs (name, namespace/name) to release IDs and orders installs after them', async () => {
    const m = await readHelmfile(shop)
    expect(byName(m.releases, 'admin').needs).to.deep.equal(['shop/web'])
    expect(byName(m.releases, 'metrics').needs).to.deep.equal(['shop/admin'])
    expect(m.installOrder).to.deep.equal(['jobs/worker', 'shop/web', 'shop/admin', 'data/metrics'])
  })

  it('evaluates condition against the default environment: redis off', async () => {
    const redis = byName((await readHelmfile(shop)).releases, 'redis')
    expect(redis.condition).to.deep.equal({expression: 'redis.enabled', enabled: false})
    expect(redis.deploy).to.equal(false)
  })

  it('chooses an environment like -e: merged values from files and inline maps, condition on', async () => {
    const m = await readHelmfile(shop, {environment: 'prod'})
    expect(m.environment).to.deep.equal({name: 'prod', values: {domain: 'shop.example.com', redis: {enabled: true}, replicas: 3}})
    expect(byName(m.releases, 'redis').deploy).to.equal(true)
    expect(m.installOrder).to.deep.equal(['jobs/worker', 'shop/web', 'data/redis', 'shop/admin', 'data/metrics'])
  })

  it('takes wait/timeout/createNamespace from the release, else helmDefaults (base included)', async () => {
    const m = await readHelmfile(shop)
    expect(m.helmDefaults).to.deep.equal({wait: true, waitForJobs: false, timeout: 600, createNamespace: true})
    const web = byName(m.releases, 'web')
    expect([web.wait, web.timeout, web.createNamespace]).to.deep.equal([true, 600, true])
    const metrics = byName(m.releases, 'metrics')
    expect([metrics.wait, metrics.timeout, metrics.createNamespace]).to.deep.equal([false, 60, false])
  })

  it('merges commonLabels with release labels', async () => {
    const m = await readHelmfile(shop)
    expect(byName(m.releases, 'admin').labels).to.deep.equal({team: 'shop', tier: 'back'})
  })

  it('reads a sub-helmfile with its own paths, defaults and environments, overridden by the parent\'s values', async () => {
    const worker = byName((await readHelmfile(shop)).releases, 'worker')
    expect(worker.file).to.equal(fixture('shop', 'sub', 'helmfile.yaml'))
    expect(worker.chart).to.deep.equal({kind: 'local', path: fixture('shop', 'charts', 'worker')})
    expect(worker.condition).to.deep.equal({expression: 'worker.enabled', enabled: true})
    expect([worker.wait, worker.createNamespace]).to.deep.equal([false, false])
  })

  it('warns about hooks, naming the release', async () => {
    const m = await readHelmfile(shop)
    expect(byName(m.releases, 'worker').hooks).to.equal(true)
    expect(m.warnings.some((w) => w.includes('release "worker" has hooks'))).to.equal(true)
  })
})
