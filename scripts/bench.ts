// npm run bench [-- --scale X --runs N --only package,populate,images,startup,rss --charts DIR --kod DIR --markdown --keep]
//
// How fast kod moves a realistic image set, next to the tools it wraps (issue 11): builds 30 images (3–8 layers on
// shared bases, random content, 659 MB of unique blobs at --scale 1) and serves them from a local registry, then
// times kod package, populate, images and its startup against their baselines. Every figure is the median of
// --runs runs in this one run, printed with its ratio to its baseline and the target. A figure that misses its
// target is printed, never asserted: the exit status is 1 only when a command failed to run at all.
// Progress goes to stderr, the table to stdout. Talks to 127.0.0.1 only. docs/performance.md explains the figures.
import {execa} from 'execa'
import {existsSync} from 'node:fs'
import {mkdir, mkdtemp, readdir, readFile, rename, rm, stat} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {parseArgs} from 'node:util'
import YAML from 'yaml'

import {writeLargeValuesChart, writeSetChart} from './bench/charts.js'
import {buildImageSet, type ImageSet, pushImageSet, UNIQUE_BYTES_AT_SCALE_1} from './bench/imageset.js'
import {
  CommandFailed,
  markdownTable,
  median,
  mebibytes,
  megabytes,
  type Row,
  seconds,
  spread,
  textTable,
  timed,
  type Timed,
} from './bench/measure.js'
import {ROOT, TOOLS_BIN, toolPath} from '../test/support/kod.js'
import {startRegistry, type TestRegistry} from '../test/support/registry.js'

const SECTIONS = ['package', 'populate', 'images', 'startup', 'rss'] as const
type Section = (typeof SECTIONS)[number]

const DEFAULT_SCALE = 0.5
const USAGE = `npm run bench [-- OPTIONS]   (or: node --import tsx scripts/bench.ts OPTIONS, after npm run build and npm run tools)

Times kod against the tools it wraps on a locally built image set and prints one table (stdout); progress on stderr.

  --scale X        layer sizes × X; 1 is the issue's set of 659 MB unique blobs (default ${DEFAULT_SCALE})
  --runs N         runs per figure, the median printed (default 3; startup takes max(5, 3×N))
  --only LIST      a subset, comma-separated: ${SECTIONS.join(',')} (default: all)
  --charts DIR     charts for the images figures, each with expected-images.json (default ../shared/charts)
  --kod DIR        measure the kod built in DIR (its bin/run.js; build it first) instead of this checkout's,
                   e.g. an export of an earlier commit, to compare before and after
  --markdown       print the table in Markdown too, after it (for docs/performance.md)
  --keep           keep the work directory (its path is printed)
  -h, --help       this text`

interface Options {
  scale: number
  runs: number
  only: Set<Section>
  charts: string
  kod: string
  markdown: boolean
  keep: boolean
}

function parseOptions(): Options {
  const {values} = parseArgs({
    options: {
      scale: {type: 'string'},
      runs: {type: 'string'},
      only: {type: 'string'},
      charts: {type: 'string'},
      kod: {type: 'string'},
      markdown: {type: 'boolean'},
      keep: {type: 'boolean'},
      help: {type: 'boolean', short: 'h'},
    },
    strict: true,
  })
  if (values.help) {
    console.log(USAGE)
    process.exit(0)
  }
  const scale = Number(values.scale ?? DEFAULT_SCALE)
  const runs = Number(values.runs ?? 3)
  if (!(scale > 0) || !(scale <= 16)) throw new Error(`--scale must be a number in (0, 16], not ${values.scale}`)
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a positive integer, not ${values.runs}`)
  const only = new Set<Section>()
  for (const name of (values.only ?? SECTIONS.join(',')).split(',').map((part) => part.trim()).filter(Boolean)) {
    if (!(SECTIONS as readonly string[]).includes(name)) throw new Error(`--only takes ${SECTIONS.join(', ')}; not ${name}`)
    only.add(name as Section)
  }
  const kod = path.resolve(values.kod ?? ROOT)
  if (!existsSync(path.join(kod, 'bin', 'run.js'))) throw new Error(`--kod: no bin/run.js in ${kod}`)
  return {
    scale,
    runs,
    only,
    charts: path.resolve(values.charts ?? path.join(ROOT, '..', 'shared', 'charts')),
    kod,
    markdown: values.markdown ?? false,
    keep: values.keep ?? false,
  }
}

const options = (() => {
  try {
    return parseOptions()
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`)
    process.exit(2)
  }
})()

