// Decoding one .xz block on its own: parse its Block Header, hand its Compressed Data to lzma-native's
// raw LZMA2 decoder and, optionally, verify the block's Check. Blocks are independent (each starts with
// an LZMA2 dictionary reset), which is what lets a reader seek by block.
import { createHash } from 'node:crypto'
import { endianness } from 'node:os'
import { crc32 } from './crc32'
import { XzFormatError } from '../errors'
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
   * decode to other bytes of the right length). Measured per MiB of kernel-header tar (1 MiB blocks,
   * 2-core VM): the raw decode takes 15-22 ms warm (22-32 ms cold) and this CRC64 2.3 ms, ~14% of a
   * 16.5 ms decode; CRC32 (zlib) takes 0.2 ms and SHA-256 0.6 ms.
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
  let out: Buffer
  let consumed: number
  try {
    ;({ out, consumed } = await rawDecode(
      buf.subarray(block.dataOffset, block.dataOffset + block.dataSize),
      dictSize,
      block.uncompressedSize,
    ))
  } catch (e) {
    throw new XzFormatError(`xz: ${where}: LZMA2 data: ${(e as Error).message}`, e)
  }
  // The decoder stops at LZMA2's end marker and ignores what follows; the spec wants the sizes to match.
  if (consumed !== block.dataSize)
    fail(`${where}: LZMA2 data ends after ${consumed} bytes, the index says ${block.dataSize}`)
  if (out.length !== block.uncompressedSize)
    fail(`${where}: decoded ${out.length} bytes, the index says ${block.uncompressedSize}`)
  if (opts.verify && !checkMatches(block.check, out, buf.subarray(checkAt, end)))
    fail(`${where}: check (${checkName(block.check)}) mismatch`)
  return out
}

/**
 * lzma-native, loaded at the first decode or by loadDecoder: a mount that is only stat'ed or read flat
 * never pays for it (16 ms and 1.4 MB of anonymous memory, most of it its copy of readable-stream).
 */
let decoder: typeof import('lzma-native') | undefined

/**
 * Load the decoder now rather than at the first decode. The daemon does it in its first idle turn
 * after ready when it serves the kheaders/ view: the first read of a header on a fresh mount then
 * pays only for its block (time to first byte, docs/benchmarks.md §4.3).
 */
export function loadDecoder(): typeof import('lzma-native') {
  decoder ??= require('lzma-native') as typeof import('lzma-native')
  return decoder
}

function rawDecode(data: Buffer, dictSize: number, outSize: number): Promise<{ out: Buffer; consumed: number }> {
  const lzma = loadDecoder()
  // Asynchronous (libuv thread pool): the `synchronous` option saved 1-5 ms/MiB but blocks the event loop.
  const dec = lzma.createStream('rawDecoder', { filters: [{ id: lzma.FILTER_LZMA2, options: { dictSize } }] })
  return new Promise((resolve, reject) => {
    // The decoder hands over 64 KiB chunks; copying each into the block as it arrives (rather than
    // concatenating at the end) never holds the block twice.
    const out = Buffer.allocUnsafe(outSize)
    let n = 0
    dec.on('data', (c: Buffer) => {
      if (n + c.length > outSize)
        return dec.destroy(new XzFormatError(`xz: decodes to more than the ${outSize} bytes the index says`))
      n += c.copy(out, n)
    })
    dec.once('end', () => resolve({ out: n === outSize ? out : out.subarray(0, n), consumed: dec.totalIn() }))
    dec.once('error', reject)
    dec.end(data)
  })
}

function checkName(id: number): string {
  return Object.entries(XZ_CHECK).find(([, v]) => v === id)?.[0] ?? `ID ${id}`
}

function checkMatches(id: number, data: Buffer, stored: Buffer): boolean {
  switch (id) {
    case XZ_CHECK.none:
      return true
    case XZ_CHECK.crc32:
      return crc32(data) === stored.readUInt32LE(0)
    case XZ_CHECK.crc64:
      return crc64(data).equals(stored)
    case XZ_CHECK.sha256:
      return createHash('sha256').update(data).digest().equals(stored)
    default:
      return fail(`check ID ${id} is reserved: cannot verify it`)
  }
}

// CRC-64/XZ (ECMA-182 polynomial, reflected: 0xC96C5795D7870F42) in two 32-bit halves: BigInt took 64 ms/MiB.
// Sliced by 8 (table t gives the CRC of a byte followed by t zero bytes), reading the data as 32-bit
// words: ~1 ms/MiB against 3.6–4 ms byte by byte. It runs on the daemon's main thread at every decode,
// where a walk of the view (35 blocks) spent 200 ms in it.
const POLY_HI = 0xc96c5795
const POLY_LO = 0xd7870f42
const T_LO = new Uint32Array(8 * 256)
const T_HI = new Uint32Array(8 * 256)
for (let i = 0; i < 256; i++) {
  let lo = i
  let hi = 0
  for (let k = 0; k < 8; k++) {
    const xor = lo & 1
    lo = (lo >>> 1) | ((hi & 1) << 31)
    hi >>>= 1
    if (xor) {
      lo ^= POLY_LO
      hi ^= POLY_HI
    }
  }
  T_LO[i] = lo
  T_HI[i] = hi
}
for (let i = 256; i < 8 * 256; i++) {
  const lo = T_LO[i - 256]
  const hi = T_HI[i - 256]
  T_LO[i] = ((lo >>> 8) | (hi << 24)) ^ T_LO[lo & 0xff]
  T_HI[i] = (hi >>> 8) ^ T_HI[lo & 0xff]
}
/** Words are read in the machine's order; the tables are for little endian. */
const WORDS = endianness() === 'LE'

/** CRC-64 of `data` as .xz stores it: 8 bytes, little endian. */
export function crc64(data: Uint8Array): Buffer {
  let lo = 0xffffffff
  let hi = 0xffffffff
  let i = 0
  if (WORDS && (data.byteOffset & 3) === 0 && data.length >= 8) {
    const w = new Uint32Array(data.buffer, data.byteOffset, (data.length >>> 3) * 2)
    for (let k = 0; k < w.length; k += 2) {
      const a = lo ^ w[k]
      const b = hi ^ w[k + 1]
      lo =
        T_LO[1792 + (a & 0xff)] ^
        T_LO[1536 + ((a >>> 8) & 0xff)] ^
        T_LO[1280 + ((a >>> 16) & 0xff)] ^
        T_LO[1024 + (a >>> 24)] ^
        T_LO[768 + (b & 0xff)] ^
        T_LO[512 + ((b >>> 8) & 0xff)] ^
        T_LO[256 + ((b >>> 16) & 0xff)] ^
        T_LO[b >>> 24]
      hi =
        T_HI[1792 + (a & 0xff)] ^
        T_HI[1536 + ((a >>> 8) & 0xff)] ^
        T_HI[1280 + ((a >>> 16) & 0xff)] ^
        T_HI[1024 + (a >>> 24)] ^
        T_HI[768 + (b & 0xff)] ^
        T_HI[512 + ((b >>> 8) & 0xff)] ^
        T_HI[256 + ((b >>> 16) & 0xff)] ^
        T_HI[b >>> 24]
    }
    i = w.length * 4
  }
  for (; i < data.length; i++) {
    const t = (lo ^ data[i]) & 0xff
    lo = ((lo >>> 8) | (hi << 24)) ^ T_LO[t]
    hi = (hi >>> 8) ^ T_HI[t]
  }
  const out = Buffer.alloc(8)
  out.writeUInt32LE(~lo >>> 0, 0)
  out.writeUInt32LE(~hi >>> 0, 4)
  return out
}
