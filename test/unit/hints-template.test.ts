import {expect} from 'chai'
import {execa} from 'execa'
import {mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import YAML from 'yaml'

import type {AppliedHint} from '../../packages/helm-analysis/src/hints.js'
import {HINTS_TEMPLATE, writeHintsTemplate} from '../../packages/helm-analysis/src/hints.js'
import {toolPath} from '../support/kod.js'

/**
 * The analysis-only hints template: any reference text, with its {{ … }} evaluated by helm, renders to
 * exactly what it says, whatever quotes, colons or YAML syntax it holds.
 */
describe('plugin-helm: the hints template', function () {
  let dir: string
  let chart: string

  before(async function () {
    dir = await mkdtemp(path.join(os.tmpdir(), 'kod-hints-template-'))
    chart = path.join(dir, 'app')
    await mkdir(path.join(chart, 'templates'), {recursive: true})
    await writeFile(path.join(chart, 'Chart.yaml'), 'apiVersion: v2\nname: app\nversion: 1.2.3\nappVersion: "4.5"\n')
    await writeFile(path.join(chart, 'values.yaml'), YAML.stringify({x: '', registry: 'r.example:5000', tags: {worker: 'w-1'}}))
    await writeFile(path.join(chart, 'templates', '_helpers.tpl'), '{{- define "app.worker" -}}{{ .Values.registry }}/app/worker{{- end -}}\n')
  })

  after(async function () {
    await rm(dir, {recursive: true, force: true})
  })

  const cases: Array<[ref: string, rendered: string]> = [
    ['{{ .Values.x | default "repo/img:1.0" }}', 'repo/img:1.0'],
    ["{{ .Values.x | default \"repo/img\" }}:{{ .Chart.AppVersion }}", 'repo/img:4.5'],
    ['{{ .Values.registry }}/app/api:{{ .Chart.AppVersion }}', 'r.example:5000/app/api:4.5'],
    ['{{ include "app.worker" . }}:{{ .Values.tags.worker }}', 'r.example:5000/app/worker:w-1'],
    ['{{ printf "%s/%s" "quay.io" "org/img" }}:{{ "1.0" | quote | trimAll "\\"" }}', 'quay.io/org/img:1.0'],
    ['registry.local:5000/a/b:1.0', 'registry.local:5000/a/b:1.0'],
    ['say "hi"', 'say "hi"'],
    ["it's: here # not a comment", "it's: here # not a comment"],
    ["{{ 'a' | toString }}", '97'],
  ]

  function applied(refs: string[]): AppliedHint[] {
    return [{file: '/x/h.yaml', library: 'test', hint: {chart: 'app', images: refs.map((ref) => ({ref}))}}]
  }

  it('numbers the hinted images in order, with their origin', async function () {
    const images = await writeHintsTemplate(chart, applied(['a/b:1', 'c/d:2']))
    expect(images).to.deep.equal([
      {index: 0, ref: 'a/b:1', values: [], label: 'hint h.yaml (test)'},
      {index: 1, ref: 'c/d:2', values: [], label: 'hint h.yaml (test)'},
    ])
  })

  it('renders every reference exactly with real helm, quotes and colons included', async function () {
    await writeHintsTemplate(chart, applied(cases.map(([ref]) => ref)))
    const template = await readFile(path.join(chart, 'templates', HINTS_TEMPLATE), 'utf8')
    const {stdout} = await execa('helm', ['template', 'kod', chart, '--show-only', `templates/${HINTS_TEMPLATE}`], {env: {PATH: toolPath()}})
    const pod = YAML.parse(String(stdout)) as {spec: {containers: Array<{name: string; image: string}>}}
    expect(pod.spec.containers.map((container) => container.name), template).to.deep.equal(cases.map((_, index) => `hint-${index}`))
    expect(pod.spec.containers.map((container) => container.image), template).to.deep.equal(cases.map(([, rendered]) => rendered))
  })

  it('writes nothing when no hint names an image', async function () {
    const empty = path.join(dir, 'empty')
    await mkdir(empty)
    expect(await writeHintsTemplate(empty, [{file: '/x/h.yaml', library: 'test', hint: {chart: 'app'}}])).to.deep.equal([])
    expect(await readFile(path.join(empty, 'templates', HINTS_TEMPLATE), 'utf8').catch(() => 'absent')).to.equal('absent')
  })
})
