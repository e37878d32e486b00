// The request dispatcher without a mount (src/serve/ops.ts): each request is dispatched as the binding
// dispatches it, on the tree of a real packed image, and must be answered exactly once with the right
// reply: entries and attributes, negative entries for absent names, listings as FUSE dirents that
// resume from their cookies, bytes, errno for the rest, a read-only statfs, and the per-operation counts.
import { readdirSync, readFileSync } from 'node:fs'
import { constants } from 'node:os'
import path from 'node:path'
import pino from 'pino'
import t from 'tap'
import { readImage } from '../../src/image/read'
import { OP, type Replies } from '../../src/serve/fuse'
import { createDispatch } from '../../src/serve/ops'
import { buildTree, NAME_MAX } from '../../src/serve/tree'
import { viewImage } from '../helpers/images'

const { errno } = constants
const S_IFDIR = 0o040000
const S_IFREG = 0o100000
const S_IFLNK = 0o120000

/** FUSE dirents, read back by hand (not with src's encoder): ino, next cookie, type, name. */
function parseDirents(b: Buffer): Array<{ ino: number; off: number; type: number; name: string }> {
  const out = []
  for (let p = 0; p < b.length;) {
    const namelen = b.readUInt32LE(p + 16)
    out.push({
      ino: Number(b.readBigUInt64LE(p)),
      off: Number(b.readBigUInt64LE(p + 8)),
      type: b.readUInt32LE(p + 20),
      name: b.toString('utf8', p + 24, p + 24 + namelen),
    })
    const size = (24 + namelen + 7) & ~7
    t.ok(
      b.subarray(p + 24 + namelen, p + size).every((x) => x === 0),
      'padding is zero',
    )
    p += size
  }
  return out
}

