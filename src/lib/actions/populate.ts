import {createHash} from 'node:crypto'
import {readFile, stat} from 'node:fs/promises'
import path from 'node:path'

import type {ChartEntry, KodSource, OpenedPackage, PlannedCommand, SourceContext, Target} from '../../api.js'
import {ANSWER_MS, inspectFlags, isTimeout, LOOK_CONCURRENCY, runPush} from '../bounds.js'
import {loginSuggestion} from '../credentials.js'
import {ExitCode, isNotWritable, KodError, messageOf} from '../errors.js'
import {describeImage, layoutNameOf, manifestDigest, NOT_FOUND, pushCommand, pushReference} from '../images.js'
import {artifactPushCommand, KODINFO_ARTIFACT_TYPE, kodinfoFiles, kodinfoReference, versionTag, writeKodinfo} from '../kodinfo.js'
import {type ArchiveHead, IMAGES_DIR, MANIFEST_FILE, mapLimit, parseSums, SIGNATURE_FILE, startLimited, SUMS_FILE} from '../kodpkg.js'
import {countedSubtasks, runSteps} from '../progress.js'
import {parseRef} from '../refs.js'
import {commandHost, noteAnswered, withRetries} from '../retry.js'
import {isInsecure} from '../target.js'

export interface PopulatePlan {
  /** The package's OCI layout the images are pushed from. */
  layout: string
  /**
   * `layoutName`: the image's name in that layout (format 1: its `name`); `digest`: its manifest's, as the
   * package records it (verification checked the layout gives it the same).
   */
  images: Array<{name: string; layoutName: string; digest: string; to: string; command: PlannedCommand}>
  /** Each chart push, and for a `helm push` of a chart the package lists, where it lands (docker://…:version). */
  charts: Array<{command: PlannedCommand; chart?: ChartEntry & {path: string}; to?: string}>
  /** The target registry (host[:port][/path]), named when it refuses kod for want of a login. */
  registry: string
  target: Target
  /** The package's metadata as an OCI artifact (kodinfo.ts), pushed last: its presence says the rest is there. */
  kodinfo?: {layout: string; name: string; digest: string; to: string; command: PlannedCommand}
}

/**
 * Writes the package's kodinfo layout for planPopulate into the unpacked package (kod-info/, generated
 * like deploy's values files), so that the push --list-commands prints is exactly the one that runs;
 * into scratch space when the package directory cannot be written.
 */
export async function prepareKodinfo(ctx: SourceContext, pkg: OpenedPackage, target: Target): Promise<PopulatePlan['kodinfo']> {
  const sums = parseSums(await readFile(path.join(pkg.dir, SUMS_FILE), 'utf8'))
  const signed = await stat(path.join(pkg.dir, SIGNATURE_FILE)).then(() => true, () => false)
  const written = await writeKodinfo(pkg.dir, pkg.manifest, sums, signed).catch(async (error: unknown) => {
    if (!isNotWritable(error)) throw error
    return writeKodinfo(pkg.dir, pkg.manifest, sums, signed, ctx.tmpDir)
  })
  const to = kodinfoReference(target, pkg.manifest)
  return {...written, to, command: artifactPushCommand(written.layout, written.name, to, target)}
}

/** The pushes that put a package's images and charts into the target registry. */
export function planPopulate(ctx: SourceContext, source: KodSource, pkg: OpenedPackage, target: Target, kodinfo?: PopulatePlan['kodinfo']): PopulatePlan {
  const layout = path.join(pkg.dir, IMAGES_DIR)
  const charts = source.pushCharts(ctx, pkg, target).map((command) => {
    const [verb, file, repository] = command.args
    const entry = pkg.manifest.charts.find((chart) => path.join(pkg.dir, chart.file) === file)
    if (command.tool !== 'helm' || verb !== 'push' || !entry || !repository?.startsWith('oci://')) return {command}
    return {command, chart: {...entry, path: file}, to: `docker://${repository.slice('oci://'.length)}/${entry.name}:${versionTag(entry.version)}`}
  })
  return {
    layout,
    images: pkg.manifest.images.map((image) => ({
      name: image.name,
      layoutName: layoutNameOf(image),
      digest: image.digest,
      to: pushReference(parseRef(image.name), target, image.digest),
      command: pushCommand(layout, image, target),
    })),
    charts,
    registry: target.registry,
    target,
    ...(kodinfo ? {kodinfo} : {}),
  }
}

