import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { xzBuffer } from '../../src/pack/xz'
import { loadBinding, type Lzma2Result } from '../../src/native/binding'
import { decodeBlock, lzma2DictSize, parseBlockHeader } from '../../src/xz/block'
import { XZ_CHECK, parseXzIndex, type XzBlock } from '../../src/xz/xz-index'
import { headerText } from '../helpers/header-text'
import { tmpDir } from '../helpers/tmp'

const INPUT = headerText(700_000)
const xz = (args: string[], input: Buffer = INPUT): Buffer =>
  execFileSync('xz', ['-c', ...args], { input, maxBuffer: 64 << 20 })
const slice = (input: Buffer, b: XzBlock) =>
  input.subarray(b.uncompressedOffset, b.uncompressedOffset + b.uncompressedSize)

/** Every block decoded (concurrently) and concatenated equals the input; a block alone equals its slice. */
async function roundTrips(t: tap.Test, file: Buffer, input: Buffer, what: string): Promise<void> {
  const ix = parseXzIndex(file)
  t.ok(ix.blocks.length > 0, `${what}: has blocks`)
  const parts = await Promise.all(ix.blocks.map((b) => decodeBlock(file, b, { verify: true })))
  t.ok(Buffer.concat(parts).equals(input), `${what}: all blocks concatenated = input`)
  for (const [i, p] of parts.entries()) t.equal(p.length, ix.blocks[i].uncompressedSize)
  const one = ix.blocks[Math.floor(ix.blocks.length / 2)]
  t.ok(
    (await decodeBlock(file, one)).equals(slice(input, one)),
    `${what}: block ${one.index} alone = input at ${one.uncompressedOffset}`,
  )
}

t.test('xz CLI files decode block by block', async (t) => {
  const cases: Array<[string, string[]]> = [
    ['-T1 crc64', ['-6', '--block-size=64KiB', '-T1']],
    ['-T2 (sizes in headers)', ['-6', '--block-size=64KiB', '-T2']],
    ['crc32', ['-6', '--block-size=100KiB', '-T1', '--check=crc32']],
    ['sha256', ['-6', '--block-size=100KiB', '-T2', '--check=sha256']],
    ['no check', ['-6', '--block-size=100KiB', '-T1', '--check=none']],
    ['single block', ['-6', '-T1']],
    ['preset 9, 64 MiB dictionary', ['-9', '--block-size=300KiB', '-T1']],
    ['tiny blocks', ['-0', '--block-size=777', '-T1']],
  ]
  for (const [what, args] of cases) await roundTrips(t, xz(args), INPUT, what)
})

t.test('lzma-native files as src/pack/xz.ts writes them', async (t) => {
  for (const threads of [1, 2])
    await roundTrips(t, await xzBuffer(INPUT, { preset: 6, blockSize: 64 << 10, threads }), INPUT, `threads=${threads}`)
  const tiny = Buffer.from('x')
  await roundTrips(t, await xzBuffer(tiny, { preset: 6, blockSize: 64 << 10, threads: 1 }), tiny, 'one byte')
})

t.test('concatenated streams with padding and mixed checks', async (t) => {
  const a = INPUT.subarray(0, 150_000)
  const b = INPUT.subarray(150_000, 400_000)
  const file = Buffer.concat([
    xz(['--check=crc32', '--block-size=64KiB', '-T1'], a),
    Buffer.alloc(4),
    xz([], Buffer.alloc(0)),
    xz(['--check=sha256', '--block-size=64KiB', '-T2'], b),
    Buffer.alloc(8),
  ])
  await roundTrips(t, file, Buffer.concat([a, b]), 'concatenated')
})

t.test('block headers: sizes, filters, LZMA2 dictionary, as xz --robot --list -vv reports them', async (t) => {
  for (const args of [
    ['-6', '-T1'],
    ['-6', '-T2'],
    ['-3', '-T2'],
    ['-9', '-T1'],
  ]) {
    const file = xz([...args, '--block-size=100KiB'])
    const f = path.join(tmpDir(t), 'f.xz')
    writeFileSync(f, file)
    const rows = execFileSync('xz', ['--robot', '--list', '-vv', f])
      .toString()
      .split('\n')
      .filter((l) => l.startsWith('block\t'))
      .map((l) => l.split('\t'))
    const ix = parseXzIndex(file)
    for (const [i, b] of ix.blocks.entries()) {
      const h = parseBlockHeader(file, b.fileOffset)
      const r = rows[i]
      // Column 12 is "cu" when both sizes are in the header, "--" when neither is.
      t.same(
        [h.size, h.compressedSize !== undefined, h.uncompressedSize !== undefined],
        [Number(r[11]), r[12][0] === 'c', r[12][1] === 'u'],
        `${args.join(' ')}: block ${i}`,
      )
      if (h.compressedSize !== undefined)
        t.same([h.compressedSize, h.uncompressedSize], [Number(r[13]), b.uncompressedSize])
      t.same(
        h.filters.map((x) => x.id),
        [0x21],
      )
      const dict = /--lzma2=dict=(\d+)([KM]i)B/.exec(r[15])!
      t.equal(lzma2DictSize(h.filters[0].props), Number(dict[1]) * (dict[2] === 'Mi' ? 1 << 20 : 1 << 10), r[15])
    }
  }
})

