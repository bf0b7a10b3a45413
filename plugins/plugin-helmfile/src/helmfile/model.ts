/**
 * What kod learns from a helmfile: every release it would install, with everything a package must
 * carry for it (chart, version, values files, set files) already resolved to absolute paths or
 * repository URLs, so no later step has to know helmfile's path and layering rules.
 */

/** Helm values: a YAML map. */
export type Values = Record<string, unknown>

export interface Repository {
  name: string
  /** As written; for an OCI repository usually without a scheme (`ghcr.io/org/charts`). */
  url: string
  oci: boolean
  /** The helmfile (or base) that declares it. */
  file: string
}

/** Where a release's chart comes from. */
export type ChartRef =
  /** A chart directory (holding Chart.yaml) or a packaged `.tgz`, absolute path. */
  | {kind: 'local'; path: string}
  /** `repo/name` from `repositories:`; `url` is what helm pulls (`oci://…/name` for an OCI repository). */
  | {kind: 'repo'; repository: string; name: string; url: string; oci: boolean}
  /** An `oci://` reference written on the release. */
  | {kind: 'oci'; url: string}

/** One `values:` entry, in helmfile's order: a local file or an inline map. */
export type ValuesEntry = {kind: 'file'; path: string} | {kind: 'inline'; values: Values}

/**
 * One `set:`/`setString:` entry, in the form helmfile turns into a helm flag:
 * `value` → `--set name=value`, `file` → `--set-file name=path`, `values` → `--set name={a,b}`.
 */
export type SetEntry =
  | {name: string; value: string}
  | {name: string; file: string}
  | {name: string; values: string[]}

export interface Release {
  /** helmfile's release ID: `[kubeContext/]namespace/name` (`ctx//name` when only a context is set). */
  id: string
  name: string
  /** Unset means "the namespace of the kube context", as in helm. */
  namespace?: string
  /** Kept only because it is part of the ID that `needs` refer to; meaningless offline. */
  kubeContext?: string
  chart: ChartRef
  /** As written: an exact version, or a semver range that helm resolves at pull time. */
  version?: string
  versionIsRange: boolean
  values: ValuesEntry[]
  set: SetEntry[]
  setString: SetEntry[]
  /** `installed: false` releases are kept (helmfile would uninstall them) and not installed. */
  installed: boolean
  /** `condition: foo.enabled` evaluated against the environment values; absent when the release has none. */
  condition?: {expression: string; enabled: boolean}
  /** installed and condition enabled: helmfile would install or upgrade it. */
  deploy: boolean
  /** IDs of the releases this one needs, resolved as helmfile resolves them. */
  needs: string[]
  /** `commonLabels` then the release's own `labels`. */
  labels: Record<string, string>
  wait: boolean
  waitForJobs: boolean
  /** Seconds; unset means helm's default. */
  timeout?: number
  createNamespace: boolean
  /** The helmfile, base or sub-helmfile that declares it. */
  file: string
  /** True when the release has `hooks:` (commands helmfile runs around it). */
  hooks: boolean
}

/** The `helmDefaults` that matter when installing offline. */
export interface HelmDefaults {
  wait: boolean
  waitForJobs: boolean
  timeout?: number
  createNamespace: boolean
}

export interface HelmfileModel {
  /** Absolute path of the helmfile read. */
  file: string
  environment: {name: string; values: Values}
  /** Every repository declared, by the file that declares it, in reading order. */
  repositories: Repository[]
  /** The top helmfile's; each release already carries its own effective wait/timeout/createNamespace. */
  helmDefaults: HelmDefaults
  /** In helmfile's processing order: each helmfile's sub-helmfiles first, then its own releases. */
  releases: Release[]
  /** IDs of the releases to install, in an order that respects `needs`, stable in file order. */
  installOrder: string[]
  warnings: string[]
}

export interface ReadOptions {
  /** helmfile's `-e`; `default` when unset. */
  environment?: string
}
