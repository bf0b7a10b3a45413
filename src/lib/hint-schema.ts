/** JSON Schema (draft-07) of a hint file (docs/hints.md), whether given with --hints or provided by a plugin's library. */
export const hintSchema = {
  $id: 'https://kod.dev/schemas/image-hints-v1.json',
  type: 'object',
  required: ['apiVersion', 'kind', 'hints'],
  additionalProperties: false,
  properties: {
    apiVersion: {const: 'kod.dev/v1'},
    kind: {const: 'ImageHints'},
    hints: {
      type: 'array',
      items: {
        type: 'object',
        required: ['chart'],
        additionalProperties: false,
        properties: {
          chart: {type: 'string', minLength: 1},
          versions: {type: 'string', minLength: 1},
          images: {
            type: 'array',
            items: {
              type: 'object',
              required: ['ref'],
              additionalProperties: false,
              properties: {
                ref: {type: 'string', minLength: 1},
                values: {type: 'array', items: {type: 'string', minLength: 1}},
              },
            },
          },
          set: {
            type: 'array',
            items: {
              type: 'object',
              required: ['path', 'value'],
              additionalProperties: false,
              properties: {
                path: {type: 'string', minLength: 1},
                value: {},
                reason: {type: 'string'},
              },
            },
          },
        },
      },
    },
  },
} as const
