// Observing a mount's daemon and the system from a test: memory, descriptors, processes, the
// daemon's log lines and the figures it logs on SIGUSR1.
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import type { CacheStats } from '../../src/serve/block-cache'
import { rssBytes, running } from '../../src/procfs'

/** Resident set size of `pid` in bytes (VmRSS), or 0 when it is gone. */
export function rss(pid: number): number {
  return rssBytes(pid) ?? 0
}

/**
 * RSS of the glibc main-arena heap ([heap] in smaps) of `pid`, in bytes: where malloc'ed memory that is
 * never given back shows.
 */
export function heapRss(pid: number): number {
  try {
    const m = /\[heap\]\n(?:.*\n)*?Rss:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/smaps`, 'utf8'))
    return m ? Number(m[1]) * 1024 : 0
  } catch {
    return 0
  }
}

/** Threads of `pid` now (0 when it is gone). */
export function threads(pid: number): number {
  try {
    const m = /^Threads:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) : 0
  } catch {
    return 0
  }
}

/** Sample `pid`'s RSS and threads every `ms` until `work` settles; the highest values seen. */
export async function peakOf(pid: number, work: Promise<unknown>, ms = 100): Promise<{ rss: number; threads: number }> {
  const peak = { rss: rss(pid), threads: threads(pid) }
  let done = false
  work.then(
    () => (done = true),
    () => (done = true),
  )
  while (!done) {
    peak.rss = Math.max(peak.rss, rss(pid))
    peak.threads = Math.max(peak.threads, threads(pid))
    await new Promise((r) => setTimeout(r, ms))
  }
  peak.rss = Math.max(peak.rss, rss(pid))
  return peak
}

export const MB = 1e6
export const mb = (n: number): string => `${(n / MB).toFixed(1)} MB`

/** Open descriptors of this test process. */
export function fdCount(): number {
  return readdirSync('/proc/self/fd').length - 1 // minus the one readdir itself opened
}

/** Live processes (zombies excluded) other than this one whose command line contains `needle`. */
export function procsMentioning(needle: string): Array<{ pid: number; cmdline: string }> {
  const out: Array<{ pid: number; cmdline: string }> = []
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue
    try {
      const cmdline = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').join(' ').trim()
      if (cmdline.includes(needle) && running(Number(p))) out.push({ pid: Number(p), cmdline })
    } catch {
      // gone
    }
  }
  return out
}

/** Poll `cond` every `step` ms until it holds or `ms` passed; returns whether it held. */
export async function waitFor(cond: () => boolean | Promise<boolean>, ms = 10000, step = 10): Promise<boolean> {
  const deadline = Date.now() + ms
  for (;;) {
    if (await cond()) return true
    if (Date.now() > deadline) return false
    await new Promise((r) => setTimeout(r, step))
  }
}

/** The daemon's log file in a run directory (one per mountpoint). */
function logFile(runDir: string): string | undefined {
  try {
    const f = readdirSync(runDir).find((n) => n.endsWith('.log'))
    return f === undefined ? undefined : path.join(runDir, f)
  } catch {
    return undefined
  }
}

export function logText(runDir: string): string {
  const f = logFile(runDir)
  return f === undefined ? '' : readFileSync(f, 'utf8')
}

/** Log lines at error or fatal level (pino 50/60), and lines that are not JSON at all (a crash trace). */
export function logErrors(runDir: string): string[] {
  return logText(runDir)
    .split('\n')
    .filter((l) => l.trim() !== '')
    .filter((l) => {
      try {
        return (JSON.parse(l) as { level: number }).level >= 50
      } catch {
        return true
      }
    })
}

/**
 * The daemon's figures: SIGUSR1 makes it log one "stats" line (src/serve/daemon.ts: ops per operation,
 * block cache, RSS).
 */
export interface DaemonStats {
  /** Requests served by kind, by JavaScript and by the binding together. */
  ops: Record<string, number>
  /** The binding's own counts: requests in flight, and those it answered from the table itself. */
  requests?: { answered?: { lookup: number; getattr: number; read: number; readdir: number }; opens?: number }
  /** Absent when the mount serves no kheaders/ view (view=off). */
  cache?: CacheStats
  rssBytes: number
}

/** The stats of a mount that serves the kheaders/ view: the block cache's figures are there. */
export type ViewStats = DaemonStats & { cache: NonNullable<DaemonStats['cache']> }

/** The log file of daemon `pid`: the one its state file in `runDir` names, else the run directory's log. */
function daemonLog(m: { pid: number; runDir: string }): string | undefined {
  for (const f of readdirSync(m.runDir).filter((n) => n.endsWith('.json'))) {
    try {
      const s = JSON.parse(readFileSync(path.join(m.runDir, f), 'utf8')) as { pid: number; logFile?: string | null }
      if (s.pid === m.pid && s.logFile) return s.logFile
    } catch {
      // partial file
    }
  }
  return logFile(m.runDir)
}

/** Send SIGUSR1 to the daemon and return the "stats" line it logs next (needs log level info, the default). */
export async function daemonStats(m: { pid: number; runDir: string }): Promise<DaemonStats> {
  const file = daemonLog(m)
  if (file === undefined) throw new Error(`no log file for daemon ${m.pid} in ${m.runDir}`)
  const lines = (): string[] =>
    readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.includes('"msg":"stats"'))
  const before = lines().length
  process.kill(m.pid, 'SIGUSR1')
  const deadline = Date.now() + 5000
  for (;;) {
    const l = lines()
    if (l.length > before) return JSON.parse(l[l.length - 1]) as DaemonStats
    if (Date.now() > deadline)
      throw new Error(`daemon ${m.pid} logged no stats 5 s after SIGUSR1 (log level below info?)`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

/** daemonStats of a mount with the kheaders/ view (throws when the figures have no block cache). */
export async function viewStats(m: { pid: number; runDir: string }): Promise<ViewStats> {
  const s = await daemonStats(m)
  if (s.cache === undefined) throw new Error(`daemon ${m.pid} reports no block cache (view=off?)`)
  return s as ViewStats
}
