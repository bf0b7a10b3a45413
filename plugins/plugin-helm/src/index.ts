export {createHelmSource, kodValuesFile} from './helm-source.js'
export {imagesInManifests, type RenderedImage} from './render.js'
export {bindingsFor, findCandidates, mergeValues, relocate} from './values.js'
