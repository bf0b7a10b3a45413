import {expect} from 'chai'

import {needsHelmfileBinary, readHelmfile} from '../src/index.js'
import {fixture, refused} from './helpers.js'

const r = (name: string): string => fixture('refuse', name)

/** Each refusal: the file read, the file the message must name, and what it must say. */
const cases: Array<[string, string, string, RegExp]> = [
  ['a .gotmpl helmfile', 'templated.yaml.gotmpl', 'templated.yaml.gotmpl', /needs the helmfile binary/],
  ['"{{" in a helmfile', 'braces.yaml', 'braces.yaml', /contains "\{\{".*needs the helmfile binary/],
  ['"{{" in an environment values file', 'env-template.yaml', 'env-template-values.yaml', /needs the helmfile binary/],
  ['a .gotmpl release values file', 'values-template.yaml', 'v.yaml.gotmpl', /needs the helmfile binary/],
  ['a vals reference', 'vals-ref.yaml', 'vals-ref.yaml', /vals reference.*needs the helmfile binary/],
  ['a git:: sub-helmfile', 'git-helmfile.yaml', 'git-helmfile.yaml', /remote \(git::/],
  ['a git:: base', 'git-base.yaml', 'git-base.yaml', /remote \(git::/],
  ['a git:: chart', 'git-chart.yaml', 'git-chart.yaml', /go-getter/],
  ['strategicMergePatches', 'strategic-merge-patches.yaml', 'strategic-merge-patches.yaml', /strategicMergePatches make helmfile rewrite the chart/],
  ['jsonPatches', 'json-patches.yaml', 'json-patches.yaml', /jsonPatches make helmfile rewrite the chart/],
  ['transformers', 'transformers.yaml', 'transformers.yaml', /transformers make helmfile rewrite the chart/],
  ['ad-hoc dependencies', 'dependencies.yaml', 'dependencies.yaml', /ad-hoc dependencies/],
  ['a local chart without Chart.yaml (kustomize)', 'kustomize.yaml', 'kustomize.yaml', /has no Chart.yaml — kustomize/],
  ['a release without name', 'no-name.yaml', 'no-name.yaml', /a release has no name/],
  ['a release without chart', 'no-chart.yaml', 'no-chart.yaml', /release "a" has no chart/],
  ['duplicate release identities', 'duplicate.yaml', 'duplicate.yaml', /release "x\/a" is declared twice/],
  ['an unknown repository prefix', 'unknown-repo.yaml', 'unknown-repo.yaml', /names repository "stable", which this helmfile does not declare/],
  ['an unknown need', 'unknown-need.yaml', 'unknown-need.yaml', /needs an undefined release "b"/],
  ['a needs cycle', 'cycle.yaml', 'cycle.yaml', /needs form a cycle: a → b → a/],
  ['an unknown key (helmfile decodes strictly)', 'unknown-key.yaml', 'unknown-key.yaml', /unknown key "valuez" in release "a"/],
  ['release secrets', 'secrets.yaml', 'secrets.yaml', /helm-secrets\/sops/],
  ['a base with bases', 'nested-base.yaml', 'nested-base-inner.yaml', /cannot have bases of its own/],
  ['a condition not ending in .enabled', 'bad-condition.yaml', 'bad-condition.yaml', /must be in the form 'foo.enabled'/],
  ['a condition on values that do not exist', 'missing-condition.yaml', 'missing-condition.yaml', /field '.redis' not found/],
  ['a missing values file', 'missing-values.yaml', 'missing-values.yaml', /values file of release "a" matching "nope.yaml" does not exist/],
  ['a directory holding helmfile.d/', 'several', 'several', /holds helmfile\.d\/, several helmfiles; a kod package holds one helmfile/],
  ['helmfile.d/ itself', 'several/helmfile.d', 'helmfile.d', /is helmfile\.d\/, several helmfiles; a kod package holds one helmfile/],
  ['a values file that holds a list, not a map', 'list-values-helmfile.yaml', 'list-values.yaml', /values file of release "a" holds a list, not a map of values/],
]

describe('readHelmfile: refusals (one line, exit 2, naming the file)', () => {
  for (const [what, file, named, message] of cases) {
    it(`refuses ${what}`, async () => {
      await refused(readHelmfile(r(file)), named, message)
    })
  }

  it('refuses an unknown environment, as helmfile does', async () => {
    await refused(readHelmfile(fixture('shop'), {environment: 'staging'}), 'shop/helmfile.yaml', /environment "staging" is not defined/)
  })

  it('refuses -e on a helmfile without environments, but accepts default', async () => {
    await refused(readHelmfile(fixture('merge'), {environment: 'prod'}), 'merge/helmfile.yaml', /environment "prod" is not defined/)
    expect((await readHelmfile(fixture('merge'), {environment: 'default'})).releases).to.have.length(2)
  })

  it('marks templating refusals so a caller with the binary can fall back', async () => {
    const e = await refused(readHelmfile(r('braces.yaml')), 'braces.yaml', /helmfile binary/)
    expect(e.needsHelmfile).to.equal(true)
    const plain = await refused(readHelmfile(r('json-patches.yaml')), 'json-patches.yaml', /jsonPatches/)
    expect(plain.needsHelmfile).to.equal(false)
  })

  it('refuses a directory holding no helmfile.yaml (helmfile.yml is not a name helmfile looks for)', async () => {
    await refused(readHelmfile(fixture('refuse', 'chart')), 'refuse/chart', /no helmfile.yaml/)
  })
})

describe('needsHelmfileBinary', () => {
  it('is true for templates reached through the helmfile, an environment or release values file', async () => {
    expect(await needsHelmfileBinary(r('templated.yaml.gotmpl'))).to.equal(true)
    expect(await needsHelmfileBinary(r('braces.yaml'))).to.equal(true)
    expect(await needsHelmfileBinary(r('env-template.yaml'))).to.equal(true)
    expect(await needsHelmfileBinary(r('values-template.yaml'))).to.equal(true)
    expect(await needsHelmfileBinary(r('vals-ref.yaml'))).to.equal(true)
  })

  it('is false for plain helmfiles, and for refusals the binary would not fix', async () => {
    expect(await needsHelmfileBinary(fixture('shop'))).to.equal(false)
    expect(await needsHelmfileBinary(r('json-patches.yaml'))).to.equal(false)
  })
})
