import {expect} from 'chai'
import path from 'node:path'

import {FIXTURES, kod} from '../support/kod.js'

/**
 * Images helm renders only at install time (docs/images.md, "What one render cannot show"), through real
 * helm: the fixture chart test/fixtures/charts/versions tags a kubectl Job with the Kubernetes version it is
 * rendered for (as velero's and fluent-bit's charts do) and runs a migration hook only on upgrade
 * (.Release.IsUpgrade). Neither may be a silent miss.
 */
const CHART = path.join(FIXTURES, 'charts', 'versions')

interface Listing {
  images: Array<{ref: string; values: string[]}>
  warnings: string[]
}

async function images(args: string[] = []): Promise<Listing> {
  const result = await kod(['images', '-c', CHART, '--json', ...args])
  expect(result.exitCode, result.stderr).to.equal(0)
  return JSON.parse(result.stdout) as Listing
}

describe('images helm renders only at install time (e2e, helm only)', function () {
  it("names an image whose tag follows the Kubernetes version when no --kube-version is given, and one only an upgrade renders", async function () {
    const {images: found, warnings} = await images()
    const kubectl = found.find((image) => image.ref.startsWith('registry.invalid/kubectl:'))
    // Rendered for helm's own default version, whatever that is for this helm.
    expect(kubectl?.ref, JSON.stringify(found)).to.match(/^registry\.invalid\/kubectl:v1\.\d+\.0$/)
    expect(kubectl!.values).to.deep.equal(['kubectl.repository'])
    expect(found.map((image) => image.ref)).to.not.include('registry.invalid/versions/migrator:1.0')
    const kube = warnings.filter((line) => line.includes('changes with the Kubernetes version'))
    expect(kube, warnings.join('\n')).to.have.length(1)
    expect(kube[0]).to.match(/^versions\/templates\/cleanup-job\.yaml names registry\.invalid\/kubectl:v1\.\d+\.0, which changes with the Kubernetes version .*; package again with --kube-version set to your cluster's version/)
    const upgrade = warnings.filter((line) => line.includes('renders only when helm upgrades'))
    expect(upgrade, warnings.join('\n')).to.deep.equal([
      'versions/templates/migrate-job.yaml names registry.invalid/versions/migrator:1.0, which renders only when helm upgrades the release (.Release.IsUpgrade), not on the first install, which kod renders: not packaged; if the workload runs it, add it with a hint (docs/hints.md)',
    ])
  })

  it('with --kube-version, packages the tag that version renders and says nothing about it', async function () {
    const {images: found, warnings} = await images(['--kube-version', '1.29.3'])
    expect(found.map((image) => image.ref)).to.include('registry.invalid/kubectl:v1.29.0')
    expect(warnings.filter((line) => line.includes('Kubernetes version'))).to.deep.equal([])
    // The upgrade-only image is still named.
    expect(warnings.filter((line) => line.includes('migrator'))).to.have.length(1)
  })
})
