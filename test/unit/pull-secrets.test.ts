import {expect} from 'chai'
import {execa} from 'execa'
import {existsSync, readdirSync, readFileSync} from 'node:fs'
import {mkdtemp, readdir, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import YAML from 'yaml'

import type {SourceContext} from '../../src/api.js'
import {readChartTree} from '../../packages/helm-analysis/src/chart-files.js'
import {
  effectiveSecrets,
  findPullSecretValues,
  missingSecrets,
  pullSecretCandidates,
  secretTargets,
  secretValue,
} from '../../packages/helm-analysis/src/pull-secrets.js'
import {mergeValues, setPath, type Values} from '../../packages/helm-analysis/src/values.js'
import {checkPullSecretFlags, createSecretLines, releaseNamespaces} from '../../src/lib/actions/deploy.js'
import {refHelpers} from '../../src/lib/refs.js'
import {defaultTimeoutMs} from '../../src/lib/bounds.js'
import {createToolRunner, missingTool} from '../../src/lib/tools.js'
import {refusal} from '../support/assertions.js'
import {FIXTURES, TOOLS_BIN} from '../support/kod.js'

const POD = (name: string, spec: string): string => `---
# Source: c/templates/${name}.yaml
apiVersion: apps/v1
kind: Deployment
metadata: {name: ${name}}
spec:
  template:
    spec:
${spec
  .split('\n')
  .map((line) => `      ${line}`)
  .join('\n')}
`

describe('pull secrets: what a render gives each pod', function () {
  const output = [
    POD('web', 'imagePullSecrets: [{name: a}, {name: b}]\ncontainers: [{name: web, image: x}]'),
    POD('bare', 'serviceAccountName: agent\ncontainers: [{name: bare, image: x}]'),
    POD('own', 'serviceAccountName: agent\nimagePullSecrets: [{name: c}]\ncontainers: [{name: own, image: x}]'),
    POD('strings', 'imagePullSecrets: [a]\ncontainers: [{name: s, image: x}]'),
    `---
# Source: c/templates/sa.yaml
apiVersion: v1
kind: ServiceAccount
metadata: {name: agent}
imagePullSecrets: [{name: from-sa}]
---
# Source: c/templates/crd.yaml
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: things.example.com}
spec:
  versions:
    - schema:
        openAPIV3Schema:
          properties:
            imagePullSecrets: {type: array}
            containers: [{name: not-a-pod}]
---
# Source: c/templates/prometheus.yaml
apiVersion: monitoring.coreos.com/v1
kind: Prometheus
metadata: {name: prom}
spec:
  image: x
  imagePullSecrets: [{name: a}]
---
# Source: c/templates/flow.yaml
{apiVersion: batch/v1, kind: Job, metadata: {name: flow}, spec: {template: {spec: {imagePullSecrets: [{name: f}], containers: [{name: j, image: x}]}}}}
---
# Source: c/templates/cron.yaml
apiVersion: batch/v1
kind: CronJob
metadata: {name: cron}
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers: [{name: c, image: x}]
`,
  ].join('')

  it('finds pod specs at any depth, custom resources with an imagePullSecrets list, and service accounts; never a CRD schema', function () {
    const {targets, serviceAccounts} = secretTargets(output)
    expect(targets.map((target) => [target.id, target.podSpec, target.secrets])).to.deep.equal([
      ['Deployment/web', true, ['a', 'b']],
      ['Deployment/bare', true, []],
      ['Deployment/own', true, ['c']],
      // A bare string is no valid entry: Kubernetes takes {name} maps.
      ['Deployment/strings', true, []],
      ['Prometheus/prom', false, ['a']],
      // Flow style, on one line, is read too.
      ['Job/flow', true, ['f']],
      ['CronJob/cron', true, []],
    ])
    expect(targets.find((target) => target.id === 'CronJob/cron')!.serviceAccount).to.equal('default')
    expect([...serviceAccounts]).to.deep.equal([['agent', ['from-sa']]])
  })

  it("takes a service account's secrets only for pods that have none of their own (as the ServiceAccount admission does)", function () {
    const {targets, serviceAccounts} = secretTargets(output)
    const byId = new Map(targets.map((target) => [target.id, effectiveSecrets(target, serviceAccounts)]))
    expect(byId.get('Deployment/bare')).to.deep.equal(['from-sa'])
    expect(byId.get('Deployment/own')).to.deep.equal(['c'])
    expect(missingSecrets(output, ['a']).map((target) => target.id)).to.deep.equal(['Deployment/bare', 'Deployment/own', 'Deployment/strings', 'Job/flow', 'CronJob/cron'])
  })
})

describe('pull secrets: the value kod writes', function () {
  it('adds the names after the secrets the values give, in the shape of the path, each once', function () {
    expect(secretValue(undefined, 'map', ['regcred'])).to.deep.equal([{name: 'regcred'}])
    expect(secretValue(null, 'string', ['regcred'])).to.deep.equal(['regcred'])
    expect(secretValue([{name: 'corp'}], 'map', ['regcred', 'other'])).to.deep.equal([{name: 'corp'}, {name: 'regcred'}, {name: 'other'}])
    expect(secretValue(['corp', 'regcred'], 'string', ['regcred'])).to.deep.equal(['corp', 'regcred'])
    // A chart that takes both keeps the user's entries as they are.
    expect(secretValue(['corp'], 'map', ['regcred'])).to.deep.equal(['corp', {name: 'regcred'}])
  })

  it('never replaces a secret: a scalar holding another name, or a path holding no list, is not written', function () {
    expect(secretValue('', 'scalar', ['regcred', 'b'])).to.equal('regcred')
    expect(secretValue('regcred', 'scalar', ['regcred'])).to.equal('regcred')
    expect(secretValue('corp', 'scalar', ['regcred'])).to.equal(undefined)
    expect(secretValue('corp', 'map', ['regcred'])).to.equal(undefined)
  })
})

describe('pull secrets: candidate values', function () {
  const tree = {
    name: 'c',
    templates: new Map([
      ['c/templates/a.yaml', '{{ .Values.undeclared.imagePullSecrets }} {{ .Values.other.thing }}'],
      ['c/charts/sub/templates/b.yaml', '{{ .Values.hidden.pullSecrets }} {{ .Values.global.extra.imagePullSecrets }}'],
    ]),
  }
  const values = {
    global: {imagePullSecrets: []},
    image: 'nginx:1.25',
    server: {imagePullSecrets: [{name: 'x'}], registrySecret: {create: true}},
    worker: {image: {pullSecrets: null}},
    legacy: {imagePullSecret: ''},
    creds: {imagePullSecrets: {create: true, name: 'made'}},
    sub: {imagePullSecrets: []},
    sidecars: [{imagePullSecrets: []}],
  }

  it('keys named for pull secrets, paths the templates read, the well-known ones; general ones first', function () {
    const found = pullSecretCandidates(tree, values)
    expect(found.map((candidate) => candidate.path)).to.deep.equal([
      'imagePullSecrets',
      'global.imagePullSecrets',
      'global.extra.imagePullSecrets',
      'global.image.pullSecrets',
      'legacy.imagePullSecret',
      'server.imagePullSecrets',
      'sub.imagePullSecrets',
      'undeclared.imagePullSecrets',
      'worker.image.pullSecrets',
    ])
    expect(found.find((candidate) => candidate.path === 'legacy.imagePullSecret')!.scalar).to.equal(true)
    expect(found.filter((candidate) => candidate.general).map((candidate) => candidate.path)).to.deep.equal([
      'imagePullSecrets',
      'global.imagePullSecrets',
      'global.extra.imagePullSecrets',
      'global.image.pullSecrets',
    ])
  })

  it('not under a value that is no map (image: "nginx:1.25" has no image.pullSecrets), not a map (a secret to create), not inside lists', function () {
    const paths = pullSecretCandidates(tree, values).map((candidate) => candidate.path)
    expect(paths).to.not.include('image.pullSecrets')
    expect(paths).to.not.include('creds.imagePullSecrets')
    expect(paths.some((candidate) => candidate.startsWith('sidecars'))).to.equal(false)
  })
})

describe('deploy --image-pull-secret and --create-secret flags', function () {
  const check = (given: Partial<Parameters<typeof checkPullSecretFlags>[0]>): string[] =>
    checkPullSecretFlags({names: [], createSecret: false, runs: false, login: false, ...given})

  it('takes Kubernetes secret names, each once', function () {
    expect(check({names: ['regcred', 'corp.pull-1', 'regcred']})).to.deep.equal(['regcred', 'corp.pull-1'])
    for (const bad of ['RegCred', 'reg_cred', '-x', 'x-', '', 'a'.repeat(254)]) {
      const refused = refusal(() => check({names: [bad]}))
      expect(refused.exit, bad).to.equal(2)
      expect(refused.message).to.match(/is not a Kubernetes secret name/)
    }
  })

  it('--create-secret needs a name, and a login when kod creates the secret (not when it only prints the step)', function () {
    expect(refusal(() => check({createSecret: true})).message).to.match(/^--create-secret needs --image-pull-secret NAME/)
    const noLogin = refusal(() => check({names: ['regcred'], createSecret: true, runs: true}))
    expect(noLogin.exit).to.equal(2)
    expect(noLogin.message).to.match(/^--create-secret makes the secret from the registry login: add --registry-username USER --registry-password-stdin/)
    expect(check({names: ['regcred'], createSecret: true, runs: false})).to.deep.equal(['regcred'])
    expect(check({names: ['regcred'], createSecret: true, runs: true, login: true})).to.deep.equal(['regcred'])
  })

  it('prints the step per namespace, reading the login from the file $KOD_PULL_SECRET_AUTH_FILE names, never a password', function () {
    const runner = {binary: (tool: string) => (tool === 'kubectl' ? '/opt/k8s/kubectl' : tool), run: async () => ({stdout: '', stderr: ''})}
    const target = {registry: 'harbor.corp:8443/team', prefix: 'kod', plainHttp: false, insecureSkipTlsVerify: false}
    const lines = createSecretLines(runner, {name: 'regcred', username: 'robot', authFile: '/tmp/kod-1/target-login/auth.json'}, ['shop', undefined], target)
    expect(lines).to.deep.equal([
      '/opt/k8s/kubectl create namespace shop --dry-run=client -o yaml | /opt/k8s/kubectl apply --server-side --field-manager=kod -f -',
      '/opt/k8s/kubectl create secret generic regcred --type=kubernetes.io/dockerconfigjson --from-file=.dockerconfigjson="${KOD_PULL_SECRET_AUTH_FILE:?a docker config.json holding only the login for harbor.corp:8443, made with: skopeo login --authfile FILE --username robot harbor.corp:8443}" --namespace shop --dry-run=client -o yaml | /opt/k8s/kubectl apply --server-side --force-conflicts --field-manager=kod -f -',
      '/opt/k8s/kubectl create secret generic regcred --type=kubernetes.io/dockerconfigjson --from-file=.dockerconfigjson="${KOD_PULL_SECRET_AUTH_FILE:?a docker config.json holding only the login for harbor.corp:8443, made with: skopeo login --authfile FILE --username robot harbor.corp:8443}" --dry-run=client -o yaml | /opt/k8s/kubectl apply --server-side --force-conflicts --field-manager=kod -f -',
    ])
    expect(lines.join('\n')).to.not.include('/tmp/kod-1')
    // A user name that would break the shell quoting is left out of the hint; plain HTTP adds --tls-verify=false.
    const [line] = createSecretLines(runner, {name: 'regcred', username: 'ro"bot}'}, [undefined], {...target, plainHttp: true})
    expect(line).to.include('made with: skopeo login --authfile FILE --tls-verify=false harbor.corp:8443}"')
  })

  it('kubectl is a tool kod runs: KOD_KUBECTL, its own install hint, two minutes', function () {
    expect(defaultTimeoutMs('kubectl', ['apply', '--server-side', '-f', 'x.yaml'])).to.equal(2 * 60 * 1000)
    const runner = {binary: () => '/nowhere/kubectl', run: async () => ({stdout: '', stderr: ''})}
    const missing = missingTool(runner, 'kubectl')
    expect(missing.exit).to.equal(3)
    expect(missing.message).to.equal(
      'kubectl not found at /nowhere/kubectl: install kubectl (https://kubernetes.io/docs/tasks/tools/) or set KOD_KUBECTL to its path; only kod deploy --create-secret runs it',
    )
  })

  it('the namespaces are those of the releases, each once', function () {
    const unit = (namespace?: string, installed = true) => ({id: 'x', release: 'x', chart: 'c.tgz', values: [], installed, needs: [], images: [], ...(namespace ? {namespace} : {})})
    const pkg = {dir: '/p', manifest: {units: [unit(), unit('db'), unit('db'), unit('off', false)]}} as never
    expect(releaseNamespaces(pkg, {namespace: 'shop'})).to.deep.equal(['shop', 'db'])
    expect(releaseNamespaces(pkg, {})).to.deep.equal([undefined, 'db'])
  })
})

/**
 * Found by rendering, with real helm: the fixture chart's layouts, and every chart of the shared corpus
 * (../shared/charts), each checked by rendering with the values kod chose and reading every pod spec.
 */
describe('pull secrets found by rendering (real helm)', function () {
  const HELM = path.join(TOOLS_BIN, 'helm')
  const CORPUS = path.resolve(FIXTURES, '..', '..', '..', 'shared', 'charts')
  let work: string
  let saved: string | undefined

  before(async function () {
    work = await mkdtemp(path.join(os.tmpdir(), 'kod-pull-secrets-unit-'))
    saved = process.env.KOD_HELM
    process.env.KOD_HELM = HELM
  })

  after(async function () {
    if (saved === undefined) delete process.env.KOD_HELM
    else process.env.KOD_HELM = saved
    if (work) await rm(work, {recursive: true, force: true})
  })

  const context = (): SourceContext => ({
    api: 'kod.source/v2',
    tools: createToolRunner({setpriv: false}),
    log: {info: () => {}, warn: () => {}, debug: () => {}},
    refs: refHelpers,
    tmpDir: work,
  })

  /** Packages the chart directory, finds the values for `names`, and renders with them (and `files`). */
  async function found(chartDir: string, names: string[], files: string[] = [], kubeVersion = '1.30.0') {
    const dir = await mkdtemp(path.join(work, 'chart-'))
    await execa(HELM, ['package', chartDir, '-d', dir])
    const archive = path.join(dir, (await readdir(dir))[0])
    const tree = await readChartTree(archive, dir)
    let effective: Values = tree.values
    for (const file of files) effective = mergeValues(effective, YAML.parse(readFileSync(file, 'utf8')) ?? {})
    const renderOptions = {release: 'rel', namespace: 'ns', valuesFiles: files, kubeVersion}
    const plan = await findPullSecretValues(context(), {chart: archive, tree, render: renderOptions, effective, names})
    const values: Values = {}
    for (const entry of plan.chosen) setPath(values, entry.keys, entry.value)
    const file = path.join(dir, 'pull-secrets.yaml')
    await writeFile(file, YAML.stringify(values))
    const output = String((await execa(HELM, ['template', 'rel', archive, '-n', 'ns', '--kube-version', kubeVersion, ...[...files, file].flatMap((f) => ['-f', f])])).stdout)
    return {plan, values, output}
  }

  it('the fixture chart: a global default, names only, one name, a service account; the hook no value reaches is said', async function () {
    const {plan, values, output} = await found(path.join(FIXTURES, 'charts', 'pullsecrets'), ['regcred'])
    expect(values).to.deep.equal({
      global: {imagePullSecrets: [{name: 'regcred'}]},
      legacy: {imagePullSecret: 'regcred'},
      agent: {serviceAccount: {imagePullSecrets: [{name: 'regcred'}]}},
      worker: {image: {pullSecrets: ['regcred']}},
    })
    expect(plan.unreached.map((target) => target.id)).to.deep.equal(['Job/rel-migrate'])
    expect(missingSecrets(output, ['regcred']).map((target) => target.id)).to.deep.equal(['Job/rel-migrate'])
  })

  it('two names, and a values schema that refuses names where it wants {name} maps', async function () {
    const dir = await mkdtemp(path.join(work, 'schema-'))
    await execa('cp', ['-r', path.join(FIXTURES, 'charts', 'pullsecrets'), dir])
    const chart = path.join(dir, 'pullsecrets')
    await writeFile(
      path.join(chart, 'values.schema.json'),
      JSON.stringify({type: 'object', properties: {worker: {type: 'object', properties: {image: {type: 'object', properties: {pullSecrets: {type: 'array', items: {type: 'object'}}}}}}}}),
    )
    const {plan, output} = await found(chart, ['regcred', 'other'])
    // The worker template writes "- name: <each>", which needs names; the schema wants maps: no value reaches it.
    expect(plan.chosen.map((entry) => entry.path)).to.not.include('worker.image.pullSecrets')
    expect(plan.unreached.map((target) => target.id).sort()).to.deep.equal(['CronJob/rel-worker', 'Job/rel-migrate'])
    // One name is all legacy.imagePullSecret holds: the first.
    expect(plan.chosen.find((entry) => entry.path === 'legacy.imagePullSecret')!.value).to.equal('regcred')
    expect(missingSecrets(output, ['regcred', 'other']).map((target) => target.id).sort()).to.deep.equal(['CronJob/rel-worker', 'Job/rel-migrate', 'StatefulSet/rel-legacy'])
    expect(plan.chosen.find((entry) => entry.path === 'global.imagePullSecrets')!.value).to.deep.equal([{name: 'regcred'}, {name: 'other'}])
  })

  /** Pods no value of the chart reaches, by chart (checked by hand: their templates take no pull secrets). */
  const unreachable: Record<string, string[]> = {loki: ['Pod/loki-helm-test']}
  // Chart directories: those with an expected-images.json.
  const corpus = existsSync(CORPUS) ? readdirSync(CORPUS).filter((name) => existsSync(path.join(CORPUS, name, 'expected-images.json'))) : []
  for (const chart of corpus) {
    it(`${chart} (../shared/charts): every pod the chart lets a value reach gets the secret`, async function () {
      const expected = JSON.parse(readFileSync(path.join(CORPUS, chart, 'expected-images.json'), 'utf8')) as {helmTemplateArgs: string[]}
      const args = expected.helmTemplateArgs
      const kube = args[args.indexOf('--kube-version') + 1]
      const files = existsSync(path.join(CORPUS, chart, 'kod-test-values.yaml')) ? [path.join(CORPUS, chart, 'kod-test-values.yaml')] : []
      const {output, plan} = await found(path.join(CORPUS, chart), ['regcred'], files, kube)
      expect(missingSecrets(output, ['regcred']).map((target) => target.id), plan.chosen.map((entry) => entry.path).join(', ')).to.deep.equal(unreachable[chart] ?? [])
    })
  }
})
