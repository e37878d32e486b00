// Image → the immutable table of what the mount shows: path → node. No FUSE here, so it is unit
// tested directly; serve/ops.ts only looks nodes up and copies bytes.
//
// The flat files (kheaders.txz, kheaders.tar.xz, config.gz) are Buffers in memory. The kheaders/
// view is the archive's own tree, built from the manifest's file table at mount: lookups, stat and
// readdir answer from the table (serve/table.ts, packed: no object or string per path), and only a
// read decodes, through an ArchiveReader. lookup() makes a Node for the path it is asked for.
import { constants } from 'node:fs'
import { FsError } from '../errors'
import type { Image } from '../image/read'
import { ArchiveReader } from './archive'
import { child, entries, isDir, name, NONE, ROOT, TableBuilder, type Table } from './table'

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

export function buildTree(image: Image, opts: TreeOptions = { view: false, cacheBytes: 0 }): Tree {
  const b = new TableBuilder()
  const root = b.add(NONE, '', DIR_MODE)
  const names = opts.view ? [...FLAT_FILES, VIEW_DIR].sort() : [...FLAT_FILES]
  let view = -1
  for (const n of names) {
    if (n === VIEW_DIR) {
      view = b.add(root, n, DIR_MODE)
      continue
    }
    // kheaders.tar.xz and kheaders.txz: the same Buffer twice, the bytes exist once in memory.
    const data = n === 'config.gz' ? image.config : image.headers
    b.data.set(b.add(root, n, S_IFREG | 0o444, data.length), data)
  }
  const tree: Tree = {
    mtime: new Date(image.manifest.epoch * 1000),
    bytes: image.config.length + image.headers.length,
    count: b.count,
    table: b.table(),
  }
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
  // Relative path → node, while building only. The manifest never lists a path twice (checked),
  // but a path may come as a file and as the directory of another path: the later one wins, in
  // place, as a directory listing shows a name once.
  const ids = new Map<string, number>([['', view]])
  const dirOf = (p: string): number => {
    const known = ids.get(p)
    if (known !== undefined) {
      if (!b.isDir(known)) b.set(known, S_IFDIR | 0o755)
      return known
    }
    // The manifest lists directories before their contents; make any it left out, to be safe.
    const slash = p.lastIndexOf('/')
    const id = b.add(dirOf(slash < 0 ? '' : p.slice(0, slash)), p.slice(slash + 1), S_IFDIR | 0o755)
    ids.set(p, id)
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
    const mode = f.type === 'symlink' ? S_IFLNK | 0o777 : S_IFREG | f.mode
    let id = ids.get(f.path)
    if (id !== undefined) b.set(id, mode, f.size, f.offset)
    else {
      const slash = f.path.lastIndexOf('/')
      let parent = view
      if (slash >= 0) {
        if (slash !== lastDir.length || !f.path.startsWith(lastDir)) {
          lastDir = f.path.slice(0, slash)
          lastId = dirOf(lastDir)
        }
        parent = lastId
      }
      id = b.add(parent, f.path.slice(slash + 1), mode, f.size, f.offset)
      ids.set(f.path, id)
    }
    if (f.type === 'symlink') b.targets.set(id, f.link!)
  }
}

/** Build the view's table now if it was deferred. */
export function completeView(tree: Tree): void {
  tree.pending?.()
}

/** Longest name (path component) in bytes, as statfs reports and as tmpfs and ext4 enforce. */
export const NAME_MAX = 255

const scratch = Buffer.alloc(3 * 4096)

/**
 * The node at `path` ("/kheaders/include/linux"), walked from the root one name at a time, on its
 * UTF-8 bytes. A missing path answers what a real filesystem answers, decided at its first missing
 * component: ENOTDIR below a file, ENAMETOOLONG for a name over NAME_MAX bytes, else ENOENT.
 */
function find(t: Table, path: string): number {
  if (path[0] !== '/') throw new FsError('ENOENT', path)
  if (path.length === 1) return ROOT
  // Paths are at most PATH_MAX (4096) bytes: encoded into one reused buffer, not a new one per call.
  const bytes = path.length * 3 <= scratch.length ? scratch : Buffer.from(path)
  const length = bytes === scratch ? scratch.write(path) : bytes.length
  let id = ROOT
  // `at` is the slash before the next name.
  for (let at = 0; at < length;) {
    let end = at + 1
    while (end < length && bytes[end] !== 0x2f) end++
    if (!isDir(t, id)) throw new FsError('ENOTDIR', path)
    const next = child(t, id, bytes, at + 1, end)
    if (next === NONE) throw new FsError(end - at - 1 > NAME_MAX ? 'ENAMETOOLONG' : 'ENOENT', path)
    id = next
    at = end
  }
  return id
}

function node(t: Table, id: number): Node {
  const mode = t.mode[id]
  switch (mode & S_IFMT) {
    case S_IFDIR:
      // Made when read (readdir), not for every getattr of a directory.
      return {
        kind: 'dir',
        mode,
        get entries() {
          return entries(t, id)
        },
      }
    case S_IFLNK:
      return { kind: 'symlink', mode, target: t.targets.get(id)! }
    default: {
      const data = t.data.get(id)
      if (data !== undefined) return { kind: 'file', mode, size: t.size[id], data, offset: 0 }
      return { kind: 'file', mode, size: t.size[id], offset: t.offset[id] }
    }
  }
}

/** "/kheaders" and below (not "/kheaders.txz"). */
const inView = (path: string): boolean =>
  path.startsWith(VIEW_PREFIX) && (path.length === VIEW_PREFIX.length || path[VIEW_PREFIX.length] === '/')
const VIEW_PREFIX = `/${VIEW_DIR}`

export function lookup(tree: Tree, path: string): Node {
  if (tree.pending !== undefined && inView(path)) completeView(tree)
  return node(tree.table, find(tree.table, path))
}

/** Every path of the tree, the root first (for tests and tools; the daemon never lists them all). */
export function paths(tree: Tree): string[] {
  completeView(tree)
  const out = ['/']
  const t = tree.table
  const walk = (dir: number, prefix: string): void => {
    for (let c = t.firstChild[dir]; c !== NONE; c = t.nextSibling[c]) {
      out.push(prefix + name(t, c))
      if (isDir(t, c)) walk(c, `${prefix}${name(t, c)}/`)
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
