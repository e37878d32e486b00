// The decode queue (src/serve/fair-queue.ts): never more than `concurrency` jobs at once; root's jobs
// before anyone else's; other users in turn, one job each, whatever order they queued in; a job that
// root starts waiting for moves to root's turn; failures reach their caller and free the slot.
import t from 'tap'
import { FairQueue } from '../../src/serve/fair-queue'

/** Jobs that finish when told to; `order` records when each started. */
function harness(concurrency: number) {
  const q = new FairQueue(concurrency)
  const order: string[] = []
  const finish = new Map<string, (ok: boolean) => void>()
  let running = 0
  let peak = 0
  const add = (uid: number, name: string) =>
    q.run(uid, () => {
      order.push(name)
      running++
      peak = Math.max(peak, running)
      return new Promise<string>((resolve, reject) =>
        finish.set(name, (ok) => {
          running--
          if (ok) resolve(name)
          else reject(new Error(`${name} failed`))
        }),
      )
    })
  const done = async (name: string, ok = true): Promise<void> => {
    finish.get(name)!(ok)
    await new Promise((r) => setImmediate(r))
  }
  return { q, order, add, done, peak: () => peak }
}

t.test('users take turns, one job each; root goes first', async (t) => {
  const h = harness(1)
  h.add(1000, 'a1') // starts at once
  for (let i = 2; i <= 4; i++) h.add(1000, `a${i}`)
  h.add(1001, 'b1')
  h.add(1001, 'b2')
  h.add(1002, 'c1')
  h.add(0, 'root1')
  t.same(h.order, ['a1'])
  for (const n of ['a1', 'root1', 'a2', 'b1', 'c1', 'a3', 'b2']) await h.done(n)
  t.same(h.order, ['a1', 'root1', 'a2', 'b1', 'c1', 'a3', 'b2', 'a4'], 'root, then a b c a b a')
  t.match(h.q.stats(), { started: 8, startedForRoot: 1, rootOvertaken: 0, queued: 0, peakQueued: 7 })
  // Others' starts while a job waited, at most: root none; a's a4 behind root1 b1 c1 b2, b's b2 behind
  // root1 a2 c1 a3, c's c1 behind root1 a2 b1.
  t.same(h.q.stats().waitedBehind, { 1000: 4, 1001: 4, 1002: 3 }, 'no entry for root: it never waited behind anyone')
})

t.test('never more than `concurrency` at once', async (t) => {
  const h = harness(2)
  const all = Array.from({ length: 20 }, (_, i) => h.add(1000 + (i % 3), `j${i}`))
  t.equal(h.order.length, 2)
  for (let i = 0; i < 20; i++) await h.done(h.order[i])
  t.equal(h.order.length, 20)
  t.equal(h.peak(), 2)
  t.same((await Promise.all(all.map((j) => j.promise))).sort(), h.order.slice().sort())
})

t.test("a job root waits for too moves to root's turn; started jobs and other users stay put", async (t) => {
  const h = harness(1)
  h.add(1000, 'busy')
  const a = h.add(1000, 'a')
  h.add(1001, 'b')
  const c = h.add(1002, 'c')
  c.ticket.promote(1001) // another user: no change
  c.ticket.promote(0) // root waits for c: c goes next
  await h.done('busy')
  t.same(h.order, ['busy', 'c'])
  a.ticket.promote(0)
  await h.done('c')
  t.same(h.order, ['busy', 'c', 'a'])
  c.ticket.promote(0) // started: nothing to move
  await h.done('a')
  t.same(h.order, ['busy', 'c', 'a', 'b'])
  await h.done('b')
  t.equal(h.q.stats().queued, 0)
})

t.test('a failed job rejects its promise and frees its slot', async (t) => {
  const h = harness(1)
  const bad = h.add(5, 'bad')
  const next = h.add(6, 'next')
  const rejected = t.rejects(bad.promise, { message: 'bad failed' })
  await h.done('bad', false)
  await rejected
  t.same(h.order, ['bad', 'next'])
  await h.done('next')
  t.equal(await next.promise, 'next')
})
