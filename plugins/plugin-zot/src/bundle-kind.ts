import type {BundleKind, BundleManifest} from 'kod/sdk'

import {type ZotBundleFields, zotBundleFiles, zotBundleProblem, zotBundleSchema} from './manifest.js'

export type ZotBundleManifest = BundleManifest & ZotBundleFields

/** The zot bundle as kod/sdk writes and verifies it: kod-bundle.yaml of kind ZotBundle. */
export const zotBundle: BundleKind<ZotBundleManifest> = {
  kind: 'ZotBundle',
  schema: zotBundleSchema,
  files: zotBundleFiles,
  check: zotBundleProblem,
  deployedBy: 'kod deploy-zot',
}

/** The bundle's default file name: kod-zot-<version>-<os>-<arch>.kodbundle (the version and platform as known). */
export function bundleFileName(version: string, platform: string | undefined): string {
  return `kod-zot-${version}${platform ? `-${platform.replace('/', '-')}` : ''}.kodbundle`
}
