// The decoded-block cache: LRU order, its byte bound, one decode per block in flight, the decode
// concurrency limit, sharing its blocks with the binding, and that every discarded block reaches the
// reclaimer (and a real collection then returns its memory).
import t from 'tap'
import { BlockCache, type BlockSharer } from '../../src/serve/block-cache'
import { Reclaimer } from '../../src/serve/reclaim'

/** A reclaimer that records what it was told instead of collecting. */
class Recording extends Reclaimer {
  readonly seen: number[] = []
  override discard(bytes: number): void {
    this.seen.push(bytes)
  }
}

/** A decoder whose blocks are `size` bytes of the block number, resolved when `release` is called. */
function decoder(size: number): {
  decode: (b: number) => Promise<Buffer>
  calls: number[]
  running: () => number
  release: () => void
} {
  const calls: number[] = []
  const waiting: Array<() => void> = []
  let running = 0
  let maxRunning = 0
  return {
    calls,
    running: () => maxRunning,
    release: () => waiting.splice(0).forEach((w) => w()),
    decode: (b) => {
      calls.push(b)
      running++
      maxRunning = Math.max(maxRunning, running)
      return new Promise((resolve) =>
        waiting.push(() => {
          running--
          resolve(Buffer.alloc(size, b))
        }),
      )
    },
  }
}

const settle = (): Promise<void> => new Promise((r) => setImmediate(r))

t.test('keeps the most recently used blocks within the byte bound and evicts the oldest', async (t) => {
  const d = decoder(100)
  const r = new Recording()
  const c = new BlockCache(300, d.decode, 8, r)
  for (const b of [1, 2, 3]) {
    const p = c.get(b)
    d.release()
    t.equal((await p)[0], b)
  }
  await c.get(1) // 1 becomes the most recent: 2 is now the oldest
  const p4 = c.get(4)
  d.release()
  await p4
  t.same(d.calls, [1, 2, 3, 4], 'block 1 was not decoded again')
  t.match(c.stats(), { bytes: 300, boundBytes: 300, blocks: 3, decodes: 4, evictions: 1, hits: 1, misses: 4 })
  const p2 = c.get(2)
  d.release()
  await p2
  t.same(d.calls, [1, 2, 3, 4, 2], 'the evicted block 2 is decoded again')
  // Each eviction discards the evicted block; a decode leaves no garbage (it fills the block in place).
  t.same(r.seen, [100, 100], 'the 2 evictions reached the reclaimer')
})

/** A sharer (the binding's part) that records what it was given and can mark blocks as read. */
function recordingSharer(blocks: number): BlockSharer & { held: Map<number, Buffer>; log: string[] } {
  const held = new Map<number, Buffer>()
  const log: string[] = []
  return {
    held,
    log,
    touched: new Uint32Array(blocks),
    publish: (b, data) => {
      held.set(b, data)
      log.push(`+${b}`)
    },
    retract: (b) => {
      held.delete(b)
      log.push(`-${b}`)
    },
  }
}

t.test('shared blocks: published while held, retracted before eviction, read ones get a second chance', async (t) => {
  const d = decoder(100)
  const c = new BlockCache(300, d.decode, 8, new Recording())
  const load = async (b: number): Promise<void> => {
    const p = c.get(b)
    d.release()
    await p
  }
  await load(1)
  const s = recordingSharer(10)
  c.share(s)
  t.same(s.log, ['+1'], 'what the cache holds already is published at once')
  await load(2)
  await load(3)
  t.same([...s.held.keys()], [1, 2, 3], 'each new block is published')
  // Block 1 is the oldest, but the sharer read it (without asking the cache): 2 goes instead.
  s.touched[1] = 1
  await load(4)
  t.same(s.log, ['+1', '+2', '+3', '-2', '+4'], 'the block that goes is retracted before the new one is published')
  t.equal(s.touched[1], 0, 'the second chance is used up')
  t.same([...s.held.keys()].sort(), [1, 3, 4], 'the sharer holds exactly what the cache holds')
  t.equal(s.held.get(4)![0], 4, 'with its bytes')
  // Every block read since: after one round each, the oldest goes anyway (the bound holds).
  for (const b of [1, 3, 4]) s.touched[b] = 1
  await load(5)
  t.same([...s.held.keys()].sort(), [1, 4, 5], 'one block went: 3, still the oldest after a full round')
  t.equal(c.stats().bytes, 300, 'the byte bound holds')
})

t.test('concurrent reads of one block share a single decode; decodes run at most `concurrency` at once', async (t) => {
  const d = decoder(10)
  const c = new BlockCache(1000, d.decode, 2, new Recording())
  const all = Promise.all([c.get(7), c.get(7), c.get(8), c.get(9), c.get(10)])
  await settle()
  t.same(d.calls, [7, 8], 'two decodes started, the others wait')
  while (d.calls.length < 4) {
    d.release()
    await settle()
  }
  d.release()
  const got = await all
  t.same(
    got.map((b) => b[0]),
    [7, 7, 8, 9, 10],
  )
  t.equal(got[0], got[1], 'the same buffer for both readers of block 7')
  t.equal(d.running(), 2, 'never more than 2 decodes at once')
  t.match(c.stats(), { decodes: 4, misses: 4, hits: 1 })
})

t.test('a block larger than the bound is served, not kept, and discarded', async (t) => {
  const d = decoder(500)
  const r = new Recording()
  const c = new BlockCache(300, d.decode, 2, r)
  const p = c.get(1)
  d.release()
  t.equal((await p).length, 500)
  t.match(c.stats(), { bytes: 0, blocks: 0 })
  t.same(r.seen, [500], 'the block itself, once it is served')
})

t.test('a failed decode is not cached: the next read tries again', async (t) => {
  let n = 0
  const c = new BlockCache(100, async () => {
    if (n++ === 0) throw new Error('corrupt')
    return Buffer.alloc(10)
  })
  await t.rejects(c.get(0), /corrupt/)
  t.equal((await c.get(0)).length, 10)
  t.equal(n, 2)
})

t.test('Reclaimer collects once per threshold of discarded bytes, and the collection frees them', async (t) => {
  const r = new Reclaimer(4 * 2 ** 20)
  r.discard(3 * 2 ** 20)
  t.equal(r.count, 0, 'below the threshold: no collection')
  r.discard(2 * 2 ** 20)
  t.equal(r.count, 1, 'over it: one collection')
  // Allocate 64 MiB of buffers outside the V8 heap and drop them: after the reclaimer's collections,
  // the external memory is back near where it started (V8 alone would wait for ~64 MB of growth).
  const before = process.memoryUsage().arrayBuffers
  let kept: Buffer[] = []
  for (let i = 0; i < 32; i++) kept.push(Buffer.alloc(2 * 2 ** 20, 1))
  t.ok(process.memoryUsage().arrayBuffers >= before + 60 * 2 ** 20, 'the buffers are counted while held')
  kept = []
  for (let i = 0; i < 32; i++) r.discard(2 * 2 ** 20)
  t.equal(r.count, 17, '16 more collections')
  t.ok(
    process.memoryUsage().arrayBuffers < before + 8 * 2 ** 20,
    `external memory returned: ${((process.memoryUsage().arrayBuffers - before) / 2 ** 20).toFixed(1)} MiB above the start`,
  )
  t.equal(kept.length, 0)
})
