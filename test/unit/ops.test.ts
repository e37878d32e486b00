// The FUSE handlers without a mount (src/serve/ops.ts): each is called as fuse-native calls it, on
// the tree of a real packed image, and must answer exactly once with the right code: stat fields,
// listings, bytes, -errno for missing paths, EROFS for every write-family operation, a read-only
// statfs, and the per-operation counts.
import { readFileSync } from 'node:fs'
import { constants } from 'node:os'
import path from 'node:path'
import pino from 'pino'
import t from 'tap'
import { readImage } from '../../src/image/read'
import { createOps, WRITE_OPS } from '../../src/serve/ops'
import { buildTree, NAME_MAX } from '../../src/serve/tree'
import { viewImage } from '../helpers/images'

const { errno } = constants
const settle = (): Promise<void> => new Promise((r) => setImmediate(r))

t.test('ops', async (t) => {
  const { file, tar } = await viewImage(t)
  const image = readImage(file)
  const tree = buildTree(image, { view: true, cacheBytes: 1 << 20 })
  const counts: Record<string, number> = {}
  const logged: string[] = []
  const log = pino({ level: 'info' }, { write: (l: string) => void logged.push(l) })
  const ops = createOps(tree, log, counts)

  /** Call `op` with `args` and a callback; the answer once it came, and how many answers came in all. */
  async function call(op: string, ...args: unknown[]): Promise<unknown[]> {
    const answers: unknown[][] = []
    // The index signature takes any handler (never[]); the test calls each with what FUSE would pass.
    const fn = ops[op] as ((...a: unknown[]) => void) | undefined
    if (fn === undefined) throw new Error(`no ${op} handler`)
    fn(...args, (...r: unknown[]) => answers.push(r))
    // A hang detector, not a timing check: a view read answers once its blocks are decoded.
    for (const deadline = Date.now() + 10_000; answers.length === 0 && Date.now() < deadline;)
      await new Promise((r) => setTimeout(r, 2))
    await settle()
    if (answers.length !== 1) throw new Error(`${op}: ${answers.length} answers`)
    return answers[0]
  }

  const mtime = new Date(image.manifest.epoch * 1000)

  t.test('getattr and fgetattr: root-owned, read-only, dated by the image', async (t) => {
    t.same(await call('getattr', '/'), [
      0,
      { mode: 0o40555, uid: 0, gid: 0, size: 0, nlink: 2, blksize: 4096, blocks: 0, atime: mtime, mtime, ctime: mtime },
    ])
    const size = image.config.length
    t.same(await call('getattr', '/config.gz'), [
      0,
      {
        mode: 0o100444,
        uid: 0,
        gid: 0,
        size,
        nlink: 1,
        blksize: 4096,
        blocks: Math.ceil(size / 512),
        atime: mtime,
        mtime,
        ctime: mtime,
      },
    ])
    const big = readFileSync(path.join(tar, 'include/linux/big.h'))
    t.match(await call('getattr', '/kheaders/include/linux/big.h'), [
      0,
      { mode: 0o100644, size: big.length, nlink: 1, blocks: Math.ceil(big.length / 512) },
    ])
    t.match(
      await call('getattr', '/kheaders/include/linux/link.h'),
      [0, { mode: 0o120777, size: 'kernel.h'.length, nlink: 1, blocks: 1 }],
      "a symlink's size is its target's length",
    )
    t.match(await call('getattr', '/kheaders/include/linux/empty.h'), [0, { mode: 0o100644, size: 0, blocks: 0 }])
    t.same(
      await call('fgetattr', '/kheaders.txz', 3),
      await call('getattr', '/kheaders.txz'),
      'fgetattr answers as getattr',
    )
    t.same(await call('getattr', '/nope'), [-errno.ENOENT])
    t.same(await call('getattr', '/config.gz/x'), [-errno.ENOTDIR])
    t.same(await call('getattr', `/${'x'.repeat(NAME_MAX + 1)}`), [-errno.ENAMETOOLONG])
    t.same(await call('fgetattr', '/nope', 3), [-errno.ENOENT])
  })

  t.test('readdir: the names in order; a file or a missing path is an error', async (t) => {
    t.same(await call('readdir', '/'), [0, ['config.gz', 'kheaders', 'kheaders.tar.xz', 'kheaders.txz']])
    const [code, names] = await call('readdir', '/kheaders/include/linux')
    t.equal(code, 0)
    t.same([...(names as string[])].sort(), ['big.h', 'empty.h', 'kernel.h', 'link.h', 'types.h'])
    t.same(await call('readdir', '/config.gz'), [-errno.ENOTDIR])
    t.same(await call('readdir', '/kheaders/include/linux/link.h'), [-errno.ENOTDIR], 'a symlink is not a directory')
    t.same(await call('readdir', '/kheaders/nope'), [-errno.ENOENT])
  })

  t.test('read: the byte count, the bytes; 0 at EOF; errors as -errno', async (t) => {
    const buf = Buffer.alloc(64, 0xaa)
    t.same(await call('read', '/config.gz', 3, buf, 64, 0), [Math.min(64, image.config.length)])
    t.ok(buf.subarray(0, image.config.length).equals(image.config.subarray(0, 64)))
    t.same(await call('read', '/config.gz', 3, Buffer.alloc(64), 64, image.config.length), [0], 'at EOF: 0')
    const big = readFileSync(path.join(tar, 'include/linux/big.h'))
    const vb = Buffer.alloc(4096)
    t.same(
      await call('read', '/kheaders/include/linux/big.h', 4, vb, 4096, 70_000),
      [4096],
      'a view file answers after decoding',
    )
    t.ok(vb.equals(big.subarray(70_000, 74_096)))
    t.same(await call('read', '/kheaders/include/linux/big.h', 4, Buffer.alloc(10), 10, big.length - 4), [4])
    t.same(await call('read', '/kheaders', 4, Buffer.alloc(10), 10, 0), [-errno.EISDIR])
    t.same(await call('read', '/kheaders/include/linux/link.h', 4, Buffer.alloc(10), 10, 0), [-errno.EINVAL])
    t.same(await call('read', '/nope', 4, Buffer.alloc(10), 10, 0), [-errno.ENOENT])
  })

  t.test('readlink: the target; EINVAL for what is not a link', async (t) => {
    t.same(await call('readlink', '/kheaders/include/linux/link.h'), [0, 'kernel.h'])
    t.same(await call('readlink', '/config.gz'), [-errno.EINVAL])
    t.same(await call('readlink', '/kheaders/nope'), [-errno.ENOENT])
  })

  t.test('statfs: read-only, nothing free, the served bytes and node count, NAME_MAX', async (t) => {
    t.same(await call('statfs', '/'), [
      0,
      {
        bsize: 4096,
        frsize: 4096,
        blocks: Math.ceil(tree.bytes / 4096),
        bfree: 0,
        bavail: 0,
        files: tree.count,
        ffree: 0,
        favail: 0,
        fsid: 0,
        flag: 1,
        namemax: 255,
      },
    ])
  })

  t.test('every write-family operation answers EROFS, once, whatever its arguments', async (t) => {
    t.same([...WRITE_OPS].sort(), [
      'chmod',
      'chown',
      'create',
      'ftruncate',
      'link',
      'mkdir',
      'mknod',
      'removexattr',
      'rename',
      'rmdir',
      'setxattr',
      'symlink',
      'truncate',
      'unlink',
      'utimens',
      'write',
    ])
    const args: Record<string, unknown[]> = {
      write: ['/config.gz', 3, Buffer.from('x'), 1, 0],
      create: ['/new', 0o644],
      mknod: ['/n', 0o644, 0],
      mkdir: ['/d', 0o755],
      unlink: ['/config.gz'],
      rmdir: ['/kheaders'],
      rename: ['/config.gz', '/c'],
      link: ['/config.gz', '/l'],
      symlink: ['/config.gz', '/s'],
      truncate: ['/config.gz', 0],
      ftruncate: ['/config.gz', 3, 0],
      chmod: ['/config.gz', 0o777],
      chown: ['/config.gz', 1, 1],
      utimens: ['/config.gz', new Date(), new Date()],
      setxattr: ['/config.gz', 'user.x', Buffer.from('1'), 1, 0, 0],
      removexattr: ['/config.gz', 'user.x'],
    }
    for (const op of WRITE_OPS) t.same(await call(op, ...args[op]), [-errno.EROFS], op)
    t.same(
      await call('setxattr', '/nope', 'user.x', Buffer.from('1'), 1, 0, 0),
      [-errno.EROFS],
      'also for a missing path',
    )
    t.same(await call('mkdir', '/kheaders/include', 0o755), [-errno.EROFS], 'also for a path that exists')
  })

  t.test('counts: one per call of each read operation; nothing logged as a bug', async (t) => {
    for (const op of ['getattr', 'fgetattr', 'readdir', 'read', 'readlink', 'statfs'])
      t.ok(typeof ops[op] === 'function', `${op} handled`)
    t.same(counts, { getattr: 9, fgetattr: 2, readdir: 5, read: 7, readlink: 3, statfs: 1 })
    t.same(logged, [], 'no handler answered EIO')
  })
})
