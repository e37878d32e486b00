// Decoded xz blocks (and the decoder's output chunks) are memory outside V8's heap. V8 frees such
// memory only when its own heap needs a collection or when it has grown by ~64 MB, so a mount with a
// 4 MB block cache still grew by ~70 MB while a reader walked the view. Collecting once every 4 MiB
// of discarded blocks keeps the daemon at "image + cache bound + a fixed overhead" (docs/design.md).
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

/** Bytes discarded between two collections: the most garbage the daemon carries. */
export const RECLAIM_EVERY_BYTES = 4 * 2 ** 20

let collect: (() => void) | undefined

/** V8's full collection, without `node --expose-gc` on the command line (so `mount -f` gets it too). */
function fullGc(): void {
  if (collect === undefined) {
    setFlagsFromString('--expose-gc')
    collect = runInNewContext('gc') as () => void
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
