// Requests → answers from the immutable tree. Each request names its node by inode (the tree's node +
// 1) and is answered exactly once: lookups and attributes from the packed table, listings by cookie,
// bytes from memory or decoded blocks, and errno for the rest. Operations that would change something
// never get here: the binding answers them EROFS itself (src/native/kheadersfs_fuse.c).
import { constants } from 'node:os'
import type { Logger } from '../log'
import { answer } from './errno'
import type { Dispatch } from '../native/binding'
import { OP, type Replies } from './fuse'
import { NONE } from './table'
import { NAME_MAX, type Tree } from './tree'

const NAMES: Record<number, string> = Object.fromEntries(Object.entries(OP).map(([k, v]) => [v, k]))

/**
 * The dispatcher for a session: `name` is the session's buffer holding each lookup's name while the
 * lookup is dispatched. `counts` receives the number of calls per operation (the daemon's stats).
 */
export function createDispatch(
  tree: Tree,
  reply: Replies,
  name: Buffer,
  log: Logger,
  counts?: Record<string, number>,
): Dispatch {
  // Listings are written here: the binding's reply copies them to the kernel at once (dirents.ts).
  const listing = Buffer.alloc(128 * 1024)
  return (op, id, ino, off, size, nameLength, uid) => {
    const node = ino - 1
    const opName = NAMES[op] ?? `op${op}`
    if (counts !== undefined) counts[opName] = (counts[opName] ?? 0) + 1
    const fail = (errno: number): void => reply.err(id, errno)
    const what = String(ino)
    switch (op) {
      case OP.lookup:
        return answer(
          log,
          opName,
          what,
          () => tree.lookupChild(node, name, nameLength),
          // NONE: "no such name", which the kernel then remembers (negative entry).
          (c) => (c === NONE ? reply.entry(id, 0, 0, 0) : reply.entry(id, c + 1, tree.modeOf(c), tree.sizeOf(c))),
          fail,
        )
      case OP.getattr:
        return answer(
          log,
          opName,
          what,
          () => tree.modeOf(node),
          (mode) => reply.attr(id, ino, mode, tree.sizeOf(node)),
          fail,
        )
      case OP.readlink:
        return answer(
          log,
          opName,
          what,
          () => tree.readlink(node),
          (target) => reply.readlink(id, target),
          fail,
        )
      case OP.read:
        return answer(
          log,
          opName,
          what,
          () => tree.readRange(node, off, size, uid),
          (data) => reply.buf(id, data),
          fail,
        )
      case OP.readdir:
        return answer(
          log,
          opName,
          what,
          () => tree.readdirPage(node, off, size, listing),
          (data) => reply.buf(id, data),
          fail,
        )
      case OP.statfs:
        return answer(
          log,
          opName,
          what,
          () => tree.count,
          (files) => reply.statfs(id, Math.ceil(tree.bytes / 4096), files, NAME_MAX),
          fail,
        )
      case OP.table:
        // Not a request: a listing waits in the binding for the whole table (the view's entries in it),
        // which building it hands over (serve/daemon.ts). Nothing to answer.
        return tree.buildView()
      default:
        return fail(constants.errno.ENOSYS) // not a request this dispatcher knows
    }
  }
}
