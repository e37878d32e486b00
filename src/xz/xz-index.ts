// The block table of an in-memory .xz file, read from each Stream's Footer and Index without decoding
// anything: Streams are walked backwards from the end (skipping Stream Padding), so concatenated
// files work. Layout per the .xz file format spec (https://tukaani.org/xz/xz-file-format.txt).
import { XzFormatError } from '../errors'
import { crc32 } from './crc32'

export const XZ_CHECK = { none: 0x00, crc32: 0x01, crc64: 0x04, sha256: 0x0a } as const

/** Bytes of a Check field by check ID; reserved IDs have sizes too, so their blocks can still be located. */
export function checkSize(check: number): number {
  return check === 0 ? 0 : 4 << Math.floor((check - 1) / 3)
}

export interface XzBlock {
  /** Position in the whole file (0-based, across streams). */
  index: number
  /** Stream (0-based) the block belongs to. */
  stream: number
  /** File offset of the Block Header. */
  fileOffset: number
  headerSize: number
  /** File offset and size of the Compressed Data (what a raw decoder takes). */
  dataOffset: number
  dataSize: number
  /** Header + Compressed Data + Check, without Block Padding (as the Index stores it). */
  unpaddedSize: number
  /** Bytes the block occupies in the file: unpaddedSize rounded up to 4. */
  totalSize: number
  uncompressedOffset: number
  uncompressedSize: number
  /** Check ID of its stream (XZ_CHECK). */
  check: number
}

export interface XzStream {
  index: number
  fileOffset: number
  /** Stream Header to Stream Footer inclusive. */
  size: number
  /** Null bytes of Stream Padding after this stream. */
  padding: number
  check: number
  blocks: number
  uncompressedOffset: number
  uncompressedSize: number
}

export interface XzIndex {
  blocks: XzBlock[]
  streams: XzStream[]
  compressedSize: number
  uncompressedSize: number
  /** The check ID shared by every stream; null when concatenated streams use different checks. */
  check: number | null
}

const HEADER_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])
const HEADER_SIZE = 12
const FOOTER_SIZE = 12

const fail = (message: string): never => {
  throw new XzFormatError(`xz: ${message}`)
}

/** Reads the spec's variable-length integers (1.2), never past `limit`. */
export class VliReader {
  constructor(
    private readonly buf: Buffer,
    public pos: number,
    private readonly limit: number,
  ) {}
  vli(what: string): number {
    let value = 0
    let scale = 1
    for (let i = 0; i < 9; i++) {
      if (this.pos >= this.limit) fail(`${what} at byte ${this.pos}: multibyte integer runs past its field`)
      const b = this.buf[this.pos++]
      if (i > 0 && b === 0) fail(`${what} at byte ${this.pos - 1}: multibyte integer ends in a null byte`)
      value += (b & 0x7f) * scale
      if ((b & 0x80) === 0) {
        // The format allows 63 bits; beyond 2^53 no file that fits in a Buffer can be consistent.
        if (value > Number.MAX_SAFE_INTEGER) fail(`${what} at byte ${this.pos - 1}: ${value} is too large`)
        return value
      }
      scale *= 128
    }
    return fail(`${what} at byte ${this.pos}: multibyte integer longer than 9 bytes`)
  }
}

/** Stream Flags (2 bytes) → check ID. */
function streamFlags(buf: Buffer, at: number, where: string): number {
  if (buf[at] !== 0 || (buf[at + 1] & 0xf0) !== 0)
    fail(`${where} at byte ${at}: unsupported stream flags ${buf.toString('hex', at, at + 2)}`)
  return buf[at + 1]
}

function crcMatches(buf: Buffer, start: number, end: number): boolean {
  return crc32(buf.subarray(start, end)) === buf.readUInt32LE(end)
}

interface IndexRecord {
  unpaddedSize: number
  uncompressedSize: number
}

