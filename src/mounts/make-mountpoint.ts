// mount --mkdir and -o X-mount.mkdir[=MODE], as util-linux mount(8) has them: create a missing
// mountpoint and its missing parents ("mkdir -p"), and take them away again if the mount then fails,
// so a failed mount leaves nothing behind. As root the path is hostile (ARCHITECTURE §10): nothing is
// created where another user could redirect it (a link of theirs on the way) or change it (a
// directory they own or can write, except a root-owned sticky one such as /tmp).
import { chmodSync, lstatSync, mkdirSync, rmdirSync, statSync } from 'node:fs'
import path from 'node:path'
import { dirWritableByOthers } from '../commands/writable-by'
import { MountpointError, reason } from '../errors'
import { fsPath } from '../os-path'

const exists = (p: string): boolean => {
  try {
    lstatSync(fsPath(p))
    return true
  } catch (e) {
    // ENOTDIR: a file on the way, found and named below as the parent that is not a directory.
    const code = (e as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') return false
    throw new MountpointError(`Cannot create mountpoint ${p}: ${reason(e)}`)
  }
}

/**
 * Create `mountpoint` (absolute) and its missing parents with exactly `mode` (not masked by the
 * umask: other users must reach an allow_other mount). Returns the directories created, outermost
 * first, for removeMountpoint; none when it exists. As root (`asRoot`), refuse paths others control.
 */
export function makeMountpoint(mountpoint: string, mode: number, asRoot = process.geteuid?.() === 0): string[] {
  const missing: string[] = []
  let parent = mountpoint
  while (!exists(parent)) {
    missing.unshift(parent)
    parent = path.dirname(parent)
  }
  if (missing.length === 0) return []
  const fail = (why: string): never => {
    throw new MountpointError(`Cannot create mountpoint ${mountpoint}: ${why}`)
  }
  let st
  try {
    st = statSync(fsPath(parent))
  } catch (e) {
    return fail(reason(e))
  }
  if (!st.isDirectory()) fail(`${parent} is not a directory`)
  if (asRoot) {
    let why: string | undefined
    try {
      why = dirWritableByOthers(parent)
    } catch (e) {
      fail(reason(e))
    }
    if (why !== undefined)
      fail(`${why}, so another user could choose where root creates it; create it as that user, or mount elsewhere`)
  }
  const made: string[] = []
  for (const dir of missing) {
    try {
      mkdirSync(fsPath(dir), mode)
    } catch (e) {
      // Made meanwhile by someone else: use it only if it is a plain directory of ours.
      const raced = (e as NodeJS.ErrnoException).code === 'EEXIST' ? lstatSync(fsPath(dir)) : undefined
      if (raced?.isDirectory() && raced.uid === process.geteuid?.()) continue
      removeMountpoint(made)
      fail(raced === undefined ? reason(e) : `${dir} appeared meanwhile and is not a directory of ours`)
    }
    made.push(dir)
    chmodSync(fsPath(dir), mode)
  }
  return made
}

/** Remove what makeMountpoint created, innermost first; a directory someone filled meanwhile stays. */
function removeMountpoint(made: readonly string[]): void {
  for (const dir of [...made].reverse()) {
    try {
      rmdirSync(fsPath(dir))
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return // not empty: nor are its parents
    }
  }
}

/** `mounting`, after which what makeMountpoint created (`made`) is removed if it failed. */
export async function undoOnFailure<T>(made: readonly string[], mounting: Promise<T>): Promise<T> {
  try {
    return await mounting
  } catch (e) {
    removeMountpoint(made)
    throw e
  }
}
