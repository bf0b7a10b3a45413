/**
 * The contract between kod's core and the plugins that provide source kinds (helm, helmfile, …).
 *
 * Plugins `import type` from here only: an installed plugin has its own copy of every dependency, so
 * nothing is shared across the boundary at run time except plain data and the toolkit the core hands
 * over in each call. A plugin registers sources by declaring the oclif hook `kod:sources` and
 * returning `KodSource[]` from it.
 */

/**
 * Version of this contract. A source whose `api` differs is reported and not used. v2: a package holds
 * units (one per release), each with its own chart, values and image bindings.
 */
export const SOURCE_API = 'kod.source/v2'
export type SourceApi = typeof SOURCE_API

/** The tools kod itself wraps. */
export type BuiltinToolName = 'helm' | 'helmfile' | 'skopeo' | 'regctl' | 'kubectl'

/**
 * A tool kod runs: one of its own, or one a plugin declared with `registerTool` (kod/sdk). Each resolves to
 * a binary on PATH, or to the path in its environment variable (KOD_<TOOL>, e.g. KOD_HELM).
 */
export type ToolName = BuiltinToolName | (string & {})

/** A tool as a plugin declares it to kod (`registerTool` in kod/sdk); kod's own are declared the same way. */
export interface ToolDefinition {
  /** What the binary is called on PATH, and what kod calls it in messages: lower-case letters, digits, `-`, `_`. */
  name: string
  /** How to get it, for the one-line error when it is missing (e.g. "install zot from … or set KOD_ZOT to its path"). */
  installHint: string
  /** The environment variable naming its path, overriding PATH (default KOD_<NAME>, `-` as `_`). */
  env?: string
  /** The time limit of a call whose caller gives none (default: 30 minutes). */
  timeoutMs?: number
  /** Arguments that make it print its version (`--version`): tools with them can be bundled by kod package-tools. */
  versionArgs?: string[]
}

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
  /**
   * stdout exactly as the tool wrote it, its final newline kept (by default one final newline is
   * stripped): for output whose bytes are hashed, such as a raw manifest whose digest is checked.
   */
  raw?: boolean
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
  /** Values of the flags this source declares (KodSource.flags), by flag name. */
  options?: SourceOptions
  /**
   * --username / --password-stdin: the login for the chart repository or OCI registry at `host` only
   * (never sent anywhere else). Pass it to tools through files or environment, never arguments, and
   * never record or print it (docs/security.md).
   */
  credentials?: ChartCredentials
}

/** A login for one chart repository or OCI chart registry. */
export interface ChartCredentials {
  /** host[:port] the login is for, lower-case. */
  host: string
  username: string
  password: string
}

/** Values of a source's own flags, by flag name: a string, a boolean, or the values of a repeatable flag. */
export type SourceOptions = Record<string, string | boolean | string[]>

/**
 * A flag a source kind adds to kod's commands (helmfile's -e ENV). kod takes it from the command line
 * for the source that handles the package, and refuses it for any other; `kod sources` lists them.
 */
