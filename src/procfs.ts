// What /proc says about a process: whether it runs, its systemd unit, its memory, and which processes
// hold files open under a mountpoint. Read by the CLI (status, umount's "in use") and by the daemon
// (the unit it runs in).
import { readFileSync, readdirSync, readlinkSync } from 'node:fs'
import { encodeOsPath } from './os-path'

/** Processes holding files open under `mountpoint` (what fuser -m reports), for "in use" messages. */
export function holders(mountpoint: string): Array<{ pid: number; command: string; files: number }> {
  const exact = encodeOsPath(mountpoint)
  const prefix = Buffer.concat([exact, Buffer.from(exact[exact.length - 1] === 0x2f ? '' : '/')])
  const out: Array<{ pid: number; command: string; files: number }> = []
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue
    let files = 0
    try {
      for (const fd of readdirSync(`/proc/${p}/fd`)) {
        try {
          const target = readlinkSync(`/proc/${p}/fd/${fd}`, { encoding: 'buffer' })
          if (
            target.equals(exact) ||
            (target.length > prefix.length && prefix.equals(target.subarray(0, prefix.length)))
          )
            files++
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

/** The systemd unit a process runs in (the last component of its cgroup path), if any. */
export function unitOf(pid: number): string | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/cgroup`, 'utf8')
    const line = /^0::(.*)$/m.exec(text)?.[1] ?? /^\d+:name=systemd:(.*)$/m.exec(text)?.[1]
    const last = line?.split('/').pop()
    return last && /^[^/]+\.(service|mount|scope)$/.test(last) ? last : undefined
  } catch {
    return undefined
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
