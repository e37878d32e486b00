// Image → the immutable table of what the mount shows: path → node. No FUSE here, so it is unit
// tested directly; serve/ops.ts only looks nodes up and copies bytes.
//
// The flat files (kheaders.txz, kheaders.tar.xz, config.gz) are Buffers in memory. The kheaders/
// view is the archive's own tree, built from the manifest's file table: lookups, stat and readdir
// answer from the table (serve/table.ts, packed: no object or string per path), and only a read
// decodes, through an ArchiveReader. Nodes are numbered as the table numbers them (the FUSE inode is
// the number + 1); lookup() walks a whole path, for tests and tools.
//
// The view's part of the table may be built after the tree (TreeOptions.idleFrom): the daemon's path to
// ready then never waits for it. Only the Tree knows whether it is built yet; no answer depends on it.
import { constants } from 'node:fs'
import { FsError } from '../errors'
import { NAME_MAX } from '../image/format'
import type { Image } from '../image/read'
import { inTarOrder } from '../pack/tar-order'
import { ArchiveReader } from './archive'
import { encodeDirents } from './dirents'
import { child, entries, isDir, name, NONE, ROOT, TableBuilder, type Table } from './table'

export interface FileNode {
  kind: 'file'
  id: number
  mode: number
  size: number
  /** The bytes, for a flat file held in memory. */
  data?: Buffer
  /** Where the bytes start in the uncompressed archive, for a file of the view. */
  offset: number
}

export interface LinkNode {
  kind: 'symlink'
  id: number
  mode: number
  target: string
}

export interface DirNode {
  kind: 'dir'
  id: number
  mode: number
  /** Names in readdir order. */
  entries: string[]
}

export type Node = FileNode | LinkNode | DirNode

/** The flat files: kheaders.txz (the seed's /proc name), kheaders.tar.xz (the sysfs name), config.gz. */
export const FLAT_FILES = ['config.gz', 'kheaders.tar.xz', 'kheaders.txz'] as const
/** The directory holding the archive's tree. */
export const VIEW_DIR = 'kheaders'

/** Longest name (path component) in bytes, as statfs reports and as tmpfs and ext4 enforce. */
export { NAME_MAX }

export interface TreeOptions {
  /** Serve the archive's tree under /kheaders. */
  view: boolean
  /** Bound of the decoded-block cache, in bytes. */
  cacheBytes: number
  /**
   * When the caller's busy start is over (the daemon: once it has reported ready). Given, the view's
   * table is built in the first idle turn after it resolves, or at the first request that needs it
   * if that comes first (a lookup or listing in kheaders/, statfs's file count); without it, at once.
   * The daemon's first lookups are seldom under kheaders/.
   */
  idleFrom?: Promise<unknown>
}

const { S_IFMT, S_IFDIR, S_IFREG, S_IFLNK } = constants
const DIR_MODE = S_IFDIR | 0o555

export function buildTree(image: Image, opts: TreeOptions = { view: false, cacheBytes: 0 }): Tree {
  const b = new TableBuilder()
  const root = b.add(NONE, '', DIR_MODE)
  const names = opts.view ? [...FLAT_FILES, VIEW_DIR].sort() : [...FLAT_FILES]
  let view = NONE
  for (const n of names) {
    if (n === VIEW_DIR) {
      view = b.add(root, n, DIR_MODE)
      continue
    }
    // kheaders.tar.xz and kheaders.txz: the same Buffer twice, the bytes exist once in memory.
    const data = n === 'config.gz' ? image.config : image.headers
    b.data.set(b.add(root, n, S_IFREG | 0o444, data.length), data)
  }
  const mtime = new Date(image.manifest.epoch * 1000)
  const payloads = image.config.length + image.headers.length
  if (!opts.view) return new Tree({ mtime, bytes: payloads, table: b.table() })
  const files = image.manifest.files
  let bytes = payloads
  for (const f of files) if (f.type === 'file') bytes += f.size
  return new Tree({
    mtime,
    bytes,
    archive: new ArchiveReader(image.headers, image.xzIndex, opts.cacheBytes),
    table: b.table(),
    view: {
      id: view,
      build: () => {
        addView(b, view, files)
        return b.table()
      },
      idleFrom: opts.idleFrom,
    },
  })
}

