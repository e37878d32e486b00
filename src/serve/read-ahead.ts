// When to decode a block before anyone asks for it. A walk of the view (grep -r, cp -r, tar -c,
// find | xargs) reads file after file in name order, and each tier of the archive is in name order
// (pack/build-order.ts), so the walk reads each tier as a stream: every read starts just past where
// one of a few earlier reads ended (the next file's tar header lies between). Builds read headers in
// include order and rarely make such a run. A stream that has gone on for RUN reads and moves into
// block b will want b+1 next: that is the block to decode ahead, while b's files are being read.

/** Files read in a row, each just past the last, before a stream counts as a walk. */
export const RUN = 8
/** Bytes a stream may skip between two reads: the next entry's tar header, a pax record, padding. */
const GAP = 4096
/** Streams followed at once: one per tier a walk reads, and a few readers. */
const STREAMS = 8

interface Stream {
  /** Where its last read ended, and in which block. */
  end: number
  block: number
  /** Reads in a row so far. */
  run: number
}

export class ReadAhead {
  private readonly streams: Stream[] = [] // most recently continued first

  /**
   * Note a read of [offset, end) whose last byte lies in block `block`; the block to decode ahead of
   * it, or -1. A stream moving into a block asks for the one after it once; so does a stream's first
   * read that makes it a walk.
   */
  next(offset: number, end: number, block: number): number {
    const i = this.streams.findIndex((s) => offset >= s.end && offset - s.end <= GAP)
    if (i < 0) {
      this.streams.unshift({ end, block, run: 1 })
      if (this.streams.length > STREAMS) this.streams.pop()
      return -1
    }
    const s = this.streams[i]
    this.streams.splice(i, 1)
    this.streams.unshift(s)
    const moved = block !== s.block
    // Only a new file counts (its header lies between): a program or a large header read in chunks
    // is one file, which the kernel already reads ahead within.
    if (offset > s.end) s.run++
    s.end = end
    s.block = block
    return s.run === RUN || (s.run > RUN && moved) ? block + 1 : -1
  }
}
