// What is mounted where, from /proc/self/mountinfo, and whether a kheadersfs mount is alive, stale
// (its daemon died: "Transport endpoint is not connected") or absent.
import { spawnSync } from 'node:child_process'
// fs's callback API, not fs/promises: that module loads ~10 more (readline's among them) into both
// processes of every mount.
import { readdir, readFileSync, readdirSync, readlinkSync } from 'node:fs'

export const FSTYPE = 'fuse.kheadersfs'

export interface MountEntry {
  id: number
  mountpoint: string
  fstype: string
  source: string
  options: string
  superOptions: string
}

/** mountinfo escapes space, tab, newline and backslash as \ooo. */
function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))
}

export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = []
  for (const line of text.split('\n')) {
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
  return parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'))
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
    readdir(mountpoint, (e) => resolve(e?.code === 'ENOTCONN' || e?.code === 'ECONNABORTED' ? 'stale' : 'live')),
  )
  try {
    return await Promise.race([probe, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * The environment for the tools whose messages are read below, in the C locale: a translated
 * util-linux says "das Ziel wird gerade benutzt", not "target is busy" (LANGUAGE would override
 * LC_ALL for gettext, except in the C locale; dropped anyway).
 */
function cLocale(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, LC_ALL: 'C' }
  delete env.LANGUAGE
  return env
}

/**
 * Unmount. `lazy` detaches at once (umount -l semantics); otherwise the kernel refuses while a file
 * is open and this returns 'busy'. fusermount serves root and the mount's owner alike.
 */
export function unmount(mountpoint: string, lazy: boolean): 'ok' | 'busy' | { error: string } {
  const env = cLocale()
  const r = spawnSync('fusermount', [lazy ? '-uz' : '-u', '--', mountpoint], { encoding: 'utf8', env })
  if (r.status === 0) return 'ok'
  const msg = `${r.stderr ?? ''}${r.error ? r.error.message : ''}`.trim()
  if (/busy/i.test(msg)) return 'busy'
  // fusermount refuses a mount it does not find in /etc/mtab terms; root can still umount(8) it.
  if (process.getuid?.() === 0) {
    const u = spawnSync('umount', lazy ? ['-l', mountpoint] : [mountpoint], { encoding: 'utf8', env })
    if (u.status === 0) return 'ok'
    if (/busy/i.test(u.stderr)) return 'busy'
    return { error: (u.stderr || msg).trim().split('\n')[0] }
  }
  return { error: msg.split('\n')[0] || `fusermount exited with ${r.status}` }
}

/** Processes holding files open under `mountpoint` (what fuser -m reports), for "in use" messages. */
export function holders(mountpoint: string): Array<{ pid: number; command: string; files: number }> {
  const prefix = mountpoint.endsWith('/') ? mountpoint : mountpoint + '/'
  const out: Array<{ pid: number; command: string; files: number }> = []
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue
    let files = 0
    try {
      for (const fd of readdirSync(`/proc/${p}/fd`)) {
        try {
          const target = readlinkSync(`/proc/${p}/fd/${fd}`)
          if (target === mountpoint || target.startsWith(prefix)) files++
        } catch {
          // fd closed meanwhile
        }
      }
    } catch {
      continue // process gone or not ours to read
    }
    if (files > 0 && Number(p) !== process.pid) {
      let command = '?'
      try {
        command = readFileSync(`/proc/${p}/comm`, 'utf8').trim()
      } catch {
        // gone
      }
      out.push({ pid: Number(p), command, files })
    }
  }
  return out
}

/** True while `pid` runs (a zombie has exited: PID 1 may take a moment to reap it). */
export function running(pid: number): boolean {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const state = st.slice(st.lastIndexOf(')') + 2, st.lastIndexOf(')') + 3)
    return state !== 'Z' && state !== 'X'
  } catch {
    return false
  }
}

/** Resident memory of a process in bytes, from /proc/PID/status. */
export function rssBytes(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) * 1024 : undefined
  } catch {
    return undefined
  }
}
