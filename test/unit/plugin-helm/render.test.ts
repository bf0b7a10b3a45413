import {expect} from 'chai'

import {composedImage, imageFieldsInText, imageFromMap, imagesInManifests, namedForImage, occurrences} from '../../../packages/helm-analysis/src/render.js'

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
  vgpuManager: {enabled: false, repository: "", image: vgpu-manager, version: ""}
  gds: {enabled: false, image: nvidia-fs}
  sandboxDevicePlugin: {repository: "", image: kubevirt-gpu-device-plugin, version: ""}
`
    // A component turned off, or whose repository is left empty, names no image (not docker.io/library/vgpu-manager).
    expect(imagesInManifests(output).map((image) => image.ref)).to.deep.equal(['nvcr.io/nvidia/driver:550.54.15', 'nvcr.io/nvidia/k8s/container-toolkit:v1.17.0'])
  })

  it('reads an image: map of any common shape as the whole reference', function () {
    expect(imageFromMap({registry: 'docker.io', repository: 'bitnami/redis', tag: '7.2', digest: ''})).to.equal('docker.io/bitnami/redis:7.2')
    expect(imageFromMap({registry: 'registry.k8s.io', image: 'ingress-nginx/controller', tag: 'v1.10.0', digest: `sha256:${'c'.repeat(64)}`})).to.equal(
      `registry.k8s.io/ingress-nginx/controller:v1.10.0@sha256:${'c'.repeat(64)}`,
    )
    expect(imageFromMap({name: 'cr.l5d.io/linkerd/debug', version: 'stable-2.14.10'})).to.equal('cr.l5d.io/linkerd/debug:stable-2.14.10')
    expect(imageFromMap({registry: 'quay.io', name: 'acme/c', tag: 3})).to.equal('quay.io/acme/c:3')
    // version is a tag, never dropped (it was: quay.io/acme/d, an image that is not the one that runs).
    expect(imageFromMap({repository: 'quay.io/acme/d', version: '4.0'})).to.equal('quay.io/acme/d:4.0')
    expect(imageFromMap({repository: 'quay.io/acme/e', version: `sha256:${'d'.repeat(64)}`})).to.equal(`quay.io/acme/e@sha256:${'d'.repeat(64)}`)
    expect(imageFromMap({repository: 'registry.local:5000/f:1.0', tag: '2.0'})).to.equal('registry.local:5000/f:1.0')
    expect(imageFromMap({pullPolicy: 'Always'})).to.equal(undefined)
    // name names other things too: an OS image of a machine, a name without a tag.
    expect(imageFromMap({name: 'gardenlinux', version: '1443.3.0'})).to.equal(undefined)
    expect(imageFromMap({name: 'cr.l5d.io/linkerd/proxy', version: ''})).to.equal(undefined)
    const output = `---
# Source: mesh/templates/debug.yaml
apiVersion: example.io/v1
kind: Mesh
spec:
  debug: {image: {name: cr.l5d.io/linkerd/debug, version: stable-2.14.10}}
  c: {image: {registry: quay.io, name: acme/c, tag: "3.0"}}
  d: {image: {repository: quay.io/acme/d, version: "4.0"}}
  e: {image: {registry: registry.k8s.io, image: ingress-nginx/controller, tag: v1.10.0}}
`
    expect(imagesInManifests(output).map((image) => image.ref)).to.deep.equal([
      'cr.l5d.io/linkerd/debug:stable-2.14.10',
      'quay.io/acme/c:3.0',
      'quay.io/acme/d:4.0',
      'registry.k8s.io/ingress-nginx/controller:v1.10.0',
    ])
  })

  it("composes a prometheus-operator resource's baseImage with its sha, tag or version, as the operator does", function () {
    const output = `---
# Source: mon/templates/prometheus.yaml
apiVersion: monitoring.coreos.com/v1
kind: Prometheus
spec: {baseImage: quay.io/prometheus/prometheus, version: v2.50.1}
---
# Source: mon/templates/alertmanager.yaml
apiVersion: monitoring.coreos.com/v1
kind: Alertmanager
spec: {baseImage: quay.io/prometheus/alertmanager, version: v0.26.0, tag: v0.27.0}
---
# Source: mon/templates/ruler.yaml
apiVersion: monitoring.coreos.com/v1
kind: ThanosRuler
spec: {baseImage: quay.io/thanos/thanos, version: v0.34.0, sha: ${'e'.repeat(64)}}
---
# Source: mon/templates/both.yaml
apiVersion: monitoring.coreos.com/v1
kind: Prometheus
spec: {image: quay.io/prometheus/prometheus:v3.0.0, baseImage: quay.io/ignored/prometheus, version: v2.0.0}
`
    expect(imagesInManifests(output).map((image) => image.ref)).to.deep.equal([
      'quay.io/prometheus/alertmanager:v0.27.0',
      'quay.io/prometheus/prometheus:v2.50.1',
      'quay.io/prometheus/prometheus:v3.0.0',
      `quay.io/thanos/thanos@sha256:${'e'.repeat(64)}`,
    ])
  })

  it("reads no image from a values dump kept as text, but a container's, even bare", function () {
    const dump = JSON.stringify({
      proxy: {image: {name: 'cr.l5d.io/linkerd/proxy', version: ''}},
      debug: {image: {name: 'cr.l5d.io/linkerd/debug', version: ''}},
      global: {proxy: {image: 'proxyv2'}},
      workflow: {container: {image: 'alpine'}},
      pinned: {image: {repository: 'quay.io/x/y', tag: '1.0'}},
    })
    const output = `---\n# Source: mesh/templates/config.yaml\nkind: ConfigMap\ndata:\n  values: '${dump}'\n`
    expect(imagesInManifests(output).map((image) => image.ref)).to.deep.equal(['alpine', 'quay.io/x/y:1.0'])
  })

  it('takes a policy\'s image patterns for what they are: nothing to pull', function () {
    const output = `---
# Source: policies/templates/latest.yaml
apiVersion: kyverno.io/v1
kind: ClusterPolicy
spec:
  rules:
    - validate:
        pattern:
          spec:
            containers: [{image: "!*:latest"}, {image: "*:*"}, {image: "registry.io/* | docker.io/*"}, {image: "nginx:1.?"}]
---
# Source: policies/templates/pod.yaml
kind: Pod
spec:
  containers: [{name: c, image: "nginx:1.25"}]
`
    expect(imagesInManifests(output).map((image) => image.ref)).to.deep.equal(['nginx:1.25'])
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
    // A CI runner's TOML config.
    const toml = ['[[runners]]', '  [runners.kubernetes]', '    image = "ubuntu:22.04"', "    image = 'alpine'", '    helper_image = "x/helper:1"', '[hero]', '  image = "assets/hero.jpg"'].join('\n')
    expect(imageFieldsInText(toml)).to.deep.equal(['ubuntu:22.04'])
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
