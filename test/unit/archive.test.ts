// ArchiveReader's read-ahead: a reader going file after file through the archive (a walk through a
// tier in name order) has the next block decoded beside it; a reader that jumps does not.
import t from 'tap'
import { xzBuffer } from '../../src/pack/xz'
import { ArchiveReader } from '../../src/serve/archive'
import { RUN } from '../../src/serve/read-ahead'
import { parseXzIndex } from '../../src/xz/xz-index'
import { headerText } from '../helpers/header-text'

const BLOCK = 64 << 10
const FILE = 4000 // bytes per "file"; files follow each other with a 512-byte gap, as in a tar

t.test('read-ahead follows a walk block to block, not a reader that jumps', async (t) => {
  const input = headerText(6 * BLOCK)
  const xz = await xzBuffer(input, { preset: 1, blockSize: BLOCK, threads: 1 })
  const index = parseXzIndex(xz)
  t.equal(index.blocks.length, 6)
  const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 50))
  const stats = (a: ArchiveReader) => {
    const { decodes, prefetches, misses } = a.stats()
    return { decodes, prefetches, misses }
  }
  const fileAt = (i: number): number => 512 + i * (FILE + 512)

  const walk = new ArchiveReader(xz, index, 16 * BLOCK)
  for (let i = 0; i < RUN - 1; i++) await walk.read(fileAt(i), FILE)
  await settle()
  t.same(stats(walk), { decodes: 1, prefetches: 0, misses: 1 }, `${RUN - 1} files in a row: nothing ahead yet`)
  const got = await walk.read(fileAt(RUN - 1), FILE)
  t.ok(got.equals(input.subarray(fileAt(RUN - 1), fileAt(RUN - 1) + FILE)), 'the bytes read')
  await settle()
  t.same(stats(walk), { decodes: 2, prefetches: 1, misses: 1 }, `the ${RUN}th: a walk, block 1 decoded ahead`)
  let i = RUN
  while (fileAt(i) + FILE <= 2 * BLOCK) await walk.read(fileAt(i++), FILE)
  await settle()
  t.same(stats(walk), { decodes: 3, prefetches: 2, misses: 1 }, 'into block 1: block 2 ahead, and no miss')
  for (let j = 0; j < 3; j++)
    t.ok((await walk.read(fileAt(i + j), FILE)).equals(input.subarray(fileAt(i + j), fileAt(i + j) + FILE)))

  const jumps = new ArchiveReader(xz, index, 16 * BLOCK)
  for (const b of [4, 1, 3, 0, 2, 5]) for (const f of [7, 3, 11, 5, 1]) await jumps.read(b * BLOCK + fileAt(f), 100)
  await settle()
  t.same(stats(jumps), { decodes: 6, prefetches: 0, misses: 6 }, 'reads that jump: no read-ahead')
})
