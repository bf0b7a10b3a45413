import {mkdir, writeFile} from 'node:fs/promises'
import path from 'node:path'
import YAML from 'yaml'

import type {DeployRequest, KodSource, OpenedPackage, SourceContext, Target, ToolRunner} from '../../api.js'
import {LOOK_CONCURRENCY} from '../bounds.js'
import {ExitCode, isNotWritable, KodError, usageError} from '../errors.js'
import {existsInRegistry, pullReference} from '../images.js'
import {mapLimit} from '../kodpkg.js'
import {parseRef, relocatedRepository, sameImage} from '../refs.js'
import {shellCommand} from '../shell.js'
import {formatCommand, missingTool, toolAvailable} from '../tools.js'
import {packageWarnings} from './open.js'
import {asKodError} from './package.js'
import {planCommands, planPopulate, prepareKodinfo, runPopulate} from './populate.js'
import {checkImagesByDigest} from './registry-package.js'

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
  /** --create-secret: the pull secret to create or update in each release namespace before helm runs. */
  createSecret?: CreateSecret
  print(line: string): void
}

/** --create-secret: a docker-registry secret made from the target's login. */
export interface CreateSecret {
  /** The secret's name (the first --image-pull-secret). */
  name: string
  /**
   * A docker config.json holding only the target's login (kod's temporary auth file of
   * --registry-username): what the secret holds. Needed only when kod creates the secret itself.
   */
  authFile?: string
  /** The login's user, named in the printed step's hint (not a secret). */
  username?: string
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
  /** --create-secret: the kubectl step(s) before helm, as printed (the secret read from a file you name, never the password). */
  createSecret: string[]
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
      `refusing to deploy: ${refused.length} image(s) would not be pulled from ${target.registry}: ${listImages(refused, several)}. Relocate them with your -f files (or package again with a hint, --hints FILE), or accept each with --allow-external IMAGE`,
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
  const present = await mapLimit(references, LOOK_CONCURRENCY, (reference) => existsInRegistry(ctx.tools, reference, target))
  const missing = images.filter((image) => !present[references.indexOf(pullReference(parseRef(image.ref)))])
  if (missing.length > 0) {
    throw new KodError(`refusing to deploy: ${missing.length} image(s) are missing from ${target.registry}: ${listImages(missing, several)}`, {exit: ExitCode.notRelocated})
  }
}

/** A secret's name as Kubernetes takes it: a DNS subdomain (lowercase letters, digits, '-', '.'), at most 253 characters. */
const SECRET_NAME = /^(?=.{1,253}$)[a-z\d](?:[-a-z\d]*[a-z\d])?(?:\.[a-z\d](?:[-a-z\d]*[a-z\d])?)*$/

/**
 * --image-pull-secret and --create-secret, checked before anything is read or unpacked: valid secret
 * names, each once; --create-secret needs a name, and, when kod creates the secret itself (not only
 * printing it), the registry login it is made from. Returns the names.
 */
export function checkPullSecretFlags(given: {names: string[]; createSecret: boolean; runs: boolean; login: boolean}): string[] {
  for (const name of given.names) {
    if (!SECRET_NAME.test(name)) {
      throw usageError(`--image-pull-secret ${JSON.stringify(name)} is not a Kubernetes secret name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit`)
    }
  }
  if (given.createSecret && given.names.length === 0) {
    throw usageError('--create-secret needs --image-pull-secret NAME: the name of the secret to create, which every pod then gets')
  }
  if (given.runs && !given.login) {
    throw usageError(
      '--create-secret makes the secret from the registry login: add --registry-username USER --registry-password-stdin (the password piped into kod), or add --list-commands to print the step instead',
    )
  }
  return [...new Set(given.names)]
}

/** The environment variable the printed --create-secret step reads the docker config.json's path from. */
export const AUTH_FILE_VARIABLE = 'KOD_PULL_SECRET_AUTH_FILE'

