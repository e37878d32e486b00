// Paths as the kernel tree's own system sees them. A tree installed in another root file system (a
// board's root, an SDK sysroot) names absolute paths of that system: Debian's stub Makefile includes
// /usr/src/linux-headers-<ver>-common/Makefile, a link may point at /usr/lib/linux-kbuild-<ver>.
// With a sysroot, such paths are looked up inside it, the way chroot(2) would, so a file of the
// packing machine is never read instead. Without one, this is realpath(3).
import { lstatSync, readlinkSync, realpathSync } from 'node:fs'
import path from 'node:path'

/** Links followed in one lookup before giving up, as the kernel's MAXSYMLINKS. */
const MAX_LINKS = 40

class LoopError extends Error {
  readonly code = 'ELOOP'
}

/**
 * The real path of `p` (a path of this machine). With `root`, an absolute link target inside the
 * tree means root + target, and `..` never climbs above root once the lookup is inside it.
 * Throws what lstat throws (ENOENT, EACCES…), or a LoopError.
 */
export function realpathIn(p: string, root: string | undefined): string {
  if (root === undefined) return realpathSync(p)
  const top = realpathSync(root)
  const abs = path.resolve(p)
  let cur: string
  let floor: string
  let todo: string[]
  if (abs === top || abs.startsWith(top + path.sep)) {
    cur = top
    floor = top
    todo = parts(abs.slice(top.length))
  } else {
    // Outside the root (an SDK build tree beside its sysroot): this machine's own path up to here.
    cur = '/'
    floor = '/'
    todo = parts(abs)
  }
  let links = 0
  while (todo.length > 0) {
    const name = todo.shift()!
    if (name === '.' || name === '') continue
    if (name === '..') {
      if (cur !== floor) cur = path.dirname(cur)
      continue
    }
    const next = path.join(cur, name)
    if (!lstatSync(next).isSymbolicLink()) {
      cur = next
      continue
    }
    if (++links > MAX_LINKS) throw new LoopError(`too many levels of symbolic links at ${next}`)
    const target = readlinkSync(next)
    if (path.isAbsolute(target)) {
      cur = top
      floor = top
    }
    todo = [...parts(target), ...todo]
  }
  return cur
}

/** An absolute path named by the tree (a stub Makefile's include), as the tree's system sees it. */
export function namedPath(named: string, root: string | undefined): string {
  return root === undefined ? named : path.join(realpathSync(root), named)
}

function parts(p: string): string[] {
  return p.split('/').filter((s) => s !== '')
}
