import {expect} from 'chai'
import {mkdtemp, readdir, readFile, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import type {PackagedImage, Unit} from '../../src/api.js'
import {canTrim, pointAtStored} from '../../src/lib/actions/package.js'
import {digestTag, manifestDigest, pushCommand, pushReference} from '../../src/lib/images.js'
import {findImage, layoutIndex, pruneLayout, writeImageIndex} from '../../src/lib/oci.js'
import {
  formatPlatform,
  hostPlatform,
  type IndexEntry,
  noPlatformMessage,
  parsePlatform,
  platformChoice,
  platformMatches,
  recordedPlatforms,
  selectPlatforms,
  servesAny,
} from '../../src/lib/platforms.js'
import {parseRef} from '../../src/lib/refs.js'
import {parseTarget} from '../../src/lib/target.js'
import {buildLayout} from '../support/oci-build.js'
import {refusal} from '../support/assertions.js'

const entry = (architecture: string, variant?: string, os = 'linux'): IndexEntry => ({
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  digest: `sha256:${architecture}${variant ?? ''}`.padEnd(71, '0'),
  size: 100,
  platform: {os, architecture, ...(variant ? {variant} : {})},
})

describe('platforms', function () {
  it('parses os/arch[/variant], lower-cased, with the usual aliases', function () {
    expect(parsePlatform('linux/amd64')).to.deep.equal({os: 'linux', architecture: 'amd64'})
    expect(parsePlatform('linux/arm64/v8')).to.deep.equal({os: 'linux', architecture: 'arm64', variant: 'v8'})
    expect(parsePlatform('Linux/ARM/v7')).to.deep.equal({os: 'linux', architecture: 'arm', variant: 'v7'})
    expect(parsePlatform('linux/x86_64')).to.deep.equal({os: 'linux', architecture: 'amd64'})
    expect(parsePlatform('linux/aarch64')).to.deep.equal({os: 'linux', architecture: 'arm64'})
    expect(parsePlatform('linux/armhf')).to.deep.equal({os: 'linux', architecture: 'arm', variant: 'v7'})
    expect(parsePlatform('windows/amd64')).to.deep.equal({os: 'windows', architecture: 'amd64'})
  })

  it('refuses anything else with one line saying the form (exit 2)', function () {
    for (const [spec, why] of [
      ['amd64', /--platform amd64: no operating system given \(linux\/amd64\?\); use os\/arch\[\/variant\], e\.g\. linux\/amd64/],
      ['linux', /--platform linux: no architecture given \(linux\/[a-z0-9]+\?\); use os\/arch\[\/variant\]/],
      ['Windows', /--platform Windows: no architecture given \(windows\/[a-z0-9]+\?\)/],
      ['', /--platform : not a platform/],
      ['linux/', /not a platform/],
      ['linux/arm64/v8/x', /not a platform/],
      ['linux amd64', /not a platform/],
      ['linux/armhf/v6', /armhf is arm\/v7/],
    ] as const) {
      const refused = refusal(() => parsePlatform(spec))
      expect(refused.exit, spec).to.equal(2)
      expect(refused.message, spec).to.match(why)
      expect(refused.message).to.not.include('\n')
    }
  })

  it("maps the packaging machine's Node architecture to OCI's names", function () {
    expect(hostPlatform('x64', 'linux')).to.deep.equal({os: 'linux', architecture: 'amd64'})
    expect(hostPlatform('arm64', 'linux')).to.deep.equal({os: 'linux', architecture: 'arm64'})
    expect(hostPlatform('arm64', 'darwin')).to.deep.equal({os: 'linux', architecture: 'arm64'})
    expect(hostPlatform('arm', 'linux', undefined)).to.deep.equal({os: 'linux', architecture: 'arm', variant: 'v7'})
    expect(hostPlatform('arm', 'linux', '6')).to.deep.equal({os: 'linux', architecture: 'arm', variant: 'v6'})
    expect(hostPlatform('ia32', 'linux')).to.deep.equal({os: 'linux', architecture: '386'})
    expect(hostPlatform('ppc64', 'linux')).to.deep.equal({os: 'linux', architecture: 'ppc64le'})
    expect(hostPlatform('s390x', 'linux')).to.deep.equal({os: 'linux', architecture: 's390x'})
    expect(hostPlatform('riscv64', 'linux')).to.deep.equal({os: 'linux', architecture: 'riscv64'})
    expect(hostPlatform('x64', 'win32')).to.deep.equal({os: 'windows', architecture: 'amd64'})
    // This machine's, as kod says it.
    expect(formatPlatform(hostPlatform())).to.match(/^linux\/[a-z0-9]+(\/v\d)?$/)
  })

  it('chooses from the flags: --platform (deduplicated), --all-platforms, or the host by default; not both', function () {
    const host = {os: 'linux', architecture: 'riscv64'}
    expect(platformChoice(undefined, false, host)).to.deep.equal({platforms: [host], fromHost: true})
    expect(platformChoice([], undefined, host)).to.deep.equal({platforms: [host], fromHost: true})
    expect(platformChoice(['linux/arm64', 'linux/aarch64', 'linux/amd64'], false, host)).to.deep.equal({
      platforms: [{os: 'linux', architecture: 'arm64'}, {os: 'linux', architecture: 'amd64'}],
      fromHost: false,
    })
    expect(platformChoice(undefined, true, host)).to.deep.equal({all: true})
    expect(recordedPlatforms({all: true})).to.equal('all')
    expect(recordedPlatforms(platformChoice(['linux/arm/v7'], false, host))).to.deep.equal(['linux/arm/v7'])
    const both = refusal(() => platformChoice(['linux/amd64'], true, host))
    expect(both.exit).to.equal(2)
    expect(both.message).to.equal('--all-platforms keeps every platform: give it or --platform, not both')
  })

  it('matches variants with their defaults (arm64 is v8, arm is v7); no variant asked takes every variant', function () {
    const want = (spec: string) => parsePlatform(spec)
    expect(platformMatches(want('linux/arm64'), {os: 'linux', architecture: 'arm64', variant: 'v8'})).to.equal(true)
    expect(platformMatches(want('linux/arm64/v8'), {os: 'linux', architecture: 'arm64'})).to.equal(true)
    expect(platformMatches(want('linux/arm/v7'), {os: 'linux', architecture: 'arm'})).to.equal(true)
    expect(platformMatches(want('linux/arm/v6'), {os: 'linux', architecture: 'arm', variant: 'v7'})).to.equal(false)
    expect(platformMatches(want('linux/arm'), {os: 'linux', architecture: 'arm', variant: 'v6'})).to.equal(true)
    expect(platformMatches(want('linux/amd64'), {os: 'linux', architecture: 'amd64', variant: 'v3'})).to.equal(true)
    expect(platformMatches(want('linux/amd64/v1'), {os: 'linux', architecture: 'amd64'})).to.equal(true)
    expect(platformMatches(want('linux/amd64'), {os: 'windows', architecture: 'amd64'})).to.equal(false)
    expect(platformMatches(want('linux/amd64'), {os: 'linux', architecture: 'arm64'})).to.equal(false)
    expect(servesAny(['linux/amd64'], [want('linux/arm64')])).to.equal(false)
    expect(servesAny(['linux/arm64/v8'], [want('linux/arm64')])).to.equal(true)
  })

  it('selects the entries of an index: the platforms asked for, their attestations, entries of no platform', function () {
    const amd = entry('amd64')
    const arm = entry('arm64', 'v8')
    const s390 = entry('s390x')
    const attest = (of: IndexEntry): IndexEntry => ({
      ...entry('unknown', undefined, 'unknown'),
      digest: `sha256:a${of.digest.slice(8, 71)}`.slice(0, 71),
      annotations: {'vnd.docker.reference.type': 'attestation-manifest', 'vnd.docker.reference.digest': of.digest},
    })
    const bare: IndexEntry = {mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${'b'.repeat(64)}`, size: 1}
    const entries = [amd, arm, s390, attest(amd), attest(arm), bare]
    const selected = selectPlatforms(entries, [parsePlatform('linux/arm64')])!
    expect(selected.kept).to.deep.equal([arm, attest(arm), bare])
    expect(selected.keptPlatforms).to.deep.equal(['linux/arm64/v8'])
    expect(selected.droppedPlatforms).to.deep.equal(['linux/amd64', 'linux/s390x'])
    expect(selected.available).to.deep.equal(['linux/amd64', 'linux/arm64/v8', 'linux/s390x'])
    // Nothing asked for is there: nothing kept, and the refusal names what there is and the flag.
    const none = selectPlatforms(entries, [parsePlatform('linux/ppc64le')])!
    expect(none.keptPlatforms).to.deep.equal([])
    expect(noPlatformMessage('r/x:1', none.available, [parsePlatform('linux/ppc64le')], true)).to.equal(
      "r/x:1 has no image for linux/ppc64le (this machine's platform, the default): it is built for linux/amd64, linux/arm64/v8, linux/s390x; choose with --platform linux/amd64 (repeatable), or keep every platform with --all-platforms",
    )
    // Every platform asked for: nothing dropped. An index that names no platform: nothing to choose.
    expect(selectPlatforms([amd, arm], [parsePlatform('linux/amd64'), parsePlatform('linux/arm64')])!.droppedPlatforms).to.deep.equal([])
    expect(selectPlatforms([bare], [parsePlatform('linux/amd64')])).to.equal(undefined)
  })
})

describe('a trimmed index in the layout', function () {
  let dir: string

  beforeEach(async function () {
    dir = await mkdtemp(path.join(os.tmpdir(), 'kod-trim-'))
  })

  afterEach(async function () {
    await rm(dir, {recursive: true, force: true})
  })

  it('is written as the image, the scratch names go, and pruning removes only what no image reaches', async function () {
    const digests = await buildLayout(dir, [
      {name: 'multi', layers: [{files: {'app/multi': 'multi\n'}}], architectures: ['amd64', 'arm64']},
      {name: 'single', layers: [{files: {'app/single': 'single\n'}}]},
    ])
    const source = JSON.parse(await readFile(path.join(dir, 'blobs', 'sha256', digests.multi.slice(7)), 'utf8')) as {manifests: IndexEntry[]}
    const [amd, arm] = source.manifests
    const before = await readdir(path.join(dir, 'blobs', 'sha256'))
    const written = await writeImageIndex(dir, 'multi', {...source, manifests: [arm]}, ['single-is-not-scratch-but-absent'])
    expect(written.mediaType).to.equal('application/vnd.oci.image.index.v1+json')
    expect((await findImage(dir, 'multi')).digest).to.equal(written.digest)
    expect((await layoutIndex(dir)).map((descriptor) => descriptor.annotations?.['org.opencontainers.image.ref.name'])).to.deep.equal(['single', 'multi'])
    const pruned = await pruneLayout(dir)
    // The source index, and amd64's manifest and config (the layer is shared with arm64).
    expect(pruned.blobs).to.equal(3)
    const after = await readdir(path.join(dir, 'blobs', 'sha256'))
    expect(after).to.have.length(before.length - 3 + 1)
    expect(after).to.not.include(digests.multi.slice(7))
    expect(after).to.not.include(amd.digest.slice(7))
    expect(after).to.include(arm.digest.slice(7))
    expect(await pruneLayout(dir)).to.deep.equal({blobs: 0, bytes: 0})
    // A package of no image has no layout: nothing to prune.
    expect(await pruneLayout(path.join(dir, 'none'))).to.deep.equal({blobs: 0, bytes: 0})
  })
})

describe('a digest the chart pins, after trimming', function () {
  const pinned = `sha256:${'1'.repeat(64)}`
  const stored = `sha256:${'2'.repeat(64)}`
  const name = `reg.io/app@${pinned}`
  const unit = (values: Unit['images'][number]['values'], note?: string): Unit => ({
    id: 'u',
    release: 'u',
    chart: 'charts/u.tgz',
    values: [],
    installed: true,
    needs: [],
    images: [{name, ref: name, values, foundIn: ['u/templates/x.yaml'], ...(note ? {note} : {})}],
  })

  it('is trimmed only when every value that relocates it carries the digest', function () {
    expect(canTrim('reg.io/app:1.0', [])).to.equal(true)
    expect(canTrim(name, [unit([{path: 'image', value: name, replace: 'reg.io'.length}])])).to.equal(true)
    expect(canTrim(name, [unit([{path: 'image.registry', value: 'reg.io', replace: 'reg.io'.length}])])).to.equal(false)
    expect(canTrim(name, [unit([])])).to.equal(false)
    expect(canTrim(name, [unit([], 'hard-coded')])).to.equal(true)
  })

  it("has its values point at the stored index, the location deploy replaces untouched", function () {
    const image: PackagedImage = {ref: name, name, layoutName: 'x', digest: stored, sourceDigest: pinned, platforms: ['linux/arm64'], droppedPlatforms: ['linux/amd64'], units: ['u']}
    const [rewritten] = pointAtStored([unit([{path: 'image', value: name, replace: 'reg.io'.length}])], [image])
    expect(rewritten.images[0].values).to.deep.equal([{path: 'image', value: `reg.io/app@${stored}`, replace: 'reg.io'.length}])
    expect(rewritten.images[0].ref).to.equal(name)
    // A tagged image trimmed keeps its values: its tag is pushed with the trimmed index.
    const tagged = {...image, name: 'reg.io/app:1.0'}
    const same = unit([{path: 'image', value: 'reg.io/app:1.0', replace: 6}])
    expect(pointAtStored([same], [tagged])).to.deep.equal([same])
  })
})

describe('the tag of an image pinned by digest alone', function () {
  const target = parseTarget({registry: 'registry.local:5000', prefix: 'kod'})
  const digest = `sha256:${'ab'.repeat(32)}`

  it('is kod- and the hex of the digest stored, never the referrers API form', function () {
    expect(digestTag(digest)).to.equal(`kod-${'ab'.repeat(32)}`)
    expect(digestTag(digest)).to.not.match(/^sha256-/)
    expect(digestTag(digest)).to.match(/^\w[\w.-]{0,127}$/)
    expect(pushReference(parseRef(`reg.io/app@${digest}`), target)).to.equal(`registry.local:5000/kod/reg.io/app:kod-${'ab'.repeat(32)}`)
    // The digest stored wins over the reference's (a trimmed index).
    const stored = `sha256:${'cd'.repeat(32)}`
    expect(pushReference(parseRef(`reg.io/app@${digest}`), target, stored)).to.equal(`registry.local:5000/kod/reg.io/app:kod-${'cd'.repeat(32)}`)
    // A tag is kept as it is, digest or not.
    expect(pushReference(parseRef(`reg.io/app:1.0@${digest}`), target, stored)).to.equal('registry.local:5000/kod/reg.io/app:1.0')
    expect(pushCommand('/pkg/images', {name: `reg.io/app@${digest}`, layoutName: 'l', digest: stored}, target).args.at(-1)).to.equal(
      `docker://registry.local:5000/kod/reg.io/app:kod-${'cd'.repeat(32)}`,
    )
  })

  it("a manifest's digest is the hash of its exact bytes (a final newline counts)", function () {
    const raw = '{"schemaVersion":2}'
    const plain = manifestDigest(raw)
    expect(plain.matches).to.equal(false)
    expect(manifestDigest(raw, plain.digest)).to.deep.equal({digest: plain.digest, matches: true})
    const withNewline = manifestDigest(`${raw}\n`).digest
    expect(withNewline).to.not.equal(plain.digest)
    expect(manifestDigest(raw, withNewline)).to.deep.equal({digest: plain.digest, matches: false})
  })
})
