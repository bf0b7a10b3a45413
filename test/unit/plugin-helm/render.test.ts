import {expect} from 'chai'

import {imagesInManifests} from '../../../plugins/plugin-helm/src/render.js'

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
})
