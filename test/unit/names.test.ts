import {expect} from 'chai'

import {checkKubeVersion, checkNamespace, checkReleaseName} from '../../src/lib/names.js'
import {refusal} from '../support/assertions.js'

describe('names kod checks before the work (-d, -n, --kube-version)', function () {
  it('accepts what helm and Kubernetes accept', function () {
    for (const name of ['web', 'my-release', 'a.b-c', 'x1', 'a'.repeat(53)]) expect(() => checkReleaseName(name), name).to.not.throw()
    for (const name of ['default', 'kube-system', 'ns-1', 'a'.repeat(63)]) expect(() => checkNamespace(name), name).to.not.throw()
    for (const version of ['1.30', '1.30.0', 'v1.29.3', '1.31.0-rc.1', '1.30.0+k3s1']) expect(() => checkKubeVersion(version), version).to.not.throw()
    expect(() => checkReleaseName(undefined)).to.not.throw()
  })

  it('refuses the rest as bad input (exit 2), in one line', function () {
    for (const name of ['Rel;rm', '', '-x', 'x-', 'UPPER', 'a'.repeat(54), 'a_b']) {
      const error = refusal(() => checkReleaseName(name))
      expect(error.exit, name).to.equal(2)
      expect(error.message).to.match(/^-d .* is not a valid release name/)
    }
    for (const name of ['Bad_NS!', 'a.b', 'a'.repeat(64)]) expect(refusal(() => checkNamespace(name)).message).to.match(/is not a valid namespace/)
    for (const version of ['abc', '1', 'latest', '1.x']) expect(refusal(() => checkKubeVersion(version)).exit).to.equal(2)
  })
})