const KOD = path.join(options.kod, 'bin', 'run.js')
const HELM = path.join(TOOLS_BIN, 'helm')
const ENV = {PATH: toolPath()}
const began = Date.now()
const loadAtStart = os.loadavg()[0]

function log(line: string): void {
  const elapsed = Math.round((Date.now() - began) / 1000)
  console.error(`[${String(Math.floor(elapsed / 60)).padStart(2, '0')}:${String(elapsed % 60).padStart(2, '0')}] ${line}`)
}

// ---- what is torn down at the end, on failure and on Ctrl-C ----

const work = await mkdtemp(path.join(os.tmpdir(), 'kod-bench-'))
const registries = new Set<TestRegistry>()
let cleaning: Promise<void> | undefined

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    await Promise.allSettled([...registries].map((registry) => registry.stop()))
    registries.clear()
    if (options.keep) console.error(`kept ${work}`)
    else await rm(work, {recursive: true, force: true})
  })()
  return cleaning
}

// `on`, not `once`: execa's exit hook (signal-exit) raises the signal again when it counts no other listener.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (cleaning) return
    console.error(`\n${signal}: tearing down`)
    void cleanup().finally(() => process.exit(130))
  })
}

async function registry(accessLog = false): Promise<TestRegistry> {
  const started = await startRegistry({accessLog})
  registries.add(started)
  return started
}

async function stopRegistry(started: TestRegistry): Promise<void> {
  registries.delete(started)
  await started.stop()
}

/** A new empty directory under the work directory. */
let dirs = 0
async function freshDir(label: string): Promise<string> {
  const dir = path.join(work, `${String(++dirs).padStart(3, '0')}-${label}`)
  await mkdir(dir, {recursive: true})
  return dir
}

const kod = (args: string[], cwd: string, rss = false): Promise<Timed> =>
  timed(process.execPath, [KOD, ...args], {cwd, env: ENV, rssFile: rss ? path.join(work, 'rss.txt') : undefined})

/** The wall-clock time of a sequence of commands. */
async function timedSequence(steps: () => Promise<unknown>): Promise<number> {
  const started = process.hrtime.bigint()
  await steps()
  return Number(process.hrtime.bigint() - started) / 1e9
}

// ---- the image set, its registry and its chart ----

interface Prepared {
  label: string
  scale: number
  set: ImageSet
  chart: string
  source: TestRegistry
}

let sourceRegistry: TestRegistry | undefined
const prepared = new Map<number, Prepared>()

async function prepare(scale: number): Promise<Prepared> {
  const existing = prepared.get(scale)
  if (existing) return existing
  sourceRegistry ??= await registry()
  const label = `set${prepared.size + 1}`
  log(`building the image set at scale ${scale} (~${megabytes(UNIQUE_BYTES_AT_SCALE_1 * scale)} unique)`)
  const set = await buildImageSet(path.join(await freshDir(`${label}-layout`), 'layout'), scale, `bench/${label}`, (line) => log(line))
  log(`pushing ${set.images.length} images (${set.blobs.size} blobs, ${megabytes(set.uniqueBytes)}) to the source registry ${sourceRegistry.host}`)
  await pushImageSet(set, sourceRegistry.host)
  const chart = await writeSetChart(await freshDir(`${label}-chart`), 'benchset', set, sourceRegistry.host)
  const result = {label, scale, set, chart, source: sourceRegistry}
  prepared.set(scale, result)
  return result
}

// ---- package ----

interface PackageFigures {
  kod: Timed[]
  floor: number[]
  naive: number[]
  archiveBytes: number
  /** The first run's package, kept for populate. */
  kodpkg: string
}

