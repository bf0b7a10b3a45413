import path from 'node:path'

import type {DeployRequest, KodSource, OpenedPackage, PlannedCommand, SourceContext, Target} from '../../api.js'
import {ExitCode, KodError, messageOf} from '../errors.js'
import {describeImage, existsInRegistry, layoutNameOf, pullReference, pushCommand, pushReference} from '../images.js'
import {IMAGES_DIR, mapLimit} from '../kodpkg.js'
import {countedSubtasks, runSteps} from '../progress.js'
import {parseRef, relocatedRepository} from '../refs.js'
import {formatCommand} from '../tools.js'
import {asKodError} from './package.js'

/** How many images are checked in the target registry at once. */
const CHECK_CONCURRENCY = 4

export interface PopulatePlan {
  /** The package's OCI layout the images are pushed from. */
  layout: string
  /** `layoutName`: the image's name in that layout (format 1: its `name`). */
  images: Array<{name: string; layoutName: string; to: string; command: PlannedCommand}>
  charts: PlannedCommand[]
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
  const run = async (command: PlannedCommand, what: string): Promise<void> => {
    await ctx.tools.run(command.tool, command.args, {env: command.env}).catch((error: unknown) => {
      throw new KodError(`cannot push ${what}: ${messageOf(error)}`, {exit: ExitCode.toolFailed})
    })
  }
  const sizes = await Promise.all(plan.images.map(async (image) => (await describeImage(plan.layout, image.layoutName)).bytes))
  await runSteps(
    [
      {
        title: `Push ${plan.images.length} image(s)`,
        task: (_, task) =>
          countedSubtasks(
            task,
            plan.images.map((image, index) => ({title: image.to, bytes: sizes[index], run: () => run(image.command, image.name)})),
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
  listCommands: boolean
  noInstall: boolean
  quiet: boolean
  /** Stream helm's own output (not under --json). */
  stream: boolean
  print(line: string): void
}

export interface DeployResult {
  valuesFiles: string[]
  images: string[]
  commands: string[]
  installed: boolean
}

/** Rendered images that would be pulled from anywhere but the target registry. */
export function outsideTarget(images: Array<{ref: string; foundIn: string[]}>, target: Target): Array<{ref: string; foundIn: string[]}> {
  return images.filter((image) => {
    try {
      const ref = parseRef(image.ref)
      return !`${ref.host}/${ref.path}`.startsWith(`${target.registry}/`)
    } catch {
      return true
    }
  })
}

function listImages(images: Array<{ref: string; foundIn: string[]}>): string {
  return images.map((image) => `${image.ref} (${image.foundIn.join(', ')})`).join('; ')
}

/**
 * kod deploy: relocation values and render check (the source), then populate, then a check that every
 * rendered image exists in the target, then the install. With listCommands nothing is pushed or
 * installed: the commands are printed instead.
 */
export async function deployAction(
  ctx: SourceContext,
  source: KodSource,
  pkg: OpenedPackage,
  request: DeployRequest,
  options: DeployOptions,
): Promise<DeployResult> {
  const plan = await source.deploy(ctx, pkg, request).catch((error: unknown) => {
    throw asKodError(error)
  })
  const outside = outsideTarget(plan.renderedImages, request.target)
  if (outside.length > 0) {
    throw new KodError(
      `refusing to deploy: ${outside.length} image(s) would not be pulled from ${request.target.registry}: ${listImages(outside)}. Check your -f files, or add a hint for the chart`,
      {exit: ExitCode.notRelocated},
    )
  }
  // Under the registry, but not where populate pushes: only the registry can tell whether it is there.
  const pushed = new Set(pkg.manifest.images.map((image) => relocatedRepository(parseRef(image.name), request.target)))
  const elsewhere = plan.renderedImages.filter((image) => {
    const ref = parseRef(image.ref)
    return !pushed.has(`${ref.host}/${ref.path}`)
  })
  if (elsewhere.length > 0 && options.listCommands) {
    ctx.log.warn(`${listImages(elsewhere)}: not among the images kod pushes; deploy checks that the registry has them before installing`)
  }
  const populate = planPopulate(ctx, source, pkg, request.target)
  const commands = [...planCommands(populate), ...(options.noInstall ? [] : plan.install)]
  const lines = commands.map((command) => formatCommand(ctx.tools, command))
  const result: DeployResult = {
    valuesFiles: plan.generated,
    images: plan.renderedImages.map((image) => image.ref),
    commands: lines,
    installed: false,
  }
  if (options.listCommands) {
    for (const line of lines) options.print(line)
    return result
  }

  await runPopulate(ctx, populate, options.quiet)
  const references = [...new Set(plan.renderedImages.map((image) => pullReference(parseRef(image.ref))))]
  const present = await mapLimit(references, CHECK_CONCURRENCY, (reference) => existsInRegistry(ctx.tools, reference, request.target))
  const missing = plan.renderedImages.filter((image) => !present[references.indexOf(pullReference(parseRef(image.ref)))])
  if (missing.length > 0) {
    throw new KodError(`refusing to deploy: ${missing.length} image(s) are missing from ${request.target.registry}: ${listImages(missing)}`, {
      exit: ExitCode.notRelocated,
    })
  }
  if (options.noInstall) return result
  for (const command of plan.install) {
    await ctx.tools.run(command.tool, command.args, {env: command.env, stream: options.stream})
  }
  result.installed = true
  return result
}
