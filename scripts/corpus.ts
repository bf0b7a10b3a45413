// npm run corpus [-- CHARTS_DIR [CHART…]]: the whole kod flow on every chart of a corpus of real public
// charts (default ../shared/charts), each with an expected-images.json (see that README):
//
//   package through a mirror → stop the mirror → populate + deploy (helm --dry-run=client) → render check
//
// Nothing here reaches the internet: a local "mirror" registry is seeded with one tiny image under every
// expected reference, and kod package pulls through it with --registry-mirror while recording the original
// references. References pinned by digest cannot be seeded (a digest cannot be forged): they are listed
// and their relocation is checked with `kod images --relocate-to` instead.
//
// Prints a table and ends with "N/M charts fully relocated"; exits 1 unless every chart is.
import {execa} from 'execa'
import {existsSync} from 'node:fs'
import {mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import YAML from 'yaml'

import {imagesToCheck} from '../packages/helm-analysis/src/deploy-check.js'
import {imagesInManifests} from '../packages/helm-analysis/src/render.js'
import {relocatedReference} from '../src/lib/actions/images.js'
import {hostComponent, parseRef, refHelpers} from '../src/lib/refs.js'
import {kod, ROOT, TOOLS_BIN} from '../test/support/kod.js'
import {buildLayout} from '../test/support/oci-build.js'
import {startRegistry} from '../test/support/registry.js'

interface Expected {
  chart: string
  images: string[]
  otherImageRefs?: Array<string | {ref?: string; image?: string; literalInRenderedOutput?: boolean}>
  helmTemplateArgs: string[]
}

interface Row {
  chart: string
  expected: number
  packaged: number
  relocated: number
  pinned: string
  hints: number
  seconds: number
  problem?: string
}

const corpusDir = path.resolve(process.argv[2] ?? path.join(ROOT, '..', 'shared', 'charts'))
const only = new Set(process.argv.slice(3))
const HELM = path.join(TOOLS_BIN, 'helm')

function argAfter(args: string[], flag: string): string[] {
  return args.flatMap((arg, index) => (args[index - 1] === flag ? [arg] : []))
}

async function skopeoDigest(reference: string): Promise<string | undefined> {
  try {
    const {stdout} = await execa('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reference}`], {encoding: 'buffer'})
    const {createHash} = await import('node:crypto')
    return `sha256:${createHash('sha256').update(Buffer.from(stdout)).digest('hex')}`
  } catch {
    return undefined
  }
}

function otherRefs(expected: Expected): string[] {
  return (expected.otherImageRefs ?? [])
    .filter((entry) => typeof entry === 'string' || entry.literalInRenderedOutput !== false)
    .map((entry) => (typeof entry === 'string' ? entry : (entry.ref ?? entry.image ?? '')))
    .filter(Boolean)
}

async function runChart(chartDir: string, layout: string, work: string): Promise<Row> {
  const started = Date.now()
  const expected = JSON.parse(await readFile(path.join(chartDir, 'expected-images.json'), 'utf8')) as Expected
  const name = path.basename(chartDir)
  const row: Row = {chart: name, expected: expected.images.length, packaged: 0, relocated: 0, pinned: '-', hints: 0, seconds: 0}
  const finish = (problem?: string): Row => ({...row, seconds: Math.round((Date.now() - started) / 100) / 10, ...(problem ? {problem} : {})})

  // Rendering as the corpus was rendered: same --kube-version and -f files.
  const args = expected.helmTemplateArgs
  const renderFlags = [
    ...argAfter(args, '--kube-version').flatMap((version) => ['--kube-version', version]),
    ...argAfter(args, '-f').flatMap((file) => ['-f', path.join(corpusDir, file)]),
  ]
  const wanted = [...new Set([...expected.images, ...otherRefs(expected)])]
  const pinned = wanted.filter((reference) => parseRef(reference).digest)
  const seedable = wanted.filter((reference) => !parseRef(reference).digest)

  const mirror = await startRegistry()
  const airgap = await startRegistry()
  const dir = await mkdtemp(path.join(work, `${name}-`))
  try {
    // Seed the mirror: one tiny image under every expected reference, at <mirror>/<host>/<path>:<tag>.
    const hosts = new Set<string>()
    for (const reference of seedable) {
      const ref = parseRef(reference)
      hosts.add(ref.host)
      await execa('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}:tiny`, `docker://${mirror.host}/${hostComponent(ref.host)}/${ref.path}:${ref.tag ?? 'latest'}`])
    }
    const mirrorFlags = [...hosts].flatMap((host) => ['--registry-mirror', `${host}=${mirror.host}/${hostComponent(host)}`])

    const packaged = await kod(['package', '-c', chartDir, ...renderFlags, ...mirrorFlags, '--insecure-registry', mirror.host, '-o', dir, '--json'], {cwd: dir})
    if (packaged.exitCode !== 0) return finish(`package: ${packaged.stderr.trim().split('\n').at(-1)}`)
    const file = JSON.parse(packaged.stdout).file as string
    const manifest = JSON.parse((await kod(['inspect', '-c', file, '--json'])).stdout) as {images: Array<{ref: string; values: unknown[]}>; hints: string[]}
    const packagedRefs = new Set(manifest.images.map((image) => image.ref))
    row.packaged = expected.images.filter((reference) => packagedRefs.has(reference)).length
    row.hints = manifest.hints.length
    await mirror.stop()

    // Digest-pinned references: what kod would write for a registry that already has them.
    if (pinned.length > 0) {
      const relocate = path.join(dir, 'pinned-values.yaml')
      const result = await kod(['images', '-c', chartDir, ...renderFlags, '--relocate-to', airgap.host, '-o', relocate])
      const rendered = result.exitCode === 0 ? imagesInManifests(String((await execa(HELM, ['template', 'rel', chartDir, ...renderFlags, '-f', relocate])).stdout)) : []
      const ok = pinned.filter((reference) => rendered.some((image) => image.ref.startsWith(`${airgap.host}/`) && image.ref.endsWith(parseRef(reference).digest!)))
      row.pinned = `${ok.length}/${pinned.length}`
    }

    // The air-gapped side: populate and install (client-side dry run), then render exactly as deploy did.
    const memory = path.join(dir, 'helm-releases.yaml')
    await writeFile(memory, '[]\n')
    const deployed = await kod(['deploy', '-c', file, '-r', airgap.host, '--plain-http', '-n', 'ns', '-d', 'rel', '--dry-run', '--json'], {
      cwd: dir,
      env: {HELM_DRIVER: 'memory', HELM_MEMORY_DRIVER_DATA: memory, HOME: dir},
    })
    if (deployed.exitCode !== 0) return finish(`deploy: ${deployed.stderr.trim().split('\n').at(-1)}`)
    const valuesFiles = (JSON.parse(deployed.stdout).install as string[]).at(-1)!.split(' ').flatMap((word, index, words) => (words[index - 1] === '-f' ? [word] : []))
    const unpacked = path.join(dir, path.basename(file, '.kodpkg'))
    const chartTgz = path.join(unpacked, 'charts', (await readdir(path.join(unpacked, 'charts')))[0])
    const template = await execa(HELM, ['template', 'rel', chartTgz, '--namespace', 'ns', ...argAfter(args, '--kube-version').flatMap((v) => ['--kube-version', v]), ...valuesFiles.flatMap((f) => ['-f', f])])
    // Everything deploy's render check reads (arguments, env, ConfigMap and Secret text too), not only image fields.
    const rendered = imagesToCheck(refHelpers, String(template.stdout), [])
    const outside = rendered.filter((image) => !image.ref.startsWith(`${airgap.host}/`))
    if (outside.length > 0) return finish(`not relocated: ${outside.map((image) => image.ref).join(', ')}`)
    // Each expected image must render at its relocated reference, and be there with content.
    const renderedRefs = new Set(rendered.map((image) => image.ref))
    const target = {registry: airgap.host, prefix: 'kod', plainHttp: true, insecureSkipTlsVerify: false}
    for (const reference of expected.images) {
      const relocated = relocatedReference(reference, target)
      if (renderedRefs.has(relocated) && (await skopeoDigest(relocated.replace(/:[^:/@]+@/, '@')))) row.relocated++
    }
    if (row.packaged < row.expected) return finish(`missing: ${expected.images.filter((reference) => !packagedRefs.has(reference)).join(', ')}`)
    if (row.relocated < row.expected) return finish(`${row.expected - row.relocated} expected image(s) not at their relocated reference`)
    return finish()
  } finally {
    await mirror.stop()
    await airgap.stop()
    await rm(dir, {recursive: true, force: true})
  }
}

async function main(): Promise<void> {
  if (!existsSync(corpusDir)) {
    console.error(`no corpus at ${corpusDir}`)
    process.exit(2)
  }
  const charts = (await readdir(corpusDir, {withFileTypes: true}))
    .filter((entry) => entry.isDirectory() && existsSync(path.join(corpusDir, entry.name, 'expected-images.json')))
    .map((entry) => entry.name)
    .filter((name) => only.size === 0 || only.has(name))
    .sort()
  const work = await mkdtemp(path.join(os.tmpdir(), 'kod-corpus-'))
  const layout = path.join(work, 'tiny')
  await buildLayout(layout, [{name: 'tiny', layers: [{files: {'kod-corpus': 'a tiny stand-in image\n'}}]}])
  const rows: Row[] = []
  try {
    for (const chart of charts) {
      const row = await runChart(path.join(corpusDir, chart), layout, work)
      rows.push(row)
      console.error(`${row.problem ? 'FAIL' : 'ok  '} ${row.chart} (${row.seconds}s)${row.problem ? `: ${row.problem}` : ''}`)
    }
  } finally {
    await rm(work, {recursive: true, force: true})
  }
  const header = ['CHART', 'EXPECTED', 'PACKAGED', 'RELOCATED', 'PINNED', 'HINTS', 'SECONDS', 'PROBLEM']
  const lines = [header, ...rows.map((row) => [row.chart, row.expected, row.packaged, row.relocated, row.pinned, row.hints, row.seconds, row.problem ?? ''].map(String))]
  const widths = header.map((_, column) => Math.max(...lines.map((line) => line[column].length)))
  for (const line of lines) console.log(line.map((cell, column) => cell.padEnd(widths[column])).join('  ').trimEnd())
  const full = rows.filter((row) => !row.problem && row.packaged === row.expected && row.relocated === row.expected).length
  console.log(`${full}/${rows.length} charts fully relocated`)
  await writeFile(path.join(os.tmpdir(), 'kod-corpus-last.yaml'), YAML.stringify(rows))
  process.exit(full === rows.length ? 0 : 1)
}

await main()
