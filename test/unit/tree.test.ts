// The served tree without a mount (src/serve/tree.ts): what buildTree makes of a real packed image,
// the errno of every kind of missing path, clamped reads (flat files from memory, view files through
// the xz blocks, across block boundaries and past EOF) and readlink. The bytes are compared
// with what GNU tar and xz unpack from the same image.
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { constants as os } from 'node:os'
import path from 'node:path'
import t from 'tap'
import { readImage, type Image } from '../../src/image/read'
import { buildTree, FLAT_FILES, NAME_MAX, VIEW_DIR, type Node, type Tree } from '../../src/serve/tree'
import { BIG_HEADER, viewImage } from '../helpers/images'
import { walkTree } from '../helpers/walk'

const { errno } = os
const S_IFDIR = 0o040000
const S_IFREG = 0o100000
const S_IFLNK = 0o120000
/** What an FsError with `code` looks like: its errno, and a message that starts with the code. */
const fsError = (code: keyof typeof errno) => ({ errno: errno[code], message: new RegExp(`^${code}: `) })

/** Every path under `dir` (relative), depth first, names sorted. */
function walk(dir: string): string[] {
  const out: string[] = []
  walkTree(dir, (r) => out.push(r), { sorted: true })
  return out
}

/** Read all of `node` through readRange in `chunk`-byte reads, as the kernel would. */
async function readAll(tree: Tree, node: Node, size: number, chunk: number): Promise<Buffer> {
  const parts: Buffer[] = []
  for (let pos = 0; ;) {
    const got = await tree.readRange(node.id, pos, chunk)
    if (got.length === 0) break
    parts.push(Buffer.from(got))
    pos += got.length
  }
  const all = Buffer.concat(parts)
  if (all.length !== size) throw new Error(`read ${all.length} bytes of ${size}`)
  return all
}