export function planCommands(plan: PopulatePlan): PlannedCommand[] {
  return [...plan.images.map((image) => image.command), ...plan.charts.map((chart) => chart.command), ...(plan.kodinfo ? [plan.kodinfo.command] : [])]
}

export interface PopulateOptions {
  quiet: boolean
  /** --force: move a tag the registry holds with other content (refused otherwise, exit 7). */
  force?: boolean
  /** What populatedAlready learnt of the registry, used instead of asking again. */
  answers?: HeldAnswers
}

/**
 * The registry's answers populatedAlready had (each look keyed by what it asked, and how: its flags and environment),
 * for the full populate that follows when something was missing: each is taken once, so that a thing looked at again
 * later (the metadata, after the pushes) is asked afresh, and only while it is as fresh as a look made ahead of the
 * pushes would be (ANSWER_REUSE_MS from when it was asked): a large package's extraction takes longer, and a tag
 * that changed meanwhile must still be refused, not moved on an old answer.
 */
export type HeldAnswers = Map<string, {answer: Promise<string | undefined>; asked: number}>

/** How long after it was asked a registry's answer stands in for a new look (see HeldAnswers). */
export const ANSWER_REUSE_MS = 5000

/** The answer `answers` holds for `key`, taken out (so used once), when it was asked within ANSWER_REUSE_MS of `now`. */
export function takeAnswer(answers: HeldAnswers, key: string, now = Date.now()): Promise<string | undefined> | undefined {
  const known = answers.get(key)
  answers.delete(key)
  return known && now - known.asked <= ANSWER_REUSE_MS ? known.answer : undefined
}

/** skopeo inspect's flags for a look at the registry: those of the push it precedes, or the target's TLS choice. */
function lookFlags(target: Target, copyArgs?: readonly string[]): string[] {
  return copyArgs ? inspectFlags(copyArgs, '--dest-') : isInsecure(target) ? ['--tls-verify=false'] : []
}

function lookKey(reference: string, target: Target, env?: Record<string, string>, copyArgs?: readonly string[]): string {
  return JSON.stringify([reference, lookFlags(target, copyArgs), env ?? {}])
}

/**
 * What the registry holds under `reference` (docker://…): its raw manifest, byte for byte, or undefined when it holds
 * nothing there, or when it answered with an error the push itself will explain (a missing login). Only
 * a registry that does not answer within ANSWER_MS stops here. When `answers` holds the very same look, asked moments
 * ago, that answer is taken instead (so used once; see HeldAnswers).
 */
async function held(
  ctx: SourceContext,
  what: string,
  reference: string,
  target: Target,
  env?: Record<string, string>,
  copyArgs?: readonly string[],
  answers?: HeldAnswers,
): Promise<string | undefined> {
  const known = answers && takeAnswer(answers, lookKey(reference, target, env, copyArgs))
  if (known) return known
  const host = /^docker:\/\/([^/]+)/.exec(reference)?.[1]
  try {
    const {stdout} = await ctx.tools.run('skopeo', ['inspect', '--raw', ...lookFlags(target, copyArgs), reference], {env, timeoutMs: ANSWER_MS, raw: true})
    if (host) noteAnswered(host)
    return stdout
  } catch (error) {
    if (isTimeout(error)) throw new KodError(`cannot push ${what}: ${messageOf(error)}`, {exit: (error as KodError).exit})
    if (host && NOT_FOUND.test(messageOf(error))) noteAnswered(host)
    return undefined
  }
}

