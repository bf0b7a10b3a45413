/**
 * JSON Schemas (draft-07) of kod-package.yaml. `manifestSchema` is formats 3 and 4, format 4 the one kod writes and
 * `kod inspect --schema` prints; `legacyManifestSchema` is formats 1 and 2 (one chart; 2 adds
 * images[].layoutName and warnings), which kod still reads. docs/kodpkg.md describes each field.
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

export const legacyManifestSchema = {
  $id: 'https://kod.dev/schemas/kod-package-v2.json',
  type: 'object',
  required: ['formatVersion', 'kodVersion', 'created', 'source', 'name', 'version', 'charts', 'values', 'hints', 'images'],
  additionalProperties: false,
  properties: {
    formatVersion: {enum: [1, 2]},
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
          layoutName: {type: 'string', pattern: '^[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*$'},
          digest: {type: 'string', pattern: '^[a-z0-9]+:[a-f0-9]{32,}$'},
          platforms: {type: 'array', items: {type: 'string'}},
          values: {type: 'array', items: valuesBinding},
          foundIn: {type: 'array', items: {type: 'string'}},
          note: {type: 'string'},
        },
      },
    },
    warnings: {type: 'array', items: {type: 'string', minLength: 1}},
    sourceData: {type: 'object'},
  },
  // Format 2 names every image in the layout itself (layoutName); format 1 used the normalised name.
  if: {type: 'object', properties: {formatVersion: {const: 2}}},
  then: {type: 'object', properties: {images: {type: 'array', items: {type: 'object', required: ['layoutName']}}}},
} as const

const layoutName = {type: 'string', pattern: '^[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*$'}
/** os/arch[/variant], as kod records a platform. */
const platform = {type: 'string', pattern: '^[a-z0-9][a-z0-9._-]*/[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)?$'}
const unitId = {type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$'}

export const manifestSchema = {
  $id: 'https://kod.dev/schemas/kod-package-v4.json',
  type: 'object',
  required: ['formatVersion', 'kodVersion', 'created', 'source', 'name', 'version', 'charts', 'units', 'hints', 'images'],
  additionalProperties: false,
  properties: {
    // Format 4 added units[].images[].external, images[].sourceDigest and droppedPlatforms, platforms and
    // platformsFromHost; a format-3 manifest is a format-4 one without them.
    formatVersion: {enum: [3, 4]},
    kodVersion: legacyManifestSchema.properties.kodVersion,
    created: legacyManifestSchema.properties.created,
    source: legacyManifestSchema.properties.source,
    name: legacyManifestSchema.properties.name,
    version: legacyManifestSchema.properties.version,
    charts: legacyManifestSchema.properties.charts,
    units: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        required: ['id', 'release', 'chart', 'values', 'installed', 'needs', 'images'],
        additionalProperties: false,
        properties: {
          id: unitId,
          release: {type: 'string', minLength: 1},
          namespace: {type: 'string', minLength: 1},
          // An installed unit's chart is one of charts[].file (checked by kod); one not installed names the chart as its source did.
          chart: {type: 'string', minLength: 1},
          values: {type: 'array', items: relativeFile},
          installed: {type: 'boolean'},
          needs: {type: 'array', items: unitId},
          images: {
            type: 'array',
            items: {
              type: 'object',
              required: ['name', 'ref', 'values', 'foundIn'],
              additionalProperties: false,
              properties: {
                name: {type: 'string', minLength: 1},
                ref: {type: 'string', minLength: 1},
                values: {type: 'array', items: valuesBinding},
                foundIn: {type: 'array', items: {type: 'string'}},
                note: {type: 'string'},
                external: {const: true},
              },
            },
          },
          data: {type: 'object'},
        },
      },
    },
    hints: {type: 'array', items: relativeFile},
    images: {
      type: 'array',
      items: {
        type: 'object',
        required: ['ref', 'name', 'layoutName', 'digest', 'platforms', 'units'],
        additionalProperties: false,
        properties: {
          ref: {type: 'string', minLength: 1},
          name: {type: 'string', minLength: 1},
          layoutName,
          digest: {type: 'string', pattern: '^[a-z0-9]+:[a-f0-9]{32,}$'},
          platforms: {type: 'array', items: {type: 'string'}},
          // Format 4: an index stored with fewer platforms than the source's: the source's digest, and what was dropped.
          sourceDigest: {type: 'string', pattern: '^[a-z0-9]+:[a-f0-9]{32,}$'},
          droppedPlatforms: {type: 'array', minItems: 1, items: {type: 'string', minLength: 1}},
          units: {type: 'array', minItems: 1, items: unitId},
        },
        dependencies: {sourceDigest: ['droppedPlatforms'], droppedPlatforms: ['sourceDigest']},
      },
    },
    // Format 4: the platforms kod package kept (--platform, or the packaging machine's), or all of them.
    platforms: {oneOf: [{const: 'all'}, {type: 'array', minItems: 1, items: platform}]},
    platformsFromHost: {const: true},
    warnings: {type: 'array', items: {type: 'string', minLength: 1}},
    sourceData: {type: 'object'},
  },
} as const
