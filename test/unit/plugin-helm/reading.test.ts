import {expect} from 'chai'
import {execa} from 'execa'
import {mkdir, mkdtemp, readdir, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import YAML from 'yaml'

import {parseValuesAhead, readChartFiles, readChartTree} from '../../../packages/helm-analysis/src/chart-files.js'
import {imageItems} from '../../../packages/helm-analysis/src/items.js'
import {isCustomResourceDefinition, occurrences, type ReadingCache} from '../../../packages/helm-analysis/src/render.js'
import {refHelpers} from '../../../src/lib/refs.js'
import {FIXTURES, TOOLS_BIN} from '../../support/kod.js'

const HELM = path.join(TOOLS_BIN, 'helm')

/** A CRD as operators' charts render them: a schema that mentions images, whose defaults are no workload. */
const CRD = (name: string, head = `apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: ${name}.example.com\n`): string => `${head}spec:
  group: example.com
  versions:
    - name: v1
      schema:
        openAPIV3Schema:
          type: object
          default: {image: "busybox:1.36", env: [{name: SIDECAR_IMAGE, value: "quay.io/x/y:1"}]}
          properties:
            image: {type: string, default: "docker.io/library/nginx:1.25"}
            args: {type: array, items: {type: string}}
`

const DEPLOYMENT = (image: string): string => `apiVersion: apps/v1
kind: Deployment
spec:
  template:
    spec:
      containers: [{name: app, image: "${image}", args: ["--helper-image=quay.io/acme/helper:2.0"]}]
`

describe('plugin-helm: reading rendered output without parsing what holds nothing', function () {
  it('reads nothing in a CustomResourceDefinition, whatever the order of its fields, and keeps the place of the documents after it', function () {
    const output = [
      `# Source: op/templates/crds.yaml\n${CRD('widgets')}`,
      `# Source: op/templates/crds.yaml\n${DEPLOYMENT('acme/op:1.0')}`,
      // kind after spec: told apart only by a full parse, to the same effect.
      `# Source: op/templates/crds.yaml\napiVersion: apiextensions.k8s.io/v1\n${CRD('gadgets', '')}kind: CustomResourceDefinition\nmetadata: {name: gadgets.example.com}\n`,
      `# Source: op/templates/crds.yaml\n${DEPLOYMENT('acme/op:2.0')}`,
    ]
      .map((chunk) => `---\n${chunk}`)
      .join('')
    const found = occurrences(output)
    expect(found.filter((occurrence) => occurrence.kind === 'image').map((occurrence) => [occurrence.where, occurrence.value])).to.deep.equal([
      ['op/templates/crds.yaml#1/spec/template/spec/containers/0/image', 'acme/op:1.0'],
      ['op/templates/crds.yaml#3/spec/template/spec/containers/0/image', 'acme/op:2.0'],
    ])
    expect(found.some((occurrence) => /busybox|nginx|quay\.io\/x/.test(occurrence.value))).to.equal(false)
  })

  it('tells a CustomResourceDefinition from its head alone, and parses anything unclear in full', function () {
    expect(isCustomResourceDefinition(`# Source: x\n${CRD('a')}`)).to.equal(true)
    expect(isCustomResourceDefinition(`# Source: x\n${CRD('a', 'apiVersion: "apiextensions.k8s.io/v1beta1"\nkind: "CustomResourceDefinition"\nmetadata: {name: a}\n')}`)).to.equal(true)
    // Another API group's kind of that name, a second kind line, a second document, kind after spec, a head cut inside a flow map.
    expect(isCustomResourceDefinition(CRD('a', 'apiVersion: example.com/v1\nkind: CustomResourceDefinition\n'))).to.equal(false)
    expect(isCustomResourceDefinition(`${CRD('a')}kind: Deployment\n`)).to.equal(false)
    expect(isCustomResourceDefinition(`${CRD('a')}...\n${DEPLOYMENT('x:1')}`)).to.equal(false)
    expect(isCustomResourceDefinition(`apiVersion: apiextensions.k8s.io/v1\nspec: {}\nkind: CustomResourceDefinition\n`)).to.equal(false)
    expect(isCustomResourceDefinition(`apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: a,\nspec: x}\n`)).to.equal(false)
    // A Deployment whose annotation text names the kind is no CRD.
    expect(isCustomResourceDefinition(`apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  annotations:\n    a: |\n      kind: CustomResourceDefinition\nspec: {}\n`)).to.equal(false)
  })

  it('counts documents it does not parse: comment-only chunks are none, documents without an image-like word are one', function () {
    const output = `---
# Source: app/templates/a.yaml
# nothing rendered here
---
# Source: app/templates/a.yaml
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {ports: [{port: 80}]}
---
# Source: app/templates/a.yaml
${DEPLOYMENT('nginx:1.25')}`
    const found = occurrences(output)
    expect(found.find((occurrence) => occurrence.kind === 'image')?.where).to.equal('app/templates/a.yaml#1/spec/template/spec/containers/0/image')
    expect(found.find((occurrence) => occurrence.kind === 'arg')).to.include({value: '--helper-image=quay.io/acme/helper:2.0', name: '--helper-image'})
  })

  it('reads each distinct document once with a cache, with the same result', function () {
    const base = `---\n# Source: app/templates/a.yaml\n${DEPLOYMENT('nginx:1.25')}---\n# Source: app/templates/b.yaml\n${DEPLOYMENT('redis:7')}`
    const changed = base.replace('redis:7', 'kodsnt0001x/redis:7')
    const cache: ReadingCache = new Map()
    expect(occurrences(base, cache)).to.deep.equal(occurrences(base))
    expect(cache.size).to.equal(2)
    expect(occurrences(changed, cache)).to.deep.equal(occurrences(changed))
    expect(cache.size).to.equal(3)
    // Occurrences handed out are the caller's: changing one changes nothing cached.
    occurrences(base, cache)[0].value = 'changed'
    expect(occurrences(base, cache)[0].value).to.equal('nginx:1.25')
  })

  it('reads ConfigMap text with duplicate keys by its image: lines, as before, and large maps in linear time', function () {
    const keys = Array.from({length: 20_000}, (_, index) => `    key${index}: value ${index}`).join('\n')
    const output = `---
# Source: app/templates/cm.yaml
apiVersion: v1
kind: ConfigMap
data:
  dup.yaml: |
    containers:
      - name: a
        image: docker.io/acme/one:1.0
        image: docker.io/acme/two:2.0
  big.yaml: |
    image: docker.io/acme/three:3.0
    settings:
${keys.replaceAll(/^ {4}/gm, '      ')}
`
    const started = Date.now()
    const found = occurrences(output)
    expect(Date.now() - started).to.be.below(5000)
    const dup = found.find((occurrence) => occurrence.where.endsWith('/data/dup.yaml'))
    expect(dup?.structured).to.equal(undefined)
    const big = found.find((occurrence) => occurrence.where.endsWith('/data/big.yaml'))
    expect(big?.structured).to.equal(true)
    const refs = imageItems(refHelpers, found).map((item) => item.ref)
    expect(refs).to.include.members(['docker.io/acme/one:1.0', 'docker.io/acme/two:2.0', 'docker.io/acme/three:3.0'])
  })
})

describe('plugin-helm: a repository without a tag named for an image', function () {
  it('is set aside with why, not packaged as :latest; a whole image beside it is an item', function () {
    const output = `---
# Source: op/templates/operator.yaml
kind: Deployment
spec:
  template:
    spec:
      containers:
        - name: operator
          image: quay.io/mongodb/operator:1.33.0
          env:
            - {name: MONGODB_ENTERPRISE_DATABASE_IMAGE, value: quay.io/mongodb/mongodb-enterprise-database-ubi}
            - {name: DATABASE_VERSION, value: 1.33.0}
            - {name: AGENT_IMAGE, value: "quay.io/mongodb/agent:108.0.0"}
`
    const invalid: Array<{ref: string; template: string; reason?: string}> = []
    const refs = imageItems(refHelpers, occurrences(output), invalid).map((item) => item.ref)
    expect(refs).to.deep.equal(['quay.io/mongodb/operator:1.33.0', 'quay.io/mongodb/agent:108.0.0'])
    expect(invalid).to.have.length(1)
    expect(invalid[0].ref).to.equal('quay.io/mongodb/mongodb-enterprise-database-ubi')
    expect(invalid[0].reason).to.match(/^is named for an image \(MONGODB_ENTERPRISE_DATABASE_IMAGE\) but has no tag or digest: a repository the workload completes at run time/)
  })
})

describe('plugin-helm: reading a chart archive in memory', function () {
  let work: string
  before(async function () {
    work = await mkdtemp(path.join(os.tmpdir(), 'kod-reading-'))
  })
  after(async function () {
    await rm(work, {recursive: true, force: true})
  })

  async function packaged(chartDir: string): Promise<string> {
    const dir = await mkdtemp(path.join(work, 'pkg-'))
    await execa(HELM, ['package', chartDir, '--destination', dir])
    return path.join(dir, (await readdir(dir)).find((file) => file.endsWith('.tgz'))!)
  }

  it('reads the same values and templates as unpacking, subcharts (aliased, packed or not) included', async function () {
    const archive = await packaged(path.join(FIXTURES, 'charts', 'layouts'))
    const files = await readChartFiles(archive)
    const tree = await readChartTree(archive, work)
    expect(files.top).to.equal('layouts')
    expect(path.basename(tree.dir)).to.equal('layouts')
    expect(files.values).to.deep.equal(tree.values)
    expect([...files.templates.keys()].sort()).to.deep.equal([...tree.templates.keys()].sort())
    expect(Object.keys(files.values)).to.include('redis')
    expect([...files.templates.keys()].some((file) => file.startsWith('layouts/charts/'))).to.equal(true)
  })

  it('reads subcharts packed as .tgz in charts/ (what helm dependency build leaves) under their alias', async function () {
    const sub = path.join(work, 'src', 'sub')
    await mkdir(path.join(sub, 'templates', 'nested'), {recursive: true})
    await writeFile(path.join(sub, 'Chart.yaml'), 'apiVersion: v2\nname: sub\nversion: 0.1.0\n')
    await writeFile(path.join(sub, 'values.yaml'), 'image: {registry: docker.io, repository: acme/sub}\nglobal: {imageRegistry: ""}\n')
    await writeFile(path.join(sub, 'templates', 'nested', 'pod.yaml'), 'image: {{ .Values.image.repository }}\n')
    const parent = path.join(work, 'src', 'parent')
    await mkdir(path.join(parent, 'charts'), {recursive: true})
    await writeFile(path.join(parent, 'Chart.yaml'), 'apiVersion: v2\nname: parent\nversion: 0.1.0\ndependencies:\n  - {name: sub, version: 0.1.0, alias: cache}\n')
    await writeFile(path.join(parent, 'values.yaml'), 'cache: {image: {repository: acme/override}}\n')
    await execa(HELM, ['package', sub, '--destination', path.join(parent, 'charts')])
    const files = await readChartFiles(await packaged(parent))
    expect(files.values).to.deep.equal({cache: {image: {registry: 'docker.io', repository: 'acme/override'}}, global: {imageRegistry: ''}})
    expect([...files.templates.keys()]).to.deep.equal(['parent/charts/sub/templates/nested/pod.yaml'])
  })

  it('reads a values.yaml with tens of thousands of keys in one map in linear time', async function () {
    const chart = path.join(work, 'wide')
    await mkdir(chart, {recursive: true})
    await writeFile(path.join(chart, 'Chart.yaml'), 'apiVersion: v2\nname: wide\nversion: 0.1.0\n')
    await writeFile(path.join(chart, 'values.yaml'), `settings:\n${Array.from({length: 30_000}, (_, index) => `  key${index}: value-${index}\n`).join('')}`)
    const archive = await packaged(chart)
    const started = Date.now()
    const {values} = await readChartFiles(archive)
    // With the yaml library's own unique-key check (30,000² / 2 comparisons) this takes about 10 s.
    expect(Date.now() - started).to.be.below(5000)
    expect(Object.keys(values.settings as object)).to.have.length(30_000)
  })

  it('takes duplicate keys in values.yaml as helm does (the last one wins), and values parsed ahead as they are', async function () {
    const chart = path.join(work, 'dup')
    await mkdir(path.join(chart, 'templates'), {recursive: true})
    await writeFile(path.join(chart, 'Chart.yaml'), 'apiVersion: v2\nname: dup\nversion: 0.1.0\n')
    await writeFile(path.join(chart, 'values.yaml'), 'image:\n  repository: old/app\nimage:\n  repository: acme/app\n')
    await writeFile(path.join(chart, 'templates', 'cm.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {image: {{ .Values.image.repository | quote }}}\n')
    const archive = await packaged(chart)
    expect((await readChartFiles(archive)).values).to.deep.equal({image: {repository: 'acme/app'}})
    const rendered = YAML.parseAllDocuments(String((await execa(HELM, ['template', 'x', archive])).stdout)).map((document) => document.toJS())
    expect(rendered[0].data.image).to.equal('acme/app')
    await parseValuesAhead(chart)
    const first = await readChartFiles(archive)
    const second = await readChartFiles(archive)
    expect(first.values).to.deep.equal(second.values)
    // Each read has values of its own.
    expect(first.values).to.not.equal(second.values)
  })
})
