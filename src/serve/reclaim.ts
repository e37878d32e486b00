// Decoded xz blocks (and the decoder's output chunks) are memory outside V8's heap. V8 frees such
// memory only when its own heap needs a collection or when it has grown by ~64 MB, so a mount with a
// 4 MB block cache still grew by ~70 MB while a reader walked the view. Collecting once every 4 MiB
// of discarded blocks keeps the daemon at "image + cache bound + a fixed overhead" (docs/design.md).

/** Bytes discarded between two collections: the most garbage the daemon carries. */
const RECLAIM_EVERY_BYTES = 4 * 2 ** 20

let collect: (() => void) | undefined

/**
 * V8's full collection. The daemon that `kheadersfs mount` starts runs with --expose-gc; otherwise
 * (`mount -f`) gc is made available at run time, from a new context, which costs ~0.4 MB of heap.
 * node:v8 and node:vm are required only then: node:v8 alone holds ~190 kB of heap.
 */
function fullGc(): void {
  if (collect === undefined) {
    const exposed = (globalThis as { gc?: () => void }).gc
    if (typeof exposed === 'function') collect = exposed
    else {
      ;(require('node:v8') as typeof import('node:v8')).setFlagsFromString('--expose-gc')
      collect = (require('node:vm') as typeof import('node:vm')).runInNewContext('gc') as () => void
    }
  }
  collect()
}

export class Reclaimer {
  private discarded = 0
  private collections = 0

  constructor(private readonly everyBytes = RECLAIM_EVERY_BYTES) {}

  /** Note `bytes` no longer referenced; collect once enough has piled up (a full GC: ~6 ms here). */
  discard(bytes: number): void {
    this.discarded += bytes
    if (this.discarded < this.everyBytes) return
    this.discarded = 0
    this.collections++
    fullGc()
  }

  get count(): number {
    return this.collections
  }
}

/**
 * Once the mount is up: one full collection that also compacts, so that the heap the load grew (the
 * manifest's JSON and its file records, garbage once the tree is built) goes back to the system.
 * Without compaction V8 keeps the pages that still hold a few live objects: measured on a
 * module-build image, idle RssAnon 17.2 MB instead of 20.0 MB. Compacting only here, not on every
 * collection: --compact-on-every-full-gc made the reclaimer's collections ~5x slower (10 → 50 ms).
 */
export function collectAfterLoad(): void {
  const { setFlagsFromString } = require('node:v8') as typeof import('node:v8')
  setFlagsFromString('--compact-on-every-full-gc')
  try {
    fullGc()
  } finally {
    setFlagsFromString('--no-compact-on-every-full-gc')
  }
  // V8 gives back its young generation's second half (1 MB) only at a collection that sees a low
  // allocation rate over the last ~5 s, which an idle daemon never runs by itself: one more, later.
  setTimeout(fullGc, YOUNG_SHRINK_MS).unref()
}

/** After the load's burst of allocation has left V8's 5-second throughput window. */
const YOUNG_SHRINK_MS = 6000
