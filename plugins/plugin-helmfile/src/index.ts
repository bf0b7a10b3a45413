/**
 * @kod/plugin-helmfile: read a helmfile into the releases kod packages. The kod source hooks come
 * later; this is the pure reading core they will call.
 */
export {needsHelmfileBinary} from './helmfile/binary.js'
export {HelmfileError} from './helmfile/errors.js'
export type {ChartRef, HelmDefaults, HelmfileModel, ReadOptions, Release, Repository, SetEntry, Values, ValuesEntry} from './helmfile/model.js'
export {readHelmfile} from './helmfile/read.js'
export {createHelmfileSource, type HelmfileSourceData} from './helmfile-source.js'
