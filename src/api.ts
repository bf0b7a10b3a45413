/**
 * The contract between kod's core and the plugins that provide source kinds (helm, helmfile, …).
 *
 * Plugins `import type` from here only: an installed plugin has its own copy of every dependency, so
 * nothing is shared across the boundary at run time except plain data and the toolkit the core hands
 * over in each call. A plugin registers sources by declaring the oclif hook `kod:sources` and
 * returning `KodSource[]` from it.
 */

/** Version of this contract. A source whose `api` differs is reported and not used. */
export const SOURCE_API = 'kod.source/v1'
export type SourceApi = typeof SOURCE_API

/** The tools kod wraps. Each resolves to a binary on PATH, or to the path in KOD_<TOOL> (e.g. KOD_HELM). */
export type ToolName = 'helm' | 'helmfile' | 'skopeo' | 'regctl'

/** One command kod runs or, under --list-commands, prints. */
export interface PlannedCommand {
  tool: ToolName
  args: string[]
  /** Extra environment for this command only (never printed as secrets: keep values non-sensitive). */
  env?: Record<string, string>
}

export interface RunOptions {
  /** Working directory. */
  cwd?: string
  /** Stream the tool's stdout/stderr to the user instead of capturing them. */
  stream?: boolean
  /** Override the default timeout (ms). */
  timeoutMs?: number
  env?: Record<string, string>
}

export interface RunResult {
  stdout: string
  stderr: string
}

export interface ToolRunner {
  /** Run a tool; rejects with a one-line error carrying the tail of the tool's stderr. */
  run(tool: ToolName, args: string[], options?: RunOptions): Promise<RunResult>
  /** The binary kod would run for a tool (as printed by --list-commands). */
  binary(tool: ToolName): string
}

export interface Logger {
  info(message: string): void
  warn(message: string): void
  debug(message: string): void
}

/** A parsed container image reference, normalised the way Docker/containerd resolve it. */
export interface ImageRef {
  /** Registry host, with port if any (docker.io for Docker Hub). */
  host: string
  /** Repository path below the host (library/nginx for nginx). */
  path: string
  tag?: string
  digest?: string
}

/** Pure helpers for image references, handed to plugins so they need no runtime import of the core. */
export interface RefHelpers {
  parse(reference: string): ImageRef
  /** Fully qualified form: host/path[:tag][@digest], :latest added when neither tag nor digest is given. */
  normalize(reference: string): string
  format(ref: ImageRef): string
  /** Where populate puts an image: <registry>/<prefix>/<host>/<path> (no tag or digest). */
  relocatedRepository(ref: ImageRef, target: Target): string
}

/** The private registry named with -r. */
export interface Target {
  /** host[:port][/path] without scheme or trailing slash. */
  registry: string
  /** Repository prefix below the registry (default "kod"; may be empty). */
  prefix: string
  plainHttp: boolean
  insecureSkipTlsVerify: boolean
}

/** What a source needs from the core at run time. */
export interface SourceContext {
  api: SourceApi
  tools: ToolRunner
  log: Logger
  refs: RefHelpers
  /** A scratch directory that is removed when the command ends. */
  tmpDir: string
  cancelSignal?: AbortSignal
}

/** What the user asked `kod package` for. */
export interface PackageRequest {
  /** -c: a path, an https URL, an oci:// URL, or a chart name when `repo` is set. */
  ref: string
  version?: string
  repo?: string
  /** -f files, absolute paths, in order. */
  valuesFiles: string[]
  /** Hosts (host[:port]) that may be read over plain HTTP or with unverified TLS. */
  insecureRegistries: string[]
  /** helm's rendering knobs, passed to every render and recorded in the package. */
  render?: RenderKnobs
  /** Hint files: --hints first, then the libraries plugins contribute through the kod:hints hook. */
  hints?: LoadedHints[]
}

/** helm's rendering knobs (--kube-version, --api-versions, --set), under helm's names. */
export interface RenderKnobs {
  kubeVersion?: string
  apiVersions?: string[]
  set?: string[]
}

/**
 * A values path whose value renders at the start of an image reference (the whole reference, its
 * registry, or registry and repository together). Relocating the image sets the path to the relocated
 * location followed by `value` minus its first `replace` characters (the part naming the original
 * location).
 */
export interface ValuesBinding {
  /** Dotted values path, e.g. "server.image.registry" ("." inside a key is written "\."). */
  path: string
  /** What the path rendered to at package time (its value, or the default the chart used for it). */
  value: string
  /** How many leading characters of `value` name the original location. */
  replace: number
  /** The reference as rendered where this path sets it, when that differs from the image's `ref` (nginx vs docker.io/library/nginx). */
  ref?: string
}

/** An image a source found. */
export interface FoundImage {
  /** The reference exactly as the rendered manifests carry it. */
  ref: string
  /** Values that set it; empty when none does (the image is packaged but not relocatable by values). */
  values: ValuesBinding[]
  /** Why it cannot be relocated through values, when it cannot. */
  note?: string
  /** Templates (or other origins) it was seen in. */
  foundIn: string[]
}

/** Version of the hint-library contract (the kod:hints hook). */
export const HINTS_API = 'kod.hints/v1'

/** What a plugin's kod:hints hook returns: a named set of hint files it ships. */
export interface HintLibrary {
  api: typeof HINTS_API
  name: string
  /** Absolute paths of hint files (docs/hints.md). */
  files: string[]
}

