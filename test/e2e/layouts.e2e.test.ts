import {expect} from 'chai'
import {execa} from 'execa'
import {mkdtemp, readFile, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import YAML from 'yaml'

import {occurrences} from '../../packages/helm-analysis/src/render.js'
import {FIXTURES, kod, TOOLS_BIN} from '../support/kod.js'

/**
 * The image layouts real charts use, in one fixture chart (test/fixtures/charts/layouts), through real
 * helm: kod images finds each image and the value that relocates it, and the values it writes for a
 * registry really relocate every image, checked by rendering the chart with them.
 */
const CHART = path.join(FIXTURES, 'charts', 'layouts')

interface Row {
  ref: string
  values: string[]
  relocatable: boolean
  foundIn: string[]
  note?: string
}

describe('image layouts of real-world charts (e2e, helm only)', function () {
  let work: string
  let rows: Map<string, Row>

  let warnings: string
  let jsonWarnings: string[]

  before(async function () {
    work = await mkdtemp(path.join(os.tmpdir(), 'kod-layouts-'))
    const result = await kod(['images', '-c', CHART, '--json'])
    expect(result.exitCode, result.stderr).to.equal(0)
    rows = new Map((JSON.parse(result.stdout).images as Row[]).map((row) => [row.ref, row]))
    jsonWarnings = JSON.parse(result.stdout).warnings
    warnings = result.stderr
  })

  after(async function () {
    if (work) await rm(work, {recursive: true, force: true})
  })

  const expectations: Array<[string, string, string]> = [
    ['registry.invalid/bitnami/app:1.0', 'bitnami.image.registry', 'global.imageRegistry over {registry, repository, tag}, from two registries'],
    ['other.invalid/bitnami/other:2.0', 'bitnamiOther.image.registry', 'the second registry under that global'],
    ['registry.invalid/istio/pilot:1.30.3', 'global.hub', 'global.hub + global.tag (istio)'],
    ['registry.invalid/istio/proxyv2:1.30.3', 'global.hub', 'a second image from the same hub'],
    ['registry.invalid/ingress-nginx/controller:v1.12.0', 'ingress.image.registry', 'image.image (ingress-nginx)'],
    ['registry.invalid/jetstack/cert-manager-controller:v3.1.0', 'certmanager.imageRegistry', 'imageRegistry/imageNamespace, tag from v<appVersion> (cert-manager)'],
    ['registry.invalid/op/operator:2.0', 'operator.image.repository', '{repository, tag}'],
    ['registry.invalid/op/agent:2.0', 'operator.agentImage.repository', 'an image passed only in container args and env'],
    ['registry.invalid/prom/prometheus:v3.0.0', 'prometheus.image.registry', 'a custom resource (Prometheus spec.image)'],
    ['registry.invalid/tools/migrate:5', 'migrate.image', 'a Helm hook Job, the whole reference in one string'],
    ['registry.invalid/cache/redis:7.4', 'redis.image.repository', 'a subchart under its alias, tag overridden by the parent'],
    ['registry.invalid/op/helper:2.0', 'operator.helperImage.registry', 'an image named in ConfigMap text, from values'],
    ['registry.invalid/tools/logger:1.2', 'sidecars[0].image', 'an image set inside a list'],
    ['registry.invalid/tools/metrics:0.9', 'sidecars[1].image', 'a second image in the same list'],
    ['registry.invalid/knative/queue:v1.14.1', 'queueSidecarImage', 'a whole reference kept as a ConfigMap entry'],
    ['registry.invalid/strimzi/kafka:0.41.0-kafka-3.6.0', 'kafka.registry', 'one of several images in one env value'],
    ['registry.invalid/strimzi/kafka:0.41.0-kafka-3.7.0', 'kafka.registry', 'the other image in that env value'],
    ['registry.invalid/tools/defaulted:1', 'tools.registry', 'a registry value the template defaults but values.yaml does not declare'],
    ['registry.invalid/vendored/thing:3', 'undeclared.image.repository', 'a subchart in charts/ that Chart.yaml does not list'],
    ['registry.invalid/jetstack/cert-manager-cainjector:3.1.0', 'cainjector.image.repository', 'empty values whose first guess the probe refuses (tried again)'],
    ['registry.invalid/jetstack/cert-manager-acmesolver:v3.1.0', 'acmesolver.image.repository', 'a --flag=IMAGE argument built by that same empty-value helper (ACME solver)'],
    ['busybox:1.36', 'injector.image', 'an image: line of a pod template kept as ConfigMap text, set by a value'],
    ['registry.invalid/nvidia/driver:550.54.15', 'gpu.driver.repository', 'a custom resource splitting an image into repository, image and version (GPU operator)'],
    ['registry.invalid/nvidia/k8s/container-toolkit:v1.17.0-ubuntu20.04', 'gpu.toolkit.repository', 'a second image of that custom resource'],
    ['alpine:3.19', 'more.initImage', 'a short Docker Hub name in an argument named for an image'],
    ['registry.invalid/more/helper:1.36', 'more.helper.repository', 'a flag and its image given as two arguments'],
    ['redis:7.2', 'more.sidecarImage', 'a short name in an env variable named for an image'],
    ['busybox', 'more.helperPod.repository', 'a tagless image in a pod template kept as ConfigMap text (local-path-provisioner)'],
    ['registry.invalid/kiwigrid/k8s-sidecar:1.26.1', 'more.watcher.repository', 'an image map {repository, tag} in JSON ConfigMap text'],
    ['registry.invalid/more/agent:3', 'more.secretImage', 'a pod template kept in a Secret'],
    ['registry.invalid/cnpg/postgresql:16.4', 'cnpg.imageName', "a custom resource's imageName set by a value (CloudNativePG's cluster chart)"],
  ]
  /** Hard-coded images the workload runs: packaged, named as not relocatable. */
  const hardCoded = ['registry.invalid/hard/coded:1', 'registry.invalid/hard/helper:2', 'registry.invalid/hard/exporter:3', 'busybox:1.28', 'registry.invalid/more/app:1']
  for (const [ref, valuesPath, what] of expectations) {
    it(`relocates ${what}`, function () {
      const row = rows.get(ref)
      expect(row, `${ref} not found in ${[...rows.keys()].join(', ')}`).to.not.equal(undefined)
      expect(row!.values).to.deep.equal([valuesPath])
      expect(row!.relocatable).to.equal(true)
    })
  }

  it('names, but does not package, an image-like string in config text that no value sets', function () {
    expect(rows.has('registry.invalid/docs/example:1')).to.equal(false)
    expect(warnings).to.match(/layouts\/templates\/operator-config\.yaml names registry\.invalid\/docs\/example:1, which looks like an image but no value sets it/)
  })

  it("ignores istio's image: auto, and names what it cannot pull or does not read as an image", function () {
    expect([...rows.keys()].filter((ref) => ref === 'auto' || ref.includes('REGISTRY') || ref.includes('/pg/postgres'))).to.deep.equal([])
    expect(warnings).to.match(/odd-fields\.yaml names \$\{REGISTRY\}\/app:1\.0, which is not a valid image reference/)
    expect(warnings).to.match(/odd-fields\.yaml names registry\.invalid\/pg\/postgres:16\.3, which looks like an image \(field imageName\) but no value sets it: not packaged/)
  })

  it('skips disabled subcharts, and finds nothing else', function () {
    expect([...rows.keys()].filter((ref) => ref.includes('never'))).to.deep.equal([])
    expect(rows.size).to.equal(expectations.length + hardCoded.length)
  })

  it('never takes a setting about images for an image (--image-pull-policy, IMAGE_PULL_POLICY)', function () {
    expect([...rows.keys()].filter((ref) => /always|ifnotpresent/i.test(ref))).to.deep.equal([])
  })

  it('never takes a component name of a custom resource for an image', function () {
    expect([...rows.keys()].filter((ref) => ['driver', 'container-toolkit'].includes(ref.split(':')[0]))).to.deep.equal([])
  })

  it('packages hard-coded images in image: lines of ConfigMap text and in arguments and env named for an image, each named as not relocatable', function () {
    for (const ref of hardCoded) {
      const row = rows.get(ref)
      expect(row, ref).to.not.equal(undefined)
      expect(row!.relocatable, ref).to.equal(false)
      expect(row!.note, ref).to.match(/layouts\/templates\/(hardcoded|injector-config|more-shapes)\.yaml/)
    }
    expect(warnings).to.match(/busybox:1\.28 cannot be relocated through values/)
    // Recorded on the image (its note), not again among the package's warnings: what was not packaged.
    expect(jsonWarnings.filter((line) => line.startsWith('busybox:1.28'))).to.deep.equal([])
    expect(jsonWarnings.some((line) => line.includes('names registry.invalid/docs/example:1'))).to.equal(true)
  })

  it('says which image cannot be relocated through values, and which template hard-codes it', function () {
    const row = rows.get('registry.invalid/hard/coded:1')!
    expect(row.relocatable).to.equal(false)
    expect(row.note).to.match(/layouts\/templates\/hardcoded\.yaml/)
  })

  it('writes values that relocate every relocatable image, in image fields, args and env', async function () {
    const file = path.join(work, 'relocate.yaml')
    const result = await kod(['images', '-c', CHART, '--relocate-to', 'air.local:5000', '--prefix', 'mirror', '-o', file])
    expect(result.exitCode, result.stderr).to.equal(0)
    const text = await readFile(file, 'utf8')
    expect(text).to.match(/allowInsecureImages: true/)
    // The list is written whole (helm replaces lists), with only the images changed.
    expect(YAML.parse(text).sidecars).to.deep.equal([
      {name: 'logger', image: 'air.local:5000/mirror/registry.invalid/tools/logger:1.2', args: ['--json']},
      {name: 'metrics', image: 'air.local:5000/mirror/registry.invalid/tools/metrics:0.9'},
    ])
    expect(text).to.match(/# global\.security\.allowInsecureImages: this Bitnami chart refuses/)

    const rendered = await execa(path.join(TOOLS_BIN, 'helm'), ['template', 'rel', CHART, '-f', file])
    const found = occurrences(String(rendered.stdout))
    const images = found.filter((occurrence) => occurrence.kind === 'image').map((occurrence) => occurrence.value)
    const inText = ['/op/agent', '/op/helper', '/knative/queue', '/strimzi/kafka', '/cert-manager-acmesolver', 'busybox', 'alpine:', 'redis:7.2', '/more/helper', '/cnpg/postgresql']
    for (const [ref] of expectations.filter(([ref]) => !inText.some((part) => ref.includes(part)))) {
      expect(images).to.include(`air.local:5000/mirror/${ref}`)
      expect(YAML.parse(text).global.imageRegistry, 'global.imageRegistry serves two registries: it must not be set').to.equal(undefined)
    }
    expect(images).to.include('registry.invalid/hard/coded:1')
    // Pod templates kept as ConfigMap text are read field by field: the hard-coded one stays where it is.
    expect(images.filter((image) => !image.startsWith('air.local:5000/mirror/')).sort()).to.deep.equal(['${REGISTRY}/app:1.0', 'busybox:1.28', 'registry.invalid/hard/coded:1', 'registry.invalid/more/app:1'])
    // A field named like an image (imageName), set by a value: relocated too; the hard-coded one is not.
    expect(found.filter((occurrence) => occurrence.kind === 'other' && occurrence.name === 'imageName').map((occurrence) => occurrence.value).sort()).to.deep.equal([
      'air.local:5000/mirror/registry.invalid/cnpg/postgresql:16.4',
      'registry.invalid/pg/postgres:16.3',
    ])
    const carried = found.filter((occurrence) => occurrence.kind !== 'image' && occurrence.value.includes('op/agent')).map((occurrence) => occurrence.value)
    expect(carried.sort()).to.deep.equal(['--sidecar-image=air.local:5000/mirror/registry.invalid/op/agent:2.0', 'air.local:5000/mirror/registry.invalid/op/agent:2.0'])
    const config = found.find((occurrence) => occurrence.kind === 'text' && occurrence.where.includes('config.toml'))
    expect(config?.value).to.include('helper_image = "air.local:5000/mirror/registry.invalid/op/helper:2.0"')
    const queue = found.find((occurrence) => occurrence.kind === 'text' && occurrence.where.includes('queue-sidecar-image'))
    expect(queue?.value).to.equal('air.local:5000/mirror/registry.invalid/knative/queue:v1.14.1')
    const solver = found.find((occurrence) => occurrence.kind === 'arg' && occurrence.value.startsWith('--acme-http01-solver-image='))
    expect(solver?.value).to.equal('--acme-http01-solver-image=air.local:5000/mirror/registry.invalid/jetstack/cert-manager-acmesolver:v3.1.0')
    const injected = found.find((occurrence) => occurrence.kind === 'text' && occurrence.where.includes('sidecar.yaml'))
    expect(injected?.value).to.include('image: "air.local:5000/mirror/docker.io/library/busybox:1.36"')
    expect(injected?.value).to.include('image: busybox:1.28')
    // Short names, two-argument flags, env named for an image, and pod templates in ConfigMap and Secret text.
    const values = found.map((occurrence) => occurrence.value)
    for (const relocated of [
      '--init-image=air.local:5000/mirror/docker.io/library/alpine:3.19',
      'air.local:5000/mirror/registry.invalid/more/helper:1.36',
      'air.local:5000/mirror/docker.io/library/redis:7.2',
      'air.local:5000/mirror/docker.io/library/busybox',
      'air.local:5000/mirror/registry.invalid/kiwigrid/k8s-sidecar:1.26.1',
      'air.local:5000/mirror/registry.invalid/more/agent:3',
    ]) {
      expect(values, relocated).to.include(relocated)
    }
    const kafka = found.find((occurrence) => occurrence.kind === 'env' && occurrence.value.includes('3.6.0='))
    expect(kafka?.value.split('\n')).to.deep.equal([
      '3.6.0=air.local:5000/mirror/registry.invalid/strimzi/kafka:0.41.0-kafka-3.6.0',
      '3.7.0=air.local:5000/mirror/registry.invalid/strimzi/kafka:0.41.0-kafka-3.7.0',
    ])
  })

  it('keeps relocating the other images when the chart refuses one relocated value', async function () {
    const result = await kod(['images', '-c', path.join(FIXTURES, 'charts', 'strict'), '--json'])
    expect(result.exitCode, result.stderr).to.equal(0)
    const strict = new Map((JSON.parse(result.stdout).images as Row[]).map((row) => [row.ref, row]))
    // values.schema.json allows no path in a.registry, so a cannot be relocated through it; b still can.
    expect(strict.get('registry.invalid/acme/a:1.0')?.relocatable).to.equal(false)
    expect(strict.get('registry.invalid/acme/b:1.0')?.values).to.deep.equal(['b.registry'])
  })

  it('passes helm rendering knobs to every render', async function () {
    const result = await kod(['images', '-c', CHART, '--set', 'migrate.image=registry.invalid/tools/other:6', '--kube-version', '1.29.0', '--json'])
    expect(result.exitCode, result.stderr).to.equal(0)
    const rows = JSON.parse(result.stdout).images as Row[]
    const other = rows.find((row) => row.ref === 'registry.invalid/tools/other:6')
    // A value given with --set is still relocated: kod's values must come after it.
    expect(other?.values).to.deep.equal(['migrate.image'])
    expect(other?.relocatable).to.equal(true)
    expect(rows.map((row) => row.ref)).to.not.include('registry.invalid/tools/migrate:5')
    // A value that is no version at all is bad input, said before any render.
    const notAVersion = await kod(['images', '-c', path.join(FIXTURES, 'charts', 'hello'), '--kube-version', 'not-a-version'])
    expect(notAVersion.exitCode).to.equal(2)
  })
})
