// ReadAhead: which reads make a walk, and which block a walk wants decoded ahead.
import t from 'tap'
import { ReadAhead, RUN } from '../../src/serve/read-ahead'

/** Files of `size` bytes back to back as in a tar: a 512-byte header before each, data padded to 512. */
const files = (from: number, n: number, size: number): Array<[number, number]> =>
  Array.from({ length: n }, (_, i) => {
    const at = from + i * (512 + Math.ceil(size / 512) * 512) + 512
    return [at, at + size]
  })
const BLOCK = 1 << 20
const blockOf = (end: number): number => Math.floor((end - 1) / BLOCK)

t.test('a run of adjacent files is a walk: one block ahead as it starts, then one per block it enters', (t) => {
  const ra = new ReadAhead()
  const asked = files(0, 400, 9000).map(([a, b]) => ra.next(a, b, blockOf(b)))
  const wanted = asked.map((x, i) => [i, x]).filter(([, x]) => x >= 0)
  t.same(wanted[0], [RUN - 1, 1], `the ${RUN}th read in a row asks for block 1`)
  t.same(
    wanted.slice(1).map(([, x]) => x),
    [2, 3, 4],
    'then block b+1 as the walk moves into each block b (400 files: blocks 0 to 3)',
  )
  t.end()
})

t.test('interleaved streams (a walk through several tiers at once) are followed each on its own', (t) => {
  const ra = new ReadAhead()
  const a = files(0, 300, 9000) // tier in blocks 0..2
  const b = files(10 * BLOCK, 300, 9000) // tier in blocks 10..12
  const asked: number[] = []
  for (let i = 0; i < 300; i++) {
    asked.push(ra.next(a[i][0], a[i][1], blockOf(a[i][1])))
    asked.push(ra.next(b[i][0], b[i][1], blockOf(b[i][1])))
  }
  t.same(
    asked.filter((x) => x >= 0),
    [1, 11, 2, 12, 3, 13],
  )
  t.end()
})

t.test('reads that jump (a build reading headers by #include) ask for nothing', (t) => {
  const ra = new ReadAhead()
  const all = files(0, 2000, 3000)
  // every third file, backwards and forwards: never just past the last read
  const order = [...all.keys()].filter((i) => i % 3 === 0)
  const jumpy = [...order.slice(0, 300).reverse(), ...order.slice(300)]
  t.same(
    jumpy.map((i) => ra.next(all[i][0], all[i][1], blockOf(all[i][1]))).filter((x) => x >= 0),
    [],
  )
  t.end()
})

t.test('a large file read in chunks is one file, not a walk: the kernel reads ahead within it', (t) => {
  const ra = new ReadAhead()
  const asked: number[] = []
  const CHUNK = 128 << 10
  for (let at = 512; at < 3 * BLOCK; at += CHUNK) asked.push(ra.next(at, at + CHUNK, blockOf(at + CHUNK)))
  t.same(
    asked.filter((x) => x >= 0),
    [],
  )
  t.end()
})