/** One Stream ending at `end` (its Footer's last byte is end - 1). */
function parseStream(buf: Buffer, end: number): { fileOffset: number; check: number; records: IndexRecord[] } {
  if (end < HEADER_SIZE + 8 + FOOTER_SIZE)
    fail(`a stream ending at byte ${end} would be shorter than 32 bytes (truncated?)`)
  const footer = end - FOOTER_SIZE
  if (buf[end - 2] !== 0x59 || buf[end - 1] !== 0x5a)
    fail(`no stream footer magic "YZ" at byte ${end - 2} (truncated or not .xz)`)
  if (buf.readUInt32LE(footer) !== crc32(buf.subarray(footer + 4, footer + 10)))
    fail(`stream footer at byte ${footer}: CRC32 mismatch`)
  const check = streamFlags(buf, footer + 8, 'stream footer')
  const indexSize = (buf.readUInt32LE(footer + 4) + 1) * 4
  const indexStart = footer - indexSize
  if (indexStart < HEADER_SIZE) fail(`stream footer at byte ${footer}: index size ${indexSize} exceeds the stream`)

  const crcAt = footer - 4
  if (buf[indexStart] !== 0)
    fail(`index at byte ${indexStart}: no index indicator (0x00), found 0x${buf[indexStart].toString(16)}`)
  const r = new VliReader(buf, indexStart + 1, crcAt)
  const count = r.vli('index record count')
  // Each record takes at least 2 bytes: a corrupt count must not drive a huge loop.
  if (count * 2 > crcAt - r.pos) fail(`index at byte ${indexStart}: ${count} records cannot fit in ${indexSize} bytes`)
  const records: IndexRecord[] = []
  for (let i = 0; i < count; i++) {
    const unpaddedSize = r.vli(`index record ${i} unpadded size`)
    const uncompressedSize = r.vli(`index record ${i} uncompressed size`)
    if (unpaddedSize < 5) fail(`index record ${i} at byte ${r.pos}: unpadded size ${unpaddedSize} is below 5`)
    records.push({ unpaddedSize, uncompressedSize })
  }
  while ((r.pos - indexStart) % 4 !== 0) {
    if (r.pos >= crcAt || buf[r.pos] !== 0) fail(`index at byte ${indexStart}: bad index padding at byte ${r.pos}`)
    r.pos++
  }
  if (r.pos !== crcAt) fail(`index at byte ${indexStart}: records end at byte ${r.pos} but the footer says ${crcAt}`)
  if (!crcMatches(buf, indexStart, crcAt)) fail(`index at byte ${indexStart}: CRC32 mismatch`)

  let blocksSize = 0
  for (const rec of records) blocksSize += roundUp4(rec.unpaddedSize)
  const fileOffset = indexStart - blocksSize - HEADER_SIZE
  if (fileOffset < 0) fail(`index at byte ${indexStart}: its blocks (${blocksSize} bytes) do not fit before it`)
  if (!buf.subarray(fileOffset, fileOffset + 6).equals(HEADER_MAGIC))
    fail(`no stream header magic at byte ${fileOffset}, where the index puts the stream start`)
  if (!crcMatches(buf, fileOffset + 6, fileOffset + 8)) fail(`stream header at byte ${fileOffset}: CRC32 mismatch`)
  if (streamFlags(buf, fileOffset + 6, 'stream header') !== check)
    fail(`stream at byte ${fileOffset}: header and footer flags differ`)
  return { fileOffset, check, records }
}

const roundUp4 = (n: number): number => Math.ceil(n / 4) * 4

/** Parse every stream's index; throws XzFormatError naming the first inconsistency found. */
export function parseXzIndex(buf: Buffer): XzIndex {
  if (buf.length === 0) fail('empty file')
  if (buf.length % 4 !== 0) fail(`file size ${buf.length} is not a multiple of 4 (truncated?)`)
  const parsed: Array<ReturnType<typeof parseStream> & { padding: number }> = []
  let end = buf.length
  while (end > 0) {
    let padding = 0
    while (end >= 4 && buf.readUInt32LE(end - 4) === 0) {
      end -= 4
      padding += 4
    }
    if (end === 0) fail(`${padding} null bytes at byte 0 where a stream header should be`)
    const s = parseStream(buf, end)
    parsed.unshift({ ...s, padding })
    end = s.fileOffset
  }

  const blocks: XzBlock[] = []
  const streams: XzStream[] = []
  let uncompressedOffset = 0
  for (const [si, s] of parsed.entries()) {
    const streamStart = uncompressedOffset
    let fileOffset = s.fileOffset + HEADER_SIZE
    for (const rec of s.records) {
      const headerSize = (buf[fileOffset] + 1) * 4
      const dataSize = rec.unpaddedSize - headerSize - checkSize(s.check)
      if (buf[fileOffset] === 0)
        fail(`block ${blocks.length} at byte ${fileOffset}: no block header (found an index indicator)`)
      if (dataSize <= 0)
        fail(
          `block ${blocks.length} at byte ${fileOffset}: unpadded size ${rec.unpaddedSize} leaves no room for compressed data`,
        )
      blocks.push({
        index: blocks.length,
        stream: si,
        fileOffset,
        headerSize,
        dataOffset: fileOffset + headerSize,
        dataSize,
        unpaddedSize: rec.unpaddedSize,
        totalSize: roundUp4(rec.unpaddedSize),
        uncompressedOffset,
        uncompressedSize: rec.uncompressedSize,
        check: s.check,
      })
      fileOffset += roundUp4(rec.unpaddedSize)
      uncompressedOffset += rec.uncompressedSize
    }
    if (uncompressedOffset > Number.MAX_SAFE_INTEGER) fail('uncompressed size is too large')
    const next = si + 1 < parsed.length ? parsed[si + 1].fileOffset : buf.length
    streams.push({
      index: si,
      fileOffset: s.fileOffset,
      size: next - s.padding - s.fileOffset,
      padding: s.padding,
      check: s.check,
      blocks: s.records.length,
      uncompressedOffset: streamStart,
      uncompressedSize: uncompressedOffset - streamStart,
    })
  }
  const check = streams.every((s) => s.check === streams[0].check) ? streams[0].check : null
  return { blocks, streams, compressedSize: buf.length, uncompressedSize: uncompressedOffset, check }
}

/** The blocks holding uncompressed bytes [start, end), in order; empty blocks are skipped. */
export function findBlocks(index: XzIndex, start: number, end: number): XzBlock[] {
  const { blocks } = index
  if (start >= end) return []
  // First block whose uncompressed range ends after `start` (block end offsets never decrease).
  let lo = 0
  let hi = blocks.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    const b = blocks[mid]
    if (b.uncompressedOffset + b.uncompressedSize <= start) lo = mid + 1
    else hi = mid
  }
  const out: XzBlock[] = []
  for (let i = lo; i < blocks.length && blocks[i].uncompressedOffset < end; i++) {
    if (blocks[i].uncompressedSize > 0) out.push(blocks[i])
  }
  return out
}
