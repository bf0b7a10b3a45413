import {expect} from 'chai'
import {execa} from 'execa'
import {mkdir, mkdtemp, readdir, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import YAML from 'yaml'

import type {LoadedHints, SourceContext, ToolRunner} from 'kod'

import {renderAhead} from '../../../packages/helm-analysis/src/ahead.js'
import type {RenderOptions} from '../../../packages/helm-analysis/src/render.js'
import {RenderSession} from '../../../packages/helm-analysis/src/session.js'
import {toolPath} from '../../support/kod.js'

/**
 * The first render of a local chart, started on its directory while helm packages it: the analysis takes
 * it for the archive's first render only when it had the very same values, and renders the archive
 * otherwise. Real helm; the context records what it ran.
 */
describe('plugin-helm: the render ahead of a chart directory', function () {
  let dir: string
  let chart: string
  let archive: string
  let runs: string[][]
  let ctx: SourceContext
  const options: RenderOptions = {release: 'kod', namespace: 'default', valuesFiles: []}

  before(async function () {
    dir = await mkdtemp(path.join(os.tmpdir(), 'kod-ahead-'))
    chart = path.join(dir, 'app')
    await mkdir(path.join(chart, 'templates'), {recursive: true})
    await writeFile(path.join(chart, 'Chart.yaml'), 'apiVersion: v2\nname: app\nversion: 1.2.3\n')
    await writeFile(path.join(chart, 'values.yaml'), YAML.stringify({image: 'r.example/app:1', extra: ''}))
    await writeFile(
      path.join(chart, 'templates', 'pod.yaml'),
      '{{- if eq .Values.image "fail" }}{{ fail "refused" }}{{ end }}\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: {{ .Values.image | quote }}, args: [{{ .Values.extra | quote }}]}]\n',
    )
    await execa('helm', ['package', chart, '--destination', dir], {env: {PATH: toolPath()}})
    archive = path.join(dir, (await readdir(dir)).find((file) => file.endsWith('.tgz'))!)
  })

  beforeEach(async function () {
    runs = []
    const tmpDir = await mkdtemp(path.join(dir, 'tmp-'))
    const tools: ToolRunner = {
      binary: () => 'helm',
      async run(_tool, args) {
        runs.push(args)
        const result = await execa('helm', args, {env: {PATH: toolPath()}})
        return {stdout: String(result.stdout), stderr: String(result.stderr)}
      },
    }
    ctx = {tmpDir, tools, log: {info() {}, warn() {}, debug() {}}} as unknown as SourceContext
  })

  after(async function () {
    await rm(dir, {recursive: true, force: true})
  })

  const hint = (set: Array<{path: string; value: unknown}>, images: Array<{ref: string}> = []): LoadedHints =>
    ({file: 'h.yaml', library: 'test', hints: {hints: [{chart: 'app', set, images}]}}) as unknown as LoadedHints

  it('is taken as the first render of the archive when the values are the same, and renders what the archive renders', async function () {
    const ahead = await renderAhead(ctx, chart, options, [hint([{path: 'extra', value: 'from-hint'}])])
    expect(runs.map((args) => args[2])).to.deep.equal([chart])
    const session = new RenderSession(ctx, archive, options, ahead)
    await session.prepare({image: 'r.example/app:1', extra: ''}, {extra: 'from-hint'})
    const output = await session.render()
    expect(runs).to.have.length(1)
    expect(session.count).to.equal(1)
    expect(output).to.include('image: "r.example/app:1"').and.include('"from-hint"')
    const itself = new RenderSession(ctx, archive, options)
    await itself.prepare({}, {extra: 'from-hint'})
    expect(output).to.equal(await itself.render())
  })

  it('is not taken when the analysis renders with other values: the archive is rendered', async function () {
    // The directory's Chart.yaml matched no hint; the archive's analysis has hint values.
    const ahead = await renderAhead(ctx, chart, options, [])
    const session = new RenderSession(ctx, archive, options, ahead)
    await session.prepare({}, {extra: 'from-hint'})
    const output = await session.render()
    expect(runs.map((args) => args[2])).to.deep.equal([chart, archive])
    expect(output).to.include('"from-hint"')
  })

  it('is not taken when it failed: the archive is rendered, and fails with its own error', async function () {
    const values = path.join(dir, 'fail.yaml')
    await writeFile(values, 'image: fail\n')
    const failing = {...options, valuesFiles: [values]}
    const ahead = await renderAhead(ctx, chart, failing, [])
    const session = new RenderSession(ctx, archive, failing, ahead)
    await session.prepare({}, {})
    const error = await session.render().then(() => undefined, (error: unknown) => error as Error)
    expect(error?.message).to.include('refused')
    expect(runs.map((args) => args[2])).to.deep.equal([chart, archive])
  })

  it('is not started for --set, nor for hinted references (rendered from a copy with the hints template)', async function () {
    expect(await renderAhead(ctx, chart, {...options, set: ['image=x/y:1']}, [])).to.equal(undefined)
    expect(await renderAhead(ctx, chart, options, [hint([], [{ref: 'r.example/other:2'}])])).to.equal(undefined)
    expect(runs).to.deep.equal([])
  })
})
