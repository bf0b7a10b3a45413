import {expect} from 'chai'
import {execa} from 'execa'
import {createHash} from 'node:crypto'
import {mkdir, mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import YAML from 'yaml'

import {imageFieldsInText, imagesInManifests, occurrences} from '../../packages/helm-analysis/src/render.js'
import {oneLineError} from '../support/assertions.js'
import {kod, toolPath} from '../support/kod.js'
import {buildLayout} from '../support/oci-build.js'
import {startRegistry, type TestRegistry} from '../support/registry.js'
import {unitImages} from '../support/manifest.js'

/**
 * The air-gap workflow of the architecture note, on a chart that carries images where real charts do
 * besides image fields: a `--flag=IMAGE` argument, a custom resource that splits an image into
 * repository / image / version, and a sidecar template kept as ConfigMap text (one image set by a value,
 * one hard-coded). Real helm, skopeo and registries on 127.0.0.1.
 */
const IMAGES = ['web', 'solver', 'driver', 'sidecar', 'hard']

async function skopeo(args: string[]): Promise<string> {
  return String((await execa('skopeo', args, {stdin: 'ignore'})).stdout)
}

async function writeChart(dir: string, upstream: string): Promise<void> {
  await mkdir(path.join(dir, 'templates'), {recursive: true})
  await writeFile(path.join(dir, 'Chart.yaml'), 'apiVersion: v2\nname: relay\nversion: 0.3.0\nappVersion: "1.0"\n')
  const values = {
    image: {registry: upstream, repository: 'kodtest/web', tag: '1.0'},
    solver: {registry: upstream},
    gpu: {repository: `${upstream}/kodtest`, image: 'driver', version: '1.0'},
    sidecar: {image: `${upstream}/kodtest/sidecar:1.0`},
  }
  await writeFile(path.join(dir, 'values.yaml'), YAML.stringify(values))
  await writeFile(
    path.join(dir, 'templates', 'deploy.yaml'),
    `apiVersion: apps/v1
kind: Deployment
metadata: {name: {{ .Release.Name }}-web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: "{{ .Values.image.registry }}/{{ .Values.image.repository }}:{{ .Values.image.tag }}"
          args:
            - --solver-image={{ .Values.solver.registry }}/kodtest/solver:1.0
            - --replicas={{ .Values.replicas | default 1 }}
            - --proxy=${upstream}/kodtest/proxy:1.0
`,
  )
  await writeFile(
    path.join(dir, 'templates', 'policy.yaml'),
    `apiVersion: nvidia.com/v1
kind: ClusterPolicy
metadata: {name: {{ .Release.Name }}-policy}
spec:
  driver:
    repository: {{ .Values.gpu.repository }}
    image: {{ .Values.gpu.image }}
    version: {{ .Values.gpu.version | quote }}
  database:
    imageName: ${upstream}/kodtest/pg:1.0
`,
  )
  await writeFile(
    path.join(dir, 'templates', 'injector.yaml'),
    `apiVersion: v1
kind: ConfigMap
metadata: {name: {{ .Release.Name }}-injector}
data:
  sidecar.yaml: |
    containers:
      - name: agent
        image: {{ .Values.sidecar.image }}
      - name: wait
        image: ${upstream}/kodtest/hard:1.0
`,
  )
}

/** Every image in rendered output: image fields (composed custom-resource images included) and image: lines of ConfigMap text. */
function renderedImages(output: string): string[] {
  const fields = imagesInManifests(output).map((image) => image.ref)
  const text = occurrences(output)
    .filter((occurrence) => occurrence.kind === 'text')
    .flatMap((occurrence) => imageFieldsInText(occurrence.value))
  const args = occurrences(output)
    .filter((occurrence) => occurrence.kind === 'arg' && occurrence.value.startsWith('--solver-image='))
    .map((occurrence) => occurrence.value.slice('--solver-image='.length))
  return [...new Set([...fields, ...text, ...args])].sort()
}

describe('deploy --no-install --list-commands: the air-gap workflow, no silent miss (e2e)', function () {
  let work: string
  let upstream: TestRegistry
  let airgap: TestRegistry
  let kodpkg: string
  let helmEnv: Record<string, string>
  let hard: string
  /** Images the chart runs from outside the registry: hard-coded, and two kod does not package (only warns about). */
  let external: string[]
  let allowExternal: string[]

  before(async function () {
    work = await mkdtemp(path.join(os.tmpdir(), 'kod-workflow-'))
    upstream = await startRegistry()
    airgap = await startRegistry()
    const memory = path.join(work, 'helm-memory.yaml')
    await writeFile(memory, '[]\n')
    helmEnv = {HELM_DRIVER: 'memory', HELM_MEMORY_DRIVER_DATA: memory, HOME: work}
    hard = `${upstream.host}/kodtest/hard:1.0`
    external = [hard, `${upstream.host}/kodtest/proxy:1.0`, `${upstream.host}/kodtest/pg:1.0`]
    allowExternal = external.flatMap((image) => ['--allow-external', image])

    const layout = path.join(work, 'build')
    await buildLayout(
      layout,
      IMAGES.map((name) => ({name, layers: [{files: {[`app/${name}`]: `${name}\n`}}]})),
    )
    for (const name of IMAGES) {
      await skopeo(['copy', '--dest-tls-verify=false', `oci:${layout}:${name}`, `docker://${upstream.host}/kodtest/${name}:1.0`])
    }
    const chart = path.join(work, 'relay')
    await writeChart(chart, upstream.host)
    await writeFile(path.join(work, 'base.yaml'), 'replicas: 2\n')
    const packageArgs = ['package', '-c', chart, '-f', path.join(work, 'base.yaml'), '-o', path.join(work, 'out'), '--insecure-registry', upstream.host]
    // Stopped at package time, not on the far side: the hard-coded image cannot be relocated.
    const stopped = await kod(packageArgs)
    expect(stopped.exitCode, stopped.stderr).to.equal(6)
    oneLineError(stopped, new RegExp(`refusing to package: 1 image\\(s\\) cannot be relocated through values.*${hard.replaceAll('.', '\\.')} \\(.*relay/templates/injector\\.yaml.*--allow-external IMAGE`))
    expect(await readdir(path.join(work, 'out')).catch(() => []), 'nothing written').to.deep.equal([])
    const packaged = await kod([...packageArgs, '--allow-external', hard])
    expect(packaged.exitCode, packaged.stderr).to.equal(0)
    kodpkg = path.join(work, 'out', 'kod-relay-0.3.0.kodpkg')
    // Said at package time: the hard-coded image is packaged, cannot be relocated, and was accepted.
    expect(packaged.stderr).to.include(`Warning: ${hard} (`)
    expect(packaged.stderr).to.match(/cannot be relocated through values: accepted with --allow-external, so deploy lets it be pulled from outside the private registry/)
    await upstream.stop()
  })

  after(async function () {
    await upstream?.stop()
    await airgap?.stop()
    if (work) await rm(work, {recursive: true, force: true})
  })

  it('packages the argument image, the composed custom-resource image and both ConfigMap images, and records the warning', async function () {
    const inspected = await kod(['inspect', '-c', kodpkg, '--json'])
    expect(inspected.exitCode, inspected.stderr).to.equal(0)
    const manifest = JSON.parse(inspected.stdout)
    const byName = new Map(unitImages(manifest).map((image) => [image.name, image]))
    const up = upstream.host
    expect([...byName.keys()].sort()).to.deep.equal(IMAGES.map((name) => `${up}/kodtest/${name}:1.0`).sort())
    expect(byName.get(`${up}/kodtest/solver:1.0`)!.values.map((binding) => binding.path)).to.deep.equal(['solver.registry'])
    expect(byName.get(`${up}/kodtest/driver:1.0`)!.values.map((binding) => binding.path)).to.deep.equal(['gpu.repository'])
    expect(byName.get(`${up}/kodtest/sidecar:1.0`)!.values.map((binding) => binding.path)).to.deep.equal(['sidecar.image'])
    expect(byName.get(hard)!.note).to.match(/relay\/templates\/injector\.yaml/)
    expect(manifest.units[0].images.find((image: {name: string}) => image.name === hard).external).to.equal(true)
    expect(manifest.units[0].images.filter((image: {external?: boolean}) => image.external)).to.have.length(1)
    expect(manifest.formatVersion).to.equal(4)
    // What was not packaged is a recorded warning; what cannot be relocated is the image's note: inspect shows both.
    expect(manifest.warnings.join('\n')).to.include(`names ${external[1]}, which looks like an image but no value sets it`)
    const shown = await kod(['inspect', '-c', kodpkg])
    expect(shown.stdout).to.include(`${hard} cannot be relocated through values`)
    expect(shown.stdout).to.include(`names ${external[2]}, which looks like an image (field imageName)`)
  })

  it('refuses, before pushing anything, an image that would still come from outside, naming it and where it is', async function () {
    const cwd = await mkdtemp(path.join(work, 'refused-'))
    const args = ['deploy', '--no-install', '--list-commands', '-c', kodpkg, '-r', `http://${airgap.host}/`, '-n', 'shop']
    const refused = await kod(args, {cwd, env: helmEnv})
    expect(refused.exitCode, refused.stderr).to.equal(6)
    expect(refused.stdout).to.equal('')
    // Accepted when the package was made: let through, and said.
    expect(refused.stderr).to.include(`Warning: ${hard} (relay/templates/injector.yaml) will be pulled from outside ${airgap.host}: accepted when the package was made`)
    // What package only warned about (an unnamed argument, an imageName field) is refused.
    expect(refused.stderr).to.include(`${external[1]} (relay/templates/deploy.yaml)`)
    expect(refused.stderr).to.include(`${external[2]} (relay/templates/policy.yaml)`)
    expect(refused.stderr).to.match(/refusing to deploy: 2 image\(s\)/)
    expect(refused.stderr).to.include('--allow-external')
    // The operator heard the recorded warning first.
    expect(refused.stderr.indexOf(`Warning: ${hard} cannot be relocated`)).to.be.lessThan(refused.stderr.indexOf('Error:'))
    const catalog = (await (await fetch(`http://${airgap.host}/v2/_catalog`)).json()) as {repositories: string[]}
    expect(catalog.repositories, 'nothing may be pushed before the refusal').to.deep.equal([])

    const wrong = await kod([...args, '--allow-external', 'docker.io/library/not-in-the-chart:1'], {cwd, env: helmEnv})
    expect(wrong.exitCode).to.equal(2)
    expect(wrong.stderr).to.match(/--allow-external docker\.io\/library\/not-in-the-chart:1: the chart runs no such image/)
  })

  it('pushes for real and prints only the helm command, which runs as printed and pulls every image from the registry', async function () {
    const cwd = await mkdtemp(path.join(work, 'workflow-'))
    const result = await kod(
      ['deploy', '--no-install', '--list-commands', '-c', kodpkg, '-r', `http://${airgap.host}/`, '-n', 'shop', ...allowExternal],
      {cwd, env: helmEnv},
    )
    expect(result.exitCode, result.stderr).to.equal(0)
    const lines = result.stdout.trim().split('\n')
    expect(lines, result.stdout).to.have.length(1)
    const [helmLine] = lines
    expect(helmLine).to.match(/^helm upgrade --install relay /)
    const dir = path.join(cwd, 'kod-relay-0.3.0')
    // Every values file, in helm's order: package-time -f first, then kod's.
    expect(helmLine).to.include(`-f ${path.join(dir, 'values', '01-base.yaml')} -f ${path.join(dir, 'kod-values-relay.yaml')}`)
    expect(result.stderr).to.include(`${hard} (relay/templates/injector.yaml) will be pulled from outside`)

    // The user extends the printed command and runs it (helm's client-side dry run: there is no cluster here).
    const ran = await execa('bash', ['-c', `${helmLine} --dry-run=client`], {cwd, env: {...helmEnv, PATH: toolPath()}, stdin: 'ignore'})
    const images = renderedImages(String(ran.stdout))
    expect(images).to.have.length(IMAGES.length)
    const component = upstream.host.replace(':', '-')
    for (const image of images.filter((ref) => ref !== hard)) {
      expect(image.startsWith(`${airgap.host}/kod/${component}/kodtest/`), image).to.equal(true)
      await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${image}`])
    }
    expect(images).to.include(hard)
    // The chart was pushed too.
    const tags = JSON.parse(await skopeo(['list-tags', '--tls-verify=false', `docker://${airgap.host}/kod/charts/relay`]))
    expect(tags.Tags).to.deep.equal(['0.3.0'])
  })

  it('--no-install alone populates and says on stderr which helm command to run, with every values file', async function () {
    const cwd = await mkdtemp(path.join(work, 'no-install-'))
    const result = await kod(['deploy', '--no-install', '-c', kodpkg, '-r', airgap.host, '--plain-http', '-n', 'shop', ...allowExternal], {cwd, env: helmEnv})
    expect(result.exitCode, result.stderr).to.equal(0)
    expect(result.stdout).to.equal('')
    const dir = path.join(cwd, 'kod-relay-0.3.0')
    expect(result.stderr).to.include('to install, run:')
    expect(result.stderr).to.match(new RegExp(`helm upgrade --install relay \\S+ --namespace shop --create-namespace -f ${path.join(dir, 'values', '01-base.yaml')} -f ${path.join(dir, 'kod-values-relay.yaml')}`))
  })

  it('an older package (format 3, made before kod package refused) records no acceptance: deploy refuses its hard-coded image unless accepted there', async function () {
    const dir = path.join(await mkdtemp(path.join(work, 'format3-')), 'pkg')
    const unpacked = await kod(['unpack', '-c', kodpkg, '-o', dir])
    expect(unpacked.exitCode, unpacked.stderr).to.equal(0)
    const manifestFile = path.join(dir, 'kod-package.yaml')
    const manifest = YAML.parse(await readFile(manifestFile, 'utf8'))
    manifest.formatVersion = 3
    for (const unit of manifest.units) for (const image of unit.images) delete image.external
    await writeFile(manifestFile, YAML.stringify(manifest))
    const sums = path.join(dir, 'SHA256SUMS')
    const hash = createHash('sha256').update(await readFile(manifestFile)).digest('hex')
    await writeFile(sums, (await readFile(sums, 'utf8')).replace(/^[\da-f]{64} {2}kod-package\.yaml$/m, `${hash}  kod-package.yaml`))

    const args = ['deploy', '--list-commands', '-c', dir, '-r', airgap.host, '--plain-http', '-n', 'shop']
    const refused = await kod(args, {cwd: work, env: helmEnv})
    expect(refused.exitCode, refused.stderr).to.equal(6)
    oneLineError(refused, /refusing to deploy: 3 image\(s\)/)
    expect(refused.stderr).to.include(`${hard} (relay/templates/injector.yaml)`)
    const accepted = await kod([...args, ...allowExternal], {cwd: work, env: helmEnv})
    expect(accepted.exitCode, accepted.stderr).to.equal(0)
    expect(accepted.stderr).to.include(`${hard} (relay/templates/injector.yaml) will be pulled from outside ${airgap.host}: accepted with --allow-external`)
  })

  it('populate repeats the recorded warning on the air-gapped side', async function () {
    const result = await kod(['populate', '-c', kodpkg, '-r', airgap.host, '--plain-http'], {env: helmEnv, cwd: work})
    expect(result.exitCode, result.stderr).to.equal(0)
    expect(result.stderr).to.include(`Warning: ${hard} cannot be relocated through values`)
    expect(result.stderr).to.include('accepted when the package was made (kod package --allow-external)')
  })

  it('refuses a --set helm cannot parse as bad input (exit 2), before pushing', async function () {
    const cwd = await mkdtemp(path.join(work, 'bad-set-'))
    const result = await kod(['deploy', '-c', kodpkg, '-r', airgap.host, '--plain-http', '--list-commands', '--set', 'a[x]=1'], {cwd, env: helmEnv})
    expect(result.exitCode, result.stderr).to.equal(2)
    expect(result.stderr).to.match(/^Error: bad --set "a\[x\]=1"/m)
  })

  it('deploys for real (helm dry run) only with the images package did not take accepted', async function () {
    const cwd = await mkdtemp(path.join(work, 'deploy-'))
    const base = ['deploy', '-c', kodpkg, '-r', airgap.host, '--plain-http', '-n', 'shop', '--dry-run']
    const refused = await kod(base, {cwd, env: helmEnv})
    expect(refused.exitCode).to.equal(6)
    const partly = await kod([...base, '--allow-external', external[1]], {cwd, env: helmEnv})
    expect(partly.exitCode, 'accepting one of two is not enough').to.equal(6)
    const deployed = await kod([...base, ...allowExternal], {cwd, env: helmEnv})
    expect(deployed.exitCode, deployed.stderr).to.equal(0)
    expect(deployed.stdout).to.match(/Dry run complete/)
  })
})

