import path from 'node:path'

import type {DeployRequest, KodSource, OpenedPackage, PlannedCommand, SourceContext, Target} from '../../api.js'
import {runPush} from '../bounds.js'
import {loginSuggestion} from '../credentials.js'
import {ExitCode, KodError, messageOf, usageError} from '../errors.js'
import {describeImage, existsInRegistry, layoutNameOf, pullReference, pushCommand, pushReference} from '../images.js'
import {IMAGES_DIR, mapLimit} from '../kodpkg.js'
import {countedSubtasks, runSteps} from '../progress.js'
import {normalizeRef, parseRef, relocatedRepository} from '../refs.js'
import {formatCommand, missingTool, toolAvailable} from '../tools.js'
import {packageWarnings} from './open.js'
import {asKodError} from './package.js'

/** How many images are checked in the target registry at once. */
const CHECK_CONCURRENCY = 4

export interface PopulatePlan {
  /** The package's OCI layout the images are pushed from. */
  layout: string
  /** `layoutName`: the image's name in that layout (format 1: its `name`). */
  images: Array<{name: string; layoutName: string; to: string; command: PlannedCommand}>
  charts: PlannedCommand[]
  /** The target registry (host[:port][/path]), named when it refuses kod for want of a login. */
  registry: string
}

/** The pushes that put a package's images and charts into the target registry. */
export function planPopulate(ctx: SourceContext, source: KodSource, pkg: OpenedPackage, target: Target): PopulatePlan {
  const layout = path.join(pkg.dir, IMAGES_DIR)
  return {
    layout,
    images: pkg.manifest.images.map((image) => ({
      name: image.name,
      layoutName: layoutNameOf(image),
      to: pushReference(parseRef(image.name), target),
      command: pushCommand(layout, image, target),
    })),
    charts: source.pushCharts(ctx, pkg, target),
    registry: target.registry,
  }
}

export function planCommands(plan: PopulatePlan): PlannedCommand[] {
  return [...plan.images.map((image) => image.command), ...plan.charts]
}

/**
 * Runs the populate plan with progress: images one by one (count and bytes, sizes read from the
 * layout first), then the charts.
 */
export async function runPopulate(ctx: SourceContext, plan: PopulatePlan, quiet: boolean): Promise<void> {
  // Each push within its bounds (bounds.ts): the registry's first answer, then time for its bytes.
  const run = async (command: PlannedCommand, what: string, bytes?: number): Promise<void> => {
    await runPush(ctx.tools, command, bytes).catch((error: unknown) => {
      const message = messageOf(error)
      // The registry answers plain HTTP where kod spoke TLS: say which flag fixes it.
      const suggestions = /server gave HTTP response to HTTPS client/i.test(message) ? ['add --plain-http (or give -r as http://…)'] : loginSuggestion(message, plan.registry)
      throw new KodError(`cannot push ${what}: ${message}`, {exit: (error as KodError).exit ?? ExitCode.toolFailed, suggestions})
    })
  }
  // Sizes only feed the progress display: an image whose size cannot be read is pushed all the same.
  const sizes = await Promise.all(plan.images.map(async (image) => describeImage(plan.layout, image.layoutName).then((described) => described.bytes, () => undefined)))
  await runSteps(
    [
      {
        title: `Push ${plan.images.length} image(s)`,
        task: (_, task) =>
          countedSubtasks(
            task,
            plan.images.map((image, index) => ({title: image.to, bytes: sizes[index], run: () => run(image.command, image.name, sizes[index])})),
            {doing: 'Push', did: 'pushed', noun: 'image(s)'},
          ),
      },
      {
        title: `Push ${plan.charts.length} chart(s)`,
        task: async (_, task) => {
          for (const command of plan.charts) await run(command, command.args[1] ?? 'chart')
          task.title = `Pushed ${plan.charts.length} chart(s)`
        },
      },
    ],
    {quiet},
  )
}

