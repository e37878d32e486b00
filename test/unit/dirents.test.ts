// FUSE readdir answers (serve/dirents.ts) decoded as the kernel reads them: struct fuse_dirent
// { u64 ino; u64 off; u32 namelen; u32 type; char name[]; } padded to 8 bytes, in the machine's order.
import { constants } from 'node:fs'
import { endianness } from 'node:os'
import t from 'tap'
import { encodeDirents } from '../../src/serve/dirents'
import { TableBuilder, NONE } from '../../src/serve/table'

interface Dirent {
  ino: bigint
  off: bigint
  type: number
  name: string
}

function decode(buf: Buffer): Dirent[] {
  const LE = endianness() === 'LE'
  const out: Dirent[] = []
  for (let p = 0; p < buf.length;) {
    const ino = LE ? buf.readBigUInt64LE(p) : buf.readBigUInt64BE(p)
    const off = LE ? buf.readBigUInt64LE(p + 8) : buf.readBigUInt64BE(p + 8)
    const length = LE ? buf.readUInt32LE(p + 16) : buf.readUInt32BE(p + 16)
    const type = LE ? buf.readUInt32LE(p + 20) : buf.readUInt32BE(p + 20)
    out.push({ ino, off, type, name: buf.toString('utf8', p + 24, p + 24 + length) })
    p += (24 + length + 7) & ~7
  }
  return out
}

function table() {
  const b = new TableBuilder()
  const root = b.add(NONE, '', constants.S_IFDIR | 0o555)
  const names = ['a.h', 'bb.h', 'sub', 'z-long-name-for-padding.h']
  for (const n of names) b.add(root, n, (n === 'sub' ? constants.S_IFDIR : constants.S_IFREG) | 0o644)
  return { t: b.table(), root, names }
}

t.test('a page written into a dirty, reused buffer decodes exactly: inodes and cookies whole', async (t) => {
  const { t: tab, root, names } = table()
  const scratch = Buffer.alloc(4096, 0xff) // what an earlier, longer listing may have left
  const entries = decode(encodeDirents(tab, root, 0, 4096, scratch))
  t.same(
    entries.map((e) => e.name),
    names,
  )
  t.same(
    entries.map((e) => e.ino),
    [2n, 3n, 4n, 5n],
    'inode = node + 1, high half zero',
  )
  t.same(
    entries.map((e) => e.off),
    [2n, 3n, 4n, 0xffffffffn],
    "cookie = the next entry's node, then the end",
  )
  t.same(
    entries.map((e) => e.type),
    [8, 8, 4, 8],
    'DT_REG, DT_DIR',
  )
})

t.test('resuming from each cookie gives the rest, in a buffer too small for all', async (t) => {
  const { t: tab, root, names } = table()
  const scratch = Buffer.alloc(4096, 0xa5)
  const seen: string[] = []
  let cookie = 0
  for (let pages = 0; pages < 10; pages++) {
    const page = decode(encodeDirents(tab, root, cookie, 40, scratch)) // one short entry per page
    if (page.length === 0) break
    seen.push(...page.map((e) => e.name))
    cookie = Number(page[page.length - 1].off)
  }
  t.same(seen.slice(0, 3), names.slice(0, 3), 'the short names, one page each')
})
