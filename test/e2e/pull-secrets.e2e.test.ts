import {expect} from 'chai'
import {execa} from 'execa'
import {randomBytes} from 'node:crypto'
import {existsSync} from 'node:fs'
import {chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import YAML from 'yaml'

import {hostComponent} from '../../src/lib/refs.js'
import {oneLineError} from '../support/assertions.js'
import {FIXTURES, kod, type KodResult, TOOLS_BIN, toolPath} from '../support/kod.js'
import {buildLayout} from '../support/oci-build.js'
import {startRegistry, type TestRegistry} from '../support/registry.js'

/**
 * kod deploy --image-pull-secret and --create-secret (issue 9, part 5), with real helm, skopeo, kubectl
 * and registries on 127.0.0.1:
 *
 * - the pull-secret values kod finds by rendering, for the layouts of a fixture chart
 *   (test/fixtures/charts/pullsecrets: a global default a component list shadows, a list of names, one
 *   name, a service account's secrets, a hook no value reaches) and of real charts from
 *   ../shared/charts (bitnami redis, argo-cd, velero, prometheus and its subcharts), each checked by
 *   running the helm command kod prints (helm's client-side dry run) and reading every pod spec;
 * - secrets the values already give are kept; the user's own -f files win and kod says so;
 * - --create-secret: printed without the password (--list-commands), run by kod with kubectl.
 *
 * There is no Kubernetes API server here. kubectl's client-side commands (`kubectl create … --dry-run=client
 * -o yaml`) work without one and run for real; `kubectl apply` needs one, so a kubectl on PATH records
 * what `apply` is given (its arguments and the file or stdin it reads) and runs the real kubectl for
 * everything else. helm itself is never replaced.
 */
const SENTINEL = `kod-S3ntinel-pull-${randomBytes(6).toString('hex')}`
const USER = 'puller'
const SECRET = 'regcred'
const CHARTS = path.resolve(FIXTURES, '..', '..', '..', 'shared', 'charts')

/** A parsed Kubernetes object or values file, read loosely (the tests check what they read). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Loose = Record<string, any>

function expectClean(where: string, text: string): void {
  expect(text.includes(SENTINEL), `${where} holds the password`).to.equal(false)
  expect(text.includes(Buffer.from(`${USER}:${SENTINEL}`).toString('base64')), `${where} holds the encoded login`).to.equal(false)
}

async function filesBelow(dir: string): Promise<string[]> {
  const found: string[] = []
  for (const entry of await readdir(dir, {withFileTypes: true}).catch(() => [])) {
    const file = path.join(dir, entry.name)
    if (entry.isDirectory()) found.push(...(await filesBelow(file)))
    else if (entry.isFile()) found.push(file)
  }
  return found
}

interface PodSpec {
  id: string
  /** The pull secrets its pods pull with: its own, or, when it has none, those of its service account in the release. */
  secrets: string[]
}

/**
 * Every pod spec of a helm output (manifest and hooks), read independently of kod's own code: the pod
 * templates of the workload kinds, and a Pod's spec.
 */
function podSpecs(output: string): PodSpec[] {
  const documents = output
    .split(/^---\s*$/m)
    .flatMap((chunk) => {
      try {
        return [YAML.parse(chunk) as Loose]
      } catch {
        return []
      }
    })
    .filter((document) => document && typeof document === 'object' && typeof document.kind === 'string')
  const names = (list: unknown): string[] => (Array.isArray(list) ? list.map((entry) => entry?.name).filter((name) => typeof name === 'string') : [])
  const accounts = new Map(documents.filter((document) => document.kind === 'ServiceAccount').map((document) => [document.metadata.name, names(document.imagePullSecrets)]))
  const specs: PodSpec[] = []
  for (const document of documents) {
    const spec =
      document.kind === 'Pod'
        ? document.spec
        : document.kind === 'CronJob'
          ? document.spec?.jobTemplate?.spec?.template?.spec
          : ['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job'].includes(document.kind)
            ? document.spec?.template?.spec
            : undefined
    if (!spec) continue
    const own = names(spec.imagePullSecrets)
    specs.push({id: `${document.kind}/${document.metadata.name}`, secrets: own.length > 0 ? own : (accounts.get(spec.serviceAccountName ?? 'default') ?? [])})
  }
  return specs
}