/** kubectl apply as kod runs it: server-side, as field manager kod, so a second deploy updates what the first created. */
const APPLY = ['apply', '--server-side', '--force-conflicts', '--field-manager=kod']

/** The namespaces the releases install into, each once; undefined: the current namespace of your kubeconfig (as for helm). */
export function releaseNamespaces(pkg: OpenedPackage, request: Pick<DeployRequest, 'namespace'>): Array<string | undefined> {
  const units = pkg.manifest.units.filter((unit) => unit.installed)
  return [...new Set((units.length > 0 ? units : [{namespace: undefined}]).map((unit) => unit.namespace ?? request.namespace))]
}

/**
 * The --create-secret step as printed (--list-commands, --no-install): per namespace, the namespace
 * (helm would create it, but only after this step) and the secret, each made by kubectl --dry-run=client
 * and applied. The secret's content is read from the docker config.json whose path is in
 * $KOD_PULL_SECRET_AUTH_FILE: no password, no kod temporary file, in what is printed (docs/pull-secrets.md).
 */
export function createSecretLines(runner: ToolRunner, secret: CreateSecret, namespaces: Array<string | undefined>, target: Target): string[] {
  const kubectl = runner.binary('kubectl')
  const host = target.registry.split('/')[0]
  const login = ['skopeo login --authfile FILE', ...(target.plainHttp || target.insecureSkipTlsVerify ? ['--tls-verify=false'] : []), ...(secret.username ? [`--username ${secret.username}`] : []), host]
  // Inside "${VAR:?…}" the hint may hold no ", }, $, ` or \: a user name with one is left out.
  const safe = login.filter((word) => !/["}$`\\]/.test(word)).join(' ')
  const fromFile = `--from-file=.dockerconfigjson="\${${AUTH_FILE_VARIABLE}:?a docker config.json holding only the login for ${host}, made with: ${safe}}"`
  return namespaces.flatMap((namespace) => {
    const where = namespace ? ['--namespace', namespace] : []
    return [
      ...(namespace ? [`${shellCommand([kubectl, 'create', 'namespace', namespace, '--dry-run=client', '-o', 'yaml'])} | ${shellCommand([kubectl, 'apply', '--server-side', '--field-manager=kod', '-f', '-'])}`] : []),
      `${shellCommand([kubectl, 'create', 'secret', 'generic', secret.name, '--type=kubernetes.io/dockerconfigjson'])} ${fromFile} ${shellCommand([...where, '--dry-run=client', '-o', 'yaml'])} | ${shellCommand([kubectl, ...APPLY, '-f', '-'])}`,
    ]
  })
}

/**
 * --create-secret, run by kod before helm: kubectl makes the Secret of each namespace from the auth file
 * (`create secret generic --from-file`, client-side: the password is in no argument), kod writes them,
 * with the namespaces, into one 0600 file of its scratch directory, and kubectl applies that file.
 * Under --dry-run the Secrets are made but nothing is applied (helm's dry run needs no cluster either).
 */
async function createPullSecret(ctx: SourceContext, secret: CreateSecret, namespaces: Array<string | undefined>, dryRun: boolean): Promise<void> {
  if (!secret.authFile) throw new KodError('--create-secret: no registry login to make the secret from (kod bug: the command checks it)', {exit: ExitCode.usage})
  const documents: string[] = []
  for (const namespace of namespaces) {
    if (namespace) documents.push(YAML.stringify({apiVersion: 'v1', kind: 'Namespace', metadata: {name: namespace}}))
    const {stdout} = await ctx.tools.run('kubectl', [
      'create',
      'secret',
      'generic',
      secret.name,
      '--type=kubernetes.io/dockerconfigjson',
      `--from-file=.dockerconfigjson=${secret.authFile}`,
      ...(namespace ? ['--namespace', namespace] : []),
      '--dry-run=client',
      '-o',
      'yaml',
    ])
    documents.push(stdout)
  }
  const where = namespaces.map((namespace) => (namespace ? `namespace ${namespace}` : 'the current namespace')).join(', ')
  if (dryRun) {
    ctx.log.info(`dry run: pull secret ${secret.name} made for ${where}, not applied`)
    return
  }
  const dir = path.join(ctx.tmpDir, 'pull-secret')
  await mkdir(dir, {recursive: true, mode: 0o700})
  const file = path.join(dir, 'secret.yaml')
  await writeFile(file, documents.map((document) => document.replace(/^---\s*\n/, '').trimEnd()).join('\n---\n') + '\n', {mode: 0o600})
  await ctx.tools.run('kubectl', [...APPLY, '-f', file])
  ctx.log.info(`pull secret ${secret.name} created or updated in ${where}`)
}

/**
 * A source's deploy failure as one line. The source writes kod's values files into the package directory:
 * one that cannot be written (read-only media, another user's) says so and where to go instead.
 */
export function deployFailure(error: unknown, packageDir: string): KodError {
  const {path: file} = (error ?? {}) as {path?: unknown}
  if (isNotWritable(error) && typeof file === 'string' && path.dirname(file) === packageDir) {
    return usageError(`cannot write kod's values files into ${packageDir}: it is not writable; copy the package directory somewhere you can write (or unpack the .kodpkg there with kod unpack -c FILE -o DIR) and deploy with -c DIR`)
  }
  return asKodError(error)
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
    throw deployFailure(error, pkg.dir)
  })
  const several = new Set(plan.renderedImages.map((image) => image.unit)).size > 1
  const {accepted, inRegistry} = renderCheck(ctx, pkg, plan.renderedImages, request.target, options, several)
  // A package used from the registry (-c oci://…) is there already: nothing to push, its images checked by digest.
  const populate = pkg.registry
    ? undefined
    : planPopulate(ctx, source, pkg, request.target, await prepareKodinfo(ctx, pkg, request.target))
  const result: DeployResult = {
    valuesFiles: plan.valuesFiles ?? [...new Set(plan.install.flatMap((command) => command.args.filter((_, index, args) => args[index - 1] === '-f')))],
    generated: plan.generated,
    warnings,
    images: plan.renderedImages.map((image) => image.ref),
    pushes: populate ? planCommands(populate).map((command) => formatCommand(ctx.tools, command)) : [],
    install: plan.install.map((command) => formatCommand(ctx.tools, command)),
    createSecret: options.createSecret ? createSecretLines(ctx.tools, options.createSecret, releaseNamespaces(pkg, request), request.target) : [],
    external: accepted.map((image) => image.ref),
    populated: false,
    installed: false,
  }
  if (options.listCommands && !options.noInstall) {
    for (const line of [...result.pushes, ...result.createSecret, ...result.install]) options.print(line)
    return result
  }
  if (!options.noInstall) {
    // Before pushing gigabytes: the tools that install must be there.
    for (const tool of new Set([...plan.install.map((command) => command.tool), ...(options.createSecret ? (['kubectl'] as const) : [])])) {
      if (!(await toolAvailable(ctx.tools, tool))) throw missingTool(ctx.tools, tool)
    }
  }
  if (populate) await runPopulate(ctx, populate, {quiet: options.quiet, force: options.force})
  else await checkImagesByDigest(ctx.tools, pkg.manifest, request.target)
  result.populated = true
  await registryCheck(ctx, inRegistry, request.target, several)
  if (options.noInstall) {
    if (options.listCommands) for (const line of [...result.createSecret, ...result.install]) options.print(line)
    return result
  }
  if (options.createSecret) await createPullSecret(ctx, options.createSecret, releaseNamespaces(pkg, request), request.dryRun)
  for (const command of plan.install) {
    await ctx.tools.run(command.tool, command.args, {env: command.env, stream: options.stream})
  }
  result.installed = true
  return result
}