export interface SourceFlag {
  /** Long name, without dashes. */
  name: string
  /** One-letter short name; it must not be one of kod's own. */
  char?: string
  summary: string
  type: 'boolean' | 'string'
  multiple?: boolean
  /** The commands that take it. */
  commands: Array<'package' | 'images' | 'deploy'>
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

/**
 * One installable thing in a package: for helm and helmfile sources, one release of one chart. A chart
 * package has one unit; a helmfile package one per release. Every unit carries its own values and its own
 * image bindings, because two releases of one chart may relocate the same image through different values.
 */
export interface UnitBase {
  /** Unique in the package: the release name, or namespace/name when two releases share a name. */
  id: string
  release: string
  /** The namespace the source declares; deploy's -n applies to units without one. */
  namespace?: string
  /** Path inside the package of the chart archive the unit installs (one of `charts[].file`). */
  chart: string
  /** Package-time values files, paths inside the package, in the order helm gets them. */
  values: string[]
  /** false: recorded (a helmfile release with installed: false) but neither packaged nor installed. */
  installed: boolean
  /** Ids of the units installed before this one. */
  needs: string[]
  /** Source-specific data, validated by the source that wrote it (plugin-helm: render knobs, extra values, lists). */
  data?: Record<string, unknown>
}

/** A unit as a source's package step found it: its images with their bindings, not yet pulled. */
export interface FoundUnit extends UnitBase {
  images: FoundImage[]
}

/** What a source's package step produced. Everything it wrote into the staging directory is carried. */
export interface SourcePackage {
  /** Names the package file: kod-<name>-<version>.kodpkg */
  name: string
  version: string
  /** Every chart archive the source wrote into the staging directory (each once). */
  charts: ChartEntry[]
  /** In install order (a unit comes after every unit it needs). */
  units: FoundUnit[]
  /** Hint files (LoadedHints.file) that applied; they are stored in the package. */
  hintsUsed?: string[]
  /** Source-specific data about the whole package, recorded in the manifest under `sourceData`. */
  data?: Record<string, unknown>
  /** What the operator on the air-gapped side must hear (an image kod cannot relocate, one it did not package). */
  warnings?: string[]
}

/** A package as the core hands it to a source at deploy time. */
export interface OpenedPackage {
  /**
   * Absolute path of the verified package directory. A package used from a registry (-c oci://…) holds
   * only its metadata and charts there: its images are in the registry (see `registry`).
   */
  dir: string
  manifest: PackageManifest
  /** Set when the package is used from a registry: where it is, and where helm takes its charts from. */
  registry?: {
    /** host/…/packages/<name>:<version> */
    reference: string
    /** helm's arguments naming the chart stored as `file` in the registry, in place of the file: oci://…, --version, TLS flags. */
    chartArgs(file: string): string[]
  }
}

export interface DeployRequest {
  target: Target
  /** -n: the namespace of every unit that declares none; when absent helm uses its own default. */
  namespace?: string
  /** -d: the release name, for a package with one unit (the core refuses it for more). */
  release?: string
  /** User -f files, absolute paths, per unit id; kod's generated values files go before them. */
  valuesFiles: Record<string, string[]>
  wait: boolean
  dryRun: boolean
  /** Knobs given to deploy; each one given replaces the one recorded at package time. */
  render?: RenderKnobs
  /** Values of the flags this source declares for deploy. */
  options?: SourceOptions
  /**
   * --image-pull-secret: names of pull secrets every pod of every release should get. A helm-based source
   * finds the values that set them by rendering (docs/pull-secrets.md) and writes them with its relocation
   * values, keeping the secrets the values already give. Absent or empty: no pull-secret values.
   */
  imagePullSecrets?: string[]
}

/** A deployment a source prepared: the commands to run and the render check to pass before them. */
export interface DeployPlan {
  /** Files the source wrote (e.g. the generated values files), absolute paths. */
  generated: string[]
  /** Every values file the install passes to helm, in helm's order, each once (package-time, kod's, the user's). */
  valuesFiles?: string[]
  /** Commands that install, in order. */
  install: PlannedCommand[]
  /** Every image reference the deployment will run, as rendered with the generated values, and the unit that runs it. */
  renderedImages: Array<{ref: string; foundIn: string[]; unit: string}>
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
  /** Flags this source adds to kod's commands. */
  flags?: SourceFlag[]
  /** How sure this source is that it handles the request (0 = not at all). Highest wins; ties go to --kind. */
  detect(request: PackageRequest): Promise<number>
  /** Fetch into `stagingDir` and find every image. */
  package(ctx: SourceContext, request: PackageRequest, stagingDir: string): Promise<SourcePackage>
  /** Commands that push the package's charts (or other artifacts) into the target registry. */
  pushCharts(ctx: SourceContext, pkg: OpenedPackage, target: Target): PlannedCommand[]
  /** The values file (text) that points every image of one unit at the target: what deploy writes for it. */
  relocation(ctx: SourceContext, unit: FoundUnit | Unit, target: Target): string
  /** Write the values that relocate every image and plan the install. */
  deploy(ctx: SourceContext, pkg: OpenedPackage, request: DeployRequest): Promise<DeployPlan>
}

/** One image stored in the package (once, however many units run it). */
export interface PackagedImage {
  /** Reference as the first unit that runs it renders it. */
  ref: string
  /** Normalised reference (host/path[:tag][@digest]): the key units use. */
  name: string
  /**
   * The image's org.opencontainers.image.ref.name in the package's OCI layout (images/index.json): a name
   * kod chooses so that every valid reference can be stored. Absent in format-1 packages, where the layout
   * name is `name`.
   */
  layoutName?: string
  /** Digest of the top manifest or index, as stored and as pushed (an index kod trimmed to some platforms: that index's). */
  digest: string
  /** Platforms stored, os/arch[/variant]. */
  platforms: string[]
  /**
   * Format 4, present when kod stored fewer platforms than the source's index: the digest of that index,
   * as the source served it (and as a chart pinning it names it). `digest` is the trimmed index's.
   */
  sourceDigest?: string
  /** Format 4, with sourceDigest: the platforms of the source's index that were not packaged. */
  droppedPlatforms?: string[]
  /** Ids of the units that run it. */
  units: string[]
}

/** One image of one unit: where that unit runs it and the values that relocate it there. */
export interface UnitImage {
  /** Key into the package's images[] (normalised reference). */
  name: string
  /** Reference as this unit renders it. */
  ref: string
  values: ValuesBinding[]
  foundIn: string[]
  /** Why deploy cannot relocate it through values in this unit, when it cannot. */
  note?: string
  /**
   * Format 4: accepted at package time (kod package --allow-external) although it cannot be relocated:
   * deploy lets it be pulled from outside the private registry, saying so, instead of refusing.
   */
  external?: true
}

export interface Unit extends UnitBase {
  images: UnitImage[]
}

/**
 * kod-package.yaml as kod reads it: the shape of format 4 (see docs/kodpkg.md). A package written in format
 * 1 or 2 (one chart) is read as one unit, one in format 3 as it is (it has no `external` images);
 * `formatVersion` says which format is stored.
 */
export interface PackageManifest {
  formatVersion: 1 | 2 | 3 | 4
  kodVersion: string
  created: string
  source: {kind: string; ref: string; version?: string; repo?: string}
  name: string
  version: string
  charts: ChartEntry[]
  /** In install order. */
  units: Unit[]
  hints: string[]
  images: PackagedImage[]
  /**
   * Format 4: the platforms kod package kept of multi-platform images (os/arch[/variant]), or `all`
   * (--all-platforms). Absent in older packages, which kept every platform.
   */
  platforms?: string[] | 'all'
  /** Format 4: true when `platforms` is the packaging machine's, chosen by default (no --platform given). */
  platformsFromHost?: true
  /**
   * What kod found at package time and could not package or relocate, one line each: shown by inspect and
   * repeated by populate and deploy on the air-gapped side.
   */
  warnings?: string[]
  sourceData?: Record<string, unknown>
}
