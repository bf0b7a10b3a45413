import {expect} from 'chai'
import {execa} from 'execa'
import {copyFile, mkdir, mkdtemp, readdir, readFile, rm, truncate, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {gzipSync} from 'node:zlib'
import YAML from 'yaml'

import {writePackage} from '../../src/lib/kodpkg.js'
import {FIXTURES, kod, ROOT, TOOLS_BIN, toolPath} from '../support/kod.js'
import {seedHello} from '../support/hello-image.js'
import {startRegistry, type TestRegistry} from '../support/registry.js'
import {demoManifest} from '../support/manifest.js'
import {oneLineError} from '../support/assertions.js'

/**
 * How the air-gapped side gets at a package given with -c: recognised by its content whatever its
 * name, unpacked where the printed commands can find it, a re-made package of the same version taking
 * the place of an unchanged earlier unpack, and what the package records for the operator repeated
 * before anything is pushed.
 */

const sha256sum = async (file: string, cwd: string): Promise<string> => String((await execa('sha256sum', [file], {cwd})).stdout).trim()

describe('opening packages on the air-gapped side (e2e)', function () {
  let work: string
  let upstream: TestRegistry
  let airgap: TestRegistry
  let env: Record<string, string>
  /** Two builds of hello 0.1.0, made one after the other: same version, different packages. */
  let first: string
  let second: string

  async function packageHello(out: string): Promise<string> {
    const values = path.join(work, 'upstream.yaml')
    const result = await kod(['package', '-c', path.join(FIXTURES, 'charts', 'hello'), '-f', values, '-o', out, '--insecure-registry', upstream.host], {env})
    expect(result.exitCode, result.stderr).to.equal(0)
    return path.join(out, 'kod-hello-0.1.0.kodpkg')
  }

  const fresh = (prefix: string): Promise<string> => mkdtemp(path.join(work, `${prefix}-`))
  const target = (): string[] => ['-r', airgap.host, '--plain-http']

  before(async function () {
    work = await mkdtemp(path.join(os.tmpdir(), 'kod-open-'))
    env = {HOME: work}
    upstream = await startRegistry()
    airgap = await startRegistry()
    await seedHello(work, upstream)
    first = await packageHello(await fresh('first'))
    second = await packageHello(await fresh('second'))
    expect(await readFile(first)).to.not.deep.equal(await readFile(second))
    await upstream.stop()
  })

  after(async function () {
    await upstream?.stop()
    await airgap?.stop()
    if (work) await rm(work, {recursive: true, force: true})
  })

  it('populate --list-commands unpacks beside the user, and the printed commands run as printed', async function () {
    const cwd = await fresh('list')
    const listed = await kod(['populate', '-c', first, ...target(), '--list-commands'], {cwd, env})
    expect(listed.exitCode, listed.stderr).to.equal(0)
    expect(listed.stderr).to.include(`unpacked ${first} into kod-hello-0.1.0`)
    expect(await readdir(cwd)).to.deep.equal(['kod-hello-0.1.0'])
    const lines = listed.stdout.trim().split('\n')
    // The image, the chart, and the package's metadata (docs/registry.md).
    expect(lines).to.have.length(3)
    for (const line of lines) {
      expect(line).to.include(path.join(cwd, 'kod-hello-0.1.0'))
      const ran = await execa('sh', ['-c', line], {cwd, env: {...env, PATH: toolPath()}, reject: false})
      expect(ran.exitCode, `${line}\n${String(ran.stderr)}`).to.equal(0)
    }
    const pushed = await execa('skopeo', ['list-tags', '--tls-verify=false', `docker://${airgap.host}/kod/${upstream.host.replace(':', '-')}/kodtest/hello`])
    expect(JSON.parse(String(pushed.stdout)).Tags).to.deep.equal(['1.0'])

    const again = await kod(['populate', '-c', first, ...target(), '--list-commands'], {cwd, env})
    expect(again.exitCode, again.stderr).to.equal(0)
    expect(again.stderr).to.include(`using kod-hello-0.1.0, which already holds ${first} (checksums verified)`)
    expect(again.stdout).to.equal(listed.stdout)

    // The printed commands filled the registry: populate finds everything there, and pushes and unpacks nothing.
    const elsewhere = await fresh('plain')
    const tmp = await fresh('tmp')
    const populated = await kod(['populate', '-c', first, ...target()], {cwd: elsewhere, env: {...env, TMPDIR: tmp}})
    expect(populated.exitCode, populated.stderr).to.equal(0)
    expect(populated.stderr).to.match(/nothing to push, nothing unpacked/)
    expect(await readdir(elsewhere)).to.deep.equal([])
    expect(await readdir(tmp)).to.deep.equal([])
    // deploy unpacks where populate does (which a populate then reuses), never a copy in $TMPDIR.
    const deployed = await kod(['deploy', '-c', first, ...target(), '-n', 'ns', '--list-commands'], {cwd: elsewhere, env: {...env, TMPDIR: tmp}})
    expect(deployed.exitCode, deployed.stderr).to.equal(0)
    expect(deployed.stderr).to.include(`unpacked ${first} into kod-hello-0.1.0`)
    expect(await readdir(elsewhere)).to.deep.equal(['kod-hello-0.1.0'])
    expect(await readdir(tmp)).to.deep.equal([])
  })

  it('recognises a package by its content: renamed .tgz, no extension, gzip-compressed', async function () {
    const names = path.join(work, 'names')
    await mkdir(names)
    const renamed = [path.join(names, 'kod-hello-0.1.0.tgz'), path.join(names, 'kod-hello-0.1.0')]
    for (const file of renamed) await copyFile(first, file)
    const gz = path.join(names, 'kod-hello-0.1.0.kodpkg.gz')
    await writeFile(gz, gzipSync(await readFile(first)))
    for (const file of [...renamed, gz]) {
      const inspected = await kod(['inspect', '-c', file, '--json'], {env})
      expect(inspected.exitCode, inspected.stderr).to.equal(0)
      expect(JSON.parse(inspected.stdout)).to.include({name: 'hello', version: '0.1.0'})
      const out = path.join(await fresh('unpack'), 'pkg')
      const unpacked = await kod(['unpack', '-c', file, '-o', out], {env})
      expect(unpacked.exitCode, unpacked.stderr).to.equal(0)
      expect(await readdir(out)).to.include('kod-package.yaml')
      const populated = await kod(['populate', '-c', file, ...target(), '--list-commands'], {cwd: await fresh('populate'), env})
      expect(populated.exitCode, populated.stderr).to.equal(0)
      const cwd = await fresh('deploy')
      const deployed = await kod(['deploy', '-c', file, ...target(), '-n', 'ns', '--list-commands'], {cwd, env})
      expect(deployed.exitCode, deployed.stderr).to.equal(0)
      expect(deployed.stdout).to.match(/^helm upgrade --install hello /m)
      expect(await readdir(path.join(cwd, 'kod-hello-0.1.0'))).to.include('kod-values-hello.yaml')
    }
  })

  it('refuses a file that is no package with one line saying what it is (exit 2), leaving nothing behind', async function () {
    const chart = path.join(work, 'hello-0.1.0.tgz')
    await execa(path.join(TOOLS_BIN, 'helm'), ['package', path.join(FIXTURES, 'charts', 'hello'), '--destination', work], {env})
    const text = path.join(work, 'notes.txt')
    await writeFile(text, 'not a package at all\n'.repeat(40))
    const cases: Array<[string, RegExp]> = [
      [chart, /hello-0\.1\.0\.tgz is not a kod package: it is a Helm chart archive \(hello\/Chart\.yaml\); make a package from it with kod package -c /],
      [text, /notes\.txt is not a kod package: it is not a tar archive$/],
    ]
    for (const [file, pattern] of cases) {
      const commands = [
        ['inspect', '-c', file],
        ['unpack', '-c', file],
        ['populate', '-c', file, ...target(), '--list-commands'],
        ['deploy', '-c', file, ...target(), '--list-commands'],
      ]
      for (const args of commands) {
        const cwd = await fresh('bad')
        const result = await kod(args, {cwd, env})
        expect(result.exitCode, `${args[0]}: ${result.stderr}`).to.equal(2)
        oneLineError(result, pattern)
        expect(await readdir(cwd)).to.deep.equal([])
      }
    }
  })

  it('deploy replaces an unchanged unpack of an earlier build of the same version, and refuses a changed one with the way out', async function () {
    const cwd = await fresh('remade')
    const dir = path.join(cwd, 'kod-hello-0.1.0')
    const args = (file: string): string[] => ['deploy', '-c', file, ...target(), '-n', 'ns', '--list-commands']
    const firstDeploy = await kod(args(first), {cwd, env})
    expect(firstDeploy.exitCode, firstDeploy.stderr).to.equal(0)
    expect((await readdir(dir)).sort()).to.include('kod-values-hello.yaml')
    const firstCreated = YAML.parse(await readFile(path.join(dir, 'kod-package.yaml'), 'utf8')).created

    const remade = await kod(args(second), {cwd, env})
    expect(remade.exitCode, remade.stderr).to.equal(0)
    expect(remade.stderr).to.include(`replaced kod-hello-0.1.0, an unchanged unpack of another hello 0.1.0 package (created ${firstCreated}), with ${second}`)
    const secondManifest = String((await execa('tar', ['-xOf', second, 'kod-package.yaml'])).stdout)
    expect((await readFile(path.join(dir, 'kod-package.yaml'), 'utf8')).trim()).to.equal(secondManifest.trim())
    expect(await readdir(cwd)).to.deep.equal(['kod-hello-0.1.0'])

    // A file of the user's inside it: refused, and nothing changes.
    await writeFile(path.join(dir, 'my-values.yaml'), 'mine: true\n')
    const refused = await kod(args(first), {cwd, env})
    expect(refused.exitCode).to.equal(2)
    oneLineError(
      refused,
      new RegExp(
        '^Error: kod-hello-0\\.1\\.0 holds another hello 0\\.1\\.0 package \\(created [^)]+\\) and also my-values\\.yaml, which is not part of it, so kod will not replace it ' +
          `with ${first}: move my-values\\.yaml out and run again, remove kod-hello-0\\.1\\.0, or unpack it elsewhere with kod unpack -c ${first} -o OTHERDIR and use -c OTHERDIR$`,
      ),
    )
    expect((await readdir(dir)).sort()).to.include('my-values.yaml')
    expect(await readdir(cwd)).to.deep.equal(['kod-hello-0.1.0'])

    // unpack keeps refusing an existing directory, saying what it holds.
    const unpacked = await kod(['unpack', '-c', first], {cwd, env})
    expect(unpacked.exitCode).to.equal(2)
    oneLineError(unpacked, /^Error: kod-hello-0\.1\.0 already exists and holds another hello 0\.1\.0 package \(created [^)]+\): remove it or choose another directory with -o$/)
  })

  it('stops on Ctrl-C while extracting a large package, leaving an earlier unpack as it was and nothing else', async function () {
    /** A big package of big 1.0.0 (one 384 MiB file): extraction takes long enough to interrupt. */
    const makeBig = async (created: string): Promise<string> => {
      const staging = await fresh('big-staging')
      await mkdir(path.join(staging, 'charts'))
      await writeFile(path.join(staging, 'charts', 'big-1.0.0.tgz'), created)
      await writeFile(path.join(staging, 'filler'), '')
      await truncate(path.join(staging, 'filler'), 384 * 1024 * 1024)
      const file = path.join(await fresh('big'), 'kod-big-1.0.0.kodpkg')
      const chart = {name: 'big', version: '1.0.0', file: 'charts/big-1.0.0.tgz'}
      const unit = {id: 'big', release: 'big', chart: chart.file, values: [], installed: true, needs: [], images: []}
      await writePackage(staging, demoManifest({created, source: {kind: 'helm', ref: 'big'}, name: 'big', charts: [chart], units: [unit]}), file)
      await rm(staging, {recursive: true})
      return file
    }
    const interrupted = async (file: string, cwd: string): Promise<{exitCode?: number; stderr: string}> => {
      const child = execa(process.execPath, [path.join(ROOT, 'bin', 'run.js'), 'deploy', '-c', file, ...target(), '--list-commands'], {
        cwd,
        env: {...env, PATH: toolPath()},
        reject: false,
        stdin: 'ignore',
      })
      // Wait until kod is extracting (its temporary directory exists beside the target), then interrupt.
      const deadline = Date.now() + 30_000
      while (!(await readdir(cwd)).some((name) => name.includes('.extracting-')) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
      child.kill('SIGINT')
      const result = await child
      return {exitCode: result.exitCode, stderr: String(result.stderr)}
    }

    const cwd = await fresh('interrupt')
    const unpacking = await interrupted(await makeBig('2026-01-01T00:00:00.000Z'), cwd)
    expect(unpacking.exitCode, unpacking.stderr).to.equal(130)
    oneLineError(unpacking, /^Error: interrupted; nothing was left half-written$/)
    expect(await readdir(cwd)).to.deep.equal([])

    // An earlier unpack of another build in the way: still whole after the interrupted replacement.
    const old = await makeBig('2026-02-02T00:00:00.000Z')
    expect((await kod(['unpack', '-c', old], {cwd, env})).exitCode).to.equal(0)
    const replacing = await interrupted(await makeBig('2026-03-03T00:00:00.000Z'), cwd)
    expect(replacing.exitCode, replacing.stderr).to.equal(130)
    expect(await readdir(cwd)).to.deep.equal(['kod-big-1.0.0'])
    const kept = await kod(['inspect', '-c', path.join(cwd, 'kod-big-1.0.0'), '--json'], {env})
    expect(kept.exitCode, kept.stderr).to.equal(0)
    expect(JSON.parse(kept.stdout).created).to.equal('2026-02-02T00:00:00.000Z')
  })

  it('populate repeats what the package records for the operator, and inspect shows it', async function () {
    const cwd = await fresh('warned')
    const dir = path.join(cwd, 'pkg')
    expect((await kod(['unpack', '-c', first, '-o', dir], {env})).exitCode).to.equal(0)
    // Record a warning and an image note, rewriting the checksum of the manifest consistently.
    const manifestFile = path.join(dir, 'kod-package.yaml')
    const manifest = YAML.parse(await readFile(manifestFile, 'utf8'))
    manifest.warnings = ['registry.invalid/extra:1 is named in a ConfigMap and was not packaged']
    manifest.units[0].images[0].note = 'hard-coded in templates/deployment.yaml'
    await writeFile(manifestFile, YAML.stringify(manifest, {lineWidth: 0}))
    const sums = (await readFile(path.join(dir, 'SHA256SUMS'), 'utf8')).replace(/^[a-f0-9]{64} {2}kod-package\.yaml$/m, await sha256sum('kod-package.yaml', dir))
    await writeFile(path.join(dir, 'SHA256SUMS'), sums)

    const expected = [
      'Warning: registry.invalid/extra:1 is named in a ConfigMap and was not packaged',
      `Warning: ${manifest.units[0].images[0].ref} cannot be relocated through values: hard-coded in templates/deployment.yaml`,
    ]
    // Under a prefix of its own: its metadata differs from the package populated above, under the same version.
    const listed = await kod(['populate', '-c', dir, ...target(), '--prefix', 'warned', '--list-commands'], {env})
    expect(listed.exitCode, listed.stderr).to.equal(0)
    for (const line of expected) expect(listed.stderr.split('\n')).to.include(line)
    expect(listed.stdout).to.not.match(/Warning/)
    const populated = await kod(['populate', '-c', dir, ...target(), '--prefix', 'warned', '--json'], {env})
    expect(populated.exitCode, populated.stderr).to.equal(0)
    for (const line of expected) expect(populated.stderr.split('\n')).to.include(line)
    expect(JSON.parse(populated.stdout).images).to.have.length(1)

    const inspected = await kod(['inspect', '-c', dir], {env})
    expect(inspected.exitCode, inspected.stderr).to.equal(0)
    // The same two lines populate repeats, each once.
    expect(inspected.stdout).to.include(['Warnings (2):', ...expected.map((line) => `  ${line.slice('Warning: '.length)}`)].join('\n'))
    expect(inspected.stdout.split('hard-coded in templates/deployment.yaml')).to.have.length(2)
    const json = await kod(['inspect', '-c', dir, '--json'], {env})
    expect(JSON.parse(json.stdout).warnings).to.deep.equal(manifest.warnings)
  })
})
