import {existsSync} from 'node:fs'

import type {DeployRequest, PackageManifest, Unit} from '../api.js'
import {usageError} from './errors.js'

/**
 * The generated values file of a unit, as deploy writes it into the unpacked package and `kod images
 * --relocate-to -o DIR` into DIR: kod-values-<id>.yaml ("/" in a namespace/name id becomes "_"). Sources
 * follow the same convention (docs/kodpkg.md).
 */
export function unitValuesFileName(id: string): string {
  return `kod-values-${id.replace('/', '_')}.yaml`
}

/** The units deploy installs, in order. */
export function installedUnits(manifest: PackageManifest): Unit[] {
  return manifest.units.filter((unit) => unit.installed)
}

/**
 * deploy's -f files per unit: `-f FILE` goes to every unit, `-f UNIT=FILE` only to that unit (a value
 * whose part before "=" names no unit is a file name). Each list keeps the order the flags were given.
 */
export function valuesFilesByUnit(manifest: PackageManifest, given: ReadonlyArray<{file: string; unit?: string}>): DeployRequest['valuesFiles'] {
  const units = installedUnits(manifest)
  const byUnit: DeployRequest['valuesFiles'] = Object.fromEntries(units.map((unit) => [unit.id, []]))
  for (const {file, unit} of given) {
    for (const target of units) if (unit === undefined || unit === target.id) byUnit[target.id].push(file)
  }
  return byUnit
}

/**
 * Splits "-f UNIT=FILE" when UNIT names one of the installed units (its id, or namespace/name); a value
 * that is an existing file is a file name whatever it holds. Anything else with "=" names a release the package does not install.
 */
export function scopedValuesFile(value: string, manifest: PackageManifest): {file: string; unit?: string} {
  const installed = installedUnits(manifest)
  const ids = installed.map((unit) => unit.id)
  // A release by its id (its name, or namespace/name where two share a name) or always by namespace/name.
  const byName = new Map<string, string>(installed.map((unit) => [unit.id, unit.id]))
  for (const unit of installed) {
    const qualified = `${unit.namespace ?? 'default'}/${unit.release}`
    if (!byName.has(qualified)) byName.set(qualified, unit.id)
  }
  const eq = value.indexOf('=')
  const named = eq > 0 ? byName.get(value.slice(0, eq)) : undefined
  if (named !== undefined) return {unit: named, file: value.slice(eq + 1)}
  if (eq > 0 && !existsSync(value)) {
    const unit = value.slice(0, eq)
    const recorded = manifest.units.some((candidate) => candidate.id === unit)
    throw usageError(`-f ${value}: ${unit} is ${recorded ? 'a release this package records but does not install' : 'no release of this package'}; its releases: ${ids.join(', ')}`)
  }
  return {file: value}
}

/** -d names the release of a package with one unit; with several, each release keeps its own name. */
export function checkReleaseFlag(manifest: PackageManifest, release: string | undefined): void {
  const units = installedUnits(manifest)
  if (release !== undefined && units.length > 1) {
    throw usageError(`-d names one release, but this package installs ${units.length} (${units.map((unit) => unit.id).join(', ')}): each keeps the name its source gave it`)
  }
}