const packageFigures = new Map<number, PackageFigures>()

/** With `baselines`, the floor and the naive loop too; without, only kod package (for peak RSS). */
async function measurePackage(p: Prepared, baselines: boolean): Promise<PackageFigures> {
  const figures: PackageFigures = {kod: [], floor: [], naive: [], archiveBytes: 0, kodpkg: ''}
  const source = (image: ImageSet['images'][number]): string => `docker://${p.source.host}/${image.repository}:${image.tag}`
  for (let run = 1; run <= options.runs; run++) {
    if (baselines) {
      const floorDir = await freshDir('floor')
      log(`package ${run}/${options.runs}: floor, skopeo copy --all --preserve-digests per image into one OCI layout`)
      figures.floor.push(
        await timedSequence(async () => {
          for (const image of p.set.images) {
            await timed('skopeo', ['copy', '--quiet', '--all', '--preserve-digests', '--src-tls-verify=false', source(image), `oci:${floorDir}/layout:${image.name}`])
          }
        }),
      )
      await rm(floorDir, {recursive: true, force: true})
      const naiveDir = await freshDir('naive')
      log(`package ${run}/${options.runs}: naive, skopeo copy to one docker-archive per image, then tar -cf`)
      await mkdir(path.join(naiveDir, 'archives'))
      figures.naive.push(
        await timedSequence(async () => {
          for (const image of p.set.images) {
            const reference = `${p.source.host}/${image.repository}:${image.tag}`
            await timed('skopeo', ['copy', '--quiet', '--src-tls-verify=false', source(image), `docker-archive:${naiveDir}/archives/${image.name}.tar:${reference}`])
          }
          await timed('tar', ['-cf', path.join(naiveDir, 'images.tar'), '-C', path.join(naiveDir, 'archives'), '.'])
        }),
      )
      await rm(naiveDir, {recursive: true, force: true})
    }
    const dir = await freshDir('package')
    const output = path.join(dir, 'out', 'benchset.kodpkg')
    log(`package ${run}/${options.runs}: kod package (${p.label}, scale ${p.scale})`)
    const result = await kod(['package', '-c', p.chart, '-o', output, '--insecure-registry', p.source.host], dir, true)
    figures.kod.push(result)
    log(`  ${seconds(result.seconds)}, peak RSS ${mebibytes(result.rssKiB ?? Number.NaN)}`)
    if (run === 1) {
      figures.archiveBytes = (await stat(output)).size
      figures.kodpkg = path.join(work, `${p.label}.kodpkg`)
      await rename(output, figures.kodpkg)
    }
    await rm(dir, {recursive: true, force: true})
  }
  packageFigures.set(p.scale, figures)
  return figures
}

async function kodpkgFor(p: Prepared): Promise<string> {
  const existing = packageFigures.get(p.scale)?.kodpkg
  if (existing) return existing
  const dir = await freshDir('package')
  const output = path.join(work, `${p.label}.kodpkg`)
  log(`kod package (${p.label}, not timed: the package populate starts from)`)
  await kod(['package', '-c', p.chart, '-o', output, '--insecure-registry', p.source.host], dir)
  await rm(dir, {recursive: true, force: true})
  return output
}

// ---- populate ----

interface Uploads {
  /** Blob uploads completed (PUT …/blobs/uploads/…?digest=…). */
  blobs: number
  /** Bytes of the image layers among them (sizes known from the set). */
  layerBytes: number
}

/** Blob uploads in a registry's access log: a PUT that completes an upload names the blob's digest. */
function uploadsIn(requests: string[], set: ImageSet): Uploads {
  let blobs = 0
  let layerBytes = 0
  for (const request of requests) {
    const [method, target, status] = request.split(' ')
    if (method !== 'PUT' || !target.includes('/blobs/uploads/') || status !== '201') continue
    blobs++
    const digest = new URL(target, 'http://registry').searchParams.get('digest') ?? ''
    if (set.layerDigests.has(digest)) layerBytes += set.blobs.get(digest)?.size ?? 0
  }
  return {blobs, layerBytes}
}

