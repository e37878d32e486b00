// Image → the immutable table of what the mount shows: path → node. No FUSE here, so it is unit
// tested directly; serve/ops.ts only looks nodes up and copies bytes.
import { constants } from 'node:fs'
import { FsError } from '../errors'
import type { Image } from '../image/read'

export interface FileNode {
  kind: 'file'
  mode: number
  size: number
  data: Buffer
}

export interface DirNode {
  kind: 'dir'
  mode: number
  /** Names in readdir order. */
  entries: string[]
}

export type Node = FileNode | DirNode

export interface Tree {
  nodes: Map<string, Node>
  /** Image creation time: the mtime/ctime/atime of everything. */
  mtime: Date
  /** Bytes served (for statfs). */
  bytes: number
}

/** The flat files: kheaders.txz (the seed's /proc name), kheaders.tar.xz (the sysfs name), config.gz. */
export const FLAT_FILES = ['config.gz', 'kheaders.tar.xz', 'kheaders.txz'] as const

export function buildTree(image: Image): Tree {
  const nodes = new Map<string, Node>()
  const file = (data: Buffer): FileNode => ({ kind: 'file', mode: constants.S_IFREG | 0o444, size: data.length, data })
  nodes.set('/', { kind: 'dir', mode: constants.S_IFDIR | 0o555, entries: [...FLAT_FILES] })
  nodes.set('/config.gz', file(image.config))
  // Same Buffer twice: the bytes exist once in memory.
  nodes.set('/kheaders.tar.xz', file(image.headers))
  nodes.set('/kheaders.txz', file(image.headers))
  return { nodes, mtime: new Date(image.manifest.epoch * 1000), bytes: image.config.length + image.headers.length }
}

export function lookup(tree: Tree, path: string): Node {
  const node = tree.nodes.get(path)
  if (node !== undefined) return node
  // A path below a file is ENOTDIR, as a real filesystem answers.
  for (let i = path.lastIndexOf('/'); i > 0; i = path.lastIndexOf('/', i - 1)) {
    if (tree.nodes.get(path.slice(0, i))?.kind === 'file') throw new FsError('ENOTDIR', path)
  }
  throw new FsError('ENOENT', path)
}

/** Clamp-and-copy, as kernel/kheaders.c does: past EOF is 0 bytes, never an error. */
export function readInto(node: Node, buf: Buffer, len: number, pos: number): number {
  if (node.kind !== 'file') throw new FsError('EISDIR', 'read of a directory')
  if (pos < 0) throw new FsError('EINVAL', 'negative offset')
  if (pos >= node.size) return 0
  const end = Math.min(pos + len, node.size, pos + buf.length)
  return node.data.copy(buf, 0, pos, end)
}
