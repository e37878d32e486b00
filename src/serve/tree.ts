// Image → the immutable table of what the mount shows: path → node. No FUSE here, so it is unit
// tested directly; serve/ops.ts only looks nodes up and copies bytes.
//
// The flat files (kheaders.txz, kheaders.tar.xz, config.gz) are Buffers in memory. The kheaders/
// view is the archive's own tree, built from the manifest's file table at mount: lookups, stat and
// readdir answer from the table, and only a read decodes, through an ArchiveReader.
//
// The table lives as long as the daemon, so it is compact: one slot per path in typed arrays (mode,
// size, tar offset) and each name once, as a key of its directory's Map; no object and no full path
// per file. Measured on a module-build image (6,779 paths): ~0.6 MB of heap, against ~1.6 MB for an
// object per path in one Map keyed by full paths. lookup() makes a Node for the path it is asked for.
import { constants } from 'node:fs'
import { FsError } from '../errors'
import type { Image } from '../image/read'
import { ArchiveReader } from './archive'

export interface FileNode {
  kind: 'file'
  mode: number
  size: number
  /** The bytes, for a flat file held in memory. */
  data?: Buffer
  /** Where the bytes start in the uncompressed archive, for a file of the view. */
  offset: number
}

export interface LinkNode {
  kind: 'symlink'
  mode: number
  target: string
}

export interface DirNode {
  kind: 'dir'
  mode: number
  /** Names in readdir order. */
  entries: string[]
}

export type Node = FileNode | LinkNode | DirNode

/** The node table; internal to this module (lookup() and paths() read it). */
interface Table {
  /** S_IFMT type and permission bits, per node; node 0 is the root. */
  mode: Uint32Array
  size: Float64Array
  offset: Float64Array
  /** Directory node → name → node, in readdir order. */
  dirs: Map<number, Map<string, number>>
  targets: Map<number, string>
  /** Flat files' bytes. */
  data: Map<number, Buffer>
}

export interface Tree {
  /** Image creation time: the mtime/ctime/atime of everything. */
  mtime: Date
  /** Bytes served: the image's payloads (once) and the view's files (for statfs). */
  bytes: number
  /** Number of paths, the root included (statfs's file count). */
  count: number
  /** Reads the view's files out of kheaders.tar.xz; absent with the view off. */
  archive?: ArchiveReader
  table: Table
  /** Builds the view's table; set until it is built (TreeOptions.deferView). */
  pending?: () => void
}

/** The flat files: kheaders.txz (the seed's /proc name), kheaders.tar.xz (the sysfs name), config.gz. */
export const FLAT_FILES = ['config.gz', 'kheaders.tar.xz', 'kheaders.txz'] as const
/** The directory holding the archive's tree. */
export const VIEW_DIR = 'kheaders'

export interface TreeOptions {
  /** Serve the archive's tree under /kheaders. */
  view: boolean
  /** Bound of the decoded-block cache, in bytes. */
  cacheBytes: number
  /**
   * Build the view's table at its first lookup (or completeView()) rather than now: the daemon
   * mounts and reports ready first, and its first lookups are seldom under kheaders/.
   */
  deferView?: boolean
}

const { S_IFMT, S_IFDIR, S_IFREG, S_IFLNK } = constants
const DIR_MODE = S_IFDIR | 0o555
const ROOT = 0

/** Collects nodes in growable arrays; table() packs them into typed arrays once. */
class TableBuilder {
  private readonly mode: number[] = []
  private readonly size: number[] = []
  private readonly offset: number[] = []
  readonly dirs = new Map<number, Map<string, number>>()
  readonly targets = new Map<number, string>()
  readonly data = new Map<number, Buffer>()

  /** A new node, entered in `parent` under `name` (replacing what had that name). */
  add(parent: number | undefined, name: string, mode: number, size = 0, offset = 0): number {
    const id = this.mode.length
    this.mode.push(mode)
    this.size.push(size)
    this.offset.push(offset)
    if (parent !== undefined) this.dirs.get(parent)!.set(name, id)
    if ((mode & S_IFMT) === S_IFDIR) this.dirs.set(id, new Map())
    return id
  }

  setMode(id: number, mode: number): void {
    this.mode[id] = mode
  }

  get count(): number {
    return this.mode.length
  }

  table(): Table {
    return {
      mode: Uint32Array.from(this.mode),
      size: Float64Array.from(this.size),
      offset: Float64Array.from(this.offset),
      dirs: this.dirs,
      targets: this.targets,
      data: this.data,
    }
  }
}

export function buildTree(image: Image, opts: TreeOptions = { view: false, cacheBytes: 0 }): Tree {
  const b = new TableBuilder()
  const root = b.add(undefined, '', DIR_MODE)
  const names = opts.view ? [...FLAT_FILES, VIEW_DIR].sort() : [...FLAT_FILES]
  let view = -1
  for (const name of names) {
    if (name === VIEW_DIR) {
      view = b.add(root, name, DIR_MODE)
      continue
    }
    // kheaders.tar.xz and kheaders.txz: the same Buffer twice, the bytes exist once in memory.
    const data = name === 'config.gz' ? image.config : image.headers
    b.data.set(b.add(root, name, S_IFREG | 0o444, data.length), data)
  }
  const tree: Tree = { mtime: new Date(image.manifest.epoch * 1000), bytes: image.config.length + image.headers.length, count: b.count, table: b.table() }
  if (!opts.view) return tree
  tree.archive = new ArchiveReader(image.headers, image.xzIndex, opts.cacheBytes)
  const files = image.manifest.files
  for (const f of files) if (f.type === 'file') tree.bytes += f.size
  tree.pending = () => {
    tree.pending = undefined
    addView(b, view, files)
    tree.table = b.table()
    tree.count = b.count
  }
  if (!opts.deferView) tree.pending()
  return tree
}

