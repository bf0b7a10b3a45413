// Charts the bench writes: one that runs every image of the set, and one with 10,000 values.
import {mkdir, writeFile} from 'node:fs/promises'
import path from 'node:path'
import YAML from 'yaml'

import {type ImageSet} from './imageset.js'

const DEPLOYMENT = `{{- range $name, $component := .Values.components }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $.Release.Name }}-{{ $name }}
  labels:
    app.kubernetes.io/name: {{ $name }}
    app.kubernetes.io/instance: {{ $.Release.Name }}
spec:
  replicas: {{ $component.replicas | default 1 }}
  selector:
    matchLabels:
      app.kubernetes.io/name: {{ $name }}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: {{ $name }}
    spec:
      containers:
        - name: {{ $name }}
          image: "{{ $component.image.registry }}/{{ $component.image.repository }}:{{ $component.image.tag }}"
          imagePullPolicy: {{ $component.image.pullPolicy }}
{{- end }}
`

/** A chart with one Deployment per image of the set, each image set by `components.<name>.image.{registry,repository,tag}`. */
export async function writeSetChart(dir: string, name: string, set: ImageSet, registry: string): Promise<string> {
  const chart = path.join(dir, name)
  await mkdir(path.join(chart, 'templates'), {recursive: true})
  await writeFile(path.join(chart, 'Chart.yaml'), YAML.stringify({apiVersion: 'v2', name, version: '1.0.0', appVersion: '1.0.0'}))
  const components = Object.fromEntries(
    set.images.map((image) => [image.name, {replicas: 1, image: {registry, repository: image.repository, tag: image.tag, pullPolicy: 'IfNotPresent'}}]),
  )
  await writeFile(path.join(chart, 'values.yaml'), YAML.stringify({components}))
  await writeFile(path.join(chart, 'templates', 'deployments.yaml'), DEPLOYMENT)
  return chart
}

const WORKLOADS = `{{- range $name, $component := .Values.components }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $.Release.Name }}-{{ $name }}
spec:
  selector:
    matchLabels: {app: {{ $name }}}
  template:
    metadata:
      labels: {app: {{ $name }}}
    spec:
      containers:
        - name: {{ $name }}
          image: "{{ $.Values.global.imageRegistry | default $component.image.registry }}/{{ $component.image.repository }}:{{ $component.image.tag }}"
          env:
            - name: LOG_LEVEL
              value: {{ $.Values.settings.group000.section0.key0 | quote }}
          resources:
            {{- toYaml $component.resources | nindent 12 }}
{{- end }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-settings
data:
  settings.yaml: |
    {{- toYaml .Values.settings.group001 | nindent 4 }}
`

/**
 * A chart with 10,000 leaf values (100 groups × 10 sections × 10 keys of strings, numbers and booleans, some of
 * them host names and paths) beside 5 components with images: the shape of a large umbrella chart's values.
 */
export async function writeLargeValuesChart(dir: string): Promise<string> {
  const chart = path.join(dir, 'values10k')
  await mkdir(path.join(chart, 'templates'), {recursive: true})
  await writeFile(path.join(chart, 'Chart.yaml'), YAML.stringify({apiVersion: 'v2', name: 'values10k', version: '1.0.0', appVersion: '1.0.0'}))
  const settings: Record<string, Record<string, Record<string, string | number | boolean>>> = {}
  for (let group = 0; group < 100; group++) {
    const sections: Record<string, Record<string, string | number | boolean>> = {}
    for (let section = 0; section < 10; section++) {
      const keys: Record<string, string | number | boolean> = {}
      for (let key = 0; key < 10; key++) {
        const n = group * 100 + section * 10 + key
        keys[`key${key}`] =
          n % 5 === 0 ? n : n % 5 === 1 ? n % 2 === 0 : n % 5 === 2 ? `service-${n}.example.internal` : n % 5 === 3 ? `/var/lib/app/${n}/data` : `value ${n} of the settings`
      }
      sections[`section${section}`] = keys
    }
    settings[`group${String(group).padStart(3, '0')}`] = sections
  }
  const components = Object.fromEntries(
    ['api', 'worker', 'scheduler', 'ui', 'exporter'].map((name, index) => [
      name,
      {
        image: {registry: index % 2 === 0 ? 'docker.io' : 'quay.io', repository: `example/${name}`, tag: `2.${index}.1`},
        resources: {requests: {cpu: '100m', memory: '128Mi'}, limits: {memory: '512Mi'}},
      },
    ]),
  )
  await writeFile(path.join(chart, 'values.yaml'), YAML.stringify({global: {imageRegistry: ''}, components, settings}))
  await writeFile(path.join(chart, 'templates', 'workloads.yaml'), WORKLOADS)
  return chart
}
