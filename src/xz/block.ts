// Decoding one .xz block on its own: parse its Block Header, hand its Compressed Data to the native
// addon's raw LZMA2 decoder (src/native/xz_decode.c, the system's liblzma on the thread pool) and,
// optionally, verify the block's Check. Blocks are independent (each starts with
// an LZMA2 dictionary reset), which is what lets a reader seek by block.
import { createHash } from 'node:crypto'
import { crc32 } from './crc32'
import { XzFormatError } from '../errors'
import { loadBinding, type Lzma2Result } from '../native/binding'
import { VliReader, XZ_CHECK, checkSize, type XzBlock } from './xz-index'

const FILTER_LZMA2 = 0x21

export interface XzBlockHeader {
  size: number
  /** Present only when the encoder stored it (xz -T2 and lzma-native's threaded encoder do, xz -T1 does not). */
  compressedSize?: number
  uncompressedSize?: number
  filters: Array<{ id: number; props: Buffer }>
}

const fail = (message: string): never => {
  throw new XzFormatError(`xz: ${message}`)
}

/** Parse the Block Header at `offset`, not reading at or past `limit`. */
export function parseBlockHeader(buf: Buffer, offset: number, limit = buf.length): XzBlockHeader {
  const where = `block header at byte ${offset}`
  if (offset >= limit) fail(`${where}: past the end of the data`)
  if (buf[offset] === 0) fail(`${where}: found an index indicator instead`)
  const size = (buf[offset] + 1) * 4
  if (offset + size > limit) fail(`${where}: its size ${size} runs past byte ${limit}`)
  const crcAt = offset + size - 4
  if (crc32(buf.subarray(offset, crcAt)) !== buf.readUInt32LE(crcAt)) fail(`${where}: CRC32 mismatch`)
  const flags = buf[offset + 1]
  if (flags & 0x3c) fail(`${where}: reserved block flags set (0x${flags.toString(16)})`)
  const r = new VliReader(buf, offset + 2, crcAt)
  const header: XzBlockHeader = { size, filters: [] }
  if (flags & 0x40) {
    header.compressedSize = r.vli(`${where}: compressed size`)
    if (header.compressedSize === 0) fail(`${where}: compressed size is 0`)
  }
  if (flags & 0x80) header.uncompressedSize = r.vli(`${where}: uncompressed size`)
  for (let i = 0; i <= (flags & 3); i++) {
    const id = r.vli(`${where}: filter ${i} ID`)
    const propsSize = r.vli(`${where}: filter ${i} properties size`)
    if (r.pos + propsSize > crcAt) fail(`${where}: filter ${i} properties run past the header`)
    header.filters.push({ id, props: buf.subarray(r.pos, r.pos + propsSize) })
    r.pos += propsSize
  }
  for (; r.pos < crcAt; r.pos++) if (buf[r.pos] !== 0) fail(`${where}: non-null header padding at byte ${r.pos}`)
  return header
}

/** LZMA2's one-byte property (spec 5.3.1) → dictionary size. */
export function lzma2DictSize(props: Buffer): number {
  if (props.length !== 1 || props[0] > 40) fail(`invalid LZMA2 properties ${props.toString('hex') || '(none)'}`)
  return props[0] === 40 ? 0xffffffff : (2 | (props[0] & 1)) * 2 ** ((props[0] >> 1) + 11)
}

export interface DecodeOptions {
  /**
   * Verify the block's Check against the decoded bytes (the daemon always does: changed LZMA2 data can
   * decode to other bytes of the right length). CRC32 and CRC64 are computed on the pool thread with the
   * decode (liblzma's CRC64: ~1 ms per MiB of a ~11 ms decode); SHA-256 here (0.6 ms per MiB).
   */
  verify?: boolean
}

/**
 * Check everything about block `block` of `buf` that needs no decoding (its header, sizes, filter
 * chain, padding) and give the dictionary its decode needs. The image reader runs this for every block
 * at load, so that a bad block is refused before the mount is ready, not answered EIO later.
 */