t.test('dispatch', async (t) => {
  const { file, tar } = await viewImage(t)
  const image = readImage(file)
  const tree = buildTree(image, { view: true, cacheBytes: 1 << 20 })
  const counts: Record<string, number> = {}
  const logged: string[] = []
  const log = pino({ level: 'info' }, { write: (l: string) => void logged.push(l) })
  const answers = new Map<number, unknown[][]>()
  const record =
    (kind: string) =>
    (id: number, ...rest: unknown[]): void => {
      answers.set(id, [...(answers.get(id) ?? []), [kind, ...rest]])
    }
  const replies: Replies = {
    err: record('err'),
    entry: record('entry'),
    attr: record('attr'),
    buf: record('buf'),
    readlink: record('readlink'),
    statfs: record('statfs'),
  }
  const name = Buffer.alloc(256)
  const dispatch = createDispatch(tree, replies, name, log, counts)
  let next = 1
  /** Requests made, by the name the daemon's stats give them. */
  const made: Record<string, number> = {}
  const opName = (op: number): string => Object.entries(OP).find(([, v]) => v === op)?.[0] ?? `op${op}`

  /** Dispatch one request; its answer once it came (exactly one, or the test fails). */
  async function call(
    op: number,
    ino: number,
    a: { off?: number; size?: number; name?: string; uid?: number } = {},
  ): Promise<unknown[]> {
    const id = next++
    made[opName(op)] = (made[opName(op)] ?? 0) + 1
    const n = a.name === undefined ? 0 : name.write(a.name)
    dispatch(op, id, ino, a.off ?? 0, a.size ?? 0, n, a.uid ?? 0)
    // A hang detector, not a timing check: a view read answers once its blocks are decoded.
    for (const deadline = Date.now() + 10_000; !answers.has(id) && Date.now() < deadline;)
      await new Promise((r) => setTimeout(r, 2))
    await new Promise((r) => setImmediate(r))
    const got = answers.get(id) ?? []
    if (got.length !== 1) throw new Error(`op ${op}: ${got.length} answers`)
    return got[0]
  }
  const ino = (p: string): number => tree.lookup(p).id + 1

  t.test('lookup: the entry with its attributes; an absent name is a negative entry', async (t) => {
    const linux = ino('/kheaders/include/linux')
    const big = readFileSync(path.join(tar, 'include/linux/big.h'))
    t.same(await call(OP.lookup, linux, { name: 'big.h' }), [
      'entry',
      ino('/kheaders/include/linux/big.h'),
      S_IFREG | 0o644,
      big.length,
    ])
    t.same(await call(OP.lookup, 1, { name: 'config.gz' }), [
      'entry',
      ino('/config.gz'),
      S_IFREG | 0o444,
      image.config.length,
    ])
    t.same(
      await call(OP.lookup, linux, { name: 'link.h' }),
      ['entry', ino('/kheaders/include/linux/link.h'), S_IFLNK | 0o777, 'kernel.h'.length],
      "a symlink's size is its target's length",
    )
    t.same(await call(OP.lookup, 1, { name: 'kheaders' }), ['entry', ino('/kheaders'), S_IFDIR | 0o555, 0])
    t.same(await call(OP.lookup, linux, { name: 'nope.h' }), ['entry', 0, 0, 0], 'absent: ino 0 (cached)')
    t.same(await call(OP.lookup, 1, { name: 'x'.repeat(NAME_MAX) }), ['entry', 0, 0, 0])
    t.same(await call(OP.lookup, ino('/config.gz'), { name: 'x' }), ['err', errno.ENOTDIR], 'below a file')
    t.same(await call(OP.lookup, 999_999, { name: 'x' }), ['err', errno.ENOENT], 'a node that does not exist')
  })

  t.test('getattr: the mode and size of the node, as stat shows them', async (t) => {
    t.same(await call(OP.getattr, 1), ['attr', 1, S_IFDIR | 0o555, 0])
    t.same(await call(OP.getattr, ino('/kheaders.txz')), [
      'attr',
      ino('/kheaders.txz'),
      S_IFREG | 0o444,
      image.headers.length,
    ])
    const empty = ino('/kheaders/include/linux/empty.h')
    t.same(await call(OP.getattr, empty), ['attr', empty, S_IFREG | 0o644, 0])
    t.same(await call(OP.getattr, 0), ['err', errno.ENOENT], 'inode 0 is nobody')
    t.same(await call(OP.getattr, 1e9), ['err', errno.ENOENT])
  })

  t.test('readdir: every name once, in pages that resume from their cookies', async (t) => {
    const root = parseDirents((await call(OP.readdir, 1, { size: 4096 }))[1] as Buffer)
    t.same(
      root.map((e) => e.name),
      ['config.gz', 'kheaders', 'kheaders.tar.xz', 'kheaders.txz'],
    )
    t.same(
      root.map((e) => e.type),
      [8, 4, 8, 8],
      'DT_REG and DT_DIR',
    )
    t.same(
      root.map((e) => e.ino),
      ['/config.gz', '/kheaders', '/kheaders.tar.xz', '/kheaders.txz'].map(ino),
    )
    const last = root[root.length - 1].off
    t.same(await call(OP.readdir, 1, { off: last, size: 4096 }), ['buf', Buffer.alloc(0)], 'past the end: nothing')
    // Pages of 64 bytes hold one or two entries: walk the whole directory by cookies.
    const linux = ino('/kheaders/include/linux')
    const names: string[] = []
    for (let off = 0, pages = 0; pages < 100; pages++) {
      const page = parseDirents((await call(OP.readdir, linux, { off, size: 64 }))[1] as Buffer)
      if (page.length === 0) break
      names.push(...page.map((e) => e.name))
      off = page[page.length - 1].off
    }
    t.same(names.sort(), readdirSync(path.join(tar, 'include/linux')).sort(), 'the names tar unpacks, each once')
    t.same(await call(OP.readdir, linux, { off: 1, size: 4096 }), ['buf', Buffer.alloc(0)], 'a cookie not of it')
    t.same(await call(OP.readdir, ino('/config.gz'), { size: 4096 }), ['err', errno.ENOTDIR])
    t.same(
      await call(OP.readdir, ino('/kheaders/include/linux/link.h'), { size: 4096 }),
      ['err', errno.ENOTDIR],
      'a symlink is not a directory',
    )
  })

  t.test('read: the bytes; nothing at EOF; errors as errno', async (t) => {
    const config = ino('/config.gz')
    t.same(await call(OP.read, config, { size: 64 }), ['buf', image.config.subarray(0, 64)])
    t.same(await call(OP.read, config, { size: 64, off: image.config.length }), ['buf', Buffer.alloc(0)])
    const big = readFileSync(path.join(tar, 'include/linux/big.h'))
    const b = ino('/kheaders/include/linux/big.h')
    t.same(
      await call(OP.read, b, { off: 70_000, size: 4096, uid: 65534 }),
      ['buf', big.subarray(70_000, 74_096)],
      'a view file answers after decoding (for any user)',
    )
    t.same(await call(OP.read, b, { off: big.length - 4, size: 10 }), ['buf', big.subarray(big.length - 4)])
    t.same(await call(OP.read, ino('/kheaders'), { size: 10 }), ['err', errno.EISDIR])
    t.same(await call(OP.read, ino('/kheaders/include/linux/link.h'), { size: 10 }), ['err', errno.EINVAL])
    t.same(await call(OP.read, 999_999, { size: 10 }), ['err', errno.ENOENT])
  })

  t.test('readlink: the target; EINVAL for what is not a link', async (t) => {
    t.same(await call(OP.readlink, ino('/kheaders/include/linux/link.h')), ['readlink', Buffer.from('kernel.h')])
    t.same(await call(OP.readlink, ino('/config.gz')), ['err', errno.EINVAL])
  })

  t.test('statfs: the served bytes in 4 KiB blocks, the node count, NAME_MAX', async (t) => {
    t.same(await call(OP.statfs, 1), ['statfs', Math.ceil(tree.bytes / 4096), tree.count, 255])
  })

  t.test('an unknown request is ENOSYS', async (t) => {
    t.same(await call(99, 1), ['err', errno.ENOSYS])
  })

  t.test('counts: one per request of each kind; nothing logged as a bug', async (t) => {
    t.same(Object.keys(made).sort(), ['getattr', 'lookup', 'op99', 'read', 'readdir', 'readlink', 'statfs'])
    t.same(counts, made)
    t.same(logged, [], 'no request answered EIO')
  })
})