t.test('LZMA2 dictionary property byte', async (t) => {
  t.same(
    [0, 1, 2, 18, 22, 23, 39, 40].map((p) => lzma2DictSize(Buffer.from([p]))),
    [4096, 6144, 8192, 2 << 20, 8 << 20, 12 << 20, 3 * 2 ** 30, 0xffffffff],
  )
  for (const bad of [[41], [0x40], [], [1, 2]])
    t.throws(() => lzma2DictSize(Buffer.from(bad)), { name: 'XzFormatError', message: /invalid LZMA2 properties/ })
})

/** Block `b` of `file` through the native decoder alone, asking for check `check`. */
const nativeDecode = (file: Buffer, b: XzBlock, check: number): Promise<Lzma2Result> =>
  new Promise((resolve) =>
    loadBinding().decodeLzma2(
      file.subarray(b.dataOffset, b.dataOffset + b.dataSize),
      1 << 20,
      Buffer.alloc(b.uncompressedSize),
      check,
      resolve,
    ),
  )

t.test("the decoder's CRC-64 and CRC32 are the check values xz stores", async (t) => {
  for (const [check, id, standard] of [
    ['crc64', XZ_CHECK.crc64, 0x995dc9bbdf1939fan],
    ['crc32', XZ_CHECK.crc32, 0xcbf43926n],
  ] as const) {
    const file = xz(['-T1', `--check=${check}`], Buffer.from('123456789'))
    const r = await nativeDecode(file, parseXzIndex(file).blocks[0], id)
    const sum = check === 'crc64' ? r.check.readBigUInt64LE(0) : BigInt(r.check.readUInt32LE(0))
    t.equal(sum, standard, `${check} of "123456789": the standard check value`)
  }
  const none = xz(['-T1', '--check=none'], Buffer.from('123456789'))
  t.equal((await nativeDecode(none, parseXzIndex(none).blocks[0], XZ_CHECK.none)).check.length, 0, 'no check: none')

  const file = xz(['-6', '--block-size=64KiB', '-T1'])
  const f = path.join(tmpDir(t), 'f.xz')
  writeFileSync(f, file)
  const rows = execFileSync('xz', ['--robot', '--list', '-vv', f])
    .toString()
    .split('\n')
    .filter((l) => l.startsWith('block\t'))
    .map((l) => l.split('\t'))
  const ix = parseXzIndex(file)
  t.equal(rows.length, ix.blocks.length)
  for (const [i, b] of ix.blocks.entries()) {
    const crc = (await nativeDecode(file, b, XZ_CHECK.crc64)).check
    // xz prints the CRC as a number; the file stores it little endian.
    t.equal(crc.readBigUInt64LE(0).toString(16).padStart(16, '0'), rows[i][10], `block ${i}`)
    t.ok(crc.equals(file.subarray(b.fileOffset + b.totalSize - 8, b.fileOffset + b.totalSize)), `block ${i} as stored`)
  }
})

t.test('the native decoder reports what went wrong, and never writes past its buffer', async (t) => {
  const file = xz(['-6', '--block-size=64KiB', '-T1'])
  const b = parseXzIndex(file).blocks[1]
  const data = file.subarray(b.dataOffset, b.dataOffset + b.dataSize)
  const run = (input: Buffer, outSize: number) =>
    new Promise<Lzma2Result & { guard: Buffer }>((resolve) => {
      // The output is a view into a larger buffer: bytes past it must stay as they were.
      const whole = Buffer.alloc(outSize + 64, 0x5a)
      loadBinding().decodeLzma2(input, 1 << 20, whole.subarray(0, outSize), 0, (r) =>
        resolve({ ...r, guard: whole.subarray(outSize) }),
      )
    })
  const ok = await run(data, b.uncompressedSize)
  t.same([ok.error, ok.consumed, ok.produced], [undefined, b.dataSize, b.uncompressedSize], 'whole block')
  const short = await run(data, b.uncompressedSize - 1)
  t.match(short.error, /more bytes than the index says/, 'one byte too small')
  t.ok(
    short.guard.every((x) => x === 0x5a),
    'nothing written past the buffer',
  )
  t.match((await run(data.subarray(0, 1000), b.uncompressedSize)).error, /truncated/, 'cut data')
  const bad = Buffer.from(data)
  bad.fill(0xff, 10, 30)
  t.match((await run(bad, b.uncompressedSize)).error, /corrupt data|truncated|more bytes/, 'changed data')
  t.throws(() => loadBinding().decodeLzma2(data, 4096, 'x' as unknown as Buffer, 0, () => undefined), TypeError)
  t.match(loadBinding().liblzmaVersion, /^5\.\d+\.\d+/, 'liblzma 5')
})

