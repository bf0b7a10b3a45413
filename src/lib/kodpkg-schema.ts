/**
 * JSON Schema (draft-07) of kod-package.yaml, format version 1. docs/kodpkg.md describes each field;
 * `kod inspect --schema` prints this schema.
 */
const relativeFile = {type: 'string', minLength: 1, pattern: '^(?!/)(?!.*(^|/)\\.\\.(/|$)).+$'}

const valuesBinding = {
  type: 'object',
  required: ['path', 'value', 'replace'],
  additionalProperties: false,
  properties: {
    path: {type: 'string', minLength: 1},
    value: {type: 'string'},
    replace: {type: 'integer', minimum: 0},
    ref: {type: 'string', minLength: 1},
  },
}

export const manifestSchema = {
  $id: 'https://kod.dev/schemas/kod-package-v1.json',
  type: 'object',
  required: ['formatVersion', 'kodVersion', 'created', 'source', 'name', 'version', 'charts', 'values', 'hints', 'images'],
  additionalProperties: false,
  properties: {
    formatVersion: {const: 1},
    kodVersion: {type: 'string', minLength: 1},
    created: {type: 'string', minLength: 1},
    source: {
      type: 'object',
      required: ['kind', 'ref'],
      additionalProperties: false,
      properties: {
        kind: {type: 'string', pattern: '^[a-z][a-z0-9-]*$'},
        ref: {type: 'string', minLength: 1},
        version: {type: 'string'},
        repo: {type: 'string'},
      },
    },
    name: {type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$'},
    version: {type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9.+_-]*$'},
    charts: {
      type: 'array',
      items: {
        type: 'object',
        required: ['name', 'version', 'file'],
        additionalProperties: false,
        properties: {
          name: {type: 'string', minLength: 1},
          version: {type: 'string', minLength: 1},
          appVersion: {type: 'string'},
          file: relativeFile,
        },
      },
    },
    values: {type: 'array', items: relativeFile},
    hints: {type: 'array', items: relativeFile},
    images: {
      type: 'array',
      items: {
        type: 'object',
        required: ['ref', 'name', 'digest', 'platforms', 'values', 'foundIn'],
        additionalProperties: false,
        properties: {
          ref: {type: 'string', minLength: 1},
          name: {type: 'string', minLength: 1},
          digest: {type: 'string', pattern: '^[a-z0-9]+:[a-f0-9]{32,}$'},
          platforms: {type: 'array', items: {type: 'string'}},
          values: {type: 'array', items: valuesBinding},
          foundIn: {type: 'array', items: {type: 'string'}},
          note: {type: 'string'},
        },
      },
    },
    sourceData: {type: 'object'},
  },
} as const
