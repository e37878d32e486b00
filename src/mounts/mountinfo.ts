// What is mounted where, from /proc/self/mountinfo, and whether a kheadersfs mount is alive, stale
// (its daemon died: "Transport endpoint is not connected") or absent. Paths are compared as the bytes
// they are (os-path.ts), so a mountpoint whose name is not UTF-8 is found like any other.
// fs's callback API, not fs/promises: that module loads ~10 more (readline's among them) into both
// processes of every mount.
import { readdir, readFileSync } from 'node:fs'
import { constants } from 'node:os'
import { decodeOsPath, encodeOsPath, fsPath } from '../os-path'
import { loadBinding } from '../native/binding'

export const FSTYPE = 'fuse.kheadersfs'

export interface MountEntry {
  id: number
  mountpoint: string
  fstype: string
  source: string
  options: string
  superOptions: string
}

/** mountinfo escapes space, tab, newline and backslash as \ooo; the rest are the path's own bytes. */
function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))
}

/** `text` as decodeOsPath gives it (bytes that are not UTF-8 kept), or the file's bytes. */
export function parseMountinfo(text: string | Buffer): MountEntry[] {
  const out: MountEntry[] = []
  for (const line of (typeof text === 'string' ? text : decodeOsPath(text)).split('\n')) {
    if (line === '') continue
    const f = line.split(' ')
    const dash = f.indexOf('-', 6)
    if (dash < 0 || f.length < dash + 4) continue
    out.push({
      id: Number(f[0]),
      mountpoint: unescape(f[4]),
      options: f[5],
      fstype: f[dash + 1],
      source: unescape(f[dash + 2]),
      superOptions: f[dash + 3],
    })
  }
  return out
}

export function mounts(): MountEntry[] {
  return parseMountinfo(readFileSync('/proc/self/mountinfo'))
}

export function kheadersMounts(): MountEntry[] {
  return mounts().filter((m) => m.fstype === FSTYPE)
}

/** The topmost kheadersfs mount at `mountpoint`, if any. */
export function findMount(mountpoint: string): MountEntry | undefined {
  return kheadersMounts()
    .filter((m) => m.mountpoint === mountpoint)
    .at(-1)
}

export type Health = 'live' | 'stale'

/**
 * A dead daemon's mount answers with ENOTCONN. Listing the root asks the daemon (stat alone may be
 * answered from the kernel's attribute cache). A daemon that does not answer within the timeout is
 * alive but busy, not stale.
 */
export async function health(mountpoint: string, timeoutMs = 2000): Promise<Health> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<Health>((resolve) => {
    timer = setTimeout(() => resolve('live'), timeoutMs)
    timer.unref()
  })
  const probe = new Promise<Health>((resolve) =>
    readdir(fsPath(mountpoint), (e) =>
      resolve(e?.code === 'ENOTCONN' || e?.code === 'ECONNABORTED' ? 'stale' : 'live'),
    ),
  )
  try {
    return await Promise.race([probe, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Unmount, with no shell and no process in between for root (umount2 on the path's bytes, never
 * following a link there), fusermount -u for other users. `lazy` detaches at once (umount -l);
 * otherwise the kernel refuses while a file is open and this returns 'busy'.
 */
export function unmount(mountpoint: string, lazy: boolean): 'ok' | 'busy' | { error: string } {
  const r = loadBinding().unmount(encodeOsPath(mountpoint), lazy)
  if (r.errno === 0) return 'ok'
  if (r.errno === constants.errno.EBUSY) return 'busy'
  if (r.errno === constants.errno.EINVAL) return { error: 'not mounted' }
  return { error: r.message.trim().split('\n')[0] || `error ${r.errno}` }
}
