import type {ErrorObject} from 'ajv'

import {hintSchema} from './hint-schema.js'
import {legacyManifestSchema, manifestSchema} from './kodpkg-schema.js'

/**
 * kod's JSON Schemas that are fixed when kod is built, by the name validatorFor (vendor/validators.ts) gives
 * each: the build turns exactly these into ahead-of-time validation code (scripts/vendor.mjs).
 */
export const SCHEMAS = {
  manifest: manifestSchema,
  legacyManifest: legacyManifestSchema,
  hints: hintSchema,
} as const

export type SchemaName = keyof typeof SCHEMAS

/**
 * A manifest's first schema problem, in one line: a field this kod does not know is named as such (a hand-made,
 * tampered-with or newer manifest), anything else by its path and ajv's message.
 */
export function schemaProblem(errors: ErrorObject[] | null | undefined): string {
  const first = errors?.[0]
  const extra = (first?.params as {additionalProperty?: string} | undefined)?.additionalProperty
  return extra ? `${first?.instancePath || ''}/${extra} is a field this kod does not know (made by hand, tampered with, or by a newer kod)` : `${first?.instancePath || '/'} ${first?.message ?? ''}`.trim()
}
