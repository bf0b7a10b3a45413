// The JSON Schemas kod checks files against, as validation functions. Built, this module is replaced by the code ajv
// generates from the very same schemas (scripts/vendor.mjs, ajv's "standalone" code): loading ajv and compiling a
// schema when a command reads a package or a hint file took ~30 ms and ~45 ms a schema (docs/performance.md). Run
// from source (the unit tests, through tsx), ajv compiles each schema the first time it is asked for, as before.
import {Ajv, type ValidateFunction} from 'ajv'

import {SCHEMAS, type SchemaName} from '../schemas.js'

let ajv: Ajv | undefined
const compiled = new Map<SchemaName, ValidateFunction>()

/** The validation function of one of kod's schemas, as `new Ajv({allErrors: true})` compiles it. */
export function validatorFor(name: SchemaName): ValidateFunction {
  let validate = compiled.get(name)
  if (!validate) {
    validate = (ajv ??= new Ajv({allErrors: true})).compile(SCHEMAS[name])
    compiled.set(name, validate)
  }
  return validate
}