interface PopulateFigures {
  first: Timed[]
  /** From the package file in a new directory. */
  again: Timed[]
  /** In the first populate's directory, where its unpack is. */
  againSameDir: Timed[]
  loop: number[]
  firstUploads: Uploads[]
  againUploads: Uploads[]
}

const populateFigures = new Map<number, PopulateFigures>()

/** Where populate pushes an image: `<registry>/kod/<host with - for :>/<repository>:<tag>` (docs/kodpkg.md). */
function pushTarget(registryHost: string, name: string): string {
  const slash = name.indexOf('/')
  if (name.includes('@') || slash < 0) throw new Error(`unexpected image name in the package: ${name}`)
  return `${registryHost}/kod/${name.slice(0, slash).replace(':', '-')}/${name.slice(slash + 1)}`
}

/** With `all`, the skopeo loop and the repeated populates too; without, only the first populates (for peak RSS). */
async function measurePopulate(p: Prepared, kodpkg: string, all: boolean): Promise<PopulateFigures> {
  const figures: PopulateFigures = {first: [], again: [], againSameDir: [], loop: [], firstUploads: [], againUploads: []}
  const manifest = YAML.parse(String((await execa('tar', ['-xOf', kodpkg, 'kod-package.yaml'])).stdout)) as {images: Array<{name: string; layoutName: string}>}
  for (let run = 1; run <= options.runs; run++) {
    if (all) {
      const target = await registry(true) // an access log as for kod's populate, so both registries do the same work
      const dir = await freshDir('loop')
      log(`populate ${run}/${options.runs}: skopeo loop, tar -xf the package, then skopeo copy per image into an empty registry`)
      figures.loop.push(
        await timedSequence(async () => {
          await timed('tar', ['-xf', kodpkg, '-C', dir])
          for (const image of manifest.images) {
            await timed('skopeo', [
              'copy',
              '--quiet',
              '--all',
              '--preserve-digests',
              '--dest-tls-verify=false',
              `oci:${dir}/images:${image.layoutName}`,
              `docker://${pushTarget(target.host, image.name)}`,
            ])
          }
        }),
      )
      await stopRegistry(target)
      await rm(dir, {recursive: true, force: true})
    }
    const target = await registry(true)
    const firstDir = await freshDir('populate')
    log(`populate ${run}/${options.runs}: kod populate into an empty registry (${p.label})`)
    const first = await kod(['populate', '-c', kodpkg, '-r', target.host, '--plain-http'], firstDir, true)
    figures.first.push(first)
    figures.firstUploads.push(uploadsIn(target.requests(), p.set))
    log(`  ${seconds(first.seconds)}, peak RSS ${mebibytes(first.rssKiB ?? Number.NaN)}`)
    if (all) {
      // The repeated populate, as on another machine or after the unpack was removed: from the package file in a new directory.
      let served = target.requests().length
      const againDir = await freshDir('populate-again')
      log(`populate ${run}/${options.runs}: kod populate again, same registry, from the package file in a new directory`)
      const again = await kod(['populate', '-c', kodpkg, '-r', target.host, '--plain-http'], againDir, true)
      figures.again.push(again)
      const uploads = uploadsIn(target.requests().slice(served), p.set)
      figures.againUploads.push(uploads)
      log(`  ${seconds(again.seconds)}, ${uploads.blobs} blob upload(s), ${megabytes(uploads.layerBytes)} of layers`)
      await rm(againDir, {recursive: true, force: true})
      // And as a re-run in the same directory would: the first populate's unpack (./kod-<name>-<version>) is there.
      served = target.requests().length
      log(`populate ${run}/${options.runs}: kod populate again, same registry, same directory (its unpack reused)`)
      const sameDir = await kod(['populate', '-c', kodpkg, '-r', target.host, '--plain-http'], firstDir, true)
      figures.againSameDir.push(sameDir)
      const sameDirUploads = uploadsIn(target.requests().slice(served), p.set)
      figures.againUploads.push(sameDirUploads)
      log(`  ${seconds(sameDir.seconds)}, ${sameDirUploads.blobs} blob upload(s), ${megabytes(sameDirUploads.layerBytes)} of layers`)
    }
    await rm(firstDir, {recursive: true, force: true})
    await stopRegistry(target)
  }
  populateFigures.set(p.scale, figures)
  return figures
}

