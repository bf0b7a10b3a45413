import {expect} from 'chai'
import type {execa as runExeca} from 'execa'
import {readFile} from 'node:fs/promises'
import path from 'node:path'
import {pathToFileURL} from 'node:url'
import YAML from 'yaml'

import {SCHEMAS, type SchemaName} from '../../src/lib/schemas.js'
import {validatorFor as atRunTime} from '../../src/lib/vendor/validators.js'
import {demoManifest} from '../support/manifest.js'

// What the build makes of src/lib/vendor/ (scripts/vendor.mjs): the built kod must check and run exactly as the
// source does. npm test builds first (pretest).
const root = path.resolve(import.meta.dirname, '..', '..')
const built = (file: string): string => pathToFileURL(path.join(root, 'dist', 'lib', 'vendor', file)).href

type Validate = ((data: unknown) => boolean) & {errors?: unknown}

describe('the built vendor modules', function () {
  it('validate every schema as ajv compiles it at run time: same verdicts, same errors', async function () {
    const {validatorFor: ahead} = (await import(built('validators.js'))) as {validatorFor: (name: SchemaName) => Validate}
    const manifest = demoManifest({
      images: [{ref: 'nginx:1', name: 'docker.io/library/nginx:1', layoutName: 'nginx+0123456789abcdef', digest: `sha256:${'a'.repeat(64)}`, platforms: ['linux/amd64'], units: ['demo']}],
    })
    const hints = YAML.parse(await readFile(path.join(root, 'test', 'fixtures', 'plugins', 'acme-hints', 'hints', 'acme.yaml'), 'utf8')) as Record<string, unknown>
    const legacy = {...manifest, formatVersion: 1, values: [], units: undefined, images: []}
    delete legacy.units
    const documents: Record<SchemaName, unknown[]> = {
      manifest: [
        manifest,
        {...manifest, formatVersion: 3},
        {...manifest, formatVersion: 9},
        {...manifest, extra: true},
        {...manifest, name: '../x'},
        {...manifest, images: [{...manifest.images[0], digest: 'nope', platforms: 'linux/amd64'}]},
        {...manifest, units: undefined},
        'not an object',
        null,
      ],
      legacyManifest: [legacy, {...legacy, formatVersion: 2, warnings: ['w']}, {...legacy, formatVersion: 4}, {...legacy, values: [1]}, {}],
      hints: [hints, {...hints, kind: 'Other'}, {...hints, hints: [{chart: ''}]}, {...hints, hints: [{chart: 'x', set: [{path: 'a'}]}]}, []],
    }
    expect(Object.keys(documents).sort()).to.deep.equal(Object.keys(SCHEMAS).sort())
    for (const name of Object.keys(SCHEMAS) as SchemaName[]) {
      const fromSource = atRunTime(name)
      const fromBuild = ahead(name)
      const verdicts = documents[name].map((document) => {
        const expected = fromSource(document)
        expect(fromBuild(document), `${name}: ${JSON.stringify(document).slice(0, 80)}`).to.equal(expected)
        expect(fromBuild.errors ?? null).to.deep.equal(fromSource.errors ?? null)
        return expected
      })
      // Both kinds of document were tried: some pass, some fail.
      expect(verdicts, name).to.include(true).and.to.include(false)
    }
  })

  it('hold each dependency in one file that runs', async function () {
    const source = await readFile(path.join(root, 'dist', 'lib', 'vendor', 'execa.js'), 'utf8')
    // Nothing of execa is left to load from node_modules: only node's own modules are imported.
    const imported = [...source.matchAll(/^import\s.*?from\s+['"]([^'"]+)['"]/gm)].map((match) => match[1])
    expect(imported.filter((module) => !module.startsWith('node:'))).to.deep.equal([])
    const {execa} = (await import(built('execa.js'))) as {execa: typeof runExeca}
    const result = await execa(process.execPath, ['-e', 'process.stdout.write("ran"); process.exit(3)'], {reject: false})
    expect(result.stdout).to.equal('ran')
    expect(result.exitCode).to.equal(3)
  })
})
