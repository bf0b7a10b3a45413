import {expect} from 'chai'

import {helmTyped} from '../src/stage.js'

describe('set values typed as helm types them', () => {
  it('reads booleans, null and base-10 integers as helm strvals does', () => {
    expect(helmTyped('true')).to.equal(true)
    expect(helmTyped('FALSE')).to.equal(false)
    expect(helmTyped('Null')).to.equal(null)
    expect(helmTyped('0')).to.equal(0)
    expect(helmTyped('2')).to.equal(2)
    expect(helmTyped('-5')).to.equal(-5)
    expect(helmTyped('+7')).to.equal(7)
    expect(helmTyped('9007199254740993')).to.equal(9_007_199_254_740_993n)
  })

  it('keeps as text what YAML would type but helm does not: tags like 1.10, leading zeros, hex, maps, ~', () => {
    for (const text of ['1.10', '1.0', '010', '0x1F', '1e3', '{a: 1}', '[1, 2]', '~', 'yes', '', '99999999999999999999']) {
      expect(helmTyped(text), text).to.equal(text)
    }
  })
})
