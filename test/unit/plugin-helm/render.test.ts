import {expect} from 'chai'

import {composedImage, imageFieldsInText, imagesInManifests, namedForImage, occurrences} from '../../../packages/helm-analysis/src/render.js'

describe('plugin-helm: images in rendered manifests', function () {
  it('finds image fields at any depth, with the template they came from', function () {
    const output = `---
# Source: app/templates/deploy.yaml
apiVersion: apps/v1
kind: Deployment
spec:
  template:
    spec:
      initContainers: [{name: init, image: "busybox:1.36"}]
      containers:
        - name: app
          image: nginx:1.25
---
# Source: app/templates/cron.yaml
kind: CronJob
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers: [{name: c, image: nginx:1.25}]
          ephemeralContainers: [{name: e, image: "debug:1"}]
---
# Source: app/templates/am.yaml
apiVersion: monitoring.coreos.com/v1
kind: Alertmanager
spec:
  image: quay.io/prometheus/alertmanager:v0.27.0
  containers: []
---
# Source: app/templates/empty.yaml
kind: ConfigMap
data:
  image: ""
---
# Source: app/templates/crd.yaml
kind: CustomResourceDefinition
spec:
  image: {type: string}
`
    expect(imagesInManifests(output)).to.deep.equal([
      {ref: 'busybox:1.36', foundIn: ['app/templates/deploy.yaml']},
      {ref: 'debug:1', foundIn: ['app/templates/cron.yaml']},
      {ref: 'nginx:1.25', foundIn: ['app/templates/cron.yaml', 'app/templates/deploy.yaml']},
      {ref: 'quay.io/prometheus/alertmanager:v0.27.0', foundIn: ['app/templates/am.yaml']},
    ])
  })

  it('composes the image of a custom resource that splits it into repository, image and version', function () {
    expect(composedImage({repository: 'nvcr.io/nvidia', image: 'driver', version: '550.54.15'})).to.equal('nvcr.io/nvidia/driver:550.54.15')
    expect(composedImage({repository: 'nvcr.io/nvidia/', image: 'gpu-feature-discovery', version: 'sha256:' + 'a'.repeat(64)})).to.equal(`nvcr.io/nvidia/gpu-feature-discovery@sha256:${'a'.repeat(64)}`)
    expect(composedImage({repository: 'quay.io/x', image: 'y:1.0', version: '2'})).to.equal('quay.io/x/y:1.0')
    expect(composedImage({repository: 'quay.io/x', image: 'y', tag: 3})).to.equal('quay.io/x/y:3')
    // A container has no repository: its image stays as written.
    expect(composedImage({name: 'c', image: 'nginx:1.25'})).to.equal(undefined)
    expect(composedImage({repository: '', image: 'driver'})).to.equal(undefined)
    const output = `---
# Source: gpu/templates/policy.yaml
kind: ClusterPolicy
spec:
  driver: {repository: nvcr.io/nvidia, image: driver, version: "550.54.15"}
  toolkit: {repository: nvcr.io/nvidia/k8s, image: container-toolkit, version: v1.17.0}
`
    expect(imagesInManifests(output).map((image) => image.ref)).to.deep.equal(['nvcr.io/nvidia/driver:550.54.15', 'nvcr.io/nvidia/k8s/container-toolkit:v1.17.0'])
  })

  it('reads image: lines of pod templates kept as text, and only plausible references', function () {
    const text = [
      'containers:',
      '  - name: a',
      '    image: busybox:1.28',
      '  - image: "quay.io/x/y@sha256:' + 'b'.repeat(64) + '"  # pinned',
      "    image: 'registry.local:5000/z'",
      '    image: "{{ .ProxyImage }}"',
      '    image: true',
      '    imagePullPolicy: Always',
      'debugImage: ghcr.io/not/this:1',
    ].join('\n')
    expect(imageFieldsInText(text)).to.deep.equal(['busybox:1.28', `quay.io/x/y@sha256:${'b'.repeat(64)}`, 'registry.local:5000/z'])
  })

  it('names the flag of an argument and the variable of an env value', function () {
    const output = `---
# Source: a/templates/d.yaml
kind: Deployment
spec:
  template:
    spec:
      containers:
        - name: c
          image: x/y:1
          args: [--acme-http01-solver-image=quay.io/j/solver:1, --v=2, plain]
          env: [{name: RELATED_IMAGE_X, value: "quay.io/j/x:1"}]
`
    const found = occurrences(output).filter((occurrence) => occurrence.kind === 'arg' || occurrence.kind === 'env')
    expect(found.map((occurrence) => [occurrence.value, occurrence.name])).to.deep.equal([
      ['--acme-http01-solver-image=quay.io/j/solver:1', '--acme-http01-solver-image'],
      ['--v=2', '--v'],
      ['plain', undefined],
      ['quay.io/j/x:1', 'RELATED_IMAGE_X'],
    ])
    expect(namedForImage('--acme-http01-solver-image')).to.equal(true)
    expect(namedForImage('RELATED_IMAGE_X')).to.equal(true)
    expect(namedForImage('--v')).to.equal(false)
  })
})
