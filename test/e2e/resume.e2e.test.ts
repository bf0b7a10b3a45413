import {expect} from 'chai'
import {execa} from 'execa'
import {randomBytes} from 'node:crypto'
import {cp, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import YAML from 'yaml'

import {oneLineError} from '../support/assertions.js'
import {type FaultProxy, startFaultProxy} from '../support/fault-proxy.js'
import {FIXTURES, kod, startKod, TOOLS_BIN, toolPath} from '../support/kod.js'
import {buildLayout} from '../support/oci-build.js'
import {waitFor} from '../support/processes.js'
import {remoteDigest, startRegistry, type TestRegistry} from '../support/registry.js'

/**
 * Interrupted runs resume and leave nothing behind (issue 8, part 5), with real skopeo, helm and
 * registries: a fault proxy on 127.0.0.1 stalls a transfer at a known point so kod can be SIGKILLed
 * mid-pull or mid-push, or cuts the registry off for a while as a restart does. The registries' access
 * logs say what was sent again.
 */
const MB = 1024 * 1024

/** Random text: gzip brings it to about 3/4 of its size (base64 carries 6 bits a byte), and no further. */
function noise(bytes: number): string {
  return randomBytes(Math.ceil(bytes * 0.75)).toString('base64').slice(0, bytes)
}

/** The sha256 hex names of the blobs below `dir/blobs/sha256` (an OCI layout). */
async function layoutBlobs(layout: string): Promise<string[]> {
  return (await readdir(path.join(layout, 'blobs', 'sha256')).catch(() => [] as string[])).filter((name) => /^[\da-f]{64}$/.test(name))
}

/** The blobs a distribution registry holds completely (filesystem storage: blobs/sha256/xx/<hex>/data). */
async function registryBlobs(registry: TestRegistry): Promise<string[]> {
  const root = path.join(registry.dataDir, 'docker', 'registry', 'v2', 'blobs', 'sha256')
  const found: string[] = []
  for (const prefix of await readdir(root).catch(() => [] as string[])) {
    for (const hex of await readdir(path.join(root, prefix))) {
      if (await stat(path.join(root, prefix, hex, 'data')).then(() => true, () => false)) found.push(hex)
    }
  }
  return found
}

async function entries(dir: string): Promise<string[]> {
  return (await readdir(dir).catch(() => [] as string[])).sort()
}

describe('interrupted runs resume and leave nothing behind (e2e)', function () {
  this.timeout(240_000)
  let work: string
  let upstream: TestRegistry
  let proxy: FaultProxy
  let chartValues: string
  /** The package the first test wrote. */
  let written: string | undefined
  let digest: string
  const registries: TestRegistry[] = []
  const proxies: FaultProxy[] = []

  async function airgap(): Promise<{registry: TestRegistry; proxy: FaultProxy}> {
    const registry = await startRegistry({accessLog: true})
    registries.push(registry)
    const front = await startFaultProxy(registry.host)
    proxies.push(front)
    return {registry, proxy: front}
  }

  before(async function () {
    work = await mkdtemp(path.join(os.tmpdir(), 'kod-resume-'))
    upstream = await startRegistry({accessLog: true})
    proxy = await startFaultProxy(upstream.host)
    // One image of layers of about 0.75, 2.25 and 7.5 MB gzipped, and a small one. The transfers are stopped
    // connection by connection once one has carried 5 MB (FaultProxy.stallEachAfter): every layer but the big
    // one completes, even two of them one after the other on a kept-alive connection, whatever share of the
    // bandwidth each stream gets, and the big one never does. (A stop after so many bytes in all failed in CI
    // when the streams shared them unevenly and no layer had completed.)
    const layout = path.join(work, 'build')
    const digests = await buildLayout(layout, [
      {name: 'hello', layers: [{files: {'a.txt': noise(1 * MB)}}, {files: {'b.txt': noise(3 * MB)}}, {files: {'c.txt': noise(10 * MB)}}, {files: {'d.txt': 'small\n'}}]},
    ])
    digest = digests.hello
    await execa('skopeo', ['copy', '--preserve-digests', '--dest-tls-verify=false', `oci:${layout}:hello`, `docker://${upstream.host}/kodtest/hello:1.0`], {stdin: 'ignore'})
    // The chart names the image through the proxy, so every pull passes it.
    chartValues = path.join(work, 'values.yaml')
    await writeFile(chartValues, YAML.stringify({image: {repository: `${proxy.host}/kodtest/hello`, tag: '1.0'}}))
  })

  after(async function () {
    for (const front of [proxy, ...proxies]) await front?.stop()
    for (const registry of [upstream, ...registries]) await registry?.stop()
    if (work) await rm(work, {recursive: true, force: true})
  })

  /**
   * The package the first test wrote, or, when that test failed, one written now from the registry itself:
   * the populate tests then still run, and fail only for what they test.
   */
  async function packaged(): Promise<string> {
    if (written) return written
    const out = path.join(work, 'package-for-populate')
    const made = await kod([...packageArgs(out), '--registry-mirror', `${proxy.host}=${upstream.host}`, '--insecure-registry', upstream.host])
    expect(made.exitCode, made.stderr).to.equal(0)
    written = path.join(out, 'kod-hello-0.1.0.kodpkg')
    return written
  }

  const packageArgs = (out: string): string[] => ['package', '-c', path.join(FIXTURES, 'charts', 'hello'), '-f', chartValues, '-o', out, '--insecure-registry', proxy.host]

  it('a package killed mid-pull leaves one staging directory, whose blobs the next run reuses instead of pulling them again', async function () {
    const out = path.join(work, 'killed-package')
    const stalled = proxy.stallEachAfter('down', 5 * MB)
    const child = startKod(packageArgs(out))
    await Promise.race([stalled, child])
    const staging = await waitFor(async () => {
      const names = (await entries(out)).filter((name) => name.startsWith('.kod-staging-'))
      if (names.length !== 1) return undefined
      const blobs = await layoutBlobs(path.join(out, names[0], 'images'))
      return blobs.length > 0 ? {name: names[0], blobs} : undefined
    }, 30_000)
    child.kill('SIGKILL')
    const killed = await child
    proxy.resume()
    expect(staging, `the killed run had pulled a blob into its staging directory (it said: ${killed.stderr})`).to.not.equal(undefined)
    expect((await entries(out)).filter((name) => !name.startsWith('.')), 'the killed run left nothing a user would take for a package').to.deep.equal([])
    const pulledBefore = await layoutBlobs(path.join(out, staging!.name, 'images'))
    const layers = pulledBefore.length
    expect(layers).to.be.greaterThan(0)

    const mark = upstream.requests().length
    // The next run pulls from the registry itself (--registry-mirror), not through the proxy the killed run left
    // with a cut connection: what is checked is which blobs it fetches there, not the proxy.
    const again = await kod([...packageArgs(out), '--registry-mirror', `${proxy.host}=${upstream.host}`, '--insecure-registry', upstream.host])
    expect(again.exitCode, again.stderr).to.equal(0)
    expect(again.stderr).to.match(/reusing \d+ image blob\(s\).*interrupted kod package run/)
    const fetched = upstream.requests().slice(mark).filter((line) => /^GET \/v2\/.+\/blobs\/sha256:/.test(line))
    for (const hex of pulledBefore) expect(fetched.filter((line) => line.includes(hex)), `blob ${hex} pulled again`).to.deep.equal([])
    // The run pulled what the killed one had not: it had something to do.
    expect(fetched.length, fetched.join('\n')).to.be.greaterThan(0)
    expect(await entries(out)).to.deep.equal(['kod-hello-0.1.0.kodpkg'])
    const inspected = await kod(['inspect', '-c', path.join(out, 'kod-hello-0.1.0.kodpkg'), '--json'])
    expect(inspected.exitCode, inspected.stderr).to.equal(0)
    expect(JSON.parse(inspected.stdout).images[0].digest).to.equal(digest)
    const kept = path.join(work, 'hello.kodpkg')
    await cp(path.join(out, 'kod-hello-0.1.0.kodpkg'), kept)
    written = kept
  })

  it('a populate killed mid-push completes on re-run without sending again a blob the registry has, and a third run pushes nothing', async function () {
    const kodpkg = await packaged()
    const {registry, proxy: front} = await airgap()
    const site = path.join(work, 'site-killed')
    const tmp = path.join(work, 'tmp-killed')
    await mkdir(site)
    await mkdir(tmp)
    const args = ['populate', '-c', kodpkg, '-r', front.host, '--plain-http']
    const stalled = front.stallEachAfter('up', 5 * MB)
    const child = startKod(args, {cwd: site, env: {TMPDIR: tmp}})
    await Promise.race([stalled, child])
    const held = await waitFor(async () => ((await registryBlobs(registry)).length > 0 ? registryBlobs(registry) : undefined), 30_000)
    child.kill('SIGKILL')
    await child
    front.resume()
    expect(held, 'the killed run had pushed a blob').to.not.equal(undefined)
    const before = await registryBlobs(registry)

    const mark = registry.requests().length
    const again = await kod(args, {cwd: site, env: {TMPDIR: tmp}})
    expect(again.exitCode, again.stderr).to.equal(0)
    const uploads = registry.requests().slice(mark).filter((line) => /^(PUT|PATCH|POST) \/v2\/.+\/blobs\/uploads\//.test(line))
    for (const hex of before) expect(uploads.filter((line) => line.includes(hex)), `blob ${hex} sent again`).to.deep.equal([])
    expect(uploads.length, 'the re-run sent the blobs the registry lacked').to.be.greaterThan(0)
    const to = `${front.host}/kod/${proxy.host.replace(':', '-')}/kodtest/hello:1.0`
    expect(await remoteDigest(to)).to.equal(digest)

    const third = registry.requests().length
    const done = await kod(args, {cwd: site, env: {TMPDIR: tmp}})
    expect(done.exitCode, done.stderr).to.equal(0)
    expect(done.stderr).to.match(/holds every image and chart of .* already, with the same digests, and its metadata at .*: nothing to push, nothing unpacked/)
    expect(registry.requests().slice(third).filter((line) => /^(PUT|PATCH|POST) /.test(line))).to.deep.equal([])
    // The package was unpacked beside the user, as deploy does, never as a temporary copy in $TMPDIR.
    expect(await entries(tmp)).to.deep.equal([])
    expect(await entries(site)).to.deep.equal(['kod-hello-0.1.0'])
  })

  it('a populate into a registry that holds everything already neither unpacks nor pushes; one that lacks an image does both', async function () {
    const kodpkg = await packaged()
    const {registry} = await airgap()
    const site = path.join(work, 'site-filled')
    await mkdir(site)
    const args = ['populate', '-c', kodpkg, '-r', registry.host, '--plain-http']
    // Only the package's metadata is there (its push is the last printed command): the images must still be looked at.
    const listed = await kod([...args, '--list-commands'], {cwd: site})
    expect(listed.exitCode, listed.stderr).to.equal(0)
    const kodinfoPush = listed.stdout.trim().split('\n').at(-1)!
    expect(kodinfoPush).to.match(/\/packages\/hello:0\.1\.0$/)
    await execa('bash', ['-c', kodinfoPush], {cwd: site, env: {PATH: toolPath()}, stdin: 'ignore'})
    await rm(path.join(site, 'kod-hello-0.1.0'), {recursive: true})
    const first = await kod(args, {cwd: site, env: {DEBUG: 'kod:populate'}})
    expect(first.exitCode, first.stderr).to.equal(0)
    expect(first.stderr).to.match(/pushed 1 image\(s\) and 1 chart\(s\)/)
    // What the registry answered when asked whether it held the package already is not asked again before the pushes.
    const looks = (reference: string): number => first.stderr.split('\n').filter((line) => line.includes('run: skopeo inspect') && line.includes(`docker://${reference} `)).length
    expect(looks(`${registry.host}/kod/${proxy.host.replace(':', '-')}/kodtest/hello:1.0`), 'the image was looked at once').to.equal(1)
    expect(looks(`${registry.host}/kod/charts/hello:0.1.0`), 'the chart was looked at once').to.equal(1)
    expect(await entries(site), 'it had to push, so it unpacked where deploy does').to.deep.equal(['kod-hello-0.1.0'])
    expect(await remoteDigest(`${registry.host}/kod/${proxy.host.replace(':', '-')}/kodtest/hello:1.0`)).to.equal(digest)

    // Everything is there now: a populate from another directory reads the archive's head and the registry only.
    const elsewhere = path.join(work, 'site-filled-again')
    await mkdir(elsewhere)
    const mark = registry.requests().length
    const again = await kod(args, {cwd: elsewhere})
    expect(again.exitCode, again.stderr).to.equal(0)
    expect(again.stderr).to.match(/nothing to push, nothing unpacked; deploy from the registry with kod deploy -c oci:\/\/.*\/packages\/hello:0\.1\.0/)
    const seen = registry.requests().slice(mark)
    expect(seen.filter((line) => /\/manifests\//.test(line)), 'the manifests were looked at').to.have.length.greaterThan(2)
    expect(seen.filter((line) => /^(PUT|PATCH|POST|DELETE) |\/blobs\//.test(line)), 'only manifests were looked at').to.deep.equal([])
    expect(await entries(elsewhere)).to.deep.equal([])

    // Someone deletes the image; the package's metadata and the chart are still there. The metadata is not
    // believed alone: the image is looked at, found missing, and pushed again.
    const image = `kod/${proxy.host.replace(':', '-')}/kodtest/hello`
    const deleted = await fetch(`http://${registry.host}/v2/${image}/manifests/${digest}`, {method: 'DELETE'})
    expect(deleted.status, 'the registry deleted the image').to.equal(202)
    const refill = path.join(work, 'site-image-deleted')
    await mkdir(refill)
    const refilled = await kod(args, {cwd: refill})
    expect(refilled.exitCode, refilled.stderr).to.equal(0)
    expect(refilled.stderr).to.match(/pushed 1 image\(s\) and 0 chart\(s\) to .*; 0 image\(s\) and 1 chart\(s\) were there already/)
    expect(await remoteDigest(`${registry.host}/${image}:1.0`)).to.equal(digest)
  })

  it('refuses to move a tag that holds another image or chart (exit 7), and moves it with --force', async function () {
    const kodpkg = await packaged()
    const {registry} = await airgap()
    const site = path.join(work, 'site-conflict')
    await mkdir(site)
    const args = ['populate', '-c', kodpkg, '-r', registry.host, '--plain-http']
    const first = await kod(args, {cwd: site})
    expect(first.exitCode, first.stderr).to.equal(0)
    const to = `${registry.host}/kod/${proxy.host.replace(':', '-')}/kodtest/hello:1.0`
    // Someone pushes another image under the same tag.
    const other = path.join(work, 'other')
    await buildLayout(other, [{name: 'other', layers: [{files: {'other.txt': 'another image\n'}}]}])
    await execa('skopeo', ['copy', '--dest-tls-verify=false', `oci:${other}:other`, `docker://${to}`], {stdin: 'ignore'})
    const moved = await remoteDigest(to)

    const refused = await kod(args, {cwd: site})
    expect(refused.exitCode, refused.stderr).to.equal(7)
    oneLineError(refused, new RegExp(`${to.replaceAll('.', '\\.')} already holds something other than .*kod does not move a tag that exists.*--force`))
    expect(await remoteDigest(to), 'nothing pushed').to.equal(moved)

    const forced = await kod([...args, '--force'], {cwd: site})
    expect(forced.exitCode, forced.stderr).to.equal(0)
    expect(forced.stderr).to.match(/held another image: replaced with .*as --force-push asks/)
    expect(await remoteDigest(to)).to.equal(digest)

    // A chart of the same name and version but other content under the chart's tag.
    const chart = path.join(work, 'other-chart')
    await cp(path.join(FIXTURES, 'charts', 'hello'), chart, {recursive: true})
    const chartYaml = path.join(chart, 'Chart.yaml')
    await writeFile(chartYaml, `${await readFile(chartYaml, 'utf8')}\ndescription: not the packaged one\n`)
    const helm = path.join(TOOLS_BIN, 'helm')
    const env = {HOME: work, PATH: toolPath()}
    await execa(helm, ['package', chart, '-d', work], {env, stdin: 'ignore'})
    await execa(helm, ['push', path.join(work, 'hello-0.1.0.tgz'), `oci://${registry.host}/kod/charts`, '--plain-http'], {env, stdin: 'ignore'})
    const chartRefused = await kod(args, {cwd: site})
    expect(chartRefused.exitCode, chartRefused.stderr).to.equal(7)
    oneLineError(chartRefused, /kod\/charts\/hello:0\.1\.0 already holds something other than chart hello 0\.1\.0 from this package/)
    const chartForced = await kod([...args, '--force'], {cwd: site})
    expect(chartForced.exitCode, chartForced.stderr).to.equal(0)
    expect(chartForced.stderr).to.match(/held another chart: replaced with chart hello 0\.1\.0/)
  })

  it('a registry that goes away mid-push and comes back is retried with backoff, and the populate completes', async function () {
    const kodpkg = await packaged()
    const {proxy: front} = await airgap()
    const site = path.join(work, 'site-restart')
    await mkdir(site)
    // Cut after 3 MB of layers, away for 6 s: longer than skopeo's own retries wait.
    const outage = front.outageAfter('up', 3 * MB, 6000)
    const result = await kod(['populate', '-c', kodpkg, '-r', front.host, '--plain-http'], {cwd: site})
    await outage
    expect(result.exitCode, result.stderr).to.equal(0)
    expect(result.stderr).to.match(new RegExp(`registry ${front.host.replaceAll('.', '\\.')} stopped answering .* trying again in \\d+s \\(retry 1 of 5\\)`))
    expect(await remoteDigest(`${front.host}/kod/${proxy.host.replace(':', '-')}/kodtest/hello:1.0`)).to.equal(digest)
  })

  it('a registry that never answered is not retried: a wrong address fails at once', async function () {
    const kodpkg = await packaged()
    const site = path.join(work, 'site-nothing')
    await mkdir(site)
    const {registry} = await airgap()
    const host = registry.host
    await registry.stop()
    const started = Date.now()
    const result = await kod(['populate', '-c', kodpkg, '-r', host, '--plain-http'], {cwd: site})
    expect(result.exitCode, result.stderr).to.equal(4)
    oneLineError(result, /connection refused/)
    expect(result.stderr).to.not.match(/trying again/)
    expect(Date.now() - started, 'no backoff').to.be.lessThan(20_000)
  })
})