// ---- rows ----

const rows: Row[] = []
const failures: string[] = []

function ratioRow(figure: string, kodValue: number[], baselineValue: number[], baselineLabel: string, target: number | undefined, notes = ''): Row {
  const ratio = median(kodValue) / median(baselineValue)
  return {
    figure,
    kod: seconds(median(kodValue)),
    baseline: `${baselineLabel} ${seconds(median(baselineValue))}`,
    ratio,
    target: target === undefined ? '' : `≤ ${target}×`,
    met: target === undefined ? undefined : ratio <= target,
    notes: [`kod ${spread(kodValue)}`, `baseline ${spread(baselineValue)}`, notes].filter(Boolean).join('; '),
  }
}

async function section(name: string, body: () => Promise<void>): Promise<void> {
  try {
    await body()
  } catch (error) {
    if (cleaning) return // interrupted: the commands were killed, nothing to report
    const message = error instanceof CommandFailed ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error)
    log(`${name}: FAILED\n${message}`)
    failures.push(name)
    rows.push({figure: `${name}: failed`, kod: 'failed', baseline: '', target: '', notes: message.split('\n')[0].slice(0, 160)})
  }
}

// ---- the figures ----

async function packageSection(): Promise<void> {
  const p = await prepare(options.scale)
  const figures = await measurePackage(p, true)
  const kodSeconds = figures.kod.map((result) => result.seconds)
  rows.push(ratioRow(`kod package, ${p.set.images.length} images`, kodSeconds, figures.floor, 'floor', 1.2, 'floor: skopeo per image into one layout'))
  rows.push(ratioRow('kod package vs naive', kodSeconds, figures.naive, 'docker-archive loop', undefined, 'naive: skopeo docker-archive per image + tar -cf; no target'))
  const ratio = figures.archiveBytes / p.set.uniqueBytes
  rows.push({
    figure: 'archive bytes',
    kod: megabytes(figures.archiveBytes),
    baseline: `unique blobs ${megabytes(p.set.uniqueBytes)}`,
    ratio,
    ratioDigits: 4,
    target: '≤ 1.01×',
    met: ratio <= 1.01,
    notes: `${figures.archiveBytes} / ${p.set.uniqueBytes} bytes`,
  })
}

async function populateSection(): Promise<void> {
  const p = await prepare(options.scale)
  const figures = await measurePopulate(p, await kodpkgFor(p), true)
  const first = figures.first.map((result) => result.seconds)
  const again = figures.again.map((result) => result.seconds)
  const firstLayers = median(figures.firstUploads.map((uploads) => uploads.layerBytes))
  rows.push(ratioRow('kod populate, empty registry', first, figures.loop, 'skopeo loop', 1.1, `loop: tar -xf + skopeo per image; layers sent ${megabytes(firstLayers)}`))
  rows.push(ratioRow('kod populate again, full registry', again, first, 'first populate', 0.1, 'from the package file, in a new directory'))
  const sameDir = figures.againSameDir.map((result) => result.seconds)
  rows.push(ratioRow('kod populate again, same directory', sameDir, first, 'first populate', undefined, 'its unpack there from the first; no target'))
  const againBytes = Math.max(...figures.againUploads.map((uploads) => uploads.layerBytes))
  const againBlobs = Math.max(...figures.againUploads.map((uploads) => uploads.blobs))
  rows.push({
    figure: 'populate again: layer bytes sent',
    kod: againBytes === 0 ? '0 B' : megabytes(againBytes),
    baseline: `first ${megabytes(firstLayers)}`,
    target: '0 B',
    met: againBytes === 0,
    notes: `worst of the ${figures.againUploads.length} repeated populates; blob uploads of any kind (chart, metadata too): ${againBlobs}`,
  })
}

interface Expected {
  helmTemplateArgs?: string[]
}

