import {expect} from 'chai'
import {execa} from 'execa'
import {accessSync, constants} from 'node:fs'
import {chmod, cp, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import YAML from 'yaml'

import {imagesToCheck} from '../../packages/helm-analysis/src/deploy-check.js'
import {refHelpers} from '../../src/lib/refs.js'
import {oneLineError} from '../support/assertions.js'
import {startChartServer, type ChartServer} from '../support/chart-server.js'
import {FIXTURES, kod, TOOLS_BIN, toolPath} from '../support/kod.js'
import {buildLayout} from '../support/oci-build.js'
import {remoteDigest, startRegistry, type TestRegistry} from '../support/registry.js'

/**
 * The helmfile source end to end (issue 7, part 6), with real helm, skopeo, registries and an HTTPS
 * chart repository on 127.0.0.1. One helmfile, five releases in two namespaces: a local chart installed
 * twice whose image is relocated through different values (image.registry in one release, a `set`
 * image.full in the other), a chart from the helmfile's HTTPS repository, a chart from oci://, a release
 * that needs another, one `installed: false`, and one whose `condition` only the `prod` environment turns
 * on. Packaged with -e prod, the upstream registry and chart server are stopped, and the package is
 * populated and deployed into an "air-gapped" registry: with helm (client-side dry run) and as the
 * printed helm and helmfile commands. The helmfile binary is not installed here: what needs it is skipped.
 */
const HELM = path.join(TOOLS_BIN, 'helm')
/** Installed releases of the prod environment, in needs order (levels, each in file order). */
const ORDER = ['frontend', 'cache', 'admin', 'metrics']
const NAMESPACES: Record<string, string> = {frontend: 'shop', admin: 'shop', cache: 'data', metrics: 'data', legacy: 'shop'}

interface ManifestUnit {
  id: string
  release: string
  namespace?: string
  chart: string
  values: string[]
  installed: boolean
  needs: string[]
  images: Array<{name: string; ref: string; values: Array<{path: string; value: string; replace: number}>; foundIn: string[]; note?: string}>
}

interface Manifest {
  formatVersion: number
  source: {kind: string}
  charts: Array<{name: string; version: string; file: string}>
  units: ManifestUnit[]
  images: Array<{name: string; digest: string; layoutName: string; units: string[]}>
  sourceData?: {helmfile?: string; environment?: string}
}

async function skopeo(args: string[]): Promise<string> {
  return String((await execa('skopeo', args, {stdin: 'ignore'})).stdout)
}

/** Whether an executable named `tool` is on PATH (helmfile is not installed here, and none may be faked). */
function onPath(tool: string): boolean {
  return (process.env.PATH ?? '').split(path.delimiter).some((dir) => {
    try {
      accessSync(path.join(dir, tool), constants.X_OK)
      return dir !== ''
    } catch {
      return false
    }
  })
}

async function writeChart(dir: string, name: string, version: string, values: Record<string, unknown>, containers: string): Promise<void> {
  await mkdir(path.join(dir, 'templates'), {recursive: true})
  await writeFile(path.join(dir, 'Chart.yaml'), `apiVersion: v2\nname: ${name}\nversion: ${version}\n`)
  await writeFile(path.join(dir, 'values.yaml'), YAML.stringify(values))
  await writeFile(
    path.join(dir, 'templates', 'deployment.yaml'),
    `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
  labels: {version: {{ .Values.version | default "none" | quote }}}
spec:
  replicas: {{ .Values.replicaCount | default 1 }}
  selector: {matchLabels: {app: {{ .Release.Name }}}}
  template:
    metadata: {labels: {app: {{ .Release.Name }}}}
    spec:
${containers}
`,
  )
}

/** The helmfile under test, as a user writes it (plain YAML, no templating). */
function helmfileText(repoUrl: string, upstream: string): string {
  return `# kod e2e: one helmfile, two namespaces
repositories:
  - name: local
    url: ${repoUrl}

environments:
  default:
    values:
      - env/default.yaml
  prod:
    values:
      - env/prod.yaml

releases:
  - name: frontend
    namespace: shop
    chart: ./charts/app
    values:
      - values/frontend.yaml
      - podAnnotations: {tier: front}
  - name: admin
    namespace: shop
    chart: ./charts/app
    needs:
      - shop/frontend
    values:
      - replicaCount: 2
    set:
      - name: image.full
        value: ${upstream}/kodtest/app:1.0
      - name: build
        value: "1.10"
    setString:
      - name: version
        value: "010"
  - name: legacy
    namespace: shop
    chart: ./charts/app
    installed: false
    values:
      - image: {registry: ${upstream}, tag: "9.9"}
  - name: cache
    namespace: data
    chart: local/cache
    version: ~0.2.0
    values:
      - values/cache.yaml
  - name: metrics
    namespace: data
    chart: oci://${upstream}/charts/metrics
    version: 0.3.0
    condition: metrics.enabled
    needs:
      - data/cache
    values:
      - image: {tag: "3.0"}
`
}

describe('helmfile: package → populate → deploy, release by release (e2e)', function () {
  let work: string
  let upstream: TestRegistry
  let airgap: TestRegistry
  let charts: ChartServer
  let project: string
  let helmfile: string
  let originalHelmfile: Buffer
  let kodpkg: string
  let rebuilt: string
  let digests: Record<string, string>
  let helmEnv: Record<string, string>
  let manifest: Manifest
  let component: string
  const hasHelmfile = onPath('helmfile')

  before(async function () {
    work = await mkdtemp(path.join(os.tmpdir(), 'kod-helmfile-'))
    upstream = await startRegistry()
    airgap = await startRegistry()
    const memory = path.join(work, 'helm-memory.yaml')
    await writeFile(memory, '[]\n')
    helmEnv = {HELM_DRIVER: 'memory', HELM_MEMORY_DRIVER_DATA: memory, HOME: work}
    component = upstream.host.replace(':', '-')
    const up = upstream.host

    // Three tiny images, sharing a base layer.
    const layout = path.join(work, 'build')
    digests = await buildLayout(
      layout,
      ['app', 'cache', 'metrics'].map((name) => ({name, layers: [{files: {'etc/base': 'base\n'}}, {files: {[`app/${name}`]: `${name}\n`}}]})),
    )
    const tags: Record<string, string> = {app: '1.0', cache: '2.0', metrics: '3.0'}
    for (const [name, tag] of Object.entries(tags)) {
      await skopeo(['copy', '--dest-tls-verify=false', `oci:${layout}:${name}`, `docker://${up}/kodtest/${name}:${tag}`])
    }

    project = path.join(work, 'shop')
    // The chart installed twice: its default registry is not the upstream, so each release must relocate it.
    await writeChart(
      path.join(project, 'charts', 'app'),
      'app',
      '0.1.0',
      {image: {registry: 'docker.io', repository: 'kodtest/app', tag: '1.0', full: ''}},
      `      containers:
        - name: app
          image: {{ .Values.image.full | default (printf "%s/%s:%s" .Values.image.registry .Values.image.repository .Values.image.tag) | quote }}`,
    )
    // The repository chart: its own image, and an init container running the app image.
    const sources = path.join(work, 'chart-sources')
    await writeChart(
      path.join(sources, 'cache'),
      'cache',
      '0.2.1',
      {image: {registry: 'docker.io', tag: '2.0'}, init: {image: 'docker.io/kodtest/app:1.0'}},
      `      initContainers:
        - name: init
          image: {{ .Values.init.image }}
      containers:
        - name: cache
          image: "{{ .Values.image.registry }}/kodtest/cache:{{ .Values.image.tag }}"`,
    )
    await writeChart(
      path.join(sources, 'metrics'),
      'metrics',
      '0.3.0',
      {image: {repository: `${up}/kodtest/metrics`, tag: 'latest'}},
      `      containers:
        - name: metrics
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"`,
    )
    const repo = path.join(work, 'repo')
    await mkdir(repo, {recursive: true})
    charts = await startChartServer(repo)
    await execa(HELM, ['package', path.join(sources, 'cache'), '--destination', repo], {env: helmEnv})
    await execa(HELM, ['repo', 'index', repo, '--url', charts.url], {env: helmEnv})
    await execa(HELM, ['package', path.join(sources, 'metrics'), '--destination', work], {env: helmEnv})
    await execa(HELM, ['push', path.join(work, 'metrics-0.3.0.tgz'), `oci://${up}/charts`, '--plain-http'], {env: helmEnv})

    await mkdir(path.join(project, 'values'), {recursive: true})
    await mkdir(path.join(project, 'env'), {recursive: true})
    await writeFile(path.join(project, 'values', 'frontend.yaml'), YAML.stringify({image: {registry: up}}))
    await writeFile(path.join(project, 'values', 'cache.yaml'), YAML.stringify({image: {registry: up}, init: {image: `${up}/kodtest/app:1.0`}}))
    await writeFile(path.join(project, 'env', 'default.yaml'), 'metrics:\n  enabled: false\n')
    await writeFile(path.join(project, 'env', 'prod.yaml'), 'metrics:\n  enabled: true\n')
    helmfile = path.join(project, 'helmfile.yaml')
    await writeFile(helmfile, helmfileText(charts.url, up))
    originalHelmfile = await readFile(helmfile)

    kodpkg = path.join(work, 'out', 'shop.kodpkg')
    const packaged = await kod(['package', '-c', project, '-e', 'prod', '-o', kodpkg, '--insecure-registry', up, '--insecure-registry', charts.host], {env: helmEnv})
    expect(packaged.exitCode, packaged.stderr).to.equal(0)
    expect(packaged.stderr, packaged.stderr).to.not.match(/Warning/)
    // Five image uses across four releases, three distinct images: each pulled once.
    expect(packaged.stderr.match(/^pulled \d+\/\d+ /gm), packaged.stderr).to.have.length(3)
    const inspected = await kod(['inspect', '-c', kodpkg, '--json'])
    expect(inspected.exitCode, inspected.stderr).to.equal(0)
    manifest = JSON.parse(inspected.stdout) as Manifest
    // Another build of the same helmfile and environment: same name and version, another package.
    rebuilt = path.join(work, 'out', 'rebuilt.kodpkg')
    const again = await kod(['package', '-c', project, '-e', 'prod', '-o', rebuilt, '--insecure-registry', up, '--insecure-registry', charts.host], {env: helmEnv})
    expect(again.exitCode, again.stderr).to.equal(0)
  })

  after(async function () {
    await upstream?.stop()
    await airgap?.stop()
    await charts?.stop()
    if (work) await rm(work, {recursive: true, force: true})
  })

  describe('connected side', function () {
    it('packages every release as a unit, in needs order, with its namespace, installed flag and needs', function () {
      expect(manifest.formatVersion).to.equal(4)
      expect(manifest.source.kind).to.equal('helmfile')
      expect(manifest.units.map((unit) => unit.id)).to.deep.equal([...ORDER, 'legacy'])
      for (const unit of manifest.units) {
        expect(unit.release, unit.id).to.equal(unit.id)
        expect(unit.namespace, unit.id).to.equal(NAMESPACES[unit.id])
        expect(unit.installed, unit.id).to.equal(unit.id !== 'legacy')
      }
      const needs = Object.fromEntries(manifest.units.map((unit) => [unit.id, unit.needs]))
      expect(needs).to.deep.equal({frontend: [], cache: [], admin: ['frontend'], metrics: ['cache'], legacy: []})
      // installed: false is recorded, not packaged: its image (app:9.9) does not even exist upstream.
      const legacy = manifest.units.find((unit) => unit.id === 'legacy')!
      expect(legacy.images).to.deep.equal([])
      expect(legacy.values).to.deep.equal([])
      expect(manifest.sourceData?.environment).to.equal('prod')
    })

    it('fetches each chart once, from a path, an HTTPS repository (range resolved) and oci://', function () {
      expect(manifest.charts.map((chart) => [chart.name, chart.version]).sort()).to.deep.equal([
        ['app', '0.1.0'],
        ['cache', '0.2.1'],
        ['metrics', '0.3.0'],
      ])
      const chartOf = Object.fromEntries(manifest.units.filter((unit) => unit.installed).map((unit) => [unit.id, unit.chart]))
      expect(chartOf.frontend).to.equal(chartOf.admin)
      expect(new Set(Object.values(chartOf)).size).to.equal(3)
      for (const chart of Object.values(chartOf)) expect(manifest.charts.map((entry) => entry.file)).to.include(chart)
    })

    it("keeps each release's own values: files, inline maps, set and setString as helm reads them", async function () {
      const values = Object.fromEntries(manifest.units.map((unit) => [unit.id, unit.values]))
      expect(values.frontend).to.have.length(2)
      expect(values.frontend[0]).to.match(/frontend\.yaml$/)
      expect(values.admin).to.have.length(2)
      expect(values.cache).to.have.length(1)
      expect(values.metrics).to.have.length(1)
      const dir = path.join(work, 'unpacked')
      const unpacked = await kod(['unpack', '-c', kodpkg, '-o', dir])
      expect(unpacked.exitCode, unpacked.stderr).to.equal(0)
      const read = async (file: string): Promise<unknown> => YAML.parse(await readFile(path.join(dir, file), 'utf8'))
      expect(await read(values.frontend[0])).to.deep.equal({image: {registry: upstream.host}})
      expect(await read(values.frontend[1])).to.deep.equal({podAnnotations: {tier: 'front'}})
      expect(await read(values.admin[0])).to.deep.equal({replicaCount: 2})
      // set is typed as helm types it (1.10 stays text, not the number 1.1); setString stays a string ("010", not 10 or 8).
      expect(await read(values.admin[1])).to.deep.equal({image: {full: `${upstream.host}/kodtest/app:1.0`}, build: '1.10', version: '010'})
      // The original helmfile, byte for byte.
      expect(manifest.sourceData?.helmfile).to.be.a('string')
      expect((await readFile(path.join(dir, manifest.sourceData!.helmfile!))).equals(originalHelmfile)).to.equal(true)
    })

    it('binds the chart used twice through different values in each release, and stores a shared image once', function () {
      const up = upstream.host
      const app = `${up}/kodtest/app:1.0`
      const bindings = (id: string, name: string): Array<{path: string; value: string}> =>
        manifest.units.find((unit) => unit.id === id)!.images.find((image) => image.name === name)!.values.map(({path, value}) => ({path, value}))
      expect(bindings('frontend', app)).to.deep.equal([{path: 'image.registry', value: up}])
      expect(bindings('admin', app)).to.deep.equal([{path: 'image.full', value: app}])
      expect(bindings('cache', app)).to.deep.equal([{path: 'init.image', value: app}])
      expect(bindings('cache', `${up}/kodtest/cache:2.0`)).to.deep.equal([{path: 'image.registry', value: up}])
      expect(bindings('metrics', `${up}/kodtest/metrics:3.0`)).to.deep.equal([{path: 'image.repository', value: `${up}/kodtest/metrics`}])
      expect(manifest.images.map((image) => image.name).sort()).to.deep.equal([app, `${up}/kodtest/cache:2.0`, `${up}/kodtest/metrics:3.0`])
      const stored = Object.fromEntries(manifest.images.map((image) => [image.name, image]))
      expect(stored[app].units.slice().sort()).to.deep.equal(['admin', 'cache', 'frontend'])
      expect(stored[app].digest).to.equal(digests.app)
      expect(stored[`${up}/kodtest/metrics:3.0`].digest).to.equal(digests.metrics)
    })

    it('packages the default environment: the release whose condition is off is recorded, not packaged', async function () {
      const out = path.join(work, 'default-env.kodpkg')
      const packaged = await kod(['package', '-c', helmfile, '-o', out, '--insecure-registry', upstream.host, '--insecure-registry', charts.host], {env: helmEnv})
      expect(packaged.exitCode, packaged.stderr).to.equal(0)
      expect(packaged.stderr).to.match(/release metrics: recorded, not packaged \(its condition metrics\.enabled is off\)/)
      const inspected = JSON.parse((await kod(['inspect', '-c', out, '--json'])).stdout) as Manifest
      expect(inspected.units.map((unit) => [unit.id, unit.installed])).to.deep.equal([
        ['frontend', true],
        ['cache', true],
        ['admin', true],
        // Recorded releases follow the installed ones, in the helmfile's order.
        ['legacy', false],
        ['metrics', false],
      ])
      expect(inspected.units.find((unit) => unit.id === 'metrics')!.chart).to.equal(`oci://${upstream.host}/charts/metrics`)
      expect(inspected.charts.map((chart) => chart.name).sort()).to.deep.equal(['app', 'cache'])
      expect(inspected.images.map((image) => image.name.split('/').at(-1)).sort()).to.deep.equal(['app:1.0', 'cache:2.0'])
    })

    it('images lists every image per release (RELEASE column, unit in --json)', async function () {
      const common = ['-c', helmfile, '-e', 'prod', '--insecure-registry', upstream.host, '--insecure-registry', charts.host]
      const listed = await kod(['images', ...common], {env: helmEnv})
      expect(listed.exitCode, listed.stderr).to.equal(0)
      expect(listed.stdout.split('\n')[0]).to.match(/^RELEASE\s+IMAGE\s+SET BY\s+FOUND IN/)
      expect(listed.stdout).to.match(/^admin\s+\S+kodtest\/app:1\.0\s+image\.full\s/m)
      expect(listed.stdout).to.match(/^frontend\s+\S+kodtest\/app:1\.0\s+image\.registry\s/m)
      const json = await kod(['images', ...common, '--json'], {env: helmEnv})
      expect(json.exitCode, json.stderr).to.equal(0)
      const rows = (JSON.parse(json.stdout) as {images: Array<{unit: string; name: string}>}).images
      expect(rows.map((row) => `${row.unit} ${row.name.split('/').at(-1)}`).sort()).to.deep.equal(
        ['admin app:1.0', 'cache app:1.0', 'cache cache:2.0', 'frontend app:1.0', 'metrics metrics:3.0'],
      )
      // Without -e, the default environment leaves metrics off.
      const byDefault = await kod(['images', '-c', helmfile, '--insecure-registry', upstream.host, '--insecure-registry', charts.host, '--json'], {env: helmEnv})
      expect(byDefault.exitCode, byDefault.stderr).to.equal(0)
      expect([...new Set((JSON.parse(byDefault.stdout) as {images: Array<{unit: string}>}).images.map((row) => row.unit))].sort()).to.deep.equal(['admin', 'cache', 'frontend'])
    })

    it('images --relocate-to writes one values file per release into -o DIR, and is refused without -o (exit 2)', async function () {
      const common = ['images', '-c', helmfile, '-e', 'prod', '--insecure-registry', upstream.host, '--insecure-registry', charts.host, '--relocate-to', 'mirror.local:5000']
      const out = path.join(work, 'relocate')
      const written = await kod([...common, '-o', out], {env: helmEnv})
      expect(written.exitCode, written.stderr).to.equal(0)
      expect((await readdir(out)).sort()).to.deep.equal(ORDER.map((id) => `kod-values-${id}.yaml`).sort())
      const read = async (id: string): Promise<Record<string, unknown>> => YAML.parse(await readFile(path.join(out, `kod-values-${id}.yaml`), 'utf8'))
      expect(await read('frontend')).to.deep.equal({image: {registry: `mirror.local:5000/kod/${component}`}})
      expect(await read('admin')).to.deep.equal({image: {full: `mirror.local:5000/kod/${component}/kodtest/app:1.0`}})
      const refused = await kod(common, {env: helmEnv})
      expect(refused.exitCode, refused.stderr).to.equal(2)
      expect(refused.stderr).to.match(/^Error: .*-o DIR/m)
    })
  })

  describe('air-gapped side', function () {
    before(async function () {
      // From here on nothing may come from upstream.
      await upstream.stop()
      await charts.stop()
    })

    it('populates every image once and every chart', async function () {
      const populated = await kod(['populate', '-c', kodpkg, '-r', airgap.host, '--plain-http'], {env: helmEnv, cwd: work})
      expect(populated.exitCode, populated.stderr).to.equal(0)
      const catalog = (await (await fetch(`http://${airgap.host}/v2/_catalog`)).json()) as {repositories: string[]}
      expect(catalog.repositories.sort()).to.deep.equal(
        [...['app', 'cache', 'metrics'].map((name) => `kod/${component}/kodtest/${name}`), 'kod/charts/app', 'kod/charts/cache', 'kod/charts/metrics', 'kod/packages/shop'].sort(),
      )
    })

    it('deploys with --helm --dry-run: real helm, once per installed release, in needs order', async function () {
      const cwd = await mkdtemp(path.join(work, 'helm-'))
      const shims = path.join(work, 'shims')
      const log = path.join(work, 'helm.log')
      await mkdir(shims, {recursive: true})
      await writeFile(path.join(shims, 'helm'), `#!/bin/sh\nprintf '%s\\036' "$@" >> '${log}'\nprintf '\\n' >> '${log}'\nexec '${HELM}' "$@"\n`)
      await chmod(path.join(shims, 'helm'), 0o755)
      const env = {...helmEnv, PATH: toolPath([shims])}
      const args = ['deploy', '-c', kodpkg, '-r', airgap.host, '--plain-http', '--helm', '--dry-run']

      const listed = await kod([...args, '--list-commands'], {cwd, env})
      expect(listed.exitCode, listed.stderr).to.equal(0)
      const printedInstalls = listed.stdout.split('\n').filter((line) => line.startsWith('helm upgrade --install '))
      expect(printedInstalls.map((line) => line.split(' ')[3])).to.deep.equal(ORDER)

      await writeFile(log, '')
      const deployed = await kod(args, {cwd, env})
      expect(deployed.exitCode, deployed.stderr).to.equal(0)
      expect(deployed.stdout.match(/Dry run complete/g)).to.have.length(ORDER.length)
      const installs = (await readFile(log, 'utf8'))
        .split('\n')
        .filter(Boolean)
        .map((line) => line.split('\u001E').filter(Boolean))
        .filter(([verb, flag]) => verb === 'upgrade' && flag === '--install')
      expect(installs.map((argv) => argv[2])).to.deep.equal(ORDER)
      expect(installs.map((argv) => argv.join(' '))).to.deep.equal(printedInstalls.map((line) => line.slice('helm '.length)))
      for (const argv of installs) {
        expect(argv[argv.indexOf('--namespace') + 1], argv[2]).to.equal(NAMESPACES[argv[2]])
        expect(argv).to.include('--dry-run=client')
      }
    })

    it('--no-install --list-commands --helm prints one helm command per release; each, run as printed, pulls every image from the registry', async function () {
      const cwd = await mkdtemp(path.join(work, 'list-helm-'))
      const result = await kod(['deploy', '--no-install', '--list-commands', '--helm', '-c', kodpkg, '-r', airgap.host, '--plain-http'], {cwd, env: helmEnv})
      expect(result.exitCode, result.stderr).to.equal(0)
      const lines = result.stdout.trim().split('\n')
      expect(lines.map((line) => line.split(' ').slice(0, 4).join(' '))).to.deep.equal(ORDER.map((id) => `helm upgrade --install ${id}`))
      const seen = new Set<string>()
      for (const line of lines) {
        const ran = await execa('bash', ['-c', `${line} --dry-run=client`], {cwd, env: {...helmEnv, PATH: toolPath()}, stdin: 'ignore'})
        const images = imagesToCheck(refHelpers, String(ran.stdout), [])
        expect(images, line).to.not.have.length(0)
        for (const {ref} of images) {
          expect(ref.startsWith(`${airgap.host}/kod/${component}/kodtest/`), ref).to.equal(true)
          const name = ref.split('/').at(-1)!.split(':')[0]
          expect(await remoteDigest(ref), ref).to.equal(digests[name])
          seen.add(`${line.split(' ')[3]} ${name}`)
        }
      }
      expect([...seen].sort()).to.deep.equal(['admin app', 'cache app', 'cache cache', 'frontend app', 'metrics metrics'])
    })

    it('--no-install --list-commands prints the helmfile command; the derived helmfile renders every release from the registry', async function () {
      const cwd = await mkdtemp(path.join(work, 'list-helmfile-'))
      const yours = path.join(work, 'site.yaml')
      await writeFile(yours, 'podAnnotations: {site: far}\n')
      const result = await kod(['deploy', '--no-install', '--list-commands', '-c', kodpkg, '-r', airgap.host, '--plain-http', '-f', yours], {cwd, env: helmEnv})
      expect(result.exitCode, result.stderr).to.equal(0)
      const lines = result.stdout.trim().split('\n')
      expect(lines, result.stdout).to.have.length(1)
      const match = /^helmfile --file (\S+) apply$/.exec(lines[0])
      expect(match, lines[0]).to.not.equal(null)
      const derived = match![1]
      const dir = path.dirname(derived)
      expect((await stat(derived)).isFile()).to.equal(true)
      expect((await readFile(path.join(dir, 'helmfile.yaml'))).equals(originalHelmfile), 'the original stays byte-identical').to.equal(true)

      const parsed = YAML.parse(await readFile(derived, 'utf8')) as {releases: Array<{name: string; namespace: string; chart: string; values: string[]; needs?: string[]}>}
      expect(parsed.releases.map((release) => release.name)).to.deep.equal(ORDER)
      expect(Object.fromEntries(parsed.releases.map((release) => [release.name, release.needs ?? []]))).to.deep.equal({
        frontend: [],
        cache: [],
        admin: ['shop/frontend'],
        metrics: ['data/cache'],
      })
      for (const release of parsed.releases) {
        expect(release.namespace).to.equal(NAMESPACES[release.name])
        // Package files relative to the derived helmfile (the unpacked package can move), then kod's, then yours (absolute).
        expect(release.values.at(-2)).to.equal(`../kod-values-${release.name}.yaml`)
        expect(release.values.at(-1)).to.equal(yours)
        expect(release.values.slice(0, -1).every((file) => !path.isAbsolute(file))).to.equal(true)
        const rendered = await execa(HELM, [
          'template',
          release.name,
          path.resolve(dir, release.chart),
          '--namespace',
          release.namespace,
          ...release.values.flatMap((file) => ['-f', path.resolve(dir, file)]),
        ])
        const images = imagesToCheck(refHelpers, String(rendered.stdout), [])
        expect(images, release.name).to.not.have.length(0)
        for (const {ref} of images) {
          expect(ref.startsWith(`${airgap.host}/kod/${component}/kodtest/`), ref).to.equal(true)
          expect(await remoteDigest(ref), ref).to.equal(digests[ref.split('/').at(-1)!.split(':')[0]])
        }
      }
    })

    it('runs the printed helmfile command when helmfile is on PATH', async function () {
      if (!hasHelmfile) this.skip() // helmfile is not installed on this machine (and cannot be): the derived helmfile was rendered with helm above
      const cwd = await mkdtemp(path.join(work, 'helmfile-run-'))
      const result = await kod(['deploy', '--no-install', '--list-commands', '-c', kodpkg, '-r', airgap.host, '--plain-http'], {cwd, env: helmEnv})
      expect(result.exitCode, result.stderr).to.equal(0)
      const derived = /--file (\S+)/.exec(result.stdout)![1]
      const templated = await execa('helmfile', ['--file', derived, 'template'], {cwd, env: {...helmEnv, PATH: toolPath()}, reject: false})
      expect(templated.exitCode, String(templated.stderr)).to.equal(0)
      for (const {ref} of imagesToCheck(refHelpers, String(templated.stdout), [])) expect(ref.startsWith(`${airgap.host}/kod/`), ref).to.equal(true)
    })

    it('-f RELEASE=FILE goes to that release only; -f FILE to every release', async function () {
      const cwd = await mkdtemp(path.join(work, 'scoped-'))
      const mine = path.join(work, 'admin-extra.yaml')
      const all = path.join(work, 'all-extra.yaml')
      await writeFile(mine, 'replicaCount: 5\n')
      await writeFile(all, 'podAnnotations: {site: far}\n')
      const result = await kod(
        ['deploy', '--no-install', '--list-commands', '--helm', '-c', kodpkg, '-r', airgap.host, '--plain-http', '-f', `admin=${mine}`, '-f', all],
        {cwd, env: helmEnv},
      )
      expect(result.exitCode, result.stderr).to.equal(0)
      const lines = result.stdout.trim().split('\n')
      expect(lines).to.have.length(ORDER.length)
      for (const line of lines) {
        const release = line.split(' ')[3]
        expect(line.includes(`-f ${mine}`), release).to.equal(release === 'admin')
        expect(line.endsWith(`-f ${all}`) || line.includes(`-f ${all} `), release).to.equal(true)
      }
      const admin = lines.find((line) => line.split(' ')[3] === 'admin')!
      const ran = await execa('bash', ['-c', `${admin} --dry-run=client`], {cwd, env: {...helmEnv, PATH: toolPath()}, stdin: 'ignore'})
      expect(String(ran.stdout)).to.match(/replicas: 5/)
    })

    it('without --helm, deploy runs helmfile: missing, it is a missing tool (exit 3)', async function () {
      if (hasHelmfile) this.skip() // helmfile is on PATH: this checks what happens without it
      const cwd = await mkdtemp(path.join(work, 'no-helmfile-'))
      const result = await kod(['deploy', '-c', kodpkg, '-r', airgap.host, '--plain-http'], {cwd, env: helmEnv})
      expect(result.exitCode, result.stderr).to.equal(3)
      expect(result.stderr).to.match(/^Error: helmfile not found/m)
      // helm's client-side dry run has no helmfile equivalent: it needs --helm.
      const dry = await kod(['deploy', '-c', kodpkg, '-r', airgap.host, '--plain-http', '--dry-run'], {cwd, env: helmEnv})
      expect(dry.exitCode, dry.stderr).to.equal(2)
      expect(dry.stderr).to.match(/^Error: .*--helm/m)
    })

    it('deploying another build in the same directory replaces the unchanged unpack, with the files deploy wrote', async function () {
      const cwd = await mkdtemp(path.join(work, 'rebuild-'))
      const args = ['-r', airgap.host, '--plain-http', '--list-commands']
      for (const extra of [['--helm'], []]) {
        const first = await kod(['deploy', '-c', kodpkg, ...args, ...extra], {cwd, env: helmEnv})
        expect(first.exitCode, first.stderr).to.equal(0)
      }
      const second = await kod(['deploy', '-c', rebuilt, ...args, '--helm'], {cwd, env: helmEnv})
      expect(second.exitCode, second.stderr).to.equal(0)
      expect(second.stdout.split('\n').filter((line) => line.startsWith('helm upgrade --install '))).to.have.length(ORDER.length)
    })

    it('-d with several releases is bad input (exit 2)', async function () {
      const cwd = await mkdtemp(path.join(work, 'release-flag-'))
      const result = await kod(['deploy', '--list-commands', '--helm', '-c', kodpkg, '-r', airgap.host, '--plain-http', '-d', 'one'], {cwd, env: helmEnv})
      expect(result.exitCode, result.stderr).to.equal(2)
      expect(result.stderr).to.match(/^Error: -d names one release, but this package installs 4/m)
    })
  })

  describe('bad input', function () {
    it('-e for a helm chart is bad input (exit 2)', async function () {
      const result = await kod(['package', '-c', path.join(project, 'charts', 'app'), '-e', 'prod', '-o', path.join(work, 'nothing')], {env: helmEnv})
      expect(result.exitCode, result.stderr).to.equal(2)
      expect(result.stderr).to.match(/^Error: .*(-e|--environment)/m)
    })

    it('an unknown environment is refused, naming it (exit 2)', async function () {
      const result = await kod(['images', '-c', helmfile, '-e', 'staging'], {env: helmEnv})
      expect(result.exitCode, result.stderr).to.equal(2)
      expect(result.stderr).to.match(/^Error: .*staging/m)
      expect(result.stderr.trim().split('\n').filter((line) => line.startsWith('Error:'))).to.have.length(1)
    })

    it('a templated helmfile without the helmfile binary: one line naming the file, saying it needs helmfile', async function () {
      if (hasHelmfile) this.skip() // helmfile is on PATH: kod renders the template with it instead
      const dir = path.join(work, 'templated')
      await mkdir(dir, {recursive: true})
      const file = path.join(dir, 'helmfile.yaml')
      await writeFile(file, 'releases:\n  - name: web\n    namespace: {{ .Environment.Name }}\n    chart: ./charts/app\n')
      const result = await kod(['package', '-c', dir, '-o', path.join(work, 'nothing')], {env: helmEnv})
      expect(result.exitCode, result.stderr).to.equal(3)
      const lines = result.stderr.trim().split('\n').filter((line) => !line.startsWith('Try:'))
      expect(lines, result.stderr).to.have.length(1)
      expect(lines[0]).to.include(file)
      expect(lines[0]).to.match(/helmfile/)
      expect(lines[0]).to.match(/needs|install/)
    })

    it('a plain helmfile whose release values file is templated, without the binary: the values file is the one named', async function () {
      if (hasHelmfile) this.skip()
      const dir = path.join(work, 'templated-values')
      await mkdir(dir, {recursive: true})
      await writeFile(path.join(dir, 'helmfile.yaml'), 'releases:\n  - name: web\n    chart: ./app\n    values: [v.yaml.gotmpl]\n')
      await writeFile(path.join(dir, 'v.yaml.gotmpl'), 'replicas: {{ 1 }}\n')
      await cp(path.join(FIXTURES, 'charts', 'hello'), path.join(dir, 'app'), {recursive: true})
      const result = await kod(['package', '-c', dir, '-o', path.join(work, 'nothing')], {env: helmEnv})
      expect(result.exitCode, result.stderr).to.equal(3)
      oneLineError(result, new RegExp(`${path.join(dir, 'v.yaml.gotmpl').replaceAll('.', '\\.')}.*needs the helmfile binary.*helmfile not found`))
    })

    it('a directory of helmfile.d/ is taken for a helmfile project and refused as such, not as a missing chart', async function () {
      const dir = path.join(work, 'several')
      await mkdir(path.join(dir, 'helmfile.d'), {recursive: true})
      await writeFile(path.join(dir, 'helmfile.d', 'a.yaml'), 'releases:\n  - name: a\n    chart: ./app\n')
      for (const input of [dir, path.join(dir, 'helmfile.d')]) {
        const result = await kod(['package', '-c', input, '-o', path.join(work, 'nothing')], {env: helmEnv})
        expect(result.exitCode, result.stderr).to.equal(2)
        oneLineError(result, /helmfile\.d\/, several helmfiles; a kod package holds one helmfile — write one helmfile\.yaml that lists them under helmfiles:$/)
      }
    })

    it('a helmfile that lists no releases: one line, exit 2, not an internal error', async function () {
      const dir = path.join(work, 'no-releases')
      await mkdir(dir, {recursive: true})
      await writeFile(path.join(dir, 'helmfile.yaml'), 'releases: []\n')
      const result = await kod(['package', '-c', dir, '-o', path.join(work, 'nothing')], {env: helmEnv})
      expect(result.exitCode, result.stderr).to.equal(2)
      oneLineError(result, /helmfile\.yaml: it lists no releases \(nor do its sub-helmfiles\): nothing to package$/)
    })
  })
})
