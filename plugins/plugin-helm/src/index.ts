export {createHelmSource} from './helm-source.js'
// Chart analysis lives in @kod/helm-analysis; re-exported here for callers of plugin-helm's old surface.
export {ImageAnalyzer, imagesInManifests, mergeValues, occurrences, PROBE_TARGET, relocatedValue, relocationValues, type RenderedImage} from '@kod/helm-analysis'
