import {expect} from 'chai'
import {execa} from 'execa'
import {cp, mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import YAML from 'yaml'

import {FIXTURES, kod} from '../support/kod.js'
import {buildLayout} from '../support/oci-build.js'
import {startRegistry, type TestRegistry} from '../support/registry.js'

/**
 * Hint files: given with --hints, shipped by plugin-helm, or contributed by a private plugin through the
 * kod:hints hook (a fixture plugin installed with `kod plugins link`). The fixture chart "acme" composes
 * its worker image at run time, so rendering alone cannot find it.
 */
const ACME = path.join(FIXTURES, 'charts', 'acme')
const PLUGIN = path.join(FIXTURES, 'plugins', 'acme-hints')

interface Row {
  ref: string
  values: string[]
  relocatable: boolean
  foundIn: string[]
}

describe('hint files and hint libraries (e2e)', function () {
  let work: string
  let env: Record<string, string>
  let hintFile: string

  before(async function () {
    work = await mkdtemp(path.join(os.tmpdir(), 'kod-hints-'))
    // A user of its own: plugins linked here are not seen by anyone else.
    env = {HOME: work, XDG_DATA_HOME: path.join(work, 'data'), XDG_CONFIG_HOME: path.join(work, 'config'), XDG_CACHE_HOME: path.join(work, 'cache')}
    hintFile = path.join(work, 'my-hints.yaml')
    await cp(path.join(PLUGIN, 'hints', 'acme.yaml'), hintFile)
  })

  after(async function () {
    if (work) await rm(work, {recursive: true, force: true})
  })

  async function images(args: string[]): Promise<Row[]> {
    const result = await kod(['images', '-c', ACME, '--json', ...args], {env})
    expect(result.exitCode, result.stderr).to.equal(0)
    return JSON.parse(result.stdout).images as Row[]
  }

  it('without a hint, finds only what renders', async function () {
    expect((await images([])).map((row) => row.ref)).to.deep.equal(['registry.invalid/acme/app:2.1.0'])
  })

  it('with --hints, adds the hinted image and relocates it through the value it is built from', async function () {
    const rows = await images(['--hints', hintFile])
    const worker = rows.find((row) => row.ref === 'registry.invalid/acme/worker:2.1.0')
    expect(worker, JSON.stringify(rows)).to.not.equal(undefined)
    expect(worker!.values).to.deep.equal(['workers.registry'])
    expect(worker!.foundIn).to.deep.equal(['hint my-hints.yaml (--hints)'])

    const relocate = path.join(work, 'relocate.yaml')
    const result = await kod(['images', '-c', ACME, '--hints', hintFile, '--relocate-to', 'air.local:5000', '-o', relocate], {env})
    expect(result.exitCode, result.stderr).to.equal(0)
    const text = await readFile(relocate, 'utf8')
    expect(YAML.parse(text)).to.deep.equal({
      image: {repository: 'air.local:5000/kod/registry.invalid/acme/app'},
      workers: {registry: 'air.local:5000/kod/registry.invalid', pullFromMirror: true},
    })
    expect(text).to.match(/# workers\.pullFromMirror: the app must be told the worker image is relocated/)
  })

  it("relocates istiod's injected proxy through plugin-helm's built-in hint, and reads no image from the injector's values dump", async function () {
    // The fixture keeps istiod's shape: the sidecar injector's ConfigMap carries the chart's values as JSON
    // ({"global": {"proxy": {"image": "proxyv2"}}}), the name part of the proxy image the injector composes.
    const istiod = path.join(FIXTURES, 'charts', 'istiod')
    const result = await kod(['images', '-c', istiod, '--json'], {env})
    expect(result.exitCode, result.stderr).to.equal(0)
    expect(result.stderr, 'no warning').to.equal('')
    const rows = (JSON.parse(result.stdout).images as Row[]).map(({foundIn, ref, relocatable, values}) => ({foundIn, ref, relocatable, values}))
    expect(rows).to.deep.equal([
      {ref: 'registry.invalid/istio/pilot:1.30.3', values: ['global.hub'], relocatable: true, foundIn: ['istiod/templates/deployment.yaml']},
      {ref: 'registry.invalid/istio/proxyv2:1.30.3', values: ['global.hub'], relocatable: true, foundIn: ['hint istiod.yaml (@kod/plugin-helm (plugin-helm built-in hints))']},
    ])
    const relocated = await kod(['images', '-c', istiod, '--relocate-to', 'air.local:5000'], {env})
    expect(relocated.exitCode, relocated.stderr).to.equal(0)
    expect(YAML.parse(relocated.stdout)).to.deep.equal({global: {hub: 'air.local:5000/kod/registry.invalid/istio'}})
  })

  it('refuses a hint file that does not match the schema, in one line', async function () {
    const bad = path.join(work, 'bad.yaml')
    await writeFile(bad, YAML.stringify({apiVersion: 'kod.dev/v1', kind: 'ImageHints', hints: [{chart: 'acme', images: [{reference: 'x'}]}]}))
    const result = await kod(['images', '-c', ACME, '--hints', bad], {env})
    expect(result.exitCode).to.equal(2)
    expect(result.stderr.trim()).to.match(/^Error: .*bad\.yaml is not a kod hint file: \/hints\/0\/images\/0 must have required property 'ref'/)
  })

  it('takes hint libraries from a private plugin installed with kod plugins link', async function () {
    const linked = await kod(['plugins', 'link', PLUGIN, '--no-install'], {env})
    expect(linked.exitCode, linked.stderr).to.equal(0)
    try {
      const listed = await kod(['plugins'], {env})
      expect(listed.stdout).to.match(/kod-plugin-acme-hints/)
      const worker = (await images([])).find((row) => row.ref === 'registry.invalid/acme/worker:2.1.0')
      expect(worker?.foundIn).to.deep.equal(['hint acme.yaml (kod-plugin-acme-hints (acme charts))'])
      expect(worker?.values).to.deep.equal(['workers.registry'])
    } finally {
      await kod(['plugins', 'unlink', 'kod-plugin-acme-hints'], {env})
    }
    expect((await images([])).map((row) => row.ref)).to.deep.equal(['registry.invalid/acme/app:2.1.0'])
  })

  describe('packaging with a hint', function () {
    let upstream: TestRegistry

    before(async function () {
      upstream = await startRegistry()
    })

    after(async function () {
      await upstream?.stop()
    })

    it('pulls the hinted image and stores the hint file in the package', async function () {
      const layout = path.join(work, 'build')
      await buildLayout(layout, [
        {name: 'app', layers: [{files: {app: 'app\n'}}]},
        {name: 'worker', layers: [{files: {worker: 'worker\n'}}]},
      ])
      for (const name of ['app', 'worker']) {
        await execa('skopeo', ['copy', '--dest-tls-verify=false', `oci:${layout}:${name}`, `docker://${upstream.host}/acme/${name}:2.1.0`])
      }
      const values = path.join(work, 'upstream.yaml')
      await writeFile(values, YAML.stringify({image: {repository: `${upstream.host}/acme/app`}, workers: {registry: upstream.host}}))
      const out = path.join(work, 'out')
      await mkdir(out)
      const packaged = await kod(['package', '-c', ACME, '-f', values, '--hints', hintFile, '-o', out, '--insecure-registry', upstream.host], {env})
      expect(packaged.exitCode, packaged.stderr).to.equal(0)
      const manifest = JSON.parse((await kod(['inspect', '-c', path.join(out, 'kod-acme-2.1.0.kodpkg'), '--json'], {env})).stdout)
      expect(manifest.hints).to.deep.equal(['hints/01-my-hints.yaml'])
      expect(manifest.images.map((image: {ref: string}) => image.ref)).to.deep.equal([`${upstream.host}/acme/app:2.1.0`, `${upstream.host}/acme/worker:2.1.0`])
      expect(manifest.units[0].data.extraValues).to.deep.equal({workers: {pullFromMirror: true}})
    })

    it('refuses to package a hinted image that no value relocates, and deploys it only once accepted', async function () {
      const layout = path.join(work, 'build')
      await execa('skopeo', ['copy', '--dest-tls-verify=false', `oci:${layout}:worker`, `docker://${upstream.host}/acme/sidecar:1`])
      // The sidecar is named literally: nothing in the chart's values decides where it is pulled from.
      const hints = path.join(work, 'sidecar-hints.yaml')
      await writeFile(hints, YAML.stringify({apiVersion: 'kod.dev/v1', kind: 'ImageHints', hints: [{chart: 'acme', images: [{ref: `${upstream.host}/acme/sidecar:1`}]}]}))
      const values = path.join(work, 'upstream.yaml')
      const out = await mkdtemp(path.join(work, 'sidecar-'))
      const args = ['package', '-c', ACME, '-f', values, '--hints', hints, '-o', out, '--insecure-registry', upstream.host]
      const refused = await kod(args, {env})
      expect(refused.exitCode, refused.stderr).to.equal(6)
      expect(refused.stderr).to.match(/refusing to package: 1 image\(s\) cannot be relocated through values.*acme\/sidecar:1 \(hint sidecar-hints\.yaml/)
      const packaged = await kod([...args, '--allow-external', `${upstream.host}/acme/sidecar:1`], {env})
      expect(packaged.exitCode, packaged.stderr).to.equal(0)
      expect(packaged.stderr).to.match(/acme\/sidecar:1 \(.*\) cannot be relocated through values: accepted with --allow-external/)
      const deployed = await kod(['deploy', '-c', path.join(out, 'kod-acme-2.1.0.kodpkg'), '-r', '127.0.0.1:1', '--plain-http', '--list-commands'], {env, cwd: out})
      expect(deployed.exitCode, deployed.stderr).to.equal(0)
      expect(deployed.stderr).to.match(/acme\/sidecar:1 \(hint sidecar-hints\.yaml \(--hints\)\) will be pulled from outside 127\.0\.0\.1:1: accepted when the package was made/)
    })
  })
})
