import {expect} from 'chai'
import {execa} from 'execa'
import {mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {stripVTControlCharacters} from 'node:util'

import {kod, ROOT, toolPath} from '../support/kod.js'
import {buildLayout} from '../support/oci-build.js'
import {startRegistry, type TestRegistry} from '../support/registry.js'

/**
 * Progress people can follow (issue 6, part 9), as a user sees it: on stderr, one plain line per
 * finished step when stderr is not a terminal (each image with its count and size), the live display
 * when it is (even with stdout redirected), nothing under --json; stdout holds only the result.
 */
const ESC = String.fromCodePoint(0x1b)
const SIZE = String.raw`\d+(?:\.\d)? (?:B|KiB|MiB|GiB)`
const escape = (text: string): string => text.replaceAll(/[.*+?^${}()|[\]\\]/g, String.raw`\$&`)

/** A chart with one Pod per image. */
async function writeChart(dir: string, images: Record<string, string>): Promise<void> {
  await mkdir(path.join(dir, 'templates'), {recursive: true})
  await writeFile(path.join(dir, 'Chart.yaml'), 'apiVersion: v2\nname: two\nversion: 0.1.0\n')
  await writeFile(path.join(dir, 'values.yaml'), Object.entries(images).map(([key, image]) => `${key}: {image: "${image}"}\n`).join(''))
  for (const key of Object.keys(images)) {
    await writeFile(
      path.join(dir, 'templates', `${key}.yaml`),
      `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${key}\nspec:\n  containers:\n    - name: main\n      image: {{ .Values.${key}.image | quote }}\n`,
    )
  }
}

describe('progress on stderr, data on stdout (e2e)', function () {
  let work: string
  let upstream: TestRegistry
  let airgap: TestRegistry
  let chartArgs: string[]
  let names: string[]

  before(async function () {
    work = await mkdtemp(path.join(os.tmpdir(), 'kod-progress-'))
    upstream = await startRegistry()
    airgap = await startRegistry()
    const layout = path.join(work, 'build')
    await buildLayout(layout, [
      {name: 'web', layers: [{files: {'app/web': 'web\n'}}]},
      {name: 'worker', layers: [{files: {'app/worker': 'worker\n'}}]},
    ])
    for (const name of ['web', 'worker']) {
      await execa('skopeo', ['copy', '--dest-tls-verify=false', `oci:${layout}:${name}`, `docker://${upstream.host}/kodtest/${name}:1.0.0`], {stdin: 'ignore'})
    }
    names = ['web', 'worker'].map((name) => `${upstream.host}/kodtest/${name}:1.0.0`)
    const chart = path.join(work, 'two')
    await writeChart(chart, {web: names[0], worker: names[1]})
    chartArgs = ['-c', chart]
  })

  after(async function () {
    await upstream?.stop()
    await airgap?.stop()
    if (work) await rm(work, {recursive: true, force: true})
  })

  it('package with stderr piped: a plain line per pulled image and per step on stderr, only the result on stdout', async function () {
    const out = path.join(work, 'plain')
    const result = await kod(['package', ...chartArgs, '-o', out, '--insecure-registry', upstream.host])
    expect(result.exitCode, result.stderr).to.equal(0)
    const lines = result.stderr.trim().split('\n')
    expect(lines[0]).to.equal(`Fetched and rendered ${path.join(work, 'two')}: 2 image(s)`)
    const pulled = lines.filter((line) => /^pulled \d+\/\d+ /.test(line))
    expect(pulled).to.have.length(2)
    expect(pulled[0]).to.match(new RegExp(`^pulled 1/2 (${names.map(escape).join('|')}) \\(${SIZE}\\)$`))
    expect(pulled[1]).to.match(new RegExp(`^pulled 2/2 (${names.map(escape).join('|')}) \\(${SIZE}\\)$`))
    expect(pulled[0].split(' ')[2]).to.not.equal(pulled[1].split(' ')[2])
    expect(result.stderr).to.match(new RegExp(`^Pulled 2 image\\(s\\), ${SIZE}$`, 'm'))
    expect(lines.at(-1)).to.match(new RegExp(`^Wrote kod-two-0\\.1\\.0\\.kodpkg, ${SIZE}$`))
    // No terminal control sequences in a log.
    expect(result.stderr).to.not.include(ESC)
    expect(result.stdout.trim().split('\n')).to.have.length(1)
    expect(result.stdout).to.match(/kod-two-0\.1\.0\.kodpkg: two 0\.1\.0, 2 image\(s\), /)
  })

  it('package --json: only the JSON on stdout, no progress on stderr', async function () {
    const out = path.join(work, 'json')
    const result = await kod(['package', ...chartArgs, '-o', out, '--insecure-registry', upstream.host, '--json'])
    expect(result.exitCode, result.stderr).to.equal(0)
    const data = JSON.parse(result.stdout) as {images: number; file: string}
    expect(data.images).to.equal(2)
    expect(result.stderr).to.not.match(/pulled|Pulled|Wrote/)
  })

  it('populate with stderr piped: a plain line per pushed image with count and size', async function () {
    const result = await kod(['populate', '-c', path.join(work, 'plain', 'kod-two-0.1.0.kodpkg'), '-r', airgap.host, '--plain-http'], {cwd: work})
    expect(result.exitCode, result.stderr).to.equal(0)
    const to = names.map((name) => escape(`${airgap.host}/kod/${name.replace(':', '-')}`))
    const pushed = result.stderr.split('\n').filter((line) => /^pushed \d+\/\d+ /.test(line))
    expect(pushed).to.have.length(2)
    expect(pushed[0]).to.match(new RegExp(`^pushed 1/2 (${to.join('|')}) \\(${SIZE}\\)$`))
    expect(pushed[1]).to.match(new RegExp(`^pushed 2/2 (${to.join('|')}) \\(${SIZE}\\)$`))
    expect(result.stderr).to.match(new RegExp(`^Pushed 2 image\\(s\\), ${SIZE}$`, 'm'))
    expect(result.stderr).to.match(/^Pushed 1 chart\(s\)$/m)
    expect(result.stdout).to.equal('')

    // One image deleted from the registry: the next populate pushes it, and its summary counts only that one.
    const repository = `kod/${names[0].replace(':', '-').replace(/:1\.0\.0$/, '')}`
    const manifest = await fetch(`http://${airgap.host}/v2/${repository}/manifests/1.0.0`, {method: 'HEAD', headers: {accept: 'application/vnd.oci.image.manifest.v1+json'}})
    const deleted = await fetch(`http://${airgap.host}/v2/${repository}/manifests/${manifest.headers.get('docker-content-digest')}`, {method: 'DELETE'})
    expect(deleted.status, 'the registry deleted the image').to.equal(202)
    const again = await kod(['populate', '-c', path.join(work, 'plain', 'kod-two-0.1.0.kodpkg'), '-r', airgap.host, '--plain-http'], {cwd: await mkdtemp(path.join(work, 'again-'))})
    expect(again.exitCode, again.stderr).to.equal(0)
    expect(again.stderr).to.match(new RegExp(`^Pushed 1 image\\(s\\), ${SIZE}; 1 already in ${escape(airgap.host)} with the same digest$`, 'm'))
  })

  it('package with stderr on a terminal and stdout redirected: the live display on the terminal, the result in the file', async function () {
    // script(1) gives kod a terminal; the shell inside redirects stdout to a file.
    const out = path.join(work, 'live')
    const resultFile = path.join(work, 'live-result.txt')
    const command = [process.execPath, path.join(ROOT, 'bin', 'run.js'), 'package', ...chartArgs, '-o', out, '--insecure-registry', upstream.host]
    const quoted = command.map((arg) => `'${arg.replaceAll("'", String.raw`'\''`)}'`).join(' ')
    // A terminal of a size: script(1) alone gives one of 0 columns, which gets plain lines (below).
    const terminal = await execa('script', ['-qec', `stty cols 100 rows 30; ${quoted} > '${resultFile}'`, '/dev/null'], {
      cwd: ROOT,
      env: {PATH: toolPath(), TERM: 'xterm'},
      stdin: 'ignore',
      reject: false,
    })
    expect(terminal.exitCode, String(terminal.stdout)).to.equal(0)
    // The live display (it hides the cursor while it draws), not the plain lines.
    expect(String(terminal.stdout)).to.include(`${ESC}[?25l`)
    const screen = stripVTControlCharacters(String(terminal.stdout))
    expect(screen).to.match(new RegExp(`Pulled 2 image\\(s\\), ${SIZE}`))
    expect(screen).to.match(/pulled 1\/2 /)
    expect(screen).to.match(/pulled 2\/2 /)
    const stdout = await readFile(resultFile, 'utf8')
    expect(stdout.trim().split('\n')).to.have.length(1)
    expect(stdout).to.match(/kod-two-0\.1\.0\.kodpkg: two 0\.1\.0, 2 image\(s\), /)
    expect(stdout).to.not.include(ESC)

    // A terminal that says it has no width gets the plain lines, not a display drawn a character a line.
    const narrow = await execa('script', ['-qec', `stty cols 0 rows 0; ${quoted.replace(`'${out}'`, `'${out}-narrow'`)} > /dev/null`, '/dev/null'], {
      cwd: ROOT,
      env: {PATH: toolPath(), TERM: 'xterm'},
      stdin: 'ignore',
      reject: false,
    })
    expect(narrow.exitCode, String(narrow.stdout)).to.equal(0)
    expect(String(narrow.stdout)).to.not.include(`${ESC}[?25l`)
    expect(String(narrow.stdout)).to.match(/^pulled 1\/2 .*\r?$/m)
  })
})