/** The part of the table a Tree may build later: the view's entries, under its directory node `id`. */
interface DeferredView {
  id: number
  /** The whole table: the one the tree was made with, plus the view's entries. */
  build: () => Table
  /** Build it at once when undefined (TreeOptions.idleFrom). */
  idleFrom: Promise<unknown> | undefined
}

/** What the mount shows, by node number. Immutable: building the view late changes no answer. */
export class Tree {
  /** Image creation time: the mtime/ctime/atime of everything. */
  readonly mtime: Date
  /** Bytes served: the image's payloads (once) and the view's files (for statfs). */
  readonly bytes: number
  /** Reads the view's files out of kheaders.tar.xz; absent with the view off. */
  readonly archive: ArchiveReader | undefined
  #table: Table
  /** The view directory's node, or NONE. */
  readonly #viewId: number
  /** Set until the view's entries are in #table; dropped then, with the file records it holds. */
  #buildView: (() => Table) | undefined
  /** The view's first node: nodes below are the root and its flat files. */
  readonly viewFrom: number
  readonly #onWhole: Array<(table: Table) => void> = []

  constructor(parts: { mtime: Date; bytes: number; archive?: ArchiveReader; table: Table; view?: DeferredView }) {
    this.mtime = parts.mtime
    this.bytes = parts.bytes
    this.archive = parts.archive
    this.#table = parts.table
    this.#viewId = parts.view?.id ?? NONE
    this.viewFrom = parts.table.count
    this.#buildView = parts.view?.build
    const idleFrom = parts.view?.idleFrom
    if (idleFrom === undefined) this.#whole()
    else
      idleFrom.then(
        () => setImmediate(() => this.#whole()),
        () => undefined, // the caller never got going: nothing to build for
      )
  }

  /**
   * `fn` gets the whole table (the view's entries in it) once it is built: now if it is, else when the
   * view is first needed or the daemon is first idle. It never changes after.
   */
  whenWhole(fn: (table: Table) => void): void {
    if (this.#buildView === undefined) fn(this.#table)
    else this.#onWhole.push(fn)
  }

  /** Number of paths, the root included (statfs's file count). */
  get count(): number {
    return this.#whole().count
  }

  /** Build the view's table now if it is not yet (whenWhole's callbacks run). */
  buildView(): void {
    this.#whole()
  }

  /** Whether the view's table is built yet (for tests: no answer depends on it). */
  get viewBuilt(): boolean {
    return this.#buildView === undefined
  }

  /** The table with the view's entries, built now if they are not yet. */
  #whole(): Table {
    const build = this.#buildView
    if (build !== undefined) {
      this.#buildView = undefined
      this.#table = build()
      for (const fn of this.#onWhole.splice(0)) fn(this.#table)
    }
    return this.#table
  }

  /** The table, if node `id` is one this tree gave out, or ENOENT: the kernel only knows those. */
  #check(id: number): Table {
    const t = this.#table
    if (!(id >= 0 && id < t.count)) throw new FsError('ENOENT', `node ${id}`)
    return t
  }

  /** The table holding the children of directory `dir`: the view's are built at its first need. */
  #dir(dir: number): Table {
    if (dir === this.#viewId) this.#whole()
    const t = this.#check(dir)
    if (!isDir(t, dir)) throw new FsError('ENOTDIR', `node ${dir}`)
    return t
  }

  /** The child of directory `dir` named by bytes [0, length) of `name`, or NONE. ENOTDIR below a file. */
  lookupChild(dir: number, name: Uint8Array, length: number): number {
    return child(this.#dir(dir), dir, name, 0, length)
  }

  modeOf(id: number): number {
    return this.#check(id).mode[id]
  }

  /** Bytes a stat reports: a file's length, a link's target length, 0 for a directory. */
  sizeOf(id: number): number {
    const t = this.#check(id)
    const type = t.mode[id] & S_IFMT
    if (type === S_IFLNK) return Buffer.byteLength(t.targets.get(id)!)
    return type === S_IFDIR ? 0 : t.size[id]
  }

  /**
   * One readdir answer: the entries of `dir` from `cookie` on (0: the first; each entry carries the
   * cookie of the one after it), as FUSE dirents in at most `size` bytes. Nothing is kept between
   * calls, so an open directory costs the daemon nothing, however many are open.
   */
  readdirPage(dir: number, cookie: number, size: number, into?: Buffer): Buffer {
    return encodeDirents(this.#dir(dir), dir, cookie, size, into)
  }

  /**
   * The node at `path` ("/kheaders/include/linux"), walked from the root one name at a time. A missing
   * path answers what a real filesystem answers, decided at its first missing component: ENOTDIR below
   * a file, ENAMETOOLONG for a name over NAME_MAX bytes, else ENOENT.
   */
  lookup(path: string): Node {
    if (path[0] !== '/') throw new FsError('ENOENT', path)
    // Paths are at most PATH_MAX (4096) bytes: encoded into one reused buffer, not a new one per call.
    const bytes = path.length * 3 <= scratch.length ? scratch : Buffer.from(path)
    const length = bytes === scratch ? scratch.write(path) : bytes.length
    let id = ROOT
    // `at` is the slash before the next name.
    for (let at = 0; at + 1 < length;) {
      let end = at + 1
      while (end < length && bytes[end] !== 0x2f) end++
      if (!isDir(this.#table, id)) throw new FsError('ENOTDIR', path)
      if (end - at - 1 > NAME_MAX) throw new FsError('ENAMETOOLONG', path)
      const next = this.lookupChild(id, bytes.subarray(at + 1, end), end - at - 1)
      if (next === NONE) throw new FsError('ENOENT', path)
      id = next
      at = end
    }
    return this.#node(id)
  }

  /** The node `id`, as an object (for tests and tools; the daemon answers from the table). */
  #node(id: number): Node {
    const t = this.#check(id)
    const mode = t.mode[id]
    switch (mode & S_IFMT) {
      case S_IFDIR:
        return {
          kind: 'dir',
          id,
          mode,
          get entries() {
            return entries(t, id)
          },
        }
      case S_IFLNK:
        return { kind: 'symlink', id, mode, target: t.targets.get(id)! }
      default: {
        const data = t.data.get(id)
        if (data !== undefined) return { kind: 'file', id, mode, size: t.size[id], data, offset: 0 }
        return { kind: 'file', id, mode, size: t.size[id], offset: t.offset[id] }
      }
    }
  }

  /** Every path of the tree, the root first, depth first (for tests and tools; no recursion). */
  paths(): string[] {
    const t = this.#whole()
    const out = ['/']
    const stack: Array<[number, string]> = [[ROOT, '/']]
    while (stack.length > 0) {
      const [dir, prefix] = stack.pop()!
      const kids: Array<[number, string]> = []
      for (let c = t.firstChild[dir]; c !== NONE; c = t.nextSibling[c]) {
        out.push(prefix + name(t, c))
        if (isDir(t, c)) kids.push([c, `${prefix}${name(t, c)}/`])
      }
      for (let i = kids.length - 1; i >= 0; i--) stack.push(kids[i])
    }
    return out
  }

  /**
   * Up to `len` bytes of node `id` at `pos`, clamped as kernel/kheaders.c does: past EOF is 0 bytes,
   * never an error. Flat files answer at once with a view of their bytes in memory; files of the view
   * once their blocks are decoded (decodes for `uid` queued fairly: serve/fair-queue.ts).
   */
  readRange(id: number, pos: number, len: number, uid = 0): Buffer | Promise<Buffer> {
    const t = this.#check(id)
    const type = t.mode[id] & S_IFMT
    if (type === S_IFDIR) throw new FsError('EISDIR', 'read of a directory')
    if (type !== S_IFREG) throw new FsError('EINVAL', 'read of a symbolic link')
    if (pos < 0) throw new FsError('EINVAL', 'negative offset')
    const size = t.size[id]
    if (pos >= size || len <= 0) return EMPTY
    const n = Math.min(len, size - pos)
    const data = t.data.get(id)
    if (data !== undefined) return data.subarray(pos, pos + n)
    return this.archive!.read(t.offset[id] + pos, n, uid)
  }

  /** A link's target, as bytes. */
  readlink(id: number): Buffer {
    const t = this.#check(id)
    if ((t.mode[id] & S_IFMT) !== S_IFLNK) throw new FsError('EINVAL', 'readlink of a non-link')
    return Buffer.from(t.targets.get(id)!)
  }
}

const scratch = Buffer.alloc(3 * 4096)
const EMPTY = Buffer.alloc(0)

/**
 * The archive's entries under the view's directory node `view`, added in GNU tar's name order, the
 * order of each of the archive's tiers (~2 ms). readdir lists a directory in the order its entries
 * were added, and node numbers (inodes) follow it, so whatever walks the view — in readdir order
 * (grep -r, find, tar -c), by inode (cp -r) or by name (rsync) — reads files in the order the
 * archive's tiers hold them (pack/build-order.ts) and decodes each block about once. The image was
 * checked whole at load (image/manifest.ts): no path twice, no file that is also a parent, bounded
 * depth. A parent the table leaves out (tar does not need them) is made as a 0755 directory, without
 * recursion.
 */
function addView(b: TableBuilder, view: number, archiveOrder: Image['manifest']['files']): void {
  const files = inTarOrder(archiveOrder)
  // Relative directory path → node, while building only.
  const dirs = new Map<string, number>([['', view]])
  const dirOf = (p: string): number => {
    const known = dirs.get(p)
    if (known !== undefined) return known
    // The missing ancestors, nearest first, then made from the top down.
    const missing: string[] = []
    let at = p
    let top: number | undefined
    while ((top = dirs.get(at)) === undefined) {
      missing.push(at)
      const slash = at.lastIndexOf('/')
      at = slash < 0 ? '' : at.slice(0, slash)
    }
    for (let i = missing.length - 1; i >= 0; i--) {
      const d = missing[i]
      top = b.add(top, d.slice(d.lastIndexOf('/') + 1), S_IFDIR | 0o755)
      dirs.set(d, top)
    }
    return top
  }
  // Consecutive entries mostly share their directory: compare with the last one before slicing a
  // key to look up.
  let lastDir = ''
  let lastId = view
  for (const f of files) {
    if (f.type === 'directory') {
      const known = dirs.get(f.path)
      if (known !== undefined) b.setMode(known, S_IFDIR | f.mode)
      else {
        const slash = f.path.lastIndexOf('/')
        const id = b.add(dirOf(slash < 0 ? '' : f.path.slice(0, slash)), f.path.slice(slash + 1), S_IFDIR | f.mode)
        dirs.set(f.path, id)
      }
      continue
    }
    const mode = f.type === 'symlink' ? S_IFLNK | 0o777 : S_IFREG | f.mode
    const slash = f.path.lastIndexOf('/')
    let parent = view
    if (slash >= 0) {
      if (slash !== lastDir.length || !f.path.startsWith(lastDir)) {
        lastDir = f.path.slice(0, slash)
        lastId = dirOf(lastDir)
      }
      parent = lastId
    }
    const id = b.add(parent, f.path.slice(slash + 1), mode, f.size, f.offset)
    if (f.type === 'symlink') b.targets.set(id, f.link!)
  }
}