t.test('filter chains other than LZMA2 alone are rejected', async (t) => {
  for (const filters of [
    ['--delta=dist=4', '--lzma2=preset=6'],
    ['--x86', '--lzma2=preset=6'],
  ]) {
    const file = xz(['-F', 'xz', ...filters])
    const [b] = parseXzIndex(file).blocks
    t.same(
      parseBlockHeader(file, b.fileOffset).filters.map((f) => f.id),
      [filters[0] === '--x86' ? 0x04 : 0x03, 0x21],
      'the header itself parses',
    )
    await t.rejects(
      decodeBlock(file, b),
      { name: 'XzFormatError', message: /block 0 at byte 12: filter chain 0x(3|4),0x21 is not supported/ },
      filters.join(' '),
    )
  }
})

t.test('corruption and inconsistencies reject with XzFormatError', async (t) => {
  const file = xz(['-6', '--block-size=64KiB', '-T1'])
  const ix = parseXzIndex(file)
  const b = ix.blocks[1]
  const padded = ix.blocks.find((x) => x.unpaddedSize % 4 !== 0)!
  t.ok(padded, 'some block has block padding')
  const flip = (at: number) => {
    const c = Buffer.from(file)
    c[at] ^= 0x10
    return c
  }
  const reject = (buf: Buffer, block: XzBlock, message: RegExp, what: string, verify = false) =>
    t.rejects(decodeBlock(buf, block, { verify }), { name: 'XzFormatError', message }, what)

  await reject(
    flip(b.fileOffset + 2),
    b,
    /block 1 at byte \d+: block header at byte \d+: CRC32 mismatch|block header at byte \d+: CRC32 mismatch/,
    'block header byte',
  )
  await reject(
    flip(b.dataOffset + 1000),
    b,
    /block 1 at byte \d+: (LZMA2 data|check \(crc64\) mismatch|decoded)/,
    'compressed data byte',
    true,
  )
  await reject(flip(padded.dataOffset + padded.dataSize), padded, /non-null block padding/, 'block padding')
  const checkAt = b.fileOffset + b.totalSize - 8
  await reject(flip(checkAt + 3), b, /block 1 at byte \d+: check \(crc64\) mismatch/, 'stored CRC64', true)
  t.ok((await decodeBlock(flip(checkAt + 3), b)).equals(slice(INPUT, b)), 'the check is not verified by default')
  await reject(file.subarray(0, b.dataOffset + 100), b, /past the end of the file/, 'truncated file')
  await reject(
    file,
    { ...b, uncompressedSize: b.uncompressedSize - 1 },
    /block 1 at byte \d+: (decoded 65536 bytes|LZMA2 data)/,
    'index claims fewer bytes',
  )
  await reject(
    file,
    { ...b, uncompressedSize: b.uncompressedSize + 1 },
    /block 1 at byte \d+: decoded 65536 bytes, the index says 65537/,
    'index claims more bytes',
  )
  // One more byte of "compressed data" (taken from the block padding): the decoder stops before it.
  const longer = { ...padded, dataSize: padded.dataSize + 1, unpaddedSize: padded.unpaddedSize + 1 }
  await reject(file, longer, /LZMA2 data ends after \d+ bytes, the index says \d+/, 'data shorter than the index says')
  await reject(
    file,
    { ...b, headerSize: 16, dataOffset: b.dataOffset + 4, dataSize: b.dataSize - 4 },
    /header size 12 differs from the index's 16/,
    'header size',
  )

  const t2 = xz(['-6', '--block-size=64KiB', '-T2'])
  const b2 = parseXzIndex(t2).blocks[0]
  await reject(
    t2,
    { ...b2, uncompressedSize: 5 },
    /header says 65536 uncompressed bytes, the index 5/,
    'header vs index uncompressed size',
  )
  const shorter = { ...b2, dataSize: b2.dataSize - 4, unpaddedSize: b2.unpaddedSize - 4, totalSize: b2.totalSize - 4 }
  await reject(t2, shorter, /header says \d+ compressed bytes, the index \d+/, 'header vs index compressed size')

  // A reserved check ID cannot be verified: say so rather than pass silently.
  await t.rejects(
    decodeBlock(
      file,
      { ...b, check: 2, totalSize: b.totalSize - 4, unpaddedSize: b.unpaddedSize - 4 },
      { verify: true },
    ),
    { name: 'XzFormatError', message: /check ID 2 is reserved/ },
  )
  t.equal(ix.blocks[0].check, XZ_CHECK.crc64)
})
