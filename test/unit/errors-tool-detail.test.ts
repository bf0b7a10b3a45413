import {expect} from 'chai'

import {ERROR_DETAIL_MAX, errorDetail, redactSecrets} from '../../src/lib/tools.js'

/** skopeo's errors as it prints them: logrus lines whose msg wraps every layer of Go errors. */
const UPLOAD_STATE =
  'Vv0BaSHoy9jSM1VENl1S3B7UC5TcXgyeFp3T25nTEpTbFBWLWdPejd4Q2FkaDYzQnEyIiwiTmFtZSI6ImtvZC9kb2NrZXIuaW8vbGlicmFyeS9uZ2lueCIsIlBhdGgiOiIiLCJTdGFydGVkQXQiOiIyMDI2LTExLTI3VDA5OjAwOjAwWiJ9'
const UPLOAD_ERROR =
  `time="2026-11-27T09:31:02Z" level=fatal msg="copying system image from manifest list: writing blob: uploading layer chunked: ` +
  `Patch \\"https://registry.lab:5000/v2/kod/docker.io/library/nginx/blobs/uploads/6a1c4b0e-2f0d-4a53-9f3e-0a9d7c1e2b44?_state=${UPLOAD_STATE}%3D%3D\\": ` +
  `read tcp 10.0.0.5:53212->10.0.0.9:5000: read: connection reset by peer"`

const STATUS_ERROR =
  `time="2026-11-27T09:31:02Z" level=fatal msg="copying system image from manifest list: trying to reuse blob sha256:${'a'.repeat(64)} at destination: ` +
  `checking whether a blob sha256:${'a'.repeat(64)} exists in registry.lab:5000/kod/docker.io/library/nginx: ` +
  `writing blob: initiating layer upload to /v2/kod/docker.io/library/nginx/blobs/uploads/ in registry.lab:5000: ` +
  `received unexpected HTTP status: 500 Internal Server Error"`

const S3_ERROR =
  `time="2026-11-27T09:31:02Z" level=fatal msg="initializing source docker://quay.io/org/app:1.0: reading blob sha256:${'b'.repeat(64)}: ` +
  `Get \\"https://s3.eu-west-1.amazonaws.com/bucket/sha256/bb/data?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20261127%2Feu-west-1%2Fs3%2Faws4_request` +
  `&X-Amz-Date=20261127T093102Z&X-Amz-Expires=600&X-Amz-SignedHeaders=host&X-Amz-Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\\": ` +
  `dial tcp 52.95.1.1:443: i/o timeout"`

const AUTH_ERROR =
  `time="2026-11-27T09:31:02Z" level=fatal msg="initializing source docker://registry.lab:5000/kod/app:1.0: reading manifest 1.0 in registry.lab:5000/kod/app: ` +
  `unauthorized: authentication required"`

const TOKEN_ERROR =
  `time="2026-11-27T09:31:02Z" level=fatal msg="initializing source docker://docker.io/library/nginx:1.27: pinging container registry registry-1.docker.io: ` +
  `Get \\"https://auth.docker.io/token?scope=repository%3Alibrary%2Fnginx%3Apull&service=registry.docker.io&access_token=ya29.secretsecretsecret\\": ` +
  `dial tcp: lookup auth.docker.io on 127.0.0.53:53: server misbehaving"`

describe('tool error detail (skopeo errors cut to their cause, without secrets)', function () {
  it('cuts a 1,000-character upload error to its cause, without the upload token', function () {
    const long = `${UPLOAD_ERROR.replace('copying system image', `copying system image ${'from manifest list: '.repeat(20)}`)}`
    expect(long.length).to.be.greaterThan(900)
    const detail = errorDetail(long)
    expect(detail.length).to.be.at.most(ERROR_DETAIL_MAX)
    expect(detail).to.match(/connection reset by peer/)
    expect(detail).to.include('registry.lab:5000')
    expect(detail).to.not.include(UPLOAD_STATE.slice(0, 20))
    expect(detail).to.not.include('6a1c4b0e')
    expect(detail).to.not.match(/time=|level=/)
  })

  it('keeps the HTTP status and the registry host of a long status error', function () {
    const detail = errorDetail(STATUS_ERROR)
    expect(STATUS_ERROR.length).to.be.greaterThan(ERROR_DETAIL_MAX)
    expect(detail.length).to.be.at.most(ERROR_DETAIL_MAX)
    expect(detail).to.include('500 Internal Server Error')
    expect(detail).to.include('registry.lab:5000')
  })

  it('never carries a pre-signed URL signature or credential', function () {
    const detail = errorDetail(S3_ERROR)
    expect(detail.length).to.be.at.most(ERROR_DETAIL_MAX)
    expect(detail).to.match(/i\/o timeout/)
    expect(detail).to.not.include('AKIAIOSFODNN7EXAMPLE')
    expect(detail).to.not.include('0123456789abcdef0123')
  })

  it('keeps a short error whole, without its log decoration', function () {
    expect(errorDetail(AUTH_ERROR)).to.equal(
      'initializing source docker://registry.lab:5000/kod/app:1.0: reading manifest 1.0 in registry.lab:5000/kod/app: unauthorized: authentication required',
    )
  })

  it('redacts access tokens in query strings', function () {
    const detail = errorDetail(TOKEN_ERROR)
    expect(detail).to.not.include('ya29.secret')
    expect(detail).to.match(/server misbehaving/)
  })

  it('redacts userinfo, Bearer and Basic authorisations, and JWTs', function () {
    const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJrb2QifQ.c2lnbmF0dXJlc2lnbmF0dXJl'
    const text = redactSecrets(
      `Get "https://admin:hunter22@registry.lab/v2/": Authorization: Bearer ${jwt}; Basic YWRtaW46aHVudGVyMjI=; token=${jwt} password=hunter22`,
    )
    expect(text).to.not.include('hunter22')
    expect(text).to.not.include('eyJ')
    expect(text).to.not.include('YWRtaW46')
    expect(text).to.include('https://***@registry.lab/v2/')
  })

  it('keeps the last lines of a non-skopeo error, redacted and capped', function () {
    const detail = errorDetail(`line one\nError: INSTALLATION FAILED: ${'x'.repeat(600)}: oci://admin:pw@host/charts: not found\n`)
    expect(detail.length).to.be.at.most(ERROR_DETAIL_MAX)
    expect(detail).to.not.include(':pw@')
    expect(detail).to.match(/not found$/)
  })
})
