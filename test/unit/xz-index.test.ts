import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { crc32 } from 'node:zlib'
import t from 'tap'
import { xzBuffer } from '../../src/pack/xz'
import { VliReader, XZ_CHECK, findBlocks, parseXzIndex, type XzIndex } from '../../src/xz/xz-index'
import { headerText } from '../helpers/header-text'
import { tmpDir } from '../helpers/tmp'

const INPUT = headerText(700_000)
const xz = (args: string[], input: Buffer = INPUT): Buffer =>
  execFileSync('xz', ['-c', ...args], { input, maxBuffer: 64 << 20 })

const CHECK_NAMES: Record<string, number> = {
  None: XZ_CHECK.none,
  CRC32: XZ_CHECK.crc32,
  CRC64: XZ_CHECK.crc64,
  'SHA-256': XZ_CHECK.sha256,
}

/** Compare every stream and block against `xz --robot --list -vv` (columns per xz(1), ROBOT MODE). */
function matchesXzList(t: tap.Test, file: Buffer, what: string): XzIndex {
  const f = path.join(tmpDir(t), 'f.xz')
  writeFileSync(f, file)
  const rows = execFileSync('xz', ['--robot', '--list', '-vv', f])
    .toString()
    .trim()
    .split('\n')
    .map((l) => l.split('\t'))
  const ix = parseXzIndex(file)
  const streams = rows.filter((r) => r[0] === 'stream')
  const blocks = rows.filter((r) => r[0] === 'block')
  const totals = rows.find((r) => r[0] === 'totals')!
  t.equal(ix.streams.length, streams.length, `${what}: stream count`)
  t.equal(ix.blocks.length, blocks.length, `${what}: block count`)
  t.ok(blocks.length === Number(totals[2]), `${what}: xz lists every block`)
  t.equal(ix.compressedSize, Number(totals[3]), `${what}: compressed size`)
  t.equal(ix.uncompressedSize, Number(totals[4]), `${what}: uncompressed size`)
  for (const [i, r] of streams.entries()) {
    const s = ix.streams[i]
    t.same(
      [s.index + 1, s.blocks, s.fileOffset, s.uncompressedOffset, s.size, s.uncompressedSize, s.check, s.padding],
      [
        Number(r[1]),
        Number(r[2]),
        Number(r[3]),
        Number(r[4]),
        Number(r[5]),
        Number(r[6]),
        CHECK_NAMES[r[8]],
        Number(r[9]),
      ],
      `${what}: stream ${i}`,
    )
  }
  const firstInStream = ix.streams.map((s) => ix.blocks.findIndex((b) => b.stream === s.index))
  for (const [i, r] of blocks.entries()) {
    const b = ix.blocks[i]
    t.same(
      [
        b.stream + 1,
        b.index - firstInStream[b.stream] + 1,
        b.index + 1,
        b.fileOffset,
        b.uncompressedOffset,
        b.totalSize,
        b.uncompressedSize,
        b.check,
        b.headerSize,
        b.dataSize,
      ],
      [1, 2, 3, 4, 5, 6, 7, 9, 11, 13].map((c) => (c === 9 ? CHECK_NAMES[r[c]] : Number(r[c]))),
      `${what}: block ${i}`,
    )
    t.equal(b.dataOffset, b.fileOffset + b.headerSize)
    t.equal(b.unpaddedSize, b.headerSize + b.dataSize + [0, 4, 8, 32][[0, 1, 4, 10].indexOf(b.check)])
  }
  return ix
}

t.test('xz CLI files: every block and stream matches xz --robot --list -vv', async (t) => {
  const cases: Array<[string, string[], number, number, Buffer?]> = [
    ['-T1 64KiB crc64', ['-6', '--block-size=64KiB', '-T1'], XZ_CHECK.crc64, 11],
    ['-T2 64KiB (sizes in block headers)', ['-6', '--block-size=64KiB', '-T2'], XZ_CHECK.crc64, 11],
    ['crc32', ['-6', '--block-size=100KiB', '-T1', '--check=crc32'], XZ_CHECK.crc32, 7],
    ['sha256', ['-6', '--block-size=100KiB', '-T1', '--check=sha256'], XZ_CHECK.sha256, 7],
    ['no check', ['-6', '--block-size=100KiB', '-T1', '--check=none'], XZ_CHECK.none, 7],
    ['single block', ['-6', '-T1'], XZ_CHECK.crc64, 1],
    ['tiny blocks', ['-1', '--block-size=1000', '-T1'], XZ_CHECK.crc64, 20, INPUT.subarray(0, 20_000)],
  ]
  for (const [what, args, check, blocks, input] of cases) {
    const ix = matchesXzList(t, xz(args, input), what)
    t.same([ix.uncompressedSize, ix.check, ix.blocks.length], [(input ?? INPUT).length, check, blocks], what)
  }
})