export interface DeployOptions {
  /** Print the commands on stdout (see deployAction for what that means with and without noInstall). */
  listCommands: boolean
  /** Stop before helm. */
  noInstall: boolean
  quiet: boolean
  /** Stream helm's own output (not under --json). */
  stream: boolean
  /** --allow-external: images (any spelling) the user accepts from outside the private registry. */
  allowExternal?: string[]
  print(line: string): void
}

export interface DeployResult {
  /** Every values file helm gets, in helm's order: package-time, kod's, then yours. */
  valuesFiles: string[]
  /** The values files kod wrote for this deploy. */
  generated: string[]
  /** What the package recorded that the operator must hear (repeated on stderr first). */
  warnings: string[]
  images: string[]
  /** The pushes that populate the registry, as a user would paste them (run unless --list-commands alone). */
  pushes: string[]
  /** The helm command(s) that install, as a user would paste them. */
  install: string[]
  /** Images accepted from outside the private registry with --allow-external. */
  external: string[]
  populated: boolean
  installed: boolean
}

type Rendered = {ref: string; foundIn: string[]; unit?: string}

/** Rendered images that would be pulled from anywhere but the target registry. */
export function outsideTarget(images: Rendered[], target: Target): Rendered[] {
  return images.filter((image) => {
    try {
      const ref = parseRef(image.ref)
      return !`${ref.host}/${ref.path}`.startsWith(`${target.registry}/`)
    } catch {
      return true
    }
  })
}

/** Where an image is run: its templates, and its release when the package has several. */
function where(image: Rendered, several: boolean): string {
  return `${image.ref} (${several && image.unit ? `release ${image.unit}: ` : ''}${image.foundIn.join(', ')})`
}

function listImages(images: Rendered[], several = false): string {
  return images.map((image) => where(image, several)).join('; ')
}

/** Same image, however spelled (nginx, docker.io/library/nginx:latest); unparsable ones compare as written. */
function sameImage(a: string, b: string): boolean {
  const canonical = (ref: string): string => {
    try {
      return normalizeRef(ref)
    } catch {
      return ref
    }
  }
  return canonical(a) === canonical(b)
}

/**
 * Splits the images outside the registry into those the user accepted by name and the rest; a name
 * that matches no image the chart runs is a mistake worth stopping for.
 */
export function acceptExternal(outside: Rendered[], allowed: readonly string[], rendered: Rendered[]): {accepted: Rendered[]; refused: Rendered[]} {
  for (const name of allowed) {
    if (!rendered.some((image) => sameImage(image.ref, name))) {
      throw usageError(`--allow-external ${name}: the chart runs no such image; images it runs: ${rendered.map((image) => image.ref).join(', ')}`)
    }
  }
  const isAllowed = (image: Rendered): boolean => allowed.some((name) => sameImage(image.ref, name))
  return {accepted: outside.filter(isAllowed), refused: outside.filter((image) => !isAllowed(image))}
}

/**
 * The render check: every image the deployment will run that would come from outside the registry is
 * refused (exit 6), unless the user accepted it by name. Returns the accepted ones and those the registry
 * must hold.
 */
function renderCheck(
  ctx: SourceContext,
  pkg: OpenedPackage,
  rendered: Rendered[],
  target: Target,
  options: DeployOptions,
  several: boolean,
): {accepted: Rendered[]; inRegistry: Rendered[]} {
  const {accepted, refused} = acceptExternal(outsideTarget(rendered, target), options.allowExternal ?? [], rendered)
  if (refused.length > 0) {
    throw new KodError(
      `refusing to deploy: ${refused.length} image(s) would not be pulled from ${target.registry}: ${listImages(refused, several)}. Relocate them with a hint or your -f files, or accept each with --allow-external IMAGE`,
      {exit: ExitCode.notRelocated},
    )
  }
  for (const image of accepted) ctx.log.warn(`${listImages([image], several)} will be pulled from outside ${target.registry}: accepted with --allow-external`)
  const inRegistry = rendered.filter((image) => !accepted.includes(image))
  // Under the registry, but not where populate pushes: only the registry can tell whether it is there.
  const pushed = new Set(pkg.manifest.images.map((image) => relocatedRepository(parseRef(image.name), target)))
  const elsewhere = inRegistry.filter((image) => {
    const ref = parseRef(image.ref)
    return !pushed.has(`${ref.host}/${ref.path}`)
  })
  if (elsewhere.length > 0 && options.listCommands && !options.noInstall) {
    ctx.log.warn(`${listImages(elsewhere, several)}: not among the images kod pushes; deploy checks that the registry has them before installing`)
  }
  return {accepted, inRegistry}
}

