// Decoded xz blocks are memory outside V8's heap, which V8 frees
// only when its own heap needs a collection or that memory has grown a lot. Collecting once every
// 8 MiB of discarded blocks keeps the daemon at "image + cache bound + a fixed overhead"
// (docs/design.md, "Memory").

/**
 * Bytes discarded between two collections: the most garbage the daemon carries. 8 MiB, not 4: a walk
 * of the view discards a block per block decoded, and each collection holds up requests (~15 ms).
 */
const RECLAIM_EVERY_BYTES = 8 * 2 ** 20

let collect: (() => void) | undefined

/**
 * V8's full collection. The daemon that `kheadersfs mount` starts runs with --expose-gc; otherwise
 * (`mount -f`) gc is made available at run time, from a new context. node:v8 and node:vm are required
 * only then, since each holds heap of its own (docs/design.md, "Memory").
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

  /** Note `bytes` no longer referenced; collect once enough has piled up (a full GC). */
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
 * manifest's JSON and its file records, garbage once the tree is built) goes back to the system;
 * without compaction V8 keeps every page that still holds a few live objects. Compacting only here:
 * at every collection it makes the reclaimer's collections several times slower (docs/design.md, "Memory").
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
