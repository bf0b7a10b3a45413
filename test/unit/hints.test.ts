import {expect} from 'chai'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import YAML from 'yaml'

import {hintValues, matchingHints} from '../../packages/helm-analysis/src/hints.js'
import {loadHintFile} from '../../src/lib/hints.js'

describe('hint files', function () {
  let dir: string

  before(async function () {
    dir = await mkdtemp(path.join(os.tmpdir(), 'kod-hint-unit-'))
  })

  after(async function () {
    await rm(dir, {recursive: true, force: true})
  })

  async function write(name: string, data: unknown): Promise<string> {
    const file = path.join(dir, name)
    await writeFile(file, typeof data === 'string' ? data : YAML.stringify(data))
    return file
  }

  const valid = {
    apiVersion: 'kod.dev/v1',
    kind: 'ImageHints',
    hints: [
      {chart: 'app', versions: '>=2.0.0 <3.0.0', images: [{ref: 'r.io/a/b:1', values: ['image.registry']}], set: [{path: 'a.b', value: true, reason: 'why'}]},
      {chart: 'app', versions: '^1.0.0', set: [{path: 'a.b', value: false}, {path: 'c', value: 1}]},
      {chart: 'other'},
    ],
  }

  it('loads a valid file', async function () {
    const loaded = await loadHintFile(await write('ok.yaml', valid), 'test')
    expect(loaded.hints).to.deep.equal(valid)
    expect(loaded.library).to.equal('test')
  })

  it('refuses files that do not match the schema, naming the place', async function () {
    const cases: Array<[unknown, RegExp]> = [
      [{...valid, apiVersion: 'v2'}, /\/apiVersion must be equal to constant/],
      [{...valid, hints: [{versions: '1'}]}, /\/hints\/0 must have required property 'chart'/],
      [{...valid, hints: [{chart: 'a', extra: 1}]}, /\/hints\/0 must NOT have additional properties/],
      ['a: [', /is not valid YAML/],
    ]
    for (const [data, pattern] of cases) {
      let error: Error | undefined
      try {
        await loadHintFile(await write('bad.yaml', data), 'test')
      } catch (caught) {
        error = caught as Error
      }
      expect(error?.message, String(data)).to.match(pattern)
    }
  })

  it('applies hints by chart name and version range, first hint winning on a value', async function () {
    const loaded = [await loadHintFile(await write('ok.yaml', valid), 'test')]
    expect(matchingHints(loaded, {name: 'app', version: '2.5.1'}).map((hint) => hint.hint.versions)).to.deep.equal(['>=2.0.0 <3.0.0'])
    expect(matchingHints(loaded, {name: 'app', version: '1.2.0'}).map((hint) => hint.hint.versions)).to.deep.equal(['^1.0.0'])
    expect(matchingHints(loaded, {name: 'app', version: '3.0.0'})).to.deep.equal([])
    expect(matchingHints(loaded, {name: 'other', version: '0.0.1-dev'})).to.have.length(1)
    const both = [...matchingHints(loaded, {name: 'app', version: '2.0.0'}), ...matchingHints(loaded, {name: 'app', version: '1.0.0'})]
    expect(hintValues(both)).to.deep.equal({values: {a: {b: true}, c: 1}, reasons: ['a.b: why', 'c: set by a hint from test']})
  })
})