t.test('an empty file: one stream, no blocks', async (t) => {
  const ix = matchesXzList(t, xz([], Buffer.alloc(0)), 'empty')
  t.same([ix.blocks.length, ix.streams.length, ix.uncompressedSize, ix.compressedSize], [0, 1, 0, 32])
  t.same(findBlocks(ix, 0, 100), [])
})

t.test('concatenated streams with stream padding; offsets run on across streams', async (t) => {
  const a = xz(['-6', '--block-size=64KiB', '-T1', '--check=crc32'], INPUT.subarray(0, 200_000))
  const b = xz(['-6', '--block-size=50KiB', '-T2', '--check=sha256'], INPUT.subarray(200_000, 300_000))
  const empty = xz([], Buffer.alloc(0))
  const file = Buffer.concat([a, Buffer.alloc(8), b, empty, Buffer.alloc(4), a, Buffer.alloc(12)])
  const ix = matchesXzList(t, file, 'concatenated')
  t.same(
    ix.streams.map((s) => s.padding),
    [8, 0, 4, 12],
  )
  t.same(
    ix.streams.map((s) => s.fileOffset),
    [0, a.length + 8, a.length + 8 + b.length, a.length + 12 + b.length + empty.length],
  )
  t.equal(ix.check, null, 'mixed checks')
  t.equal(ix.uncompressedSize, 500_000)
  t.equal(ix.blocks.at(-1)!.uncompressedOffset, 300_000 + 3 * 65536)
})

t.test('lzma-native files as src/pack/xz.ts writes them (1 and 2 threads)', async (t) => {
  for (const threads of [1, 2]) {
    const file = await xzBuffer(INPUT, { preset: 6, blockSize: 64 << 10, threads })
    const ix = matchesXzList(t, file, `lzma-native threads=${threads}`)
    t.equal(ix.check, XZ_CHECK.crc64)
    t.equal(ix.blocks.length, Math.ceil(INPUT.length / 65536))
  }
})

t.test('findBlocks returns exactly the blocks overlapping [start, end)', async (t) => {
  const ix = parseXzIndex(xz(['-6', '--block-size=64KiB', '-T1']))
  const brute = (s: number, e: number) =>
    ix.blocks.filter((b) => s < e && b.uncompressedOffset < e && b.uncompressedOffset + b.uncompressedSize > s)
  const K = 65536
  const ranges: Array<[number, number]> = [
    [0, 1],
    [0, K],
    [0, K + 1],
    [K - 1, K + 1],
    [K, 2 * K],
    [5 * K + 3, 9 * K],
    [0, INPUT.length],
    [INPUT.length - 1, INPUT.length + 100],
    [INPUT.length, INPUT.length + 5],
    [7, 7],
    [9, 3],
  ]
  let x = 7
  for (let i = 0; i < 200; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0
    const s = x % INPUT.length
    ranges.push([s, s + (x >>> 20)])
  }
  for (const [s, e] of ranges)
    t.same(
      findBlocks(ix, s, e).map((b) => b.index),
      brute(s, e).map((b) => b.index),
      `[${s}, ${e})`,
    )
  t.same(
    findBlocks(ix, K, K + 1).map((b) => b.index),
    [1],
  )
  t.same(findBlocks(ix, 0, INPUT.length).length, ix.blocks.length)
})

t.test('multibyte integers: 1 to 9 bytes, minimal encoding only', async (t) => {
  const read = (...bytes: number[]) => new VliReader(Buffer.from(bytes), 0, bytes.length).vli('test')
  t.equal(read(0x00), 0)
  t.equal(read(0x7f), 127)
  t.equal(read(0x80, 0x01), 128)
  t.equal(read(0xff, 0xff, 0x03), 65535)
  t.equal(read(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f), Number.MAX_SAFE_INTEGER)
  const r = new VliReader(Buffer.from([0x81, 0x01, 0x05]), 0, 3)
  t.same([r.vli('a'), r.pos, r.vli('b'), r.pos], [129, 2, 5, 3])
  t.throws(() => read(0x80, 0x00), { name: 'XzFormatError', message: /ends in a null byte/ })
  t.throws(() => read(0x80, 0x80), { name: 'XzFormatError', message: /runs past its field/ })
  t.throws(() => read(...new Array<number>(9).fill(0x80), 0x01), {
    name: 'XzFormatError',
    message: /longer than 9 bytes/,
  })
  t.throws(() => read(0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01), {
    name: 'XzFormatError',
    message: /too large/,
  })
})

