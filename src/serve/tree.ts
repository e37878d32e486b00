// Image → the immutable table of what the mount shows: path → node. No FUSE here, so it is unit
// tested directly; serve/ops.ts only looks nodes up and copies bytes.
//
// The flat files (kheaders.txz, kheaders.tar.xz, config.gz) are Buffers in memory. The kheaders/
// view is the archive's own tree, built from the manifest's file table at mount: lookups, stat and
// readdir answer from the table, and only a read decodes, through an ArchiveReader.
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

export interface Tree {
  nodes: Map<string, Node>
  /** Image creation time: the mtime/ctime/atime of everything. */
  mtime: Date
  /** Bytes served: the image's payloads (once) and the view's files (for statfs). */
  bytes: number
  /** Reads the view's files out of kheaders.tar.xz; absent with the view off. */
  archive?: ArchiveReader
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
}

const DIR_MODE = constants.S_IFDIR | 0o555

export function buildTree(image: Image, opts: TreeOptions = { view: false, cacheBytes: 0 }): Tree {
  const nodes = new Map<string, Node>()
  const flat = (data: Buffer): FileNode => ({ kind: 'file', mode: constants.S_IFREG | 0o444, size: data.length, data, offset: 0 })
  const root: DirNode = { kind: 'dir', mode: DIR_MODE, entries: [...FLAT_FILES] }
  nodes.set('/', root)
  nodes.set('/config.gz', flat(image.config))
  // Same Buffer twice: the bytes exist once in memory.
  nodes.set('/kheaders.tar.xz', flat(image.headers))
  nodes.set('/kheaders.txz', flat(image.headers))
  const tree: Tree = { nodes, mtime: new Date(image.manifest.epoch * 1000), bytes: image.config.length + image.headers.length }
  if (!opts.view) return tree

  root.entries.push(VIEW_DIR)
  root.entries.sort()
  const top = `/${VIEW_DIR}`
  nodes.set(top, { kind: 'dir', mode: DIR_MODE, entries: [] })
  const dirOf = (p: string): DirNode => {
    const existing = nodes.get(p)
    if (existing?.kind === 'dir') return existing
    // The manifest lists directories before their contents; make any it left out, to be safe.
    const slash = p.lastIndexOf('/')
    const dir: DirNode = { kind: 'dir', mode: constants.S_IFDIR | 0o755, entries: [] }
    dirOf(p.slice(0, slash)).entries.push(p.slice(slash + 1))
    nodes.set(p, dir)
    return dir
  }
  for (const f of image.manifest.files) {
    const p = `${top}/${f.path}`
    if (f.type === 'directory') {
      dirOf(p).mode = constants.S_IFDIR | f.mode
      continue
    }
    const slash = p.lastIndexOf('/')
    dirOf(p.slice(0, slash)).entries.push(p.slice(slash + 1))
    if (f.type === 'symlink') nodes.set(p, { kind: 'symlink', mode: constants.S_IFLNK | 0o777, target: f.link! })
    else {
      nodes.set(p, { kind: 'file', mode: constants.S_IFREG | f.mode, size: f.size, offset: f.offset })
      tree.bytes += f.size
    }
  }
  tree.archive = new ArchiveReader(image.headers, image.xzIndex, opts.cacheBytes)
  return tree
}

/** Longest name (path component) in bytes, as statfs reports and as tmpfs and ext4 enforce. */
export const NAME_MAX = 255

export function lookup(tree: Tree, path: string): Node {
  const node = tree.nodes.get(path)
  if (node !== undefined) return node
  throw new FsError(missing(tree, path), path)
}

/**
 * The errno a real filesystem gives for a path that is not there, decided at its first missing
 * component: ENOTDIR below a file, ENAMETOOLONG for a name over NAME_MAX bytes, else ENOENT.
 */
function missing(tree: Tree, path: string): 'ENOENT' | 'ENOTDIR' | 'ENAMETOOLONG' {
  let parent: Node | undefined = tree.nodes.get('/')
  for (let at = 0; at < path.length; ) {
    const next = path.indexOf('/', at + 1)
    const end = next === -1 ? path.length : next
    if (parent?.kind !== 'dir') return 'ENOTDIR'
    if (Buffer.byteLength(path.slice(at + 1, end)) > NAME_MAX) return 'ENAMETOOLONG'
    parent = tree.nodes.get(path.slice(0, end))
    if (parent === undefined) return 'ENOENT'
    at = end
  }
  return 'ENOENT'
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