/** A PATH directory whose kubectl records `apply` (arguments, the mode and content of what it reads) and runs the real kubectl otherwise. */
async function kubectlShim(dir: string, log: string): Promise<void> {
  await mkdir(dir, {recursive: true})
  const real = path.join(TOOLS_BIN, 'kubectl')
  await writeFile(
    path.join(dir, 'kubectl'),
    `#!/bin/sh
printf 'kubectl' >> '${log}'; for arg in "$@"; do printf ' %s' "$arg" >> '${log}'; done; printf '\\n' >> '${log}'
if [ "$1" = apply ]; then
  n=$(ls '${dir}' | grep -c '^applied-'); out='${dir}'/applied-$n.yaml
  for arg in "$@"; do [ "$prev" = -f ] && file="$arg"; prev="$arg"; done
  if [ "$file" = - ]; then cat > "$out"; else stat -c 'mode %a' "$file" >> '${log}'; cp "$file" "$out"; fi
  echo "applied (recorded by the test: there is no API server)"
  exit 0
fi
exec '${real}' "$@"
`,
  )
  await chmod(path.join(dir, 'kubectl'), 0o755)
}

async function applied(dir: string): Promise<Array<Loose>> {
  const files = (await readdir(dir)).filter((name) => name.startsWith('applied-')).sort()
  const documents: Array<Loose> = []
  for (const file of files) documents.push(...YAML.parseAllDocuments(await readFile(path.join(dir, file), 'utf8')).map((document) => document.toJS()))
  return documents.filter(Boolean)
}

function decodedLogin(secret: Loose): Record<string, {auth: string}> {
  expect(secret.type).to.equal('kubernetes.io/dockerconfigjson')
  return JSON.parse(Buffer.from(secret.data['.dockerconfigjson'], 'base64').toString('utf8')).auths
}

