import type {DeployRequest, KodSource, OpenedPackage, SourceContext, Target} from '../../api.js'
import {ExitCode, KodError, usageError} from '../errors.js'
import {existsInRegistry, pullReference} from '../images.js'
import {mapLimit} from '../kodpkg.js'
import {parseRef, relocatedRepository, sameImage} from '../refs.js'
import {formatCommand, missingTool, toolAvailable} from '../tools.js'
import {packageWarnings} from './open.js'
import {asKodError} from './package.js'
import {planCommands, planPopulate, runPopulate} from './populate.js'

/** How many images are checked in the target registry at once. */
const CHECK_CONCURRENCY = 4

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
  /** --force-push: move tags the registry holds with other content (populate's --force). */
  force?: boolean
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
  // Accepted at package time (kod package --allow-external, recorded as `external`): let through, said.
  const recorded = pkg.manifest.units.flatMap((unit) => unit.images.filter((image) => image.external).map((image) => ({unit: unit.id, ref: image.ref})))
  const isRecorded = (image: Rendered): boolean => recorded.some((entry) => (!image.unit || entry.unit === image.unit) && sameImage(entry.ref, image.ref))
  const outside = outsideTarget(rendered, target)
  const packaged = outside.filter((image) => isRecorded(image))
  for (const image of packaged) ctx.log.warn(`${listImages([image], several)} will be pulled from outside ${target.registry}: accepted when the package was made (kod package --allow-external)`)
  const checked = acceptExternal(
    outside.filter((image) => !isRecorded(image)),
    options.allowExternal ?? [],
    rendered,
  )
  const accepted = [...packaged, ...checked.accepted]
  const {refused} = checked
  if (refused.length > 0) {
    throw new KodError(
      `refusing to deploy: ${refused.length} image(s) would not be pulled from ${target.registry}: ${listImages(refused, several)}. Relocate them with a hint or your -f files, or accept each with --allow-external IMAGE`,
      {exit: ExitCode.notRelocated},
    )
  }
  for (const image of checked.accepted) ctx.log.warn(`${listImages([image], several)} will be pulled from outside ${target.registry}: accepted with --allow-external`)
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
  await runPopulate(ctx, populate, {quiet: options.quiet, force: options.force})
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
