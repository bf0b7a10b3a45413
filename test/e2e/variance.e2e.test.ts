import {expect} from 'chai'
import {cp, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
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

async function images(args: string[] = [], chart = CHART): Promise<Listing & {stderr: string}> {
  const result = await kod(['images', '-c', chart, '--json', ...args])
  expect(result.exitCode, result.stderr).to.equal(0)
  return {...(JSON.parse(result.stdout) as Listing), stderr: result.stderr}
}

/** The fixture with another kubeVersion constraint in its Chart.yaml. */
async function capped(work: string, constraint: string): Promise<string> {
  const chart = path.join(work, constraint.replaceAll(/\W+/g, '_'))
  await cp(CHART, chart, {recursive: true})
  const file = path.join(chart, 'Chart.yaml')
  await writeFile(file, (await readFile(file, 'utf8')).replace(/^kubeVersion: .*$/m, `kubeVersion: "${constraint}"`))
  return chart
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

  it('a chart that caps the Kubernetes version is rendered for an older one; one that takes neither is said to be unchecked', async function () {
    const work = await mkdtemp(path.join(os.tmpdir(), 'kod-variance-'))
    try {
      const older = await images([], await capped(work, '>=1.20.0-0 <1.50.0-0'))
      expect(older.warnings.filter((line) => line.includes('changes with the Kubernetes version')).join('\n')).to.match(/it is registry\.invalid\/kubectl:v1\.25\.0 for 1\.25\.0/)
      const narrow = await images([], await capped(work, '>=1.30.0-0 <1.40.0-0'))
      expect(narrow.warnings.filter((line) => line.includes('changes with the Kubernetes version'))).to.deep.equal([])
      expect(narrow.stderr).to.match(/helm would not render the chart for another Kubernetes version \(1\.99\.0: .*; 1\.25\.0: .*\), so kod cannot tell which images depend on it: give --kube-version your cluster's version/)
    } finally {
      await rm(work, {recursive: true, force: true})
    }
  })

  it('with --kube-version, packages the tag that version renders and says nothing about it', async function () {
    const {images: found, warnings} = await images(['--kube-version', '1.29.3'])
    expect(found.map((image) => image.ref)).to.include('registry.invalid/kubectl:v1.29.0')
    expect(warnings.filter((line) => line.includes('Kubernetes version'))).to.deep.equal([])
    // The upgrade-only image is still named.
    expect(warnings.filter((line) => line.includes('migrator'))).to.have.length(1)
  })
})
