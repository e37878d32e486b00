// The FUSE adapter: the only file that loads kheadersfs's binding (src/native/kheadersfs_fuse.c, libfuse
// 2's low-level API). It mounts, hands each request to a dispatcher (serve/ops.ts) with the reply
// functions bound to the session, and reports when the kernel ends the session: after an unmount,
// once no file of the mount is open any more.
import { encodeOsPath } from '../os-path'
import { loadBinding, type Dispatch, type SessionStats } from '../native/binding'
import type { BlockSharer } from './block-cache'
import type { Table } from './table'

/** The binding's request kinds (enum in kheadersfs_fuse.c); `table` asks for the whole table, answering nothing. */
export const OP = { lookup: 1, getattr: 2, readlink: 3, read: 4, readdir: 5, statfs: 6, table: 7 } as const

/** Answers to a request; each request gets exactly one. */
export interface Replies {
  err(id: number, errno: number): void
  /** A found name (`ino` > 0) with its attributes, or with ino 0: "no such name", cached by the kernel. */
  entry(id: number, ino: number, mode: number, size: number): void
  attr(id: number, ino: number, mode: number, size: number): void
  /** Bytes for read and readdir; the kernel copies them before this returns. */
  buf(id: number, data: Buffer): void
  readlink(id: number, target: Buffer): void
  statfs(id: number, blocks: number, files: number, namemax: number): void
}

export interface MountOptions {
  allowOther: boolean
  nonempty: boolean
  /** Seconds since the epoch: every node's mtime, ctime and atime. */
  mtime: number
}

export interface Mounted {
  /** Lazy unmount (umount -l): the mount goes now, open files keep reading until closed. */
  detach(): { errno: number; message: string }
  /** Resolves when the kernel ended the session (unmounted and no file open). */
  ended: Promise<number>
  /**
   * From now on the binding answers lookups and getattr of directories and files, and listings, from
   * `table` on its reading thread; the dispatcher still gets the rest. `table` must be whole and never change.
   */
  answerFrom(table: Table): void
  /**
   * After answerFrom: the binding also answers reads of view files (nodes from `firstView` on, `offset`
   * per node) whose blocks (`starts`: ArchiveReader.blockStarts) are published to the returned sharer.
   */
  shareBlocks(offset: Float64Array, firstView: number, starts: Float64Array): BlockSharer
  stats(): SessionStats
}

/** The content never changes while mounted: attributes, names and absent names are cached this long. */
const CACHE_SECONDS = 3600

/**
 * Mount read-only at `mountpoint` and serve through the dispatcher `create` makes from the session's
 * replies and lookup-name buffer. ro,nosuid,nodev whatever the caller asked; auto_unmount: if the daemon
 * dies, libfuse's fusermount helper removes the mount instead of leaving it stale.
 */
export function mountFuse(
  mountpoint: string,
  create: (replies: Replies, name: Buffer) => Dispatch,
  opts: MountOptions,
): Mounted {
  const b = loadBinding()
  const options = [
    'fsname=kheadersfs',
    'subtype=kheadersfs',
    'ro',
    'nosuid',
    'nodev',
    'noatime',
    'default_permissions',
    'auto_unmount',
    ...(opts.allowOther ? ['allow_other'] : []),
    ...(opts.nonempty ? ['nonempty'] : []),
  ].join(',')
  // Set once the session's replies exist, which is after mount() returns.
  const to: { dispatch?: Dispatch } = {}
  let onEnd: (r: number) => void = () => undefined
  const ended = new Promise<number>((resolve) => (onEnd = resolve))
  const bytes = encodeOsPath(mountpoint)
  // Requests reach JavaScript only once this returns (the main thread is busy until then).
  const m = b.mount(
    bytes,
    options,
    opts.mtime,
    CACHE_SECONDS,
    (...a) => to.dispatch!(...a),
    (r) => onEnd(r),
  )
  const s = m.session
  const replies: Replies = {
    err: (id, errno) => b.replyErr(s, id, errno),
    entry: (id, ino, mode, size) => b.replyEntry(s, id, ino, mode, size),
    attr: (id, ino, mode, size) => b.replyAttr(s, id, ino, mode, size),
    buf: (id, data) => b.replyBuf(s, id, data),
    readlink: (id, target) => b.replyReadlink(s, id, target),
    statfs: (id, blocks, files, namemax) => b.replyStatfs(s, id, blocks, files, namemax),
  }
  to.dispatch = create(replies, m.name)
  const answerFrom = (t: Table): void =>
    b.serveTable(s, t.mode, t.size, t.parent, t.nameStart, t.nameLength, t.names, t.slots, t.firstChild, t.nextSibling)
  const shareBlocks = (offset: Float64Array, firstView: number, starts: Float64Array): BlockSharer => {
    const touched = new Uint32Array(starts.length - 1)
    b.serveBlocks(s, offset, firstView, starts, touched)
    return {
      publish: (block, data) => b.publishBlock(s, block, data),
      retract: (block) => b.retractBlock(s, block),
      touched,
    }
  }
  return { detach: () => b.unmount(bytes, true), ended, answerFrom, shareBlocks, stats: () => b.stats(s) }
}

/** Threads of this process now (for the daemon's stats). */
export function threadCount(): number {
  return loadBinding().threads()
}