t.test('tree', async (t) => {
  const { file, tar } = await viewImage(t)
  const image: Image = readImage(file)

  t.test('without the view: exactly the flat files, read-only, dated by the image', async (t) => {
    const tree = buildTree(image)
    t.same(tree.paths().sort(), ['/', '/config.gz', '/kheaders.tar.xz', '/kheaders.txz'])
    t.same(tree.lookup('/'), {
      kind: 'dir',
      id: 0,
      mode: S_IFDIR | 0o555,
      entries: ['config.gz', 'kheaders.tar.xz', 'kheaders.txz'],
    })
    t.same([...FLAT_FILES], ['config.gz', 'kheaders.tar.xz', 'kheaders.txz'])
    for (const [name, data] of [
      ['config.gz', image.config],
      ['kheaders.tar.xz', image.headers],
      ['kheaders.txz', image.headers],
    ] as const) {
      const node = tree.lookup(`/${name}`)
      t.equal(node.kind, 'file', name)
      t.equal(node.mode, S_IFREG | 0o444, `${name} mode 0444`)
      t.equal(node.kind === 'file' && node.size, data.length, `${name} size`)
    }
    t.equal(tree.mtime.getTime(), image.manifest.epoch * 1000, 'mtime is the image epoch')
    t.equal(tree.bytes, image.config.length + image.headers.length, 'the headers counted once')
    t.equal(tree.archive, undefined, 'no archive reader without the view')
    t.throws(() => tree.lookup(`/${VIEW_DIR}`), { ...fsError('ENOENT'), exitCode: 1 }, 'no kheaders/ without the view')
  })

  t.test('with the view: every entry of the archive, with its type, mode, size and bytes', async (t) => {
    const tree = buildTree(image, { view: true, cacheBytes: 1 << 20 })
    t.same(tree.lookup('/'), {
      kind: 'dir',
      id: 0,
      mode: S_IFDIR | 0o555,
      entries: ['config.gz', 'kheaders', 'kheaders.tar.xz', 'kheaders.txz'],
    })
    const top = tree.lookup('/kheaders')
    t.equal(top.mode, S_IFDIR | 0o555, 'kheaders/ is 0555')
    const want = walk(tar)
    t.ok(
      want.includes('include/linux/big.h') &&
        want.includes('include/linux/link.h') &&
        want.includes('include/linux/empty.h'),
      'the image holds the cases under test',
    )
    t.same(
      tree
        .paths()
        .filter((p) => p.startsWith('/kheaders/'))
        .sort(),
      want.map((p) => `/kheaders/${p}`).sort(),
      'the same paths as tar unpacks',
    )
    let fileBytes = 0
    for (const rel of want) {
      const st = lstatSync(path.join(tar, rel))
      const node = tree.lookup(`/kheaders/${rel}`)
      if (st.isDirectory()) {
        t.equal(node.kind, 'dir', rel)
        t.equal(node.mode, S_IFDIR | (st.mode & 0o7777), `${rel} mode`)
        t.same(
          node.kind === 'dir' && [...node.entries].sort(),
          readdirSync(path.join(tar, rel)).sort(),
          `${rel} entries`,
        )
      } else if (st.isSymbolicLink()) {
        t.equal(node.kind, 'symlink', rel)
        t.equal(node.mode, S_IFLNK | 0o777, `${rel} mode`)
        t.equal(tree.readlink(node.id).toString(), readlinkSync(path.join(tar, rel)), `${rel} target`)
      } else {
        t.equal(node.kind, 'file', rel)
        t.equal(node.mode, S_IFREG | (st.mode & 0o7777), `${rel} mode`)
        t.equal(node.kind === 'file' && node.size, st.size, `${rel} size`)
        t.ok(
          (await readAll(tree, node, st.size, 4096)).equals(readFileSync(path.join(tar, rel))),
          `${rel}: the bytes tar unpacks`,
        )
        fileBytes += st.size
      }
    }
    t.same(
      tree.lookup('/kheaders').kind === 'dir' &&
        [...(tree.lookup('/kheaders') as { entries: string[] }).entries].sort(),
      readdirSync(tar).sort(),
    )
    t.equal(tree.readlink(tree.lookup('/kheaders/include/linux/link.h').id).toString(), 'kernel.h')
    t.equal(
      tree.bytes,
      image.config.length + image.headers.length + fileBytes,
      'statfs bytes: payloads once plus the view files',
    )
    t.ok(tree.archive !== undefined, 'an archive reader with the view')
    const big = readFileSync(path.join(tar, 'include/linux/big.h'))
    t.equal(big.toString(), BIG_HEADER, 'big.h is served as written (nothing to strip)')
    // One odd-sized read size, so that reads straddle the 64 KiB blocks at every possible phase.
    t.ok(
      (await readAll(tree, tree.lookup('/kheaders/include/linux/big.h'), big.length, 12_347)).equals(big),
      'big.h in 12347-byte reads',
    )
  })

  t.test('a manifest without its directory records still gives every directory (0755)', async (t) => {
    const bare: Image = {
      ...image,
      manifest: { ...image.manifest, files: image.manifest.files.filter((f) => f.type !== 'directory') },
    }
    const tree = buildTree(bare, { view: true, cacheBytes: 0 })
    const full = buildTree(image, { view: true, cacheBytes: 0 })
    t.same(tree.paths().sort(), full.paths().sort(), 'the same paths')
    const linux = tree.lookup('/kheaders/include/linux')
    t.equal(linux.mode, S_IFDIR | 0o755)
    t.same(linux.kind === 'dir' && [...linux.entries].sort(), readdirSync(path.join(tar, 'include/linux')).sort())
  })

  t.test('idleFrom: the view is built at its first lookup under kheaders/, the same as built at once', async (t) => {
    // Never idle: only a request can build it.
    const lazy = buildTree(image, { view: true, cacheBytes: 0, idleFrom: new Promise(() => undefined) })
    const eager = buildTree(image, { view: true, cacheBytes: 0 })
    t.ok(!lazy.viewBuilt, 'not built yet')
    t.same(lazy.lookup('/'), eager.lookup('/'), 'the root lists kheaders/ before')
    t.same(lazy.lookup('/config.gz'), eager.lookup('/config.gz'), 'flat files are there before')
    t.same(lazy.lookup('/kheaders.txz'), eager.lookup('/kheaders.txz'))
    t.ok(!lazy.viewBuilt, 'kheaders.txz is not in the view: still not built')
    t.equal(lazy.bytes, eager.bytes, 'statfs bytes known before')
    t.same(lazy.lookup('/kheaders/include/linux/link.h'), eager.lookup('/kheaders/include/linux/link.h'))
    t.ok(lazy.viewBuilt, 'built by that lookup')
    t.same(lazy.paths(), eager.paths(), 'the same paths')
    t.equal(lazy.count, eager.count)
  })

  t.test('idleFrom: otherwise built in the first idle turn after it resolves, or for the file count', async (t) => {
    let idle = (): void => undefined
    const tree = buildTree(image, {
      view: true,
      cacheBytes: 0,
      idleFrom: new Promise<void>((resolve) => (idle = resolve)),
    })
    await new Promise((r) => setImmediate(r))
    t.ok(!tree.viewBuilt, 'not before it resolves')
    idle()
    // Two turns: the first one's immediate may have been queued before the tree's.
    await new Promise((r) => setImmediate(r))
    await new Promise((r) => setImmediate(r))
    t.ok(tree.viewBuilt, 'built in the idle turn after, without a request')
    const counted = buildTree(image, { view: true, cacheBytes: 0, idleFrom: new Promise(() => undefined) })
    t.equal(counted.count, buildTree(image, { view: true, cacheBytes: 0 }).count, "statfs's count is the whole tree's")
    t.ok(counted.viewBuilt)
  })

  t.test('whenWhole: the whole table, once, when the view is built (what the binding answers from)', async (t) => {
    const lazy = buildTree(image, { view: true, cacheBytes: 0, idleFrom: new Promise(() => undefined) })
    const got: number[] = []
    lazy.whenWhole((table) => got.push(table.count))
    t.same(got, [], 'not before the view is built')
    lazy.lookup('/kheaders/include/linux/link.h')
    t.same(got, [lazy.count], 'the table with the view, at its build')
    lazy.lookup('/kheaders/Makefile')
    t.same(got, [lazy.count], 'once only')
    const eager = buildTree(image, { view: true, cacheBytes: 0 })
    eager.whenWhole((table) => got.push(table.count))
    t.same(got, [lazy.count, eager.count], 'at once for a tree already whole')
  })

  t.test('lookup of a missing path: the errno tmpfs gives, decided at the first missing component', async (t) => {
    const tree = buildTree(image, { view: true, cacheBytes: 0 })
    const fails = (p: string, code: keyof typeof errno, why: string): void => {
      t.throws(() => tree.lookup(p), { errno: errno[code], message: `${code}: ${p}` }, `${why}: ${code}`)
    }
    fails('/nope', 'ENOENT', 'absent at the root')
    fails('/kheaders/include/nope.h', 'ENOENT', 'absent in the view')
    fails('/nope/deeper/still', 'ENOENT', 'below an absent directory')
    fails('/config.gz/x', 'ENOTDIR', 'below a flat file')
    fails('/kheaders/include/linux/kernel.h/x', 'ENOTDIR', 'below a view file')
    fails('/kheaders/include/linux/kernel.h/x/y', 'ENOTDIR', 'two below a view file')
    fails('/kheaders/include/linux/empty.h/x', 'ENOTDIR', 'below an empty file')
    fails(`/${'a'.repeat(NAME_MAX + 1)}`, 'ENAMETOOLONG', '256-byte name at the root')
    fails(`/kheaders/include/${'a'.repeat(NAME_MAX + 1)}`, 'ENAMETOOLONG', '256-byte name in the view')
    fails(`/${'a'.repeat(NAME_MAX)}`, 'ENOENT', 'a 255-byte name is allowed')
    fails(`/kheaders/${'ü'.repeat(128)}`, 'ENAMETOOLONG', '128 ü are 256 bytes')
    fails(`/kheaders/${'ü'.repeat(127)}x`, 'ENOENT', '127 ü and an x are 255 bytes')
    fails(`/config.gz/${'a'.repeat(300)}`, 'ENOTDIR', 'below a file, even with a long name')
    fails(`/nope/${'a'.repeat(300)}`, 'ENOENT', 'below an absent directory, even with a long name')
    fails(`/${'a'.repeat(300)}/x`, 'ENAMETOOLONG', 'a long directory name')
    t.equal(NAME_MAX, 255)
  })

  t.test('readRange: clamped, 0 bytes at and past EOF, never an error', async (t) => {
    const tree = buildTree(image, { view: true, cacheBytes: 1 << 20 })
    const config = tree.lookup('/config.gz').id
    const size = image.config.length
    const flat = (pos: number, len: number): Buffer => {
      const r = tree.readRange(config, pos, len)
      if (r instanceof Promise) throw new Error('a flat file must answer at once')
      return r
    }
    t.same(flat(0, 16), image.config.subarray(0, 16), 'a flat file answers at once (not a promise)')
    t.same(flat(size - 3, 16), image.config.subarray(size - 3), '3 bytes left: 3')
    t.equal(flat(size, 16).length, 0, 'at EOF: 0')
    t.equal(flat(size + 1_000_000, 16).length, 0, 'far past EOF: 0')
    t.same(flat(2, 5), image.config.subarray(2, 7), 'len within the file: len')
    t.equal(flat(0, 0).length, 0, 'len 0: 0')
    const txz = tree.readRange(tree.lookup('/kheaders.txz').id, 0, 6) as Buffer
    t.same([...txz], [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], 'kheaders.txz starts with the xz magic')

    const big = readFileSync(path.join(tar, 'include/linux/big.h'))
    const node = tree.lookup('/kheaders/include/linux/big.h')
    t.ok(node.kind === 'file' && node.data === undefined, 'a view file has no bytes in memory')
    if (node.kind !== 'file') throw new Error('big.h is not a file')
    // A read across the first xz block boundary (64 KiB into the tar).
    const boundary = tree.archive!.index.blocks[1].uncompressedOffset
    t.ok(boundary > node.offset && boundary < node.offset + node.size, 'big.h straddles a block boundary')
    const at = boundary - node.offset - 100
    const pending = tree.readRange(node.id, at, 300)
    t.ok(pending instanceof Promise, 'a view file answers once its blocks are decoded')
    t.same(await pending, big.subarray(at, at + 300), '300 bytes across the block boundary')
    t.same(await tree.readRange(node.id, node.size - 5, 100), big.subarray(big.length - 5), 'view file: 5 left: 5')
    t.equal((tree.readRange(node.id, node.size, 100) as Buffer).length, 0, 'view file at EOF: 0 at once')
    t.equal((tree.readRange(node.id, node.size + 4096, 100) as Buffer).length, 0, 'past EOF: 0 at once')
    const empty = tree.lookup('/kheaders/include/linux/empty.h')
    t.equal(empty.kind === 'file' && empty.size, 0)
    t.equal((tree.readRange(empty.id, 0, 10) as Buffer).length, 0, 'an empty file: 0')
  })

  t.test('readRange and readlink refuse what is not a file or a link', async (t) => {
    const tree = buildTree(image, { view: true, cacheBytes: 0 })
    const id = (p: string): number => tree.lookup(p).id
    t.throws(() => tree.readRange(id('/'), 0, 10), fsError('EISDIR'), 'read of the root: EISDIR')
    t.throws(() => tree.readRange(id('/kheaders/include'), 0, 10), fsError('EISDIR'), 'a view directory: EISDIR')
    t.throws(
      () => tree.readRange(id('/kheaders/include/linux/link.h'), 0, 10),
      fsError('EINVAL'),
      'read of a symlink: EINVAL',
    )
    t.throws(() => tree.readRange(id('/config.gz'), -1, 10), fsError('EINVAL'), 'negative offset: EINVAL')
    t.throws(() => tree.readlink(id('/config.gz')), fsError('EINVAL'), 'readlink of a file: EINVAL')
    t.throws(() => tree.readlink(id('/kheaders')), fsError('EINVAL'), 'readlink of a directory: EINVAL')
    t.throws(() => tree.readRange(tree.count, 0, 10), fsError('ENOENT'), 'a node past the table: ENOENT')
  })
})