async function imagesSection(): Promise<void> {
  const charts: Array<{name: string; dir: string; helmArgs: string[]; kodArgs: string[]; cwd: string; target: number}> = []
  if (existsSync(options.charts)) {
    for (const entry of (await readdir(options.charts, {withFileTypes: true})).filter((candidate) => candidate.isDirectory()).sort((a, b) => a.name.localeCompare(b.name))) {
      const expectedFile = path.join(options.charts, entry.name, 'expected-images.json')
      if (!existsSync(expectedFile)) continue
      const expected = JSON.parse(await readFile(expectedFile, 'utf8')) as Expected
      const helmArgs = expected.helmTemplateArgs ?? ['template', 'rel', `./${entry.name}`, '--namespace', 'ns']
      // kod images takes the same values and rendering flags; a path is relative to the charts directory, as for helm.
      const kodArgs = helmArgs.flatMap((arg, index) => {
        const flag = helmArgs[index - 1]
        if (flag === '-f' || flag === '--values') return ['-f', path.resolve(options.charts, arg)]
        if (flag === '--kube-version' || flag === '--api-versions' || flag === '--set') return [flag, arg]
        return []
      })
      charts.push({name: entry.name, dir: path.join(options.charts, entry.name), helmArgs, kodArgs, cwd: options.charts, target: 4})
    }
  } else {
    log(`no charts at ${options.charts}: only the synthetic chart`)
  }
  const synthetic = await writeLargeValuesChart(await freshDir('values10k'))
  charts.push({
    name: '10,000 values (synthetic)',
    dir: synthetic,
    helmArgs: ['template', 'rel', synthetic, '--namespace', 'ns', '--kube-version', '1.30.0'],
    kodArgs: ['--kube-version', '1.30.0'],
    cwd: work,
    target: 5,
  })
  const cwd = await freshDir('images')
  for (const chart of charts) {
    await section(`kod images: ${chart.name}`, async () => {
      const helm: number[] = []
      const kodSeconds: number[] = []
      let found = 0
      for (let run = 1; run <= options.runs; run++) {
        helm.push((await timed(HELM, chart.helmArgs, {cwd: chart.cwd, env: ENV})).seconds)
        const result = await kod(['images', '-c', chart.dir, ...chart.kodArgs, '--json'], cwd)
        kodSeconds.push(result.seconds)
        found = (JSON.parse(result.stdout) as {images: unknown[]}).images.length
      }
      log(`images ${chart.name}: kod ${seconds(median(kodSeconds))}, helm template ${seconds(median(helm))}`)
      rows.push(ratioRow(`kod images: ${chart.name}`, kodSeconds, helm, 'helm template', chart.target, `${found} image(s)`))
    })
  }
}

async function startupSection(): Promise<void> {
  const runs = Math.max(5, 3 * options.runs)
  const node: number[] = []
  const version: number[] = []
  const help: number[] = []
  log(`startup: node -e 0, kod --version, kod --help, ${runs} times each`)
  const cwd = await freshDir('startup')
  const answered = (result: Timed, what: string): number => {
    if (!result.stdout.trim()) throw new Error(`kod ${what} printed nothing`)
    return result.seconds
  }
  for (let run = 1; run <= runs; run++) {
    node.push((await timed(process.execPath, ['-e', '0'], {cwd, env: ENV})).seconds)
    version.push(answered(await kod(['--version'], cwd), '--version'))
    help.push(answered(await kod(['--help'], cwd), '--help'))
  }
  rows.push(ratioRow('kod --version', version, node, 'node -e 0', 2.5))
  rows.push(ratioRow('kod --help', help, node, 'node -e 0', undefined, 'no target'))
}