describe('deploy --image-pull-secret and --create-secret (e2e)', function () {
  let work: string
  let upstream: TestRegistry
  let airgap: TestRegistry
  let fixture: string
  let helmfilePackage: string
  let helmEnv: Record<string, string>

  before(async function () {
    work = await mkdtemp(path.join(os.tmpdir(), 'kod-pull-secrets-'))
    upstream = await startRegistry()
    airgap = await startRegistry({auth: {user: USER, password: SENTINEL}})
    const memory = path.join(work, 'helm-memory.yaml')
    await writeFile(memory, '[]\n')
    helmEnv = {HELM_DRIVER: 'memory', HELM_MEMORY_DRIVER_DATA: memory, HOME: work}
    const layout = path.join(work, 'build')
    await buildLayout(layout, [{name: 'app', layers: [{files: {'app/app': 'app\n'}}]}])
    await execa('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}:app`, `docker://${upstream.host}/kodtest/app:1.0`])
    // Package-time values that already give two components their own secrets: kod keeps them.
    const base = path.join(work, 'base.yaml')
    await writeFile(base, YAML.stringify({registry: upstream.host, web: {imagePullSecrets: [{name: 'corp-web'}]}, worker: {image: {pullSecrets: ['corp-worker']}}}))
    const packaged = await kod(['package', '-c', path.join(FIXTURES, 'charts', 'pullsecrets'), '-f', base, '-o', path.join(work, 'out'), '--insecure-registry', upstream.host])
    expect(packaged.exitCode, packaged.stderr).to.equal(0)
    fixture = path.join(work, 'out', 'kod-pullsecrets-0.1.0.kodpkg')
    // A helmfile: the same chart as two releases in two namespaces.
    const project = path.join(work, 'project')
    await mkdir(path.join(project, 'charts'), {recursive: true})
    await execa('cp', ['-r', path.join(FIXTURES, 'charts', 'pullsecrets'), path.join(project, 'charts')])
    await writeFile(
      path.join(project, 'helmfile.yaml'),
      `releases:\n${['front:web', 'back:jobs'].map((pair) => `  - name: ${pair.split(':')[0]}\n    namespace: ${pair.split(':')[1]}\n    chart: ./charts/pullsecrets\n    values:\n      - registry: ${upstream.host}\n`).join('')}`,
    )
    const helmfile = await kod(['package', '-c', project, '--version', '1.0.0', '-o', path.join(work, 'out'), '--insecure-registry', upstream.host, '--json'])
    expect(helmfile.exitCode, helmfile.stderr).to.equal(0)
    helmfilePackage = JSON.parse(helmfile.stdout).file
    await upstream.stop()
  })

  after(async function () {
    await upstream?.stop()
    await airgap?.stop()
    if (work) await rm(work, {recursive: true, force: true})
  })

  describe('the fixture chart, populated: --no-install --list-commands --create-secret', function () {
    let cwd: string
    let result: KodResult
    let lines: string[]

    before(async function () {
      cwd = await mkdtemp(path.join(work, 'listed-'))
      result = await kod(
        ['deploy', '--no-install', '--list-commands', '-c', fixture, '-r', airgap.host, '--plain-http', '-n', 'shop', '--registry-username', USER, '--registry-password-stdin', '--image-pull-secret', SECRET, '--create-secret'],
        {cwd, env: {...helmEnv, DEBUG: 'kod*'}, input: `${SENTINEL}\n`},
      )
      lines = result.stdout.trim().split('\n')
    })

    it('populates, and prints the namespace and secret steps, then helm', function () {
      expect(result.exitCode, result.stderr).to.equal(0)
      expect(lines, result.stdout).to.have.length(3)
      expect(lines[0]).to.equal('kubectl create namespace shop --dry-run=client -o yaml | kubectl apply --server-side --field-manager=kod -f -')
      expect(lines[1]).to.match(/^kubectl create secret generic regcred --type=kubernetes\.io\/dockerconfigjson --from-file=\.dockerconfigjson="\$\{KOD_PULL_SECRET_AUTH_FILE:\?[^"]*\}" --namespace shop --dry-run=client -o yaml \| kubectl apply --server-side --force-conflicts --field-manager=kod -f -$/)
      // The hint says how to make the file, for this registry and user.
      expect(lines[1]).to.include(`skopeo login --authfile FILE --tls-verify=false --username ${USER} ${airgap.host}`)
      expect(lines[2]).to.match(/^helm upgrade --install pullsecrets /)
    })

    it('holds the password nowhere: not in what it printed, its debug output, or any file it wrote', async function () {
      expectClean('stdout', result.stdout)
      expectClean('stderr', result.stderr)
      for (const file of await filesBelow(cwd)) expectClean(file, await readFile(file, 'latin1'))
    })

    it('writes the pull-secret values into kod-values-<release>.yaml, keeping the package-time secrets, each in its shape', async function () {
      const values = YAML.parse(await readFile(path.join(cwd, 'kod-pullsecrets-0.1.0', 'kod-values-pullsecrets.yaml'), 'utf8'))
      expect(values.web.imagePullSecrets).to.deep.equal([{name: 'corp-web'}, {name: SECRET}])
      expect(values.worker.image.pullSecrets).to.deep.equal(['corp-worker', SECRET])
      expect(values.legacy.imagePullSecret).to.equal(SECRET)
      expect(values.agent.serviceAccount.imagePullSecrets).to.deep.equal([{name: SECRET}])
      // The images are relocated in the same file.
      expect(values.registry).to.equal(`${airgap.host}/kod/${hostComponent(upstream.host)}`)
    })

    it('says which pod no value reaches', function () {
      expect(result.stderr).to.match(/Warning: release pullsecrets: no value of the chart sets the pull secrets of Job\/pullsecrets-migrate \(pullsecrets\/templates\/migrate\.yaml\): it pulls without pull secret regcred unless service account default has it/)
    })

    it('the printed helm command gives every other pod the secret, and keeps the secrets the values gave', async function () {
      const ran = await execa('bash', ['-c', `${lines[2]} --dry-run=client`], {cwd, env: {...helmEnv, PATH: toolPath()}, stdin: 'ignore'})
      const specs = new Map(podSpecs(String(ran.stdout)).map((spec) => [spec.id, spec.secrets]))
      expect([...specs.keys()].sort()).to.deep.equal(['CronJob/pullsecrets-worker', 'DaemonSet/pullsecrets-agent', 'Deployment/pullsecrets-web', 'Job/pullsecrets-migrate', 'StatefulSet/pullsecrets-legacy'])
      expect(specs.get('Deployment/pullsecrets-web')).to.deep.equal(['corp-web', SECRET])
      expect(specs.get('CronJob/pullsecrets-worker')).to.deep.equal(['corp-worker', SECRET])
      expect(specs.get('StatefulSet/pullsecrets-legacy')).to.deep.equal([SECRET])
      expect(specs.get('DaemonSet/pullsecrets-agent'), 'through its service account').to.deep.equal([SECRET])
      expect(specs.get('Job/pullsecrets-migrate')).to.deep.equal([])
    })

    it('the printed secret step needs $KOD_PULL_SECRET_AUTH_FILE, and with it makes the secret from that file (kubectl --dry-run=client, no cluster)', async function () {
      const shims = path.join(work, 'listed-kubectl')
      const log = path.join(work, 'listed-kubectl.log')
      await kubectlShim(shims, log)
      const env = {...helmEnv, PATH: toolPath([shims])}
      // Unset: the shell stops the first command, saying what to set, and the real kubectl apply, given nothing, fails.
      const unset = await execa('sh', ['-c', lines[1]], {cwd, env: {...helmEnv, PATH: toolPath()}, stdin: 'ignore', reject: false})
      expect(unset.exitCode).to.not.equal(0)
      expect(String(unset.stderr)).to.match(/KOD_PULL_SECRET_AUTH_FILE: a docker config\.json holding only the login for/)
      expect(String(unset.stderr)).to.include('no objects passed to apply')
      // The file the hint says to make: skopeo login, the password on stdin.
      const authFile = path.join(work, 'pull-secret-auth.json')
      await execa('skopeo', ['login', '--authfile', authFile, '--tls-verify=false', '--username', USER, '--password-stdin', airgap.host], {input: SENTINEL})
      for (const line of lines.slice(0, 2)) await execa('sh', ['-c', line], {cwd, env: {...env, KOD_PULL_SECRET_AUTH_FILE: authFile}, stdin: 'ignore'})
      const [namespace, secret] = await applied(shims)
      expect(namespace.kind).to.equal('Namespace')
      expect(namespace.metadata.name).to.equal('shop')
      expect(secret.kind).to.equal('Secret')
      expect(secret.metadata).to.include({name: SECRET, namespace: 'shop'})
      expect(decodedLogin(secret)[airgap.host].auth).to.equal(Buffer.from(`${USER}:${SENTINEL}`).toString('base64'))
      expectClean('kubectl argument lists', await readFile(log, 'utf8'))
    })
  })

  it("a component list the user's -f file sets is theirs: kod writes nothing there and says where to add the secret", async function () {
    const cwd = await mkdtemp(path.join(work, 'user-file-'))
    const mine = path.join(work, 'mine.yaml')
    await writeFile(mine, YAML.stringify({web: {imagePullSecrets: [{name: 'mine'}]}}))
    const result = await kod(['deploy', '--list-commands', '-c', fixture, '-r', airgap.host, '--plain-http', '-n', 'shop', '-f', mine, '--image-pull-secret', SECRET], {cwd, env: helmEnv})
    expect(result.exitCode, result.stderr).to.equal(0)
    expect(result.stderr).to.include(`Warning: release pullsecrets: Deployment/pullsecrets-web (pullsecrets/templates/web.yaml) gets pull secret regcred only through web.imagePullSecrets, and your values file ${mine} sets it (yours win over kod's values): add regcred to it there`)
    const values = YAML.parse(await readFile(path.join(cwd, 'kod-pullsecrets-0.1.0', 'kod-values-pullsecrets.yaml'), 'utf8'))
    expect(values.web).to.equal(undefined)
    expect(values.worker.image.pullSecrets).to.deep.equal(['corp-worker', SECRET])
    const helmLine = result.stdout.trim().split('\n').at(-1)!
    expect(helmLine.endsWith(`-f ${mine}`), 'your file comes last').to.equal(true)
    const ran = await execa('bash', ['-c', `${helmLine} --dry-run=client`], {cwd, env: {...helmEnv, PATH: toolPath()}, stdin: 'ignore'})
    const specs = new Map(podSpecs(String(ran.stdout)).map((spec) => [spec.id, spec.secrets]))
    expect(specs.get('Deployment/pullsecrets-web')).to.deep.equal(['mine'])
    expect(specs.get('CronJob/pullsecrets-worker')).to.deep.equal(['corp-worker', SECRET])
  })

  it('a helmfile package: the values of every release, and the secret step for each release namespace', async function () {
    const cwd = await mkdtemp(path.join(work, 'helmfile-'))
    const result = await kod(['deploy', '--helm', '--list-commands', '-c', helmfilePackage, '-r', airgap.host, '--plain-http', '--image-pull-secret', SECRET, '--create-secret'], {cwd, env: helmEnv})
    expect(result.exitCode, result.stderr).to.equal(0)
    const lines = result.stdout.trim().split('\n').filter((line) => !/^(skopeo|helm push) /.test(line))
    expect(lines.map((line) => line.split(' | ')[0].replace(/ --from-file=[^"]*"[^"]*" /, ' '))).to.deep.equal([
      'kubectl create namespace web --dry-run=client -o yaml',
      'kubectl create secret generic regcred --type=kubernetes.io/dockerconfigjson --namespace web --dry-run=client -o yaml',
      'kubectl create namespace jobs --dry-run=client -o yaml',
      'kubectl create secret generic regcred --type=kubernetes.io/dockerconfigjson --namespace jobs --dry-run=client -o yaml',
      ...lines.slice(4),
    ])
    expect(lines.slice(4).map((line) => line.split(' ').slice(0, 4).join(' '))).to.deep.equal(['helm upgrade --install front', 'helm upgrade --install back'])
    for (const [index, release] of ['front', 'back'].entries()) {
      const ran = await execa('bash', ['-c', `${lines[4 + index]} --dry-run=client`], {cwd, env: {...helmEnv, PATH: toolPath()}, stdin: 'ignore'})
      const specs = podSpecs(String(ran.stdout)).filter((spec) => spec.id !== `Job/${release}-migrate`)
      expect(specs.map((spec) => spec.id)).to.have.length(4)
      for (const spec of specs) expect(spec.secrets, `${release}: ${spec.id}`).to.deep.equal([SECRET])
    }
  })

  describe('--create-secret run by kod (kubectl for real; apply recorded, there is no API server)', function () {
    it('with --dry-run: populates, makes the secret with kubectl --dry-run=client from kod\'s temporary login file, applies nothing, and runs helm', async function () {
      const cwd = await mkdtemp(path.join(work, 'dry-run-'))
      const shims = path.join(work, 'dry-run-kubectl')
      const log = path.join(work, 'dry-run-kubectl.log')
      await kubectlShim(shims, log)
      const result = await kod(
        ['deploy', '-c', fixture, '-r', airgap.host, '--plain-http', '-n', 'shop', '--dry-run', '--registry-username', USER, '--registry-password-stdin', '--image-pull-secret', SECRET, '--create-secret'],
        {cwd, env: {...helmEnv, PATH: toolPath([shims]), DEBUG: 'kod*'}, input: SENTINEL},
      )
      expect(result.exitCode, result.stderr).to.equal(0)
      expect(result.stderr).to.include('dry run: pull secret regcred made for namespace shop, not applied')
      expect(result.stdout).to.match(/Dry run complete|MANIFEST/)
      const calls = (await readFile(log, 'utf8')).trim().split('\n')
      expect(calls, calls.join('\n')).to.have.length(1)
      expect(calls[0]).to.match(/^kubectl create secret generic regcred --type=kubernetes\.io\/dockerconfigjson --from-file=\.dockerconfigjson=\/\S+\/auth\.json --namespace shop --dry-run=client -o yaml$/)
      expect(existsSync(calls[0].split('.dockerconfigjson=')[1].split(' ')[0]), "kod's temporary login file is gone").to.equal(false)
      for (const text of [result.stdout, result.stderr, calls.join('\n')]) expectClean('output and kubectl arguments', text)
    })

    it('for real: applies the namespace and the secret from a 0600 file before helm, the password in no argument', async function () {
      const cwd = await mkdtemp(path.join(work, 'real-'))
      const shims = path.join(work, 'real-kubectl')
      const log = path.join(work, 'real-kubectl.log')
      await kubectlShim(shims, log)
      const result = await kod(
        ['deploy', '-c', fixture, '-r', airgap.host, '--plain-http', '-n', 'shop', '--registry-username', USER, '--registry-password-stdin', '--image-pull-secret', SECRET, '--create-secret'],
        {cwd, env: {...helmEnv, PATH: toolPath([shims]), KUBECONFIG: path.join(work, 'no-cluster.kubeconfig')}, input: SENTINEL},
      )
      // helm then needs a cluster, which this machine has not (its own error is streamed above kod's): the step before it ran.
      expect(result.exitCode, result.stderr).to.equal(4)
      expect(result.stderr).to.match(/^Error: helm upgrade failed/m)
      expect(result.stderr).to.include('pull secret regcred created or updated in namespace shop')
      const calls = (await readFile(log, 'utf8')).trim().split('\n')
      expect(calls[0]).to.match(/^kubectl create secret generic regcred .*--from-file=\.dockerconfigjson=\/\S+\/auth\.json --namespace shop --dry-run=client -o yaml$/)
      expect(calls[1]).to.match(/^kubectl apply --server-side --force-conflicts --field-manager=kod -f \/\S+\/secret\.yaml$/)
      expect(calls[2]).to.equal('mode 600')
      expect(existsSync(calls[1].split(' -f ')[1]), 'the secret file is gone').to.equal(false)
      const [namespace, secret] = await applied(shims)
      expect(namespace).to.deep.equal({apiVersion: 'v1', kind: 'Namespace', metadata: {name: 'shop'}})
      expect(secret.metadata).to.include({name: SECRET, namespace: 'shop'})
      expect(Object.keys(decodedLogin(secret))).to.deep.equal([airgap.host])
      for (const text of [result.stdout, result.stderr, calls.join('\n')]) expectClean('output and kubectl arguments', text)
    })
  })

  describe('refusals', function () {
    const args = (): string[] => ['deploy', '-c', fixture, '-r', airgap.host, '--plain-http', '-n', 'shop', '--dry-run']

    it('kubectl missing: exit 3, one line, before anything is unpacked; only when --create-secret runs it', async function () {
      const cwd = await mkdtemp(path.join(work, 'no-kubectl-'))
      const env = {...helmEnv, KOD_KUBECTL: '/nonexistent/kubectl'}
      const missing = await kod([...args(), '--registry-username', USER, '--registry-password-stdin', '--image-pull-secret', SECRET, '--create-secret'], {cwd, env, input: SENTINEL})
      expect(missing.exitCode, missing.stderr).to.equal(3)
      oneLineError(missing, /^Error: kubectl not found at \/nonexistent\/kubectl \(KOD_KUBECTL names it\): fix KOD_KUBECTL, or unset it to use kubectl from PATH$/)
      expect(await readdir(cwd)).to.deep.equal([])
      const printed = await kod([...args(), '--list-commands', '--image-pull-secret', SECRET, '--create-secret'], {cwd, env})
      expect(printed.exitCode, printed.stderr).to.equal(0)
      expect(printed.stdout).to.include('/nonexistent/kubectl create secret generic regcred')
    })

    const refusals: Array<[string, string[], boolean, RegExp]> = [
      ['--create-secret without --image-pull-secret', ['--create-secret', '--registry-username', USER, '--registry-password-stdin'], true, /^Error: --create-secret needs --image-pull-secret NAME/],
      ['--create-secret without a registry login', ['--create-secret', '--image-pull-secret', SECRET], false, /^Error: --create-secret makes the secret from the registry login: add --registry-username USER --registry-password-stdin/],
      ['an --image-pull-secret that is no secret name', ['--image-pull-secret', 'Reg_Cred'], false, /^Error: --image-pull-secret "Reg_Cred" is not a Kubernetes secret name/],
    ]
    for (const [name, extra, login, error] of refusals) {
      it(`${name}: exit 2, one line, nothing unpacked`, async function () {
        const cwd = await mkdtemp(path.join(work, 'refused-'))
        const result = await kod([...args(), ...extra], {cwd, env: helmEnv, ...(login ? {input: SENTINEL} : {})})
        expect(result.exitCode, result.stderr).to.equal(2)
        oneLineError(result, error)
        expectClean('stderr', result.stderr)
        expect(await readdir(cwd)).to.deep.equal([])
      })
    }
  })

  /**
   * Real charts: packaged through a mirror seeded with a tiny image under every reference they run (as
   * npm run corpus does), then deployed with --list-commands (nothing pushed) and the printed helm
   * command run.
   */
  describe('real charts (../shared/charts)', function () {
    let mirror: TestRegistry
    const packages = new Map<string, string>()
    const charts: Array<{chart: string; values?: Record<string, unknown>}> = [
      // Bitnami: global.imagePullSecrets (names or {name} maps) merged with each component's image.pullSecrets.
      {chart: 'redis', values: {global: {imagePullSecrets: ['corp-pull']}}},
      // A component's imagePullSecrets replaces global.imagePullSecrets (`x.imagePullSecrets | default global…`).
      {chart: 'argo-cd'},
      // image.imagePullSecrets: names only (`- name: {{ . }}`).
      {chart: 'velero'},
      // Subcharts: global for three, the parent's top-level imagePullSecrets for the server, alertmanager's own.
      {chart: 'prometheus'},
    ]

    before(async function () {
      if (!existsSync(CHARTS)) this.skip()
      mirror = await startRegistry()
      const layout = path.join(work, 'build')
      for (const {chart, values} of charts) {
        const expected = JSON.parse(await readFile(path.join(CHARTS, chart, 'expected-images.json'), 'utf8')) as {images: string[]}
        const hosts = new Set<string>()
        for (const reference of expected.images) {
          const [, host, rest] = /^([^/]+)\/(.+)$/.exec(reference)!
          hosts.add(host)
          const [repository, tag] = rest.split(':')
          await execa('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}:app`, `docker://${mirror.host}/${hostComponent(host)}/${repository}:${tag}`])
        }
        const valuesArgs: string[] = []
        if (values) {
          const file = path.join(work, `${chart}-values.yaml`)
          await writeFile(file, YAML.stringify(values))
          valuesArgs.push('-f', file)
        }
        const out = path.join(work, 'charts-out')
        const packaged = await kod([
          'package',
          '-c',
          path.join(CHARTS, chart),
          '--kube-version',
          '1.30.0',
          ...valuesArgs,
          ...[...hosts].flatMap((host) => ['--registry-mirror', `${host}=${mirror.host}/${hostComponent(host)}`]),
          '--insecure-registry',
          mirror.host,
          '-o',
          out,
          '--json',
        ])
        expect(packaged.exitCode, `${chart}: ${packaged.stderr}`).to.equal(0)
        packages.set(chart, JSON.parse(packaged.stdout).file)
      }
      await mirror.stop()
    })

    after(async function () {
      await mirror?.stop()
    })

    /** deploy --list-commands, then the printed helm command with helm's client-side dry run: every pod spec, as helm renders it. */
    async function deployed(chart: string, extra: string[] = []): Promise<{result: KodResult; specs: PodSpec[]; values: Loose}> {
      const cwd = await mkdtemp(path.join(work, `${chart}-`))
      const result = await kod(['deploy', '--list-commands', '-c', packages.get(chart)!, '-r', airgap.host, '--plain-http', '-n', 'ns', '-d', 'rel', '--image-pull-secret', SECRET, ...extra], {cwd, env: helmEnv})
      expect(result.exitCode, result.stderr).to.equal(0)
      const helmLine = result.stdout.trim().split('\n').at(-1)!
      expect(helmLine).to.match(/^helm upgrade --install rel /)
      const ran = await execa('bash', ['-c', `${helmLine} --dry-run=client`], {cwd, env: {...helmEnv, PATH: toolPath()}, stdin: 'ignore'})
      const dir = (await readdir(cwd)).find((name) => name.startsWith('kod-'))!
      const values = YAML.parse(await readFile(path.join(cwd, dir, `kod-values-${chart}.yaml`), 'utf8'))
      return {result, specs: podSpecs(String(ran.stdout)), values}
    }

    function everyPodHas(specs: PodSpec[], names: string[]): void {
      expect(specs.length).to.be.greaterThan(0)
      for (const spec of specs) for (const name of names) expect(spec.secrets, `${spec.id}: ${spec.secrets.join(', ')}`).to.include(name)
    }

    it('redis (bitnami): global.imagePullSecrets, the package-time secret kept, as names like the values give them', async function () {
      const {specs, values, result} = await deployed('redis')
      expect(values.global.imagePullSecrets).to.deep.equal(['corp-pull', SECRET])
      expect(values.image?.pullSecrets).to.equal(undefined)
      everyPodHas(specs, ['corp-pull', SECRET])
      expect(result.stderr).to.not.include('Warning: release')
    })

    it('argo-cd: global.imagePullSecrets reaches every component', async function () {
      const {specs, values} = await deployed('argo-cd')
      expect(values.global.imagePullSecrets).to.deep.equal([{name: SECRET}])
      expect(Object.keys(values).filter((key) => values[key]?.imagePullSecrets)).to.deep.equal(['global'])
      everyPodHas(specs, [SECRET])
    })

    it("argo-cd, global.imagePullSecrets in the user's -f file: each component's own list, which now shadows it, keeps that secret too", async function () {
      const mine = path.join(work, 'argo-mine.yaml')
      await writeFile(mine, YAML.stringify({global: {imagePullSecrets: [{name: 'mine'}]}}))
      const {specs, values, result} = await deployed('argo-cd', ['-f', mine])
      expect(values.global?.imagePullSecrets).to.equal(undefined)
      expect(values.server.imagePullSecrets).to.deep.equal([{name: SECRET}, {name: 'mine'}])
      everyPodHas(specs, [SECRET, 'mine'])
      expect(result.stderr).to.not.include('Warning: release')
    })

    it('velero: image.imagePullSecrets, a list of names', async function () {
      const {specs, values} = await deployed('velero')
      expect(values.image.imagePullSecrets).to.deep.equal([SECRET])
      everyPodHas(specs, [SECRET])
    })

    it('prometheus: global for three subcharts, the top-level list for the server, alertmanager its own', async function () {
      const {specs, values} = await deployed('prometheus')
      expect(values.global.imagePullSecrets).to.deep.equal([{name: SECRET}])
      expect(values.imagePullSecrets).to.deep.equal([{name: SECRET}])
      expect(values.alertmanager.imagePullSecrets).to.deep.equal([{name: SECRET}])
      everyPodHas(specs, [SECRET])
    })
  })
})