/** An image a chart needs that rendering alone does not reveal, or the values that relocate one. */
export interface ImageHint {
  /** The reference; may use {{ .Values.x }} and {{ .Chart.AppVersion }}, rendered by helm with the chart. */
  ref: string
  /** Values paths whose value renders at the start of the reference (found by kod when omitted). */
  values?: string[]
}

export interface ChartHint {
  /** Chart name (Chart.yaml name). */
  chart: string
  /** Semver range of chart versions (default: every version). */
  versions?: string
  images?: ImageHint[]
  /** Values kod sets whenever it relocates this chart (in analysis renders and in deploy's values). */
  set?: Array<{path: string; value: unknown; reason?: string}>
}

/** A hint file: apiVersion kod.dev/v1, kind ImageHints (docs/hints.md). */
export interface HintFile {
  apiVersion: 'kod.dev/v1'
  kind: 'ImageHints'
  hints: ChartHint[]
}

/** A validated hint file and where it came from. */
export interface LoadedHints {
  /** Absolute path of the file. */
  file: string
  /** "--hints", or the plugin library that provided it. */
  library: string
  hints: HintFile
}

/** A chart archive stored in the package. */
export interface ChartEntry {
  name: string
  version: string
  appVersion?: string
  /** Path inside the package, e.g. charts/mychart-1.2.3.tgz */
  file: string
}

/** What a source's package step produced. Everything it wrote into the staging directory is carried. */
export interface SourcePackage {
  /** Names the package file: kod-<name>-<version>.kodpkg */
  name: string
  version: string
  charts: ChartEntry[]
  images: FoundImage[]
  /** Hint files (LoadedHints.file) that applied; they are stored in the package. */
  hintsUsed?: string[]
  /** Source-specific data recorded in the manifest under `sourceData`. */
  data?: Record<string, unknown>
  /** What the operator on the air-gapped side must hear (an image kod cannot relocate, one it did not package). */
  warnings?: string[]
}

/** A package as the core hands it to a source at deploy time. */
export interface OpenedPackage {
  /** Absolute path of the unpacked, verified package directory. */
  dir: string
  manifest: PackageManifest
}

export interface DeployRequest {
  target: Target
  /** -n; when absent helm uses its own default (the current context's namespace). */
  namespace?: string
  release?: string
  /** User -f files, absolute paths; kod's generated values file goes before them. */
  valuesFiles: string[]
  wait: boolean
  dryRun: boolean
  /** Knobs given to deploy; each one given replaces the one recorded at package time. */
  render?: RenderKnobs
}

/** A deployment a source prepared: the commands to run and the render check to pass before them. */
export interface DeployPlan {
  /** Files the source wrote (e.g. the generated values file), absolute paths. */
  generated: string[]
  /** Commands that install, in order. */
  install: PlannedCommand[]
  /** Every image reference the deployment will run, as rendered with the generated values. */
  renderedImages: Array<{ref: string; foundIn: string[]}>
}

/**
 * What a source throws: any Error; an `exit` of 2 marks bad input (kod exits 2), anything else exits 1.
 * Errors from the toolkit (ctx.tools) pass through with their own exit codes.
 */
export interface SourceError extends Error {
  exit?: number
}

/**
 * A source kind. `package` runs on the connected side; `pushCharts` and `deploy` on the air-gapped side.
 * The core does everything that is common: image pulls and pushes, the archive, checksums, progress.
 */
export interface KodSource {
  api: SourceApi
  /** Recorded in the package; the core dispatches on it. */
  kind: string
  description: string
  /** How sure this source is that it handles the request (0 = not at all). Highest wins; ties go to --kind. */
  detect(request: PackageRequest): Promise<number>
  /** Fetch into `stagingDir` and find every image. */
  package(ctx: SourceContext, request: PackageRequest, stagingDir: string): Promise<SourcePackage>
  /** Commands that push the package's charts (or other artifacts) into the target registry. */
  pushCharts(ctx: SourceContext, pkg: OpenedPackage, target: Target): PlannedCommand[]
  /** The values file (text) that points every image at the target: what deploy writes. */
  relocation(ctx: SourceContext, found: Pick<SourcePackage, 'charts' | 'images' | 'data'>, target: Target): string
  /** Write the values that relocate every image and plan the install. */
  deploy(ctx: SourceContext, pkg: OpenedPackage, request: DeployRequest): Promise<DeployPlan>
}

/** One image in the package manifest. */
export interface PackagedImage {
  /** Reference as the chart renders it. */
  ref: string
  /** Normalised reference (host/path[:tag][@digest]). */
  name: string
  /**
   * The image's org.opencontainers.image.ref.name in the package's OCI layout (images/index.json): a name
   * kod chooses so that every valid reference can be stored (format 2). Absent in format-1 packages,
   * where the layout name is `name`.
   */
  layoutName?: string
  /** Digest of the top manifest or index, as pulled and as pushed. */
  digest: string
  platforms: string[]
  values: ValuesBinding[]
  foundIn: string[]
  /** Why deploy cannot relocate it through values, when it cannot. */
  note?: string
}

/** kod-package.yaml, format version 2 (see docs/kodpkg.md); kod reads formats 1 and 2. */
export interface PackageManifest {
  formatVersion: 1 | 2
  kodVersion: string
  created: string
  source: {kind: string; ref: string; version?: string; repo?: string}
  name: string
  version: string
  charts: ChartEntry[]
  /** Package-time -f files, in order, as paths inside the package. */
  values: string[]
  hints: string[]
  images: PackagedImage[]
  /**
   * What kod found at package time and could not package or relocate, one line each: shown by inspect and
   * repeated by populate and deploy on the air-gapped side (format 2).
   */
  warnings?: string[]
  sourceData?: Record<string, unknown>
}