function sha256(bytes: string | Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`
}

/** The chart archive a helm chart manifest points at (its content layer), if it is one. */
function chartLayer(raw: string): string | undefined {
  try {
    const manifest = JSON.parse(raw) as {layers?: Array<{mediaType?: string; digest?: string}>}
    return manifest.layers?.find((layer) => layer.mediaType === 'application/vnd.cncf.helm.chart.content.v1.tar+gzip')?.digest
  } catch {
    return undefined
  }
}

function tagConflict(what: string, to: string, ours: string): KodError {
  return new KodError(
    `${to} already holds something other than ${what} (${ours}): kod does not move a tag that exists; push to another --prefix, or replace it with --force-push`,
    {exit: ExitCode.tagConflict},
  )
}

/**
 * Runs the populate plan with progress: images one by one (count and bytes, sizes read from the
 * layout first), then the charts. What the registry already holds under the same tag with the same
 * content is not pushed again (a re-run after an interruption finishes the rest; skopeo itself sends
 * only the blobs the registry lacks); a tag holding other content is refused unless --force. A registry
 * that stops answering mid-push is retried with backoff (retry.ts).
 */
export interface PopulateOutcome {
  /** Images and charts pushed by this run. */
  pushed: {images: number; charts: number}
  /** Those the registry already held with the same content. */
  kept: {images: number; charts: number}
  /** Where the package's metadata is in the registry (deploy -c oci://… takes it), when pushed or there. */
  kodinfo?: string
}

export async function runPopulate(ctx: SourceContext, plan: PopulatePlan, options: PopulateOptions): Promise<PopulateOutcome> {
  const outcome: PopulateOutcome = {pushed: {images: 0, charts: 0}, kept: {images: 0, charts: 0}}
  const push = (command: PlannedCommand, what: string, bytes?: number): Promise<void> => pushOne(ctx, command, what, plan.registry, bytes)
  const already = (where: string): {skipped: string} => ({skipped: `already in ${where} with the same digest, not pushed again`})
  // A re-made package of the same version is said before anything is pushed, not after the images.
  if (plan.kodinfo && !options.force) {
    const info = plan.kodinfo
    const current = await held(ctx, info.to, `docker://${info.to}`, plan.target, info.command.env, info.command.args, options.answers)
    if (current !== undefined && !manifestDigest(current, info.digest).matches) {
      throw new KodError(
        `${info.to} already holds another build of ${info.to.split('/').at(-1)}: kod does not replace a populated package's metadata; push to another --prefix, or replace it with --force-push`,
        {exit: ExitCode.tagConflict},
      )
    }
  }
  // Sizes only feed the progress display: an image whose size cannot be read is pushed all the same.
  const sizes = await Promise.all(plan.images.map(async (image) => describeImage(plan.layout, image.layoutName).then((described) => described.bytes, () => undefined)))
  // What the registry holds at each image's tag, asked a few at a time ahead of the pushes, which take each
  // answer as it comes (each look is a process and a round trip: one by one they cost as long as a small push).
  const holding = startLimited(
    plan.images,
    LOOK_CONCURRENCY,
    (image) => held(ctx, image.name, `docker://${image.to}`, plan.target, image.command.env, image.command.args, options.answers),
    ctx.cancelSignal,
  )
  const pushImage = async (image: PopulatePlan['images'][number], looked: Promise<string | undefined>, bytes?: number): Promise<number | {skipped: string}> => {
    const current = await looked
    if (current !== undefined) {
      const {digest} = image
      if (manifestDigest(current, digest).matches) {
        outcome.kept.images++
        return already(plan.registry)
      }
      if (!options.force) throw tagConflict(`${image.name} from this package`, image.to, digest)
      ctx.log.warn(`${image.to} held another image: replaced with ${image.name} (${digest}), as --force-push asks`)
    }
    await push(image.command, image.name, bytes)
    outcome.pushed.images++
    return bytes ?? 0
  }
  const pushChart = async (chart: PopulatePlan['charts'][number]): Promise<boolean> => {
    const what = chart.chart ? `chart ${chart.chart.name} ${chart.chart.version}` : (chart.command.args[1] ?? 'chart')
    if (chart.chart && chart.to) {
      const current = await held(ctx, what, chart.to, plan.target, chart.command.env, undefined, options.answers)
      if (current !== undefined) {
        const ours = sha256(await readFile(chart.chart.path))
        if (chartLayer(current) === ours) {
          outcome.kept.charts++
          return false
        }
        const to = chart.to.slice('docker://'.length)
        if (!options.force) throw tagConflict(`${what} from this package`, to, ours)
        ctx.log.warn(`${to} held another chart: replaced with ${what}, as --force-push asks`)
      }
    }
    await push(chart.command, what)
    outcome.pushed.charts++
    return true
  }
  await runSteps(
    [
      {
        title: `Push ${plan.images.length} image(s)`,
        task: (_, task) =>
          countedSubtasks(
            task,
            plan.images.map((image, index) => ({title: image.to, bytes: sizes[index], run: () => pushImage(image, holding[index], sizes[index])})),
            {doing: 'Push', did: 'pushed', noun: 'image(s)', skipped: `already in ${plan.registry} with the same digest`},
          ),
      },
      {
        title: `Push ${plan.charts.length} chart(s)`,
        task: async (_, task) => {
          let pushed = 0
          for (const chart of plan.charts) if (await pushChart(chart)) pushed++
          const kept = plan.charts.length - pushed
          task.title = `Pushed ${pushed} chart(s)${kept > 0 ? `, ${kept} already in ${plan.registry} with the same content` : ''}`
        },
      },
      ...(plan.kodinfo
        ? [
            {
              title: `Push the package's metadata to ${plan.kodinfo.to}`,
              task: async (_: unknown, task: {title: string}) => {
                const info = plan.kodinfo!
                const pushed = await pushArtifactOnce(ctx, info, plan.target, `the package's metadata`, Boolean(options.force))
                task.title = pushed ? `Pushed the package's metadata to ${info.to}` : `The package's metadata is in ${info.to} already`
                outcome.kodinfo = info.to
              },
            },
          ]
        : []),
    ],
    {quiet: options.quiet},
  )
  return outcome
}

