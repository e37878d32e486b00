// Decoded xz blocks, kept in a least-recently-used cache bounded in bytes. Concurrent reads of one
// block share a single decode, and at most `concurrency` decodes run at once, queued fairly between
// users (fair-queue.ts), so the memory in use is at most the bound plus `concurrency` blocks in
// flight, however much is read and by whom. Evicted blocks are handed to a Reclaimer, so dead blocks
// do not pile up awaiting V8.
//
// The blocks held may also be shared with the FUSE binding (share()), which answers reads of cached
// blocks on its own thread. Those hits never reach this cache, so eviction gives a second chance: a
// block the binding read since it was last looked at moves to the recent end instead of going.
import { FairQueue, type QueueStats, type Ticket } from './fair-queue'
import { Reclaimer } from './reclaim'

export interface CacheStats {
  /** Bytes of decoded blocks held now, and the bound. */
  bytes: number
  boundBytes: number
  blocks: number
  hits: number
  misses: number
  /** Blocks decoded so far (a block evicted and read again is decoded again). */
  decodes: number
  evictions: number
  /** Full garbage collections run to return discarded blocks to the system. */
  collections: number
  /** The decode queue. */
  queue: QueueStats
}

/** Another reader of the cached blocks: it may use a block from publish() until retract(). */
export interface BlockSharer {
  publish(block: number, data: Buffer): void
  retract(block: number): void
  /** Per block: non-zero when the sharer read it since the cache last cleared it. */
  readonly touched: Uint32Array
}

export class BlockCache {
  private readonly entries = new Map<number, Buffer>() // insertion order = LRU order
  private readonly pending = new Map<number, { promise: Promise<Buffer>; ticket: Ticket }>()
  private readonly queue: FairQueue
  private bytes = 0
  private sharer: BlockSharer | undefined
  private readonly counts = { hits: 0, misses: 0, decodes: 0, evictions: 0 }

  constructor(
    private readonly boundBytes: number,
    private readonly decode: (block: number) => Promise<Buffer>,
    concurrency = 2,
    private readonly reclaimer = new Reclaimer(),
  ) {
    this.queue = new FairQueue(concurrency)
  }

  /** Block `block`, for a reader of user `uid` (whose turn decides when a decode runs). */
  get(block: number, uid = 0): Promise<Buffer> {
    const hit = this.entries.get(block)
    if (hit !== undefined) {
      this.counts.hits++
      this.entries.delete(block)
      this.entries.set(block, hit)
      return Promise.resolve(hit)
    }
    const inFlight = this.pending.get(block)
    if (inFlight !== undefined) {
      this.counts.hits++
      inFlight.ticket.promote(uid)
      return inFlight.promise
    }
    this.counts.misses++
    const { promise, ticket } = this.queue.run(uid, () => this.decode(block))
    const p = promise.then(
      (data) => {
        this.pending.delete(block)
        this.counts.decodes++
        // The decoder writes straight into the block (src/native/xz_decode.c): no garbage of its own.
        this.insert(block, data)
        return data
      },
      (e: unknown) => {
        this.pending.delete(block)
        throw e
      },
    )
    this.pending.set(block, { promise: p, ticket })
    return p
  }

  /** Share the blocks held now and from now on with `sharer`, until each is evicted. */
  share(sharer: BlockSharer): void {
    this.sharer = sharer
    for (const [block, data] of this.entries) sharer.publish(block, data)
  }

  stats(): CacheStats {
    return {
      bytes: this.bytes,
      boundBytes: this.boundBytes,
      blocks: this.entries.size,
      ...this.counts,
      collections: this.reclaimer.count,
      queue: this.queue.stats(),
    }
  }

  private insert(block: number, data: Buffer): void {
    // A block larger than the whole bound is served but not kept (the daemon refuses such a bound).
    if (data.length > this.boundBytes) return this.reclaimer.discard(data.length)
    while (this.bytes + data.length > this.boundBytes) {
      const oldest = this.leastRecent()
      const old = this.entries.get(oldest)!
      this.entries.delete(oldest)
      this.sharer?.retract(oldest)
      this.bytes -= old.length
      this.counts.evictions++
      this.reclaimer.discard(old.length)
    }
    this.entries.set(block, data)
    this.bytes += data.length
    this.sharer?.publish(block, data)
  }

  /** The least recently used block, after moving those the sharer read since to the recent end. */
  private leastRecent(): number {
    const touched = this.sharer?.touched
    // Each block moves at most once: after a full round, the oldest goes whatever was read.
    for (let round = this.entries.size; round > 0; round--) {
      const [oldest, data] = this.entries.entries().next().value as [number, Buffer]
      if (touched === undefined || touched[oldest] === 0) return oldest
      touched[oldest] = 0
      this.entries.delete(oldest)
      this.entries.set(oldest, data)
    }
    return this.entries.keys().next().value as number
  }
}
