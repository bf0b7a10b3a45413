import {expect} from 'chai'

import {layoutNameFor, layoutNameOf, pullCommand, pushCommand} from '../../src/lib/images.js'
import {manifestSchema} from '../../src/lib/kodpkg-schema.js'
import {normalizeRef, parseRef} from '../../src/lib/refs.js'
import {parseTarget} from '../../src/lib/target.js'

/**
 * The OCI image-spec grammar for org.opencontainers.image.ref.name, as skopeo's oci: transport
 * (containers/image oci/internal) and umoci enforce it.
 */
const ALPHANUM = '[A-Za-z0-9]+'
const COMPONENT = `${ALPHANUM}(?:(?:[-._:@+]|--)${ALPHANUM})*`
const OCI_REF_NAME = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`)
/** What the package schema allows for images[].layoutName. */
const SCHEMA_PATTERN = new RegExp(manifestSchema.properties.images.items.properties.layoutName.pattern)

const DIGEST = `sha256:${'0123456789abcdef'.repeat(4)}`
const TAG_128 = `v${'A_b.c-'.repeat(21)}z`

/** Every reference shape the issue names, as a chart would render it. */
const REFERENCES = [
  'jenkins/inbound-agent:3385.vf1123fb_515da_-1',
  'registry.example/a/b:a__b',
  'registry.example/a/b:x-_-y',
  'registry.example/a/b:_leading',
  'registry.example/a/b:trailing_',
  'registry.example/a/b:trailing-',
  'registry.example/a/b:dots..twice',
  'registry.example/a/b:a---b',
  `registry.example/a/b:${TAG_128}`,
  'registry.example/a/b:UPPER_Case-1.0',
  'nginx',
  'nginx:1.25',
  `nginx@${DIGEST}`,
  `nginx:1.25@${DIGEST}`,
  `quay.io/org/app:_x_@${DIGEST}`,
  '127.0.0.1:5000/kodtest/web:1.0.0',
  'localhost:32000/a__b/c---d/e_f:1',
  '[::1]:5000/ipv6/image:tag',
  `${'very-long-registry-host.example.com'}:443/${'deep/'.repeat(20)}image:${TAG_128}`,
]

describe('layout names (images[].layoutName)', function () {
  it('the tags of the issue are valid Docker tags but not valid OCI ref names', function () {
    expect(TAG_128).to.have.length(128)
    // The bug: the normalised name itself cannot be stored by skopeo's oci: transport.
    for (const reference of REFERENCES.slice(0, 5)) {
      expect(OCI_REF_NAME.test(normalizeRef(reference)), reference).to.equal(false)
    }
  })

  for (const reference of REFERENCES) {
    it(`is a valid OCI ref name for ${reference}`, function () {
      const name = normalizeRef(reference)
      const layoutName = layoutNameFor(name)
      expect(layoutName, name).to.match(OCI_REF_NAME)
      expect(layoutName, name).to.match(SCHEMA_PATTERN)
      expect(layoutName.length, name).to.be.at.most(100 + 1 + 16)
    })
  }

  it('keeps a readable name and ends in + and 16 hex digits of sha256(name)', function () {
    expect(layoutNameFor('docker.io/library/nginx:1.25')).to.match(/^docker\.io-library-nginx:1\.25\+[0-9a-f]{16}$/)
    expect(layoutNameFor('docker.io/jenkins/inbound-agent:3385.vf1123fb_515da_-1')).to.match(
      /^docker\.io-jenkins-inbound-agent:3385\.vf1123fb_515da-1\+[0-9a-f]{16}$/,
    )
    // The digest is left to the hash: the readable part stays short.
    expect(layoutNameFor(`docker.io/library/nginx@${DIGEST}`)).to.match(/^docker\.io-library-nginx\+[0-9a-f]{16}$/)
    expect(layoutNameFor('127.0.0.1:5000/kodtest/web:UPPER')).to.match(/^127\.0\.0\.1:5000-kodtest-web:UPPER\+[0-9a-f]{16}$/)
  })

  it('is deterministic and different for every distinct name, including names it reads the same', function () {
    const names = [
      ...REFERENCES.map((reference) => normalizeRef(reference)),
      // These read the same once sanitised; the hash tells them apart.
      'docker.io/a/b:x-_-y',
      'docker.io/a/b:x_-_y',
      'docker.io/a/b:x--y',
      'docker.io/a/b:1.0',
      `docker.io/a/b:1.0@${DIGEST}`,
      `docker.io/a/b@${DIGEST}`,
    ]
    const layoutNames = names.map((name) => layoutNameFor(name))
    expect(new Set(layoutNames).size).to.equal(new Set(names).size)
    expect(names.map((name) => layoutNameFor(name))).to.deep.equal(layoutNames)
  })

  it('is valid for every tag made of the separators _ . - in any legal order', function () {
    const separators = ['_', '.', '-']
    const runs: string[] = ['']
    for (let length = 1; length <= 3; length++) {
      for (const run of runs.filter((candidate) => candidate.length === length - 1)) {
        for (const separator of separators) runs.push(run + separator)
      }
    }
    for (const run of runs) {
      for (const tag of [`a${run}b`, `a${run}`, `_${run}a`, `A${run}${run}Z9`]) {
        const name = `docker.io/library/x:${tag}`
        expect(parseRef(name).tag, name).to.equal(tag)
        expect(layoutNameFor(name), name).to.match(OCI_REF_NAME)
      }
    }
  })

  it('format-1 packages (no layoutName) are read under their normalised name', function () {
    expect(layoutNameOf({name: 'docker.io/library/nginx:1.25'})).to.equal('docker.io/library/nginx:1.25')
    expect(layoutNameOf({name: 'docker.io/library/nginx:1.25', layoutName: 'n+0123456789abcdef'})).to.equal('n+0123456789abcdef')
  })

  it('pulls into and pushes from the layout name, pushing under the original tag', function () {
    const name = normalizeRef('jenkins/inbound-agent:3385.vf1123fb_515da_-1')
    const layoutName = layoutNameFor(name)
    const pull = pullCommand(parseRef(name), '/pkg/images', layoutName, [])
    expect(pull.args.slice(-2)).to.deep.equal([`docker://${name}`, `oci:/pkg/images:${layoutName}`])
    const target = parseTarget({registry: 'registry.local:5000', prefix: 'kod'})
    const push = pushCommand('/pkg/images', {name, layoutName}, target)
    expect(push.args.slice(-2)).to.deep.equal([
      `oci:/pkg/images:${layoutName}`,
      'docker://registry.local:5000/kod/docker.io/jenkins/inbound-agent:3385.vf1123fb_515da_-1',
    ])
    // Format 1: the layout name was the normalised name.
    expect(pushCommand('/pkg/images', {name: 'docker.io/library/nginx:1.25'}, target).args.at(-2)).to.equal(
      'oci:/pkg/images:docker.io/library/nginx:1.25',
    )
  })
})