type Artifact = NonNullable<PopulatePlan['kodinfo']>

/**
 * One push (an image, a chart, an artifact) within its bounds (runPush; the registry's answer was just
 * had by `held`), retried while a registry that answered comes back (retry.ts), its failure said in one
 * line with the way out.
 */
async function pushOne(ctx: SourceContext, command: PlannedCommand, what: string, registry: string, bytes?: number): Promise<void> {
  await withRetries(commandHost(command.args), `pushing ${what}`, ctx.log, () => runPush(ctx.tools, command, bytes, {answered: true}), {signal: ctx.cancelSignal}).catch(
    (error: unknown) => {
      if ((error as KodError).exit === ExitCode.toolMissing) throw error
      // helm's push names no destination: say where it was pushing.
      const message = messageOf(error).replace(/^helm push failed: /, `helm push to ${command.args[2] ?? registry} failed: `)
      // The registry answers plain HTTP where kod spoke TLS: say which flag fixes it.
      const suggestions = /server gave HTTP response to HTTPS client/i.test(message) ? ['add --plain-http (or give -r as http://…)'] : loginSuggestion(message, registry)
      throw new KodError(`cannot push ${what}: ${message}`, {exit: (error as KodError).exit ?? ExitCode.toolFailed, suggestions})
    },
  )
}

/**
 * Pushes an artifact layout (kodinfo, or a whole package file) unless the tag holds it already; a tag
 * holding something else is refused unless `force`. Returns whether it pushed.
 */
async function pushArtifactOnce(ctx: SourceContext, info: Artifact, target: Target, what: string, force: boolean): Promise<boolean> {
  const current = await held(ctx, what, `docker://${info.to}`, target, info.command.env, info.command.args)
  if (current !== undefined && manifestDigest(current, info.digest).matches) return false
  if (current !== undefined && !force) throw tagConflict(`${what} from this package`, info.to, info.digest)
  await pushOne(ctx, info.command, what, target.registry)
  if (current !== undefined) ctx.log.warn(`${info.to} held something else: replaced with ${what} from this package (${info.digest}), as --force-push asks`)
  return true
}

/** populate --as-artifact: the package file's layout pushed as one artifact, with progress. */
export async function pushArtifact(ctx: SourceContext, info: Artifact, target: Target, options: PopulateOptions): Promise<boolean> {
  let pushed = false
  await runSteps(
    [{title: `Push ${info.to}`, task: async (_: unknown, task: {title: string}) => {
      pushed = await pushArtifactOnce(ctx, info, target, 'the package file', Boolean(options.force))
      task.title = pushed ? `Pushed ${info.to}` : `${info.to} holds this package already`
    }}],
    {quiet: options.quiet},
  )
  return pushed
}

/** One line: what a populate pushed and what the registry already held. */
export function describeOutcome(outcome: PopulateOutcome, registry: string): string {
  const kept = outcome.kept.images + outcome.kept.charts
  const there = kept > 0 ? `; ${outcome.kept.images} image(s) and ${outcome.kept.charts} chart(s) were there already with the same digest` : ''
  const deploy = outcome.kodinfo ? `; deploy from the registry with kod deploy -c oci://${outcome.kodinfo}` : ''
  return `pushed ${outcome.pushed.images} image(s) and ${outcome.pushed.charts} chart(s) to ${registry}${there}${deploy}`
}

