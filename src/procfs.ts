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

/** A process's memory in bytes, from the kernel's counters in /proc/PID/status. */
export interface ProcessMemory {
  /** VmRSS: everything resident, the node binary's and libraries' file pages included. */
  rss: number
  /** RssAnon: the process's own heap and stacks (the image, the trees, the block cache). */
  anon: number
  /** RssFile: mapped file pages (node, its libraries); they stay in the page cache when it exits. */
  file: number
  /** RssShmem: shared memory (tmpfs, memfd). */
  shmem: number
  /** VmSwap: anonymous memory swapped out. */
  swap: number
}

/** `pid`'s memory, or undefined when it is gone or not ours to read. */
export function memoryOf(pid: number): ProcessMemory | undefined {
  let text: string
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8')
  } catch {
    return undefined
  }
  const kB = (field: string): number | undefined => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)
    return m ? Number(m[1]) * 1024 : undefined
  }
  const rss = kB('VmRSS')
  // A kernel thread or a zombie has no memory lines.
  if (rss === undefined) return undefined
  return {
    rss,
    anon: kB('RssAnon') ?? 0,
    file: kB('RssFile') ?? 0,
    shmem: kB('RssShmem') ?? 0,
    swap: kB('VmSwap') ?? 0,
  }
}

/**
 * What ending `pid` gives back to the system: its anonymous memory, resident or swapped. Its file
 * pages (node's binary and libraries) stay cached for the next program that maps them.
 */
export function freedByExit(m: ProcessMemory): number {
  return m.anon + m.swap
}

/** Resident memory of a process in bytes, from /proc/PID/status. */
export function rssBytes(pid: number): number | undefined {
  return memoryOf(pid)?.rss
}
