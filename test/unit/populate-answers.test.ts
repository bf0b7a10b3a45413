import {expect} from 'chai'

import {ANSWER_REUSE_MS, type HeldAnswers, takeAnswer} from '../../src/lib/actions/populate.js'

// What populatedAlready learnt of the registry stands in for the full populate's own look only once, and only while
// fresh: an old "nothing there" must not let a push move a tag someone filled meanwhile without --force.
describe('registry answers reused by populate', function () {
  it('are taken once, and only while fresh', async function () {
    const asked = 1_000_000
    const answers: HeldAnswers = new Map([
      ['fresh', {answer: Promise.resolve('{"manifest":1}'), asked}],
      ['old', {answer: Promise.resolve(undefined), asked}],
    ])
    const fresh = takeAnswer(answers, 'fresh', asked + ANSWER_REUSE_MS)
    expect(fresh, 'an answer asked ANSWER_REUSE_MS ago is reused').to.not.equal(undefined)
    expect(await fresh).to.equal('{"manifest":1}')
    expect(takeAnswer(answers, 'fresh', asked + ANSWER_REUSE_MS), 'used once').to.equal(undefined)
    expect(takeAnswer(answers, 'old', asked + ANSWER_REUSE_MS + 1), 'an older one is asked again').to.equal(undefined)
    expect(answers.size, 'a stale answer is dropped too').to.equal(0)
    expect(takeAnswer(answers, 'never asked')).to.equal(undefined)
  })
})