/** What a kodinfo's layers are (title → digest), from its raw manifest; undefined when it is no kodinfo. */
function kodinfoLayers(raw: string): Map<string, string> | undefined {
  try {
    const manifest = JSON.parse(raw) as {artifactType?: string; layers?: Array<{digest?: string; annotations?: Record<string, string>}>}
    if (manifest.artifactType !== KODINFO_ARTIFACT_TYPE || !Array.isArray(manifest.layers)) return undefined
    return new Map(manifest.layers.map((layer) => [layer.annotations?.['org.opencontainers.image.title'] ?? '', layer.digest ?? '']))
  } catch {
    return undefined
  }
}

/**
 * Whether the registry holds everything a package file would push, judged from the archive's head alone
 * (its manifest, which SHA256SUMS vouches for, and SHA256SUMS): the package's metadata (kodinfo) with the
 * same files, every chart with the same archive, every image with the same manifest digest. Digests name
 * content, so the registry then holds exactly what populate would push, and the package need not be
 * unpacked. `dir` is where it would be unpacked (the plan's paths; nothing is read there). Undefined when not.
 *
 * The looks run LOOK_CONCURRENCY at a time in one pool (not the metadata first and then the rest: that
 * was one look's wait more), the metadata first, as it is pushed last: a populate that did not finish is
 * told by it. The metadata is never believed alone (an image may have been deleted since): every image and
 * chart is looked at. The first thing found missing or different answers at once (one is enough to need the full
 * populate): the looks not yet started are not, those under way end on their own, and every answer had is left in
 * `answers` for the full populate, which would otherwise ask the same before its pushes.
 */
export async function populatedAlready(
  ctx: SourceContext,
  source: KodSource,
  head: ArchiveHead,
  dir: string,
  target: Target,
  answers?: HeldAnswers,
): Promise<PopulatePlan | undefined> {
  if (head.sumsText === undefined || head.sumsDigest === undefined) return undefined
  const sums = parseSums(head.sumsText)
  // The manifest read from the head must be the one the checksums (and so the signature) vouch for.
  if (sums.get(MANIFEST_FILE) !== head.manifestDigest) return undefined
  const {manifest} = head
  const plan = planPopulate(ctx, source, {dir, manifest}, target)
  if (plan.charts.some((chart) => !chart.chart || !chart.to || !sums.has(chart.chart.file))) return undefined
  const to = kodinfoReference(target, manifest)
  const heads: Record<string, string> = {
    [MANIFEST_FILE]: head.manifestDigest,
    [SUMS_FILE]: head.sumsDigest,
    ...(head.signature ? {[SIGNATURE_FILE]: sha256(head.signature).slice('sha256:'.length)} : {}),
  }
  const expected = new Map(kodinfoFiles(manifest, sums, Boolean(head.signature)).map((file) => [file, `sha256:${heads[file] ?? sums.get(file)}`]))
  const ask = (what: string, reference: string, env?: Record<string, string>, copyArgs?: readonly string[]): Promise<string | undefined> => {
    const answer = held(ctx, what, reference, target, env, copyArgs)
    answer.catch(() => {})
    answers?.set(lookKey(reference, target, env, copyArgs), {answer, asked: Date.now()})
    return answer
  }
  const looks: Array<() => Promise<boolean>> = [
    async () => {
      const info = await ask(to, `docker://${to}`)
      const layers = info === undefined ? undefined : kodinfoLayers(info)
      return layers !== undefined && layers.size === expected.size && [...expected].every(([file, digest]) => layers.get(file) === digest)
    },
    ...plan.images.map((image) => async () => {
      const current = await ask(image.name, `docker://${image.to}`, image.command.env, image.command.args)
      return current !== undefined && manifestDigest(current, image.digest).matches
    }),
    ...plan.charts.map(({chart, to: reference, command}) => async () => {
      const current = await ask(`chart ${chart!.name} ${chart!.version}`, reference!, command.env)
      return current !== undefined && chartLayer(current) === `sha256:${sums.get(chart!.file)}`
    }),
  ]
  return new Promise((resolve, reject) => {
    let answered = false
    const answer = (settle: () => void): void => {
      if (answered) return
      answered = true
      settle()
    }
    mapLimit(
      looks,
      LOOK_CONCURRENCY,
      async (look) => {
        if (!answered && !(await look())) answer(() => resolve(undefined))
      },
      ctx.cancelSignal,
    ).then(
      () => answer(() => resolve(plan)),
      (error: unknown) => answer(() => reject(error)),
    )
  })
}
