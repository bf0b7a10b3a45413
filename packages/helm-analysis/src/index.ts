// @kod/helm-analysis: the Helm chart work every helm-based kod source shares (plugin-helm, plugin-helmfile),
// as a versioned library rather than one plugin importing another's files. Like the plugins it serves, it
// imports kod's contract as types only: the tool runner, logger and reference helpers come with each call.

/** The version of this library's API; bumped when a change here would break a plugin that calls it. */
export const HELM_ANALYSIS_API = 'kod.helm-analysis/v1'

// Fetch: a chart reference (directory, .tgz, https://, oci://, repo/name) into a packaged .tgz.
export {chartMetadata, type ChartInput, classify, describeInput, fetchChart, missingDependencies} from './fetch.js'
// A chart archive read as files: values with subchart defaults, template sources.
export {type ChartFiles, type ChartTree, readChartFiles, readChartTree, unpackChart, valuesPathsInTemplates} from './chart-files.js'
// The first render of a local chart, started on its directory while helm packages it.
export {renderAhead, type RenderAhead} from './ahead.js'
// Render: helm template as the install will, and the images and image-like strings in its output.
export {
  composedImage,
  imageFieldsInText,
  imagesInManifests,
  imageTokens,
  knobArgs,
  namedForImage,
  type Occurrence,
  occurrences,
  render,
  type RenderedImage,
  type RenderKnobs,
  type RenderOptions,
  setValues,
  templateArgs,
} from './render.js'
// Image analysis: which values put which image where (docs/images.md), and its steps.
export {ImageAnalyzer} from './analyzer.js'
export {type Analysis, type Unpackaged} from './result.js'
export {type AnalysisHints} from './hint-bindings.js'
export {imagePart, looksLikeImage} from './items.js'
export {type Candidate, findCandidates} from './candidates.js'
export {alignFirst} from './sentinels.js'
export {PROBE_TARGET} from './probe.js'
// Hints: matching hint files, their values, and the analysis-only template of hinted references.
export {type AppliedHint, type HintedImage, hintedImages, hintsTemplate, hintTemplateName, hintValues, HINTS_TEMPLATE, matchingHints, writeHintsTemplate} from './hints.js'
// Values and relocation: helm's merge, values paths, the relocation values deploy writes.
export {
  getPath,
  isMap,
  joinPath,
  mergeValues,
  nameOf,
  type PathKey,
  relocatedValue,
  relocationValues,
  replaceLength,
  setPath,
  splitPath,
  type Values,
} from './values.js'
// Deploy: the images the install will run, checked against the private registry before installing.
export {imagesToCheck} from './deploy-check.js'
// Deploy: the values that give every pod the pull secrets of --image-pull-secret, found by rendering.
export {
  type ChosenSecretValue,
  effectiveSecrets,
  findPullSecretValues,
  type FindPullSecrets,
  missingSecrets,
  pullSecretCandidates,
  type PullSecretCandidate,
  type PullSecretPlan,
  type SecretShape,
  type SecretTarget,
  secretTargets,
  secretValue,
} from './pull-secrets.js'
// One release, as helm-based sources package and deploy it.
export {
  analyseRelease,
  type AnalysedRelease,
  analysisOptions,
  type AnalyseRelease,
  BITNAMI_REASON,
  type InstallSettings,
  mergeKnobs,
  PACKAGE_NAMESPACE,
  PACKAGE_RELEASE,
  type PlannedRelease,
  planRelease,
  pullSecretSection,
  pushChartCommands,
  releaseData,
  type ReleaseData,
  relocationFile,
  unitFile,
  unitRelocation,
} from './release.js'
