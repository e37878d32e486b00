// "Did you mean" (src/suggest.ts): the edit distance, and which near misses suggest what.
import t from 'tap'
import { didYouMean, editDistance, suggest } from '../../src/suggest'

t.test('editDistance: insert, delete, substitute and an adjacent swap each cost 1', async (t) => {
  t.equal(editDistance('', ''), 0)
  t.equal(editDistance('pack', 'pack'), 0)
  t.equal(editDistance('pak', 'pack'), 1, 'insertion')
  t.equal(editDistance('packk', 'pack'), 1, 'deletion')
  t.equal(editDistance('kernal', 'kernel'), 1, 'substitution')
  t.equal(editDistance('stauts', 'status'), 1, 'swap')
  t.equal(editDistance('ca', 'abc'), 3, 'optimal string alignment: no edit of a swapped pair')
  t.equal(editDistance('', 'abc'), 3)
  t.equal(editDistance('kitten', 'sitting'), 3)
})

t.test('suggest: a unique prefix, else the nearest within 1 (up to 5 characters) or 2 edits', async (t) => {
  const commands = ['pack', 'info', 'verify', 'mount', 'umount', 'status', 'install-helpers', 'kernel-hook']
  t.equal(suggest('pak', commands), 'pack')
  t.equal(suggest('stauts', commands), 'status')
  t.equal(suggest('moutn', commands), 'mount')
  t.equal(suggest('ifno', commands), 'info')
  t.equal(suggest('install', commands), 'install-helpers', 'a prefix of one command')
  t.equal(suggest('STATUS', commands), 'status', 'case ignored')
  t.equal(suggest('u', commands), 'umount', 'a one-letter unique prefix')
  t.equal(suggest('in', commands), undefined, 'a prefix of two, and no command within 1 edit')
  t.equal(suggest('x', commands), undefined)
  t.equal(suggest('ls', commands), undefined)
  t.equal(suggest('verfy', commands), 'verify')
  t.equal(suggest('unmount', commands), 'umount')
  t.equal(suggest('', commands), undefined)
  t.equal(suggest('abcd', ['abxy']), undefined, '2 edits on a short word: too far')
  t.equal(suggest('abcdef', ['abcdxy']), 'abcdxy', '2 edits on a longer word')
  t.equal(suggest('abcdef', ['abxyzf']), undefined, '3 edits: too far')
  t.equal(suggest('kern', ['kernel', 'source', 'sysroot']), 'kernel')
  t.equal(suggest('wran', ['fatal', 'error', 'warn', 'info']), 'warn')
  t.equal(suggest('ab', ['ax', 'ay']), 'ax', 'a tie: the first listed')
})

t.test('didYouMean: the phrase, quoted as asked, or nothing', async (t) => {
  t.equal(didYouMean('pak', ['pack']), 'did you mean pack?')
  t.equal(
    didYouMean('pak', ['pack'], (s) => JSON.stringify(s)),
    'did you mean "pack"?',
  )
  t.equal(didYouMean('zzz', ['pack']), '')
})
