import type {PackageManifest} from '../../src/api.js'

/** A small manifest in the format kod writes (one chart, one unit, no images) for tests of the package format. */
export function demoManifest(overrides: Partial<PackageManifest> = {}): PackageManifest {
  return {
    formatVersion: 4,
    kodVersion: '0.0.0-test',
    created: '2026-01-01T00:00:00.000Z',
    source: {kind: 'helm', ref: './chart'},
    name: 'demo',
    version: '1.0.0',
    charts: [{name: 'demo', version: '1.0.0', file: 'charts/demo-1.0.0.tgz'}],
    units: [{id: 'demo', release: 'demo', chart: 'charts/demo-1.0.0.tgz', values: ['values/01-base.yaml'], installed: true, needs: [], images: []}],
    hints: [],
    images: [],
    ...overrides,
  }
}

/** One image as a unit runs it, with what the package stores of it (digest, platforms, layout name). */
export interface UnitImageView {
  name: string
  ref: string
  values: Array<{path: string; value: string; replace: number; ref?: string}>
  foundIn: string[]
  note?: string
  digest: string
  platforms: string[]
  layoutName?: string
}

/** The images of one unit (the only one by default) as `inspect --json` prints the manifest, joined with the stored images. */
export function unitImages(manifest: {units: Array<{id: string; images: Array<Omit<UnitImageView, 'digest' | 'platforms' | 'layoutName'>>}>; images: Array<{name: string; digest: string; platforms: string[]; layoutName?: string}>}, id?: string): UnitImageView[] {
  const unit = id === undefined ? manifest.units[0] : manifest.units.find((candidate) => candidate.id === id)
  if (!unit) throw new Error(`no unit ${id ?? ''}`)
  return unit.images.map((image) => {
    const stored = manifest.images.find((candidate) => candidate.name === image.name)
    if (!stored) throw new Error(`${image.name} is not stored`)
    return {...image, digest: stored.digest, platforms: stored.platforms, ...(stored.layoutName ? {layoutName: stored.layoutName} : {})}
  })
}

/**
 * A one-chart format-3 manifest (as parsed YAML) rewritten as kod 0.1 wrote it (format 1): package-time
 * values, bindings and source data at the top level, images without layout names. The layout's image
 * names must be changed to the images' `name` too (see renameLayoutImages).
 */
export function toFormat1(manifest: Record<string, unknown>): {manifest: Record<string, unknown>; layoutNames: Map<string, string>} {
  const {units, images, ...all} = manifest as {units: Array<Record<string, unknown>>; images: Array<Record<string, unknown>>}
  // Format 1 had no platform choice: platforms and platformsFromHost are format 4's.
  const rest = Object.fromEntries(Object.entries(all).filter(([key]) => key !== 'platforms' && key !== 'platformsFromHost'))
  const [unit] = units
  const unitImages = unit.images as Array<Record<string, unknown>>
  const layoutNames = new Map<string, string>()
  const legacyImages = images.map(({layoutName, units: __, ...image}) => {
    layoutNames.set(layoutName as string, image.name as string)
    const {values, foundIn, note} = unitImages.find((candidate) => candidate.name === image.name)!
    return {...image, values, foundIn, ...(note ? {note} : {})}
  })
  return {
    manifest: {...rest, formatVersion: 1, values: unit.values, images: legacyImages, ...(unit.data ? {sourceData: unit.data} : {})},
    layoutNames,
  }
}
