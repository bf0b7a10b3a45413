export {ImageAnalyzer, PROBE_TARGET} from './analyze.js'
export {createHelmSource, kodValuesFile} from './helm-source.js'
export {imagesInManifests, occurrences, type RenderedImage} from './render.js'
export {mergeValues, relocatedValue, relocationValues} from './values.js'