async function rssSection(): Promise<void> {
  const sizes = [options.scale / 2, options.scale]
  const packageRss: number[] = []
  const populateRss: number[] = []
  const bytes: number[] = []
  for (const scale of sizes) {
    const p = await prepare(scale)
    bytes.push(p.set.uniqueBytes)
    const packaged = packageFigures.get(scale) ?? (await measurePackage(p, false))
    packageRss.push(median(packaged.kod.map((result) => result.rssKiB ?? Number.NaN)))
    const populated = populateFigures.get(scale) ?? (await measurePopulate(p, packaged.kodpkg, false))
    populateRss.push(median(populated.first.map((result) => result.rssKiB ?? Number.NaN)))
  }
  const label = (index: number): string => `at ${megabytes(bytes[index])}`
  for (const [name, figures] of [
    ['kod package', packageRss],
    ['kod populate', populateRss],
  ] as const) {
    const ratio = figures[1] / figures[0]
    rows.push({
      figure: `peak RSS, ${name}`,
      kod: `${mebibytes(figures[1])} ${label(1)}`,
      baseline: `${mebibytes(figures[0])} ${label(0)}`,
      ratio,
      target: '≤ 1.1× (flat)',
      met: ratio <= 1.1,
      notes: `set ${(bytes[1] / bytes[0]).toFixed(2)}× larger; /usr/bin/time %M, largest process of the tree`,
    })
  }
}

// ---- the machine ----

async function version(command: string, args: string[]): Promise<string> {
  try {
    return String((await execa(command, args, {stdin: 'ignore'})).stdout).split('\n')[0].trim()
  } catch {
    return 'not found'
  }
}

async function machine(): Promise<string[]> {
  const git = existsSync(path.join(options.kod, '.git'))
  const commit = git ? await version('git', ['-C', options.kod, 'rev-parse', '--short', 'HEAD']) : 'not a git checkout'
  const dirty = git && (await version('git', ['-C', options.kod, 'status', '--porcelain', '--', 'src', 'packages', 'plugins', 'bin'])) !== ''
  return [
    `date: ${new Date().toISOString()}`,
    `machine: ${os.availableParallelism()} cores (${os.cpus()[0]?.model.trim() ?? 'unknown'}), ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, ${os.type()} ${os.release()}`,
    `node ${process.version}, helm ${await version(HELM, ['version', '--short'])}, ${await version('skopeo', ['--version'])}, ${await version('tar', ['--version'])}, registry ${await version(process.env.KOD_TEST_REGISTRY ?? 'docker-registry', ['--version'])}`,
    `kod: ${options.kod} (${commit}${dirty ? ', with uncommitted changes in src/packages/plugins/bin' : ''}), ${await version(process.execPath, [KOD, '--version'])}`,
  ]
}

// ---- run ----

let exitCode = 0
try {
  const header = await machine()
  const sections: Array<[Section, () => Promise<void>]> = [
    ['package', packageSection],
    ['populate', populateSection],
    ['rss', rssSection],
    ['images', imagesSection],
    ['startup', startupSection],
  ]
  log(`work directory ${work}; scale ${options.scale}, ${options.runs} run(s), sections: ${[...options.only].join(', ')}`)
  if (loadAtStart > 0.5) log(`the load average is ${loadAtStart.toFixed(2)}: something else is running, the figures will be noisier`)
  for (const [name, body] of sections) if (options.only.has(name)) await section(name, body)
  const main = prepared.get(options.scale)
  const minutes = (Date.now() - began) / 60_000
  header.push(
    `command: npm run bench -- ${process.argv.slice(2).join(' ')}`.trimEnd(),
    `load average (1 min) ${loadAtStart.toFixed(2)} at the start, ${os.loadavg()[0].toFixed(2)} at the end: anything else running on the machine skews the figures`,
    `scale ${options.scale}: ${main ? `${main.set.images.length} images, ${main.set.blobs.size} blobs, ${megabytes(main.set.uniqueBytes)} unique` : 'no image set built'}; median of ${options.runs} run(s) each; took ${minutes.toFixed(1)} min`,
  )
  console.log(header.join('\n'))
  console.log()
  console.log(textTable(rows))
  if (options.markdown) console.log(`\n${markdownTable(rows)}`)
  if (failures.length > 0) {
    console.log(`\nfailed to measure: ${failures.join(', ')} (see stderr)`)
    exitCode = 1
  }
} catch (error) {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error)
  exitCode = 1
} finally {
  await cleanup()
}
process.exit(exitCode)