/** The archive's entries under the view's directory node `view`. */
function addView(b: TableBuilder, view: number, files: Image['manifest']['files']): void {
  // Directory path (relative) → node, while building only.
  const dirIds = new Map<string, number>([['', view]])
  const dirOf = (p: string): number => {
    const known = dirIds.get(p)
    if (known !== undefined) return known
    // The manifest lists directories before their contents; make any it left out, to be safe.
    const slash = p.lastIndexOf('/')
    const id = b.add(dirOf(slash < 0 ? '' : p.slice(0, slash)), p.slice(slash + 1), S_IFDIR | 0o755)
    dirIds.set(p, id)
    return id
  }
  // Consecutive entries mostly share their directory: compare with the last one before slicing a
  // key to look up.
  let lastDir = ''
  let lastId = view
  for (const f of files) {
    if (f.type === 'directory') {
      b.setMode(dirOf(f.path), S_IFDIR | f.mode)
      continue
    }
    const slash = f.path.lastIndexOf('/')
    let parent = view
    if (slash >= 0) {
      if (slash !== lastDir.length || !f.path.startsWith(lastDir)) {
        lastDir = f.path.slice(0, slash)
        lastId = dirOf(lastDir)
      }
      parent = lastId
    }
    const name = f.path.slice(slash + 1)
    if (f.type === 'symlink') b.targets.set(b.add(parent, name, S_IFLNK | 0o777), f.link!)
    else b.add(parent, name, S_IFREG | f.mode, f.size, f.offset)
  }
}

/** Build the view's table now if it was deferred. */
export function completeView(tree: Tree): void {
  tree.pending?.()
}

/** Longest name (path component) in bytes, as statfs reports and as tmpfs and ext4 enforce. */
export const NAME_MAX = 255

/**
 * The node at `path` ("/kheaders/include/linux"), walked from the root one name at a time. A missing
 * path answers what a real filesystem answers, decided at its first missing component: ENOTDIR below
 * a file, ENAMETOOLONG for a name over NAME_MAX bytes, else ENOENT.
 */
function find(t: Table, path: string): number {
  if (path === '/') return ROOT
  let id = ROOT
  // `at` is the slash before the next name.
  for (let at = 0; at < path.length; ) {
    const next = path.indexOf('/', at + 1)
    const end = next === -1 ? path.length : next
    const dir = t.dirs.get(id)
    if (dir === undefined) throw new FsError('ENOTDIR', path)
    const name = path.slice(at + 1, end)
    const child = dir.get(name)
    if (child === undefined) throw new FsError(Buffer.byteLength(name) > NAME_MAX ? 'ENAMETOOLONG' : 'ENOENT', path)
    id = child
    at = end
  }
  return id
}

function node(t: Table, id: number): Node {
  const mode = t.mode[id]
  switch (mode & S_IFMT) {
    case S_IFDIR:
      return { kind: 'dir', mode, entries: [...t.dirs.get(id)!.keys()] }
    case S_IFLNK:
      return { kind: 'symlink', mode, target: t.targets.get(id)! }
    default: {
      const data = t.data.get(id)
      if (data !== undefined) return { kind: 'file', mode, size: t.size[id], data, offset: 0 }
      return { kind: 'file', mode, size: t.size[id], offset: t.offset[id] }
    }
  }
}

export function lookup(tree: Tree, path: string): Node {
  if (tree.pending !== undefined && path.startsWith(`/${VIEW_DIR}`)) completeView(tree)
  return node(tree.table, find(tree.table, path))
}

/** Every path of the tree, the root first (for tests and tools; the daemon never lists them all). */
export function paths(tree: Tree): string[] {
  completeView(tree)
  const out = ['/']
  const walk = (id: number, prefix: string): void => {
    for (const [name, child] of tree.table.dirs.get(id)!) {
      out.push(prefix + name)
      if (tree.table.dirs.has(child)) walk(child, `${prefix}${name}/`)
    }
  }
  walk(ROOT, '/')
  return out
}

/**
 * Clamp-and-copy, as kernel/kheaders.c does: past EOF is 0 bytes, never an error. Flat files copy
 * from memory at once; files of the view resolve once their blocks are decoded.
 */
export function readInto(tree: Tree, node: Node, buf: Buffer, len: number, pos: number): number | Promise<number> {
  if (node.kind === 'dir') throw new FsError('EISDIR', 'read of a directory')
  if (node.kind !== 'file') throw new FsError('EINVAL', 'read of a symbolic link')
  if (pos < 0) throw new FsError('EINVAL', 'negative offset')
  if (pos >= node.size) return 0
  const n = Math.min(len, node.size - pos, buf.length)
  if (node.data !== undefined) return node.data.copy(buf, 0, pos, pos + n)
  return tree.archive!.read(buf, node.offset + pos, n)
}

export function readlink(node: Node): string {
  if (node.kind !== 'symlink') throw new FsError('EINVAL', 'readlink of a non-link')
  return node.target
}
