// The project's one way to replace a file: a fresh temp file beside the target (same filesystem, so
// the rename is atomic), written whole, then renamed over the target. A reader sees the old file or
// the new one, never a part, and nothing is ever written through what was at the target or the temp
// path (a link someone planted there is replaced, not followed). Images, state files and installed
// helpers are all written here; callers turn a failure into their own message.
import {
  chmodSync,
  closeSync,
  fsyncSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeSync,
} from 'node:fs'
import path from 'node:path'

/** Temp files are named after their target and the writer's pid, so a later run can recognize leftovers. */
export const TEMP_MARK = '.kheadersfs-tmp-'

export function tempPathFor(target: string, pid: number = process.pid): string {
  return path.join(path.dirname(target), `.${path.basename(target)}${TEMP_MARK}${pid}`)
}

export interface AtomicWriteOptions {
  /** The new file's mode; the umask applies unless `exactMode`. */
  mode: number
  /** Set `mode` as given, whatever the umask (an installed 0755 script must stay executable). */
  exactMode?: boolean
  /** fsync the file before the rename and the directory after it: the new content survives a crash. */
  fsync?: boolean
}

/**
 * Replace `target` with `data` atomically. On failure the temp file is removed and the system error
 * is thrown as is. Synchronous, so no signal handler runs halfway: only kill -9 leaves a temp file
 * (removeStaleTemps).
 */
export function writeFileAtomic(target: string, data: string | Buffer, opts: AtomicWriteOptions): void {
  const tmp = tempPathFor(target)
  const bytes = typeof data === 'string' ? Buffer.from(data) : data
  let fd: number | undefined
  try {
    // A temp of this pid can only be a dead process's leftover (or planted): replaced, never opened.
    rmSync(tmp, { force: true })
    fd = openSync(tmp, 'wx', opts.mode)
    for (let off = 0; off < bytes.length;) off += writeSync(fd, bytes, off, bytes.length - off)
    if (opts.fsync) fsyncSync(fd)
    closeSync(fd)
    fd = undefined
    if (opts.exactMode) chmodSync(tmp, opts.mode)
    renameSync(tmp, target)
  } catch (e) {
    if (fd !== undefined) closeSync(fd)
    try {
      unlinkSync(tmp)
    } catch {
      // never created
    }
    throw e
  }
  if (!opts.fsync) return
  // Make the rename itself durable.
  try {
    const dfd = openSync(path.dirname(target), 'r')
    fsyncSync(dfd)
    closeSync(dfd)
  } catch {
    // some filesystems refuse fsync on directories; the data is already safe
  }
}

/** Remove temp files a killed earlier run (kill -9) left for this target. Returns their paths. */
export function removeStaleTemps(target: string): string[] {
  const dir = path.dirname(target)
  const prefix = `.${path.basename(target)}${TEMP_MARK}`
  const removed: string[] = []
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch {
    return removed
  }
  for (const name of names) {
    if (!name.startsWith(prefix)) continue
    const pid = Number(name.slice(prefix.length))
    if (Number.isInteger(pid) && pid !== process.pid && alive(pid)) continue // another writer's
    try {
      unlinkSync(path.join(dir, name))
      removed.push(path.join(dir, name))
    } catch {
      // gone already
    }
  }
  return removed
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}
