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