/** A stream with the given Index body (after the indicator) and `blocks` bytes of fake blocks, all CRCs valid. */
function forgeStream(indexBody: number[], blockBytes: number): Buffer {
  const flags = Buffer.from([0, XZ_CHECK.crc64])
  const u32 = (n: number) => {
    const b = Buffer.alloc(4)
    b.writeUInt32LE(n >>> 0)
    return b
  }
  let index = Buffer.from([0, ...indexBody])
  index = Buffer.concat([index, Buffer.alloc((4 - (index.length % 4)) % 4)])
  index = Buffer.concat([index, u32(crc32(index))])
  const footerBody = Buffer.concat([u32(index.length / 4 - 1), flags])
  const block = Buffer.alloc(blockBytes, 1)
  return Buffer.concat([
    Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0]),
    flags,
    u32(crc32(flags)),
    block,
    index,
    u32(crc32(footerBody)),
    footerBody,
    Buffer.from('YZ'),
  ])
}

t.test('malformed files throw XzFormatError naming the problem', async (t) => {
  const good = xz(['-6', '--block-size=64KiB', '-T1'])
  const ix = parseXzIndex(good)
  const footer = good.length - 12
  const indexStart = ix.blocks.at(-1)!.fileOffset + ix.blocks.at(-1)!.totalSize
  const flip = (at: number, mask = 0x01) => {
    const b = Buffer.from(good)
    b[at] ^= mask
    return b
  }
  const bad: Array<[string, Buffer, RegExp]> = [
    ['empty buffer', Buffer.alloc(0), /empty file/],
    ['truncated by 1 byte', good.subarray(0, good.length - 1), /not a multiple of 4/],
    ['truncated by 4 bytes', good.subarray(0, good.length - 4), /no stream footer magic/],
    ['truncated to half', good.subarray(0, (good.length >> 3) * 4), /no stream footer magic/],
    ['only the footer', good.subarray(footer), /shorter than 32 bytes/],
    ['not xz', Buffer.from('hello world, not an xz file! '.repeat(4)), /no stream footer magic/],
    ['footer magic', flip(good.length - 1), /no stream footer magic "YZ"/],
    ['footer backward size', flip(footer + 4), /stream footer at byte \d+: CRC32 mismatch/],
    ['footer CRC32', flip(footer), /stream footer at byte \d+: CRC32 mismatch/],
    ['footer flags', flip(footer + 9), /stream footer at byte \d+: CRC32 mismatch/],
    ['index indicator', flip(indexStart), /no index indicator/],
    ['index record', flip(indexStart + 3), /index at byte \d+: CRC32 mismatch|index record/],
    ['index CRC32', flip(footer - 1), /index at byte \d+: CRC32 mismatch/],
    ['header magic', flip(1), /no stream header magic at byte 0/],
    ['header flags', flip(7), /stream header at byte 0: CRC32 mismatch/],
    ['header CRC32', flip(9), /stream header at byte 0: CRC32 mismatch/],
    ['padding not a multiple of 4', Buffer.concat([good, Buffer.alloc(2)]), /not a multiple of 4/],
    ['garbage after the stream', Buffer.concat([good, Buffer.from('junk')]), /no stream footer magic/],
    ['null bytes before the first stream', Buffer.concat([Buffer.alloc(4), good]), /4 null bytes at byte 0/],
    ['only padding', Buffer.alloc(16), /16 null bytes at byte 0/],
    ['garbage between streams', Buffer.concat([good, Buffer.from('abcd'), good]), /no stream footer magic/],
    // Valid CRCs, inconsistent contents:
    ['unpadded size below 5', forgeStream([1, 4, 10], 4), /unpadded size 4 is below 5/],
    ['blocks larger than the file', forgeStream([1, 0xa0, 0x1f, 10], 4), /do not fit before it/],
    ['blocks smaller than the space', forgeStream([1, 8, 10], 16), /no stream header magic/],
    ['record count too large', forgeStream([9, 8, 10], 8), /9 records cannot fit/],
    ['index padding not null', forgeStream([1, 8, 10, 0, 1], 8), /records end at byte|bad index padding/],
    ['record runs into the CRC', forgeStream([1, 8, 0x80, 0x80, 0x80, 0x80, 0x80], 8), /runs past its field/],
    ['record ends in a null byte', forgeStream([1, 8, 0x80, 0x80], 8), /ends in a null byte/],
    ['header size leaves no data', forgeStream([1, 16, 10], 16), /leaves no room for compressed data/],
  ]
  for (const [what, buf, message] of bad) t.throws(() => parseXzIndex(buf), { name: 'XzFormatError', message }, what)
  t.doesNotThrow(() => parseXzIndex(forgeStream([1, 24, 10], 24)), 'the forged stream itself is well formed')
  try {
    parseXzIndex(flip(footer))
    t.fail('no error')
  } catch (e) {
    const err = e as { errno: number; exitCode: number; message: string }
    t.same([err.errno, err.exitCode], [5, 4], 'EIO, the bad-image exit code')
    t.match(err.message, /^xz: [^\n]+$/, 'one line')
  }
})
