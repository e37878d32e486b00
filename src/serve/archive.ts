// Byte ranges of the uncompressed header tar, read straight out of kheaders.tar.xz: the xz index
// (parsed at mount, not decoded) says which blocks hold a range, and only those are decoded, through
// the byte-bounded block cache. This is what lets the kheaders/ view serve any file without ever
// decompressing the whole archive. Each block's check (CRC64) is verified at its decode, so a block
// whose compressed bytes were changed is answered EIO, never with wrong bytes.
import { decodeBlock } from '../xz/block'
import { findBlocks, type XzIndex } from '../xz/xz-index'
import { BlockCache, type BlockSharer, type CacheStats } from './block-cache'

const EMPTY = Buffer.alloc(0)

export class ArchiveReader {
  readonly index: XzIndex
  private readonly cache: BlockCache

  /** `index` is the block table of `xz` (Image.xzIndex, read when the image was checked). */
  constructor(xz: Buffer, index: XzIndex, cacheBytes: number, concurrency = 2) {
    this.index = index
    this.cache = new BlockCache(cacheBytes, (i) => decodeBlock(xz, this.index.blocks[i], { verify: true }), concurrency)
  }

  /**
   * Up to `len` bytes of the tar at `offset` (fewer at its end), for a reader of user `uid`. Within one
   * block the answer is a view of the cached block, not a copy.
   */
  async read(offset: number, len: number, uid = 0): Promise<Buffer> {
    const end = Math.min(offset + len, this.index.uncompressedSize)
    if (offset >= end) return EMPTY
    const blocks = findBlocks(this.index, offset, end)
    // Decode all blocks of the range together (a read can straddle a block boundary).
    const data = await Promise.all(blocks.map((b) => this.cache.get(b.index, uid)))
    const parts = blocks.map((b, i) =>
      data[i].subarray(
        Math.max(offset, b.uncompressedOffset) - b.uncompressedOffset,
        Math.min(end, b.uncompressedOffset + b.uncompressedSize) - b.uncompressedOffset,
      ),
    )
    return parts.length === 1 ? parts[0] : Buffer.concat(parts)
  }

  /** Each block's first byte in the tar, then the tar's end (what a sharer locates reads with). */
  blockStarts(): Float64Array {
    const blocks = this.index.blocks
    const starts = new Float64Array(blocks.length + 1)
    blocks.forEach((b, i) => (starts[i] = b.uncompressedOffset))
    starts[blocks.length] = this.index.uncompressedSize
    return starts
  }

  /** Share the cached blocks with `sharer` (the FUSE binding answers reads from them itself). */
  share(sharer: BlockSharer): void {
    this.cache.share(sharer)
  }

  stats(): CacheStats {
    return this.cache.stats()
  }
}