export function checkBlock(buf: Buffer, block: XzBlock): { dictSize: number; checkAt: number; end: number } {
  const where = `block ${block.index} at byte ${block.fileOffset}`
  const end = block.fileOffset + block.totalSize
  if (end > buf.length) fail(`${where}: ends at byte ${end}, past the end of the file (${buf.length})`)
  const h = parseBlockHeader(buf, block.fileOffset, block.fileOffset + block.unpaddedSize)
  if (h.size !== block.headerSize) fail(`${where}: header size ${h.size} differs from the index's ${block.headerSize}`)
  if (h.compressedSize !== undefined && h.compressedSize !== block.dataSize) {
    fail(`${where}: header says ${h.compressedSize} compressed bytes, the index ${block.dataSize}`)
  }
  if (h.uncompressedSize !== undefined && h.uncompressedSize !== block.uncompressedSize) {
    fail(`${where}: header says ${h.uncompressedSize} uncompressed bytes, the index ${block.uncompressedSize}`)
  }
  if (h.filters.length !== 1 || h.filters[0].id !== FILTER_LZMA2) {
    const ids = h.filters.map((f) => '0x' + f.id.toString(16)).join(',')
    fail(`${where}: filter chain ${ids} is not supported (only LZMA2 alone, 0x21)`)
  }
  const checkAt = end - checkSize(block.check)
  for (let p = block.dataOffset + block.dataSize; p < checkAt; p++)
    if (buf[p] !== 0) fail(`${where}: non-null block padding at byte ${p}`)
  // The dictionary only has to hold what this block produces (it starts empty: blocks are independent),
  // while liblzma maps the full size per decoder (strace: one 8 MiB mmap per 1 MiB block at preset 6; only
  // touched pages become resident). 4096 is liblzma's minimum.
  const dictSize = Math.min(lzma2DictSize(h.filters[0].props), Math.max(4096, block.uncompressedSize))
  return { dictSize, checkAt, end }
}

/** Decode one block of `buf` (the whole .xz file `block` was parsed from) into exactly its uncompressed bytes. */
export async function decodeBlock(buf: Buffer, block: XzBlock, opts: DecodeOptions = {}): Promise<Buffer> {
  const where = `block ${block.index} at byte ${block.fileOffset}`
  const { dictSize, checkAt, end } = checkBlock(buf, block)
  const stored = buf.subarray(checkAt, end)
  // CRC32 and CRC64 are computed beside the decode, on the pool thread; SHA-256 (rare: xz --check=sha256) here.
  const inThread = opts.verify && (block.check === XZ_CHECK.crc32 || block.check === XZ_CHECK.crc64)
  if (opts.verify && !inThread && block.check !== XZ_CHECK.none && block.check !== XZ_CHECK.sha256)
    fail(`check ID ${block.check} is reserved: cannot verify it`)
  const out = Buffer.allocUnsafeSlow(block.uncompressedSize)
  const r = await decodeLzma2(
    buf.subarray(block.dataOffset, block.dataOffset + block.dataSize),
    dictSize,
    out,
    inThread ? block.check : XZ_CHECK.none,
  )
  if (r.error !== undefined) fail(`${where}: LZMA2 data: ${r.error}`)
  // The decoder stops at LZMA2's end marker and ignores what follows; the spec wants the sizes to match.
  if (r.consumed !== block.dataSize)
    fail(`${where}: LZMA2 data ends after ${r.consumed} bytes, the index says ${block.dataSize}`)
  if (r.produced !== block.uncompressedSize)
    fail(`${where}: decoded ${r.produced} bytes, the index says ${block.uncompressedSize}`)
  if (opts.verify) {
    const ok = inThread ? r.check.equals(stored) : verifyHere(block.check, out, stored)
    if (!ok) fail(`${where}: check (${checkName(block.check)}) mismatch`)
  }
  return out
}

/** The native decoder (src/native/xz_decode.c) as a promise. */
function decodeLzma2(data: Buffer, dictSize: number, out: Buffer, check: number): Promise<Lzma2Result> {
  const binding = loadBinding()
  return new Promise((resolve) => binding.decodeLzma2(data, dictSize, out, check, resolve))
}

function checkName(id: number): string {
  return Object.entries(XZ_CHECK).find(([, v]) => v === id)?.[0] ?? `ID ${id}`
}

function verifyHere(id: number, data: Buffer, stored: Buffer): boolean {
  return id === XZ_CHECK.none || createHash('sha256').update(data).digest().equals(stored)
}
