// The FUSE adapter: the only file that imports fuse-native. Each handler looks a node up in the
// immutable tree and answers; every write-family operation answers EROFS on purpose (fuse-native
// would answer EPERM for an op it does not know), and statfs says read-only.
import type FuseType from 'fuse-native'
import type { Ops, Stat } from 'fuse-native'
import { FsError, FuseUnavailableError, reason } from '../errors'
import type { Logger } from '../log'
import { EROFS, guard, type FuseReply } from './errno'
import { fuseInstallHint } from './fuse-packages'
import { completeView, lookup, NAME_MAX, readInto, readlink, type Node, type Tree } from './tree'

const ST_RDONLY = 1

/** Operations that would change something: all answer EROFS. */
export const WRITE_OPS = [
  'write',
  'create',
  'mknod',
  'mkdir',
  'unlink',
  'rmdir',
  'rename',
  'link',
  'symlink',
  'truncate',
  'ftruncate',
  'chmod',
  'chown',
  'utimens',
  'setxattr',
  'removexattr',
] as const

/** `counts` receives the number of calls per operation (reported by the daemon on SIGUSR1). */
export function createOps(tree: Tree, log: Logger, counts?: Record<string, number>): Ops {
  const size = (node: Node): number =>
    node.kind === 'file' ? node.size : node.kind === 'symlink' ? Buffer.byteLength(node.target) : 0
  // Everything is owned by root: BCC refuses kernel trees that are not (CVE-2024-2314).
  const stat = (node: Node): Stat => ({
    mode: node.mode,
    uid: 0,
    gid: 0,
    size: size(node),
    nlink: node.kind === 'dir' ? 2 : 1,
    blksize: 4096,
    blocks: Math.ceil(size(node) / 512),
    atime: tree.mtime,
    mtime: tree.mtime,
    ctime: tree.mtime,
  })
  const ok = (cb: FuseReply, value: unknown): void => cb(0, value)
  const ops: Ops = {
    getattr: guard(log, 'getattr', (path: string) => stat(lookup(tree, path)), ok, counts),
    fgetattr: guard(log, 'fgetattr', (path: string, _fd: number) => stat(lookup(tree, path)), ok, counts),
    readdir: guard(
      log,
      'readdir',
      (path: string) => {
        const node = lookup(tree, path)
        if (node.kind !== 'dir') throw new FsError('ENOTDIR', path)
        return node.entries
      },
      ok,
      counts,
    ),
    read: guard(
      log,
      'read',
      (path: string, _fd: number, buf: Buffer, len: number, pos: number) =>
        readInto(tree, lookup(tree, path), buf, len, pos),
      (cb, n) => cb(n),
      counts,
    ),
    readlink: guard(log, 'readlink', (path: string) => readlink(lookup(tree, path)), ok, counts),
    statfs: guard(
      log,
      'statfs',
      (_path: string) => {
        completeView(tree) // for its file count
        return {
          bsize: 4096,
          frsize: 4096,
          blocks: Math.ceil(tree.bytes / 4096),
          bfree: 0,
          bavail: 0,
          files: tree.count,
          ffree: 0,
          favail: 0,
          fsid: 0,
          flag: ST_RDONLY,
          namemax: NAME_MAX,
        }
      },
      ok,
      counts,
    ),
  }
  for (const op of WRITE_OPS) {
    ops[op] = (...args: unknown[]) => {
      const cb = args[args.length - 1] as FuseReply
      // setxattr's callback also carries fuse-native's buffer back; the code is what matters.
      cb(EROFS)
    }
  }
  return ops
}

export interface MountOptions {
  allowOther: boolean
  nonempty: boolean
  log: Logger
}

export interface Mounted {
  /** Lazy unmount (fusermount -uz): the mount goes now, open files keep reading until closed. */
  detach(): Promise<void>
}

/** Load fuse-native (fails clearly when libfuse2 is missing) and mount `ops` read-only at `mountpoint`. */
export function mountFuse(mountpoint: string, ops: Ops, opts: MountOptions): Promise<Mounted> {
  const Fuse = loadFuse()
  // fuse-native's option list is fixed; further -o options ride on fsname, which it joins verbatim
  // ("-ofsname=kheadersfs,ro,...": the option join in fuse-native's index.js, as in the pinned
  // @cocalc/fuse-native 2.4.3; docs/design.md, "Boards").
  // negative_timeout: the kernel remembers names that do not exist, so the many include paths gcc
  // probes in vain reach the daemon once per name, not once per compiler run.
  const extra = ['ro', 'nosuid', 'nodev', 'noatime', 'negative_timeout=3600', ...(opts.nonempty ? ['nonempty'] : [])]
  const fuse = new Fuse(mountpoint, ops, {
    fsname: ['kheadersfs', ...extra].join(','),
    subtype: 'kheadersfs',
    allowOther: opts.allowOther,
    defaultPermissions: true,
    // The content never changes while mounted: let the kernel cache data and attributes.
    kernelCache: true,
    attrTimeout: 3600,
    entryTimeout: 3600,
    // If the daemon dies, libfuse's fusermount helper removes the mount instead of leaving it stale.
    autoUnmount: true,
  })
  // A synchronous throw from fuse.mount rejects the promise too (the executor's own contract).
  return new Promise((resolve, reject) => {
    fuse.mount((err) => {
      if (err) return reject(err)
      resolve({
        detach: () =>
          new Promise<void>((res, rej) => {
            Fuse.unmount(mountpoint, (e) => (e ? rej(e) : res()))
          }),
      })
    })
  })
}

let loaded: typeof FuseType | undefined

export function loadFuse(): typeof FuseType {
  if (loaded !== undefined) return loaded
  try {
    loaded = require('fuse-native') as { default?: typeof FuseType } & typeof FuseType
    loaded = (loaded as { default?: typeof FuseType }).default ?? loaded
    return loaded
  } catch (e) {
    throw new FuseUnavailableError(
      `Cannot load FUSE support: ${reason(e)}; ${fuseInstallHint({ library: true, fusermount: true })}`,
      e,
    )
  }
}
