import {refuse} from './errors.js'

/**
 * Every key helmfile accepts (pkg/state/state.go ReleaseSetSpec, ReleaseSpec, HelmSpec,
 * EnvironmentSpec yaml tags). helmfile decodes strictly, so an unknown key is an error there and
 * here. A key kod reads is listed in `read`; one that changes nothing kod packages in `ignored`;
 * everything else is refused by the reader with its own reason.
 */

export const TOP_KEYS = new Set([
  'helmBinary', 'kustomizeBinary', 'values', 'environments', 'bases', 'helmDefaults', 'helmfiles', 'kubeContext',
  'namespace', 'chart', 'repositories', 'commonLabels', 'releases', 'llm', 'apiVersions', 'kubeVersion', 'hooks',
  'templates', 'defaultInherit', 'missingFileHandler', 'missingFileHandlerConfig', 'lockFilePath',
])

export const RELEASE_KEYS = new Set([
  'chart', 'chartPath', 'directory', 'version', 'verify', 'keyring', 'enableDNS', 'devel', 'wait', 'waitRetries',
  'waitForJobs', 'timeout', 'recreatePods', 'force', 'installed', 'updateStrategy', 'atomic', 'rollbackOnFailure',
  'cleanupOnFail', 'forceConflicts', 'historyMax', 'condition', 'createNamespace', 'reuseValues',
  'disableOpenAPIValidation', 'disableValidation', 'disableValidationOnInstall', 'missingFileHandler',
  'missingFileHandlerConfig', 'needs', 'hooks', 'unitTests', 'name', 'description', 'namespace', 'labels', 'values',
  'secrets', 'set', 'setString', 'valuesTemplate', 'setTemplate', 'apiVersions', 'kubeVersion', 'env',
  'valuesPathPrefix', 'kubeContext', 'insecureSkipTLSVerify', 'plainHttp', 'verifyTemplate', 'waitTemplate',
  'installedTemplate', 'conditionTemplate', 'dependencies', 'jsonPatches', 'strategicMergePatches', 'transformers',
  'adopt', 'forceGoGetter', 'forceNamespace', 'skipDeps', 'skipRefresh', 'postRenderer', 'skipSchemaValidation',
  'postRendererArgs', 'cascade', 'suppressOutputLineRegex', 'disableAutoDetectedKubeVersionForDiff', 'inherit',
  'suppressDiff', 'deleteWait', 'deleteTimeout', 'syncReleaseLabels', 'takeOwnership', 'serverSide', 'trackMode',
  'trackTimeout', 'trackLogs', 'trackFailedLogs', 'helmStuckGrace', 'trackKinds', 'skipKinds', 'trackResources',
  'kubedogQPS', 'kubedogBurst', 'trackFailOnError',
])

export const ENVIRONMENT_KEYS = new Set(['values', 'secrets', 'kubeContext', 'missingFileHandler', 'missingFileHandlerConfig', 'mergeStrategy'])

export const SUBHELMFILE_KEYS = new Set(['path', 'selectors', 'selectorsInherited', 'inherits', 'values'])

/**
 * Release keys that make helmfile rewrite the chart (chartify: kustomize, patches, extra
 * dependencies) or run something on the far side that kod cannot carry. The package must hold the
 * chart exactly as it will be installed, so these are refused, each with why.
 */
export const REFUSED_RELEASE_KEYS: Record<string, string> = {
  strategicMergePatches: 'strategicMergePatches make helmfile rewrite the chart with kustomize at deploy time; patch a copy of the chart instead',
  jsonPatches: 'jsonPatches make helmfile rewrite the chart with kustomize at deploy time; patch a copy of the chart instead',
  transformers: 'transformers make helmfile rewrite the chart with kustomize at deploy time; patch a copy of the chart instead',
  dependencies: 'ad-hoc dependencies make helmfile build a new chart at deploy time; add them to a local chart\'s Chart.yaml instead',
  forceNamespace: 'forceNamespace makes helmfile rewrite the chart at deploy time; set the namespace in the chart instead',
  postRenderer: 'a post-renderer rewrites the manifests with a local program at deploy time, so the images kod packages may not be the ones installed',
  postRendererArgs: 'a post-renderer rewrites the manifests with a local program at deploy time, so the images kod packages may not be the ones installed',
  secrets: 'secrets are decrypted with helm-secrets/sops at deploy time; decrypt them into a values file, or use the helmfile binary',
  inherit: 'release templates (inherit:) are not read by kod yet; use YAML anchors and merge keys (<<:) instead',
  env: 'env: reads environment variables of the machine running helmfile; use set: instead',
  forceGoGetter: 'forceGoGetter fetches the chart with go-getter from a remote location; download the chart and reference the local copy',
  valuesTemplate: 'valuesTemplate is rendered by helmfile\'s templating',
  setTemplate: 'setTemplate is rendered by helmfile\'s templating',
  verifyTemplate: 'verifyTemplate is rendered by helmfile\'s templating',
  waitTemplate: 'waitTemplate is rendered by helmfile\'s templating',
  installedTemplate: 'installedTemplate is rendered by helmfile\'s templating',
  conditionTemplate: 'conditionTemplate is rendered by helmfile\'s templating',
}

/** Release keys whose templating the helmfile binary resolves (so `needsHelmfile`, not a plain refusal). */
export const TEMPLATE_RELEASE_KEYS = new Set(['valuesTemplate', 'setTemplate', 'verifyTemplate', 'waitTemplate', 'installedTemplate', 'conditionTemplate'])

export function checkKeys(file: string, where: string, doc: Record<string, unknown>, known: Set<string>): void {
  for (const key of Object.keys(doc)) {
    if (!known.has(key)) refuse(file, `unknown key "${key}" in ${where} (helmfile refuses it too)`)
  }
}
