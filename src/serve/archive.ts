// Byte ranges of the uncompressed header tar, read straight out of kheaders.tar.xz: the xz index
// (parsed at mount, not decoded) says which blocks hold a range, and only those are decoded, through
// the byte-bounded block cache. This is what lets the kheaders/ view serve any file without ever
// decompressing the whole archive.
import { decodeBlock } from '../xz/block'
import { findBlocks, type XzIndex } from '../xz/xz-index'
import { BlockCache, type CacheStats } from './block-cache'

export class ArchiveReader {
  readonly index: XzIndex
  private readonly cache: BlockCache

  /** `index` is the block table of `xz` (Image.xzIndex, read when the image was checked). */
  constructor(xz: Buffer, index: XzIndex, cacheBytes: number, concurrency = 2) {
    this.index = index
    this.cache = new BlockCache(cacheBytes, (i) => decodeBlock(xz, this.index.blocks[i]), concurrency)
  }

  /** Copy up to `len` bytes of the tar at `offset` into `buf`; returns the count (0 at the end). */
  async read(buf: Buffer, offset: number, len: number): Promise<number> {
    const end = Math.min(offset + len, this.index.uncompressedSize, offset + buf.length)
    if (offset >= end) return 0
    const blocks = findBlocks(this.index, offset, end)
    // Decode all blocks of the range together (a read can straddle a block boundary).
    const data = await Promise.all(blocks.map((b) => this.cache.get(b.index)))
    let n = 0
    blocks.forEach((b, i) => {
      const from = Math.max(offset, b.uncompressedOffset) - b.uncompressedOffset
      const to = Math.min(end, b.uncompressedOffset + b.uncompressedSize) - b.uncompressedOffset
      n += data[i].copy(buf, n, from, to)
    })
    return n
  }

  stats(): CacheStats {
    return this.cache.stats()
  }
}