/** The registry check, after populate: every image the deployment pulls from the registry is there. */
async function registryCheck(ctx: SourceContext, images: Rendered[], target: Target, several: boolean): Promise<void> {
  const references = [...new Set(images.map((image) => pullReference(parseRef(image.ref))))]
  const present = await mapLimit(references, CHECK_CONCURRENCY, (reference) => existsInRegistry(ctx.tools, reference, target))
  const missing = images.filter((image) => !present[references.indexOf(pullReference(parseRef(image.ref)))])
  if (missing.length > 0) {
    throw new KodError(`refusing to deploy: ${missing.length} image(s) are missing from ${target.registry}: ${listImages(missing, several)}`, {exit: ExitCode.notRelocated})
  }
}

/**
 * kod deploy: the source writes the relocation values and renders the chart with them; the render check
 * refuses any image from outside the registry not accepted with --allow-external. Then:
 *
 * - listCommands alone: print the pushes and the helm command(s); nothing is pushed or installed.
 * - noInstall and listCommands (the documented air-gap workflow): populate for real, check the registry,
 *   and print only the helm command(s) on stdout, for the user to extend and run.
 * - noInstall alone: populate, check, and say on stderr which helm command to run.
 * - neither: populate, check, install.
 */
export async function deployAction(
  ctx: SourceContext,
  source: KodSource,
  pkg: OpenedPackage,
  request: DeployRequest,
  options: DeployOptions,
): Promise<DeployResult> {
  const warnings = packageWarnings(pkg.manifest)
  for (const warning of warnings) ctx.log.warn(warning)
  const plan = await source.deploy(ctx, pkg, request).catch((error: unknown) => {
    throw asKodError(error)
  })
  const several = new Set(plan.renderedImages.map((image) => image.unit)).size > 1
  const {accepted, inRegistry} = renderCheck(ctx, pkg, plan.renderedImages, request.target, options, several)
  const populate = planPopulate(ctx, source, pkg, request.target)
  const result: DeployResult = {
    valuesFiles: plan.valuesFiles ?? [...new Set(plan.install.flatMap((command) => command.args.filter((_, index, args) => args[index - 1] === '-f')))],
    generated: plan.generated,
    warnings,
    images: plan.renderedImages.map((image) => image.ref),
    pushes: planCommands(populate).map((command) => formatCommand(ctx.tools, command)),
    install: plan.install.map((command) => formatCommand(ctx.tools, command)),
    external: accepted.map((image) => image.ref),
    populated: false,
    installed: false,
  }
  if (options.listCommands && !options.noInstall) {
    for (const line of [...result.pushes, ...result.install]) options.print(line)
    return result
  }
  if (!options.noInstall) {
    // Before pushing gigabytes: the tool that installs must be there.
    for (const tool of new Set(plan.install.map((command) => command.tool))) {
      if (!(await toolAvailable(ctx.tools, tool))) throw missingTool(ctx.tools, tool)
    }
  }
  await runPopulate(ctx, populate, options.quiet)
  result.populated = true
  await registryCheck(ctx, inRegistry, request.target, several)
  if (options.noInstall) {
    if (options.listCommands) for (const line of result.install) options.print(line)
    return result
  }
  for (const command of plan.install) {
    await ctx.tools.run(command.tool, command.args, {env: command.env, stream: options.stream})
  }
  result.installed = true
  return result
}
