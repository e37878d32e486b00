// A block whose compressed data was changed so that it still decodes — valid LZMA2, the right
// length — but to other bytes, in an image whose sha256s were all recomputed: nothing at load can
// tell (the block header, sizes and index are intact), so the image mounts. The daemon verifies each
// block's CRC64 at its decode: every read that needs the block must fail with EIO and the log must
// say "check (crc64) mismatch"; no read may ever return wrong bytes; the rest of the image still
// reads correctly; the daemon stays up and unmounts cleanly.
import { closeSync, openSync, readdirSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import lzma from 'lzma-native'
import t from 'tap'
import { sha256, type FileRow } from '../../src/image/format'
import { running } from '../../src/procfs'
import { logPath } from '../../src/protocol/state'
import { decodeBlock, lzma2DictSize, parseBlockHeader } from '../../src/xz/block'
import { parseXzIndex, type XzBlock } from '../../src/xz/xz-index'
import { runCli } from '../helpers/cli'
import { image as craft, membersOf } from '../helpers/craft-image'
import { viewImage } from '../helpers/images'
import { isMounted, mountImage, waitGone } from '../helpers/mount'
import { record } from '../helpers/stress'
import { tmpDir } from '../helpers/tmp'

const BIG = 'include/linux/big.h'

t.test('a block that decodes to wrong bytes is answered EIO, never with its bytes', async (t) => {
  const view = await viewImage(t)
  const { manifest, config, headers } = membersOf(readFileSync(view.file))
  const row = manifest.files.find((f) => f[0] === BIG) as FileRow
  const [, , start, size] = row
  const blocks = parseXzIndex(headers).blocks
  // The first block wholly inside big.h: the one to spoil.
  const block = blocks.find(
    (b) => b.uncompressedOffset >= start && b.uncompressedOffset + b.uncompressedSize <= start + size,
  )
  if (block === undefined) throw new Error(`no xz block lies inside ${BIG}`)
  const spoiled = await sameSizeOtherBytes(headers, block)
  if (spoiled === undefined)
    return t.fail(`no one-byte change found whose LZMA2 has the block's ${block.dataSize} bytes`)
  const { data, changed } = spoiled

  const xz = Buffer.from(headers)
  data.copy(xz, block.dataOffset)
  // What the daemon's decode meets: LZMA2 that decodes without error to other bytes of the right length.
  t.ok(
    (await decodeBlock(xz, block)).equals(changed),
    'the changed block decodes, without its check, to the changed bytes',
  )
  await t.rejects(decodeBlock(xz, block, { verify: true }), { message: /check \(crc64\) mismatch/ })

  const m = structuredClone(manifest)
  m.payloads['kheaders.tar.xz'].sha256 = sha256(xz)
  const file = path.join(tmpDir(t), 'spoiled.img')
  writeFileSync(file, await craft(m, config, xz))
  const v = await runCli(['verify', file])
  t.equal(v.code, 4, 'verify, which decodes everything, refuses it')

  const mnt = await mountImage(t, file)
  t.equal(mnt.result.code, 0, 'mount succeeds: nothing checked at load is wrong')
  const kheaders = path.join(mnt.mnt, 'kheaders')
  const big = path.join(kheaders, BIG)
  const original = readFileSync(path.join(view.tar, BIG))
  t.equal(statSync(big).size, original.length, 'big.h has its size')

  const eio = (fn: () => unknown): string => {
    try {
      fn()
      return 'no error'
    } catch (e) {
      return (e as NodeJS.ErrnoException).code ?? String(e)
    }
  }
  t.equal(
    eio(() => readFileSync(big)),
    'EIO',
    'reading big.h whole fails with EIO',
  )
  t.equal(
    eio(() => readFileSync(big)),
    'EIO',
    'and again: a failed decode is not cached as data',
  )

  // Every 4 KiB of big.h on its own (a fresh descriptor each): the right bytes or EIO, never others;
  // every piece that needs the spoiled block is EIO.
  const badFrom = block.uncompressedOffset - start
  const badTo = badFrom + block.uncompressedSize
  let wrongBytes = 0
  let good = 0
  let failed = 0
  let needBlockButRead = 0
  for (let at = 0; at < original.length; at += 4096) {
    const want = original.subarray(at, at + 4096)
    const got = Buffer.alloc(want.length)
    const fd = openSync(big, 'r')
    const code = eio(() => readSync(fd, got, 0, got.length, at))
    closeSync(fd)
    if (code === 'EIO') failed++
    else if (code !== 'no error') t.fail(`read at ${at}: ${code}`)
    else if (got.equals(want)) good++
    else wrongBytes++
    if (code !== 'EIO' && at + want.length > badFrom && at < badTo) needBlockButRead++
  }
  t.equal(wrongBytes, 0, 'no read of big.h returned wrong bytes')
  t.equal(needBlockButRead, 0, 'every read that needs the spoiled block fails with EIO')
  t.ok(failed >= Math.floor(block.uncompressedSize / 4096), `${failed} reads failed with EIO`)
  t.ok(good > 0, `${good} reads returned big.h's own bytes`)

  // Every other file of the view reads exactly as GNU tar and xz unpack it.
  let others = 0
  const mismatched: string[] = []
  for (const rel of walk(view.tar)) {
    if (rel === BIG) continue
    others++
    const want = readFileSync(path.join(view.tar, rel))
    let got: Buffer | string
    try {
      got = readFileSync(path.join(kheaders, rel))
    } catch (e) {
      got = (e as Error).message
    }
    if (!(Buffer.isBuffer(got) && got.equals(want))) mismatched.push(rel)
  }
  t.same(mismatched, [], `the ${others} other files read correctly`)
  t.equal(readFileSync(path.join(mnt.mnt, 'config.gz')).equals(config), true, 'config.gz reads correctly')

  t.ok(running(mnt.pid), 'the daemon is still running')
  const log = readFileSync(logPath(mnt.env, mnt.mnt), 'utf8')
  t.match(log, new RegExp(`block ${block.index} at byte \\d+: check \\(crc64\\) mismatch`), 'the log says why')

  const u = await runCli(['umount', mnt.mnt], { env: mnt.env })
  t.equal(u.code, 0, `umount succeeds (${u.stderr.trim()})`)
  t.notOk(isMounted(mnt.mnt), 'nothing mounted')
  t.ok(await waitGone(mnt.pid), 'the daemon exits')
  t.same(
    readdirSync(mnt.runDir).filter((f) => f.endsWith('.json') || f.endsWith('.pid')),
    [],
    'no state or pid file left',
  )

  const passed =
    wrongBytes === 0 && needBlockButRead === 0 && mismatched.length === 0 && u.code === 0 && !isMounted(mnt.mnt)
  record({
    area: 'Hostile input',
    name: 'An xz block changed to decode (valid LZMA2) to other bytes, sha256s recomputed: mounts; reads of it EIO (crc64 check), never wrong bytes; other files correct; daemon up, clean unmount',
    tried: 1,
    passed: passed ? 1 : 0,
    detail: `block ${block.index} of ${blocks.length}, ${failed} of ${Math.ceil(original.length / 4096)} 4 KiB reads of big.h EIO, ${good} right, 0 wrong; ${others} other files`,
  })
})

/**
 * The block's uncompressed bytes with one hex digit changed (`changed`), and their LZMA2 encoding as
 * the packer makes it (lc=4 lp=0 pb=0, nice 273, bt4, the block's dictionary) — the first change whose
 * encoding has exactly the block's compressed size (about one in three), so that it replaces the
 * block's data in place and the index, header and padding stay right.
 */
async function sameSizeOtherBytes(xz: Buffer, block: XzBlock): Promise<{ data: Buffer; changed: Buffer } | undefined> {
  const plain = await decodeBlock(xz, block, { verify: true })
  const dictSize = lzma2DictSize(parseBlockHeader(xz, block.fileOffset).filters[0].props)
  for (let i = 1; i < 200; i++) {
    let at = Math.floor((plain.length * i) / 200)
    while (at < plain.length && !/[0-9a-f]/.test(String.fromCharCode(plain[at]))) at++
    if (at >= plain.length) continue
    const changed = Buffer.from(plain)
    changed[at] = changed[at] === 0x30 ? 0x31 : 0x30
    const data = await lzma2(changed, dictSize)
    if (data.length === block.dataSize) return { data, changed }
  }
  return undefined
}

/** lzma-native's raw encoder (src/types declares only the coders src uses). */
const createStream = lzma.createStream as unknown as (
  coder: 'rawEncoder',
  opts: object,
) => ReturnType<typeof lzma.createStream>

function lzma2(input: Buffer, dictSize: number): Promise<Buffer> {
  const enc = createStream('rawEncoder', {
    filters: [
      {
        id: lzma.FILTER_LZMA2,
        options: {
          dictSize,
          lc: 4,
          lp: 0,
          pb: 0,
          mode: lzma.MODE_NORMAL,
          niceLen: 273,
          mf: lzma.MF_BT4,
          depth: 0,
        },
      },
    ],
  })
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    enc.on('data', (c: Buffer) => chunks.push(c))
    enc.once('end', () => resolve(Buffer.concat(chunks)))
    enc.once('error', reject)
    enc.end(input)
  })
}

/** Regular files under `dir`, as paths relative to it. */
function walk(dir: string, rel = ''): string[] {
  const out: string[] = []
  for (const e of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel === '' ? e.name : `${rel}/${e.name}`
    if (e.isDirectory()) out.push(...walk(dir, r))
    else if (e.isFile()) out.push(r)
  }
  return out
}
