// Shared by the bench sections (bench.ts, view.ts, walks.ts): interleaved timing and medians, commands,
// cache dropping, process memory and its peak, formatting, the report's Section table, the workspace
// that cleanup undoes, and kheadersfs mount/umount helpers and image facts.
import { spawn, spawnSync, type SpawnSyncOptions } from 'node:child_process'
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { CLI } from '../helpers/cli'
import { running } from '../../src/procfs'
import { daemonPids, isMounted } from '../helpers/mount'
import { viewStats, type ViewStats } from '../helpers/observe'
import { DEFAULT_CACHE_MB } from '../../src/mounts/mount-options'

export const NODE = process.execPath

// ───────────────────────────── measuring ─────────────────────────────

export interface Stats {
  median: number
  min: number
  max: number
  samples: number[]
}

/** Milliseconds on a monotonic clock. */
export const now = (): number => Number(process.hrtime.bigint()) / 1e6

export function stats(samples: number[]): Stats {
  const s = [...samples].sort((a, b) => a - b)
  const mid = s.length >> 1
  const median = s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2
  return { median, min: s[0], max: s[s.length - 1], samples }
}

/** Let pending signal handlers run between runs (everything else here is synchronous). */
export const tick = (): Promise<void> => new Promise((r) => setImmediate(r))

/** Synchronous sleep, for polling loops that must not give timers a say in what they measure. */
export function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
}

export function time(fn: () => void): number {
  const t0 = now()
  fn()
  return now() - t0
}

export type Timed = () => void | number | Promise<void | number>

/** One timed call: its duration in ms, or the number it returns if it measures itself. */
async function sample(fn: Timed): Promise<number> {
  await tick()
  const t0 = now()
  const r = await fn()
  return typeof r === 'number' ? r : now() - t0
}

/** Run `fn` `runs` times and summarize (median, min, max) the durations. */
export async function measure(fn: Timed, runs: number): Promise<Stats> {
  const samples: number[] = []
  for (let i = 0; i < runs; i++) samples.push(await sample(fn))
  return stats(samples)
}

/**
 * `a` and `b` measured alternately in the order A B B A A B ..., so that drift on a noisy machine
 * (another job starting, CPU frequency) hits both sides alike.
 */
export async function compare(a: Timed, b: Timed, runs: number): Promise<[Stats, Stats]> {
  const sa: number[] = []
  const sb: number[] = []
  for (let i = 0; i < runs; i++) {
    if (i % 2 === 0) {
      sa.push(await sample(a))
      sb.push(await sample(b))
    } else {
      sb.push(await sample(b))
      sa.push(await sample(a))
    }
  }
  return [stats(sa), stats(sb)]
}

/** `xs` rotated by `i`, reversed on odd `i`: the order of round `i` of interleaved steps. */
export function rotate<T>(xs: T[], i: number): T[] {
  const r = [...xs.slice(i % xs.length), ...xs.slice(0, i % xs.length)]
  return i % 2 === 0 ? r : r.reverse()
}

/** Wait `ms` with the event loop running (a mount settling, a daemon's log line arriving). */
export const settle = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

// ───────────────────────────── commands ─────────────────────────────

/** Run a command to completion; throw with its stderr if it fails. */
export function run(cmd: string, args: string[], opts: SpawnSyncOptions = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20, ...opts })
  if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`)
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}: ${String(r.stderr ?? '').trim()}`)
  return String(r.stdout ?? '')
}

export const sh = (script: string, opts: SpawnSyncOptions = {}): string => run('sh', ['-c', script], opts)
export const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`

/** `cat FILE > /dev/null`, as a user would run it (stdout 'ignore' is /dev/null). */
export function cat(file: string): void {
  run('cat', [file], { stdio: ['ignore', 'ignore', 'pipe'] })
}

/** The same read without a process spawn: open, read to the end in 128 KiB chunks, close. */
export function readInProcess(file: string): number {
  const buf = Buffer.allocUnsafe(128 << 10)
  const fd = openSync(file, 'r')
  let total = 0
  try {
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0;) total += n
  } finally {
    closeSync(fd)
  }
  return total
}

export let canDropCaches = true

/** Empty the page cache, dentries and inodes, so the next read comes from the source. */
export function dropCaches(): void {
  spawnSync('sync')
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '3')
  } catch {
    canDropCaches = false
  }
}

/** How the report says caches were dropped. */
export const dropCachesHow = (): string =>
  canDropCaches ? '`sync; echo 3 > /proc/sys/vm/drop_caches`' : 'NOT dropped: not root'

export interface Memory {
  /** VmRSS = RssAnon (heap, buffers) + RssFile (mapped binaries and libraries) + RssShmem */
  rss: number
  anon: number
  file: number
}

export function memory(pid: number): Memory {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = (field: string): number => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)
    if (!m) throw new Error(`no ${field} for pid ${pid}`)
    return Number(m[1]) * 1024
  }
  return { rss: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile') }
}

/**
 * Reset the peak RSS of `pid` (VmHWM) to its current RSS: `echo 5 > /proc/PID/clear_refs`. False
 * when the file is not writable (not root), and the peak is then not measured.
 */
function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5')
    return true
  } catch {
    return false
  }
}

/** VmHWM: the peak RSS of `pid` since it started or since the last resetPeak. */
function peakRss(pid: number): number {
  const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (!m) throw new Error(`no VmHWM for pid ${pid}`)
  return Number(m[1]) * 1024
}

// ───────────────────────────── formatting ─────────────────────────────

export function fmtMs(ms: number): string {
  if (ms < 1) return `${(ms * 1000).toFixed(0)} µs`
  if (ms < 10) return `${ms.toFixed(2)} ms`
  if (ms < 1000) return `${ms.toFixed(1)} ms`
  return `${(ms / 1000).toFixed(2)} s`
}
export const fmtUs = (ms: number): string => `${(ms * 1000).toFixed(1)} µs`
export const fmtBytes = (n: number): string => `${n.toLocaleString('en-US')} B (${(n / 1e6).toFixed(2)} MB)`
export const fmtMB = (n: number): string => `${(n / 1e6).toFixed(1)} MB`
export const fmtMem = (m: Memory): string => `${fmtMB(m.rss)} (anon ${fmtMB(m.anon)} + file ${fmtMB(m.file)})`
export const fmtRate = (bytes: number, ms: number): string => `${(bytes / 1e3 / ms).toFixed(0)} MB/s`
export const fmtRatio = (r: number): string => `${r.toFixed(2)}×`
export const spread = (s: Stats, f: (n: number) => string = fmtMs): string => `${f(s.median)} (${f(s.min)}–${f(s.max)})`
/** A signed size in MB, "+9.7 MB"; NaN (a peak not measured) says why. */
export const plusMB = (n: number): string =>
  Number.isNaN(n) ? 'not measured (clear_refs not writable)' : `${n < 0 ? '−' : '+'}${fmtMB(Math.abs(n))}`

// ───────────────────────────── report ─────────────────────────────

export interface Target {
  text: string
  pass: boolean
}

export interface Row {
  measure: string
  ours: string
  baseline: string
  ratio?: string
  target?: Target
  how: string
}

export const atMost = (value: number, limit: number, text: string): Target => ({ text, pass: value <= limit })
export const atLeast = (value: number, limit: number, text: string): Target => ({ text, pass: value >= limit })

/**
 * One table of the report: rows of raw figures, ratio, target and PASS/MISS. `level` 3 makes it a
 * subsection; a section without rows prints only its intro, and `after` holds extra markdown (a
 * table of another shape) printed below the rows.
 */
export class Section {
  readonly rows: Row[] = []
  readonly after: string[] = []
  constructor(
    readonly title: string,
    readonly intro: string,
    readonly level = 2,
  ) {}

  add(row: Row): this {
    this.rows.push(row)
    process.stderr.write(
      `  ${row.target ? (row.target.pass ? 'PASS' : 'MISS') : '    '}  ${row.measure}: ${row.ours} | ${row.baseline}${row.ratio ? ` | ${row.ratio}` : ''}\n`,
    )
    return this
  }

  markdown(): string {
    const cell = (s: string): string => s.replace(/\|/g, '\\|')
    const table =
      this.rows.length === 0
        ? []
        : [
            '| Measure | kheadersfs | Baseline | Ratio | Target | Result | How measured |',
            '|---|---|---|---|---|---|---|',
            ...this.rows
              .map((r) =>
                [
                  r.measure,
                  r.ours,
                  r.baseline,
                  r.ratio ?? '—',
                  r.target?.text ?? '—',
                  r.target ? (r.target.pass ? 'PASS' : '**MISS**') : '—',
                  r.how,
                ]
                  .map(cell)
                  .join(' | '),
              )
              .map((l) => `| ${l} |`),
            '',
          ]
    return [
      `${'#'.repeat(this.level)} ${this.title}`,
      '',
      this.intro,
      '',
      ...table,
      ...this.after.flatMap((a) => [a, '']),
    ].join('\n')
  }
}

// ───────────────────────────── workspace and cleanup ─────────────────────────────

export interface Workspace {
  tmp: string // pack outputs and the merged tree (os.tmpdir())
  shm: string // tmpfs baselines and extraction targets (/dev/shm)
  base: string // mountpoint + run dir
  mnt: string
  runDir: string
  env: NodeJS.ProcessEnv
  /** The daemon we started last, for cleanup. */
  daemon?: number
  /** Mounts served by other programs (archivemount), with their pid once known, for cleanup. */
  foreign: Array<{ mnt: string; pid?: number }>
}

export function workspace(): Workspace {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'kheadersfs-bench-'))
  const shm = mkdtempSync(path.join(existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'kheadersfs-bench-'))
  const base = mkdtempSync(path.join(os.tmpdir(), 'kheadersfs-bench-mnt-'))
  const mnt = path.join(base, 'mnt')
  const runDir = path.join(base, 'run')
  mkdirSync(mnt)
  return {
    tmp,
    shm,
    base,
    mnt,
    runDir,
    env: { ...process.env, KHEADERSFS_RUN_DIR: runDir, KHEADERSFS_LOG_LEVEL: 'warn' },
    foreign: [],
  }
}

function killPid(pid: number | undefined): void {
  if (pid === undefined || !running(pid)) return
  try {
    process.kill(pid, 'SIGKILL')
  } catch {
    // gone meanwhile
  }
}

/** Undo everything: unmount, kill our daemons (by pid) if they survived, remove the directories. */
export function cleanup(ws: Workspace): void {
  if (isMounted(ws.mnt)) spawnSync('umount', [ws.mnt])
  killPid(ws.daemon)
  if (isMounted(ws.mnt)) spawnSync('umount', ['-l', ws.mnt])
  for (const f of ws.foreign) {
    if (isMounted(f.mnt)) spawnSync('fusermount', ['-u', f.mnt])
    killPid(f.pid)
    if (isMounted(f.mnt)) spawnSync('fusermount', ['-uz', f.mnt])
  }
  for (const d of [ws.tmp, ws.shm, ws.base]) rmSync(d, { recursive: true, force: true })
}

// ───────────────────────────── mounts ─────────────────────────────

export interface MountTimes {
  pid: number
  /** command start → `kheadersfs mount` returned */
  returned: number
  /** command start → first successful stat of MNT/kheaders.txz */
  firstStat: number
}

/** `kheadersfs mount --force --image IMAGE [-o OPTIONS] MNT`, then wait for a stat to succeed. */
export function mountImage(ws: Workspace, image: string, options?: string): MountTimes {
  const t0 = now()
  run(NODE, [CLI, 'mount', '--force', '--image', image, ...(options ? ['-o', options] : []), ws.mnt], { env: ws.env })
  const returned = now() - t0
  const file = path.join(ws.mnt, 'kheaders.txz')
  for (let i = 0; ; i++) {
    try {
      statSync(file)
      break
    } catch (e) {
      if (i > 5000) throw e
      sleep(1)
    }
  }
  const firstStat = now() - t0
  const pid = daemonPids(ws.runDir)[0]
  if (pid === undefined) throw new Error(`mounted, but no daemon state in ${ws.runDir}`)
  ws.daemon = pid
  return { pid, returned, firstStat }
}

export interface UmountTimes {
  /** the `umount` command alone */
  command: number
  /** `umount` start → daemon exited (a zombie counts) */
  exited: number
}

export function umountImage(ws: Workspace, pid: number): UmountTimes {
  const t0 = now()
  run('umount', [ws.mnt])
  const command = now() - t0
  while (running(pid)) {
    if (now() - t0 > 10_000)
      throw new Error(
        `daemon ${pid} still running 10 s after umount (${procState(pid)}; ${ws.mnt} ${isMounted(ws.mnt) ? 'still mounted' : 'unmounted'})`,
      )
    sleep(1)
  }
  return { command, exited: now() - t0 }
}

/** One cold run of some work through the view: its time, what the daemon decoded, its RSS peak over idle. */
export interface ColdRun {
  ms: number
  decodes: number
  /** VmHWM during the work − VmRSS just before it (NaN when clear_refs is not writable) */
  peakOverIdle: number
  idle: Memory
  /** VmRSS, RssAnon, RssFile right after the work */
  after: Memory
  stats: ViewStats
}

/**
 * `work` (which returns the milliseconds it took) timed cold through a fresh mount of `image` with
 * `-o cache_mb=cacheMb` (the default: mounted without the option): the mount 0.3 s old, caches dropped
 * and the RSS peak reset right before it, the daemon's stats right after. `then` runs on the same mount
 * before it goes (a warm run).
 */
export async function coldOnFreshMount(
  ws: Workspace,
  image: string,
  cacheMb: number,
  work: () => number,
  then?: () => void,
): Promise<ColdRun> {
  await tick()
  const m = mountImage(
    ws,
    image,
    cacheMb === DEFAULT_CACHE_MB ? 'log_level=info' : `cache_mb=${cacheMb},log_level=info`,
  )
  await settle(300)
  dropCaches()
  const idle = memory(m.pid)
  const reset = resetPeak(m.pid)
  const ms = work()
  const peak = reset ? peakRss(m.pid) : NaN
  const after = memory(m.pid)
  const st = await viewStats({ pid: m.pid, runDir: ws.runDir })
  then?.()
  umountImage(ws, m.pid)
  return { ms, decodes: st.cache.decodes, peakOverIdle: peak - idle.rss, idle, after, stats: st }
}

/** What a process is doing, for an error message: its state and kernel wait channel. */
function procState(pid: number): string {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const wchan = readFileSync(`/proc/${pid}/wchan`, 'utf8')
    return `state ${st.slice(st.lastIndexOf(')') + 2, st.lastIndexOf(')') + 3)}, wchan ${wchan || '0'}`
  } catch {
    return 'gone meanwhile'
  }
}

/** Processes whose command line mentions `needle` (ourselves excluded). */
export function processesMentioning(needle: string): number[] {
  const out: number[] = []
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue
    try {
      if (readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(needle)) out.push(Number(p))
    } catch {
      // gone
    }
  }
  return out
}

/** Memory of a node process that runs `code` and then waits, read after 1 s (a floor for the daemon). */
export async function idleNodeMemory(code: string): Promise<Memory> {
  const child = spawn(NODE, ['-e', `${code}; setTimeout(()=>{},10000)`], { stdio: 'ignore' })
  try {
    await new Promise((r) => setTimeout(r, 1000))
    return memory(child.pid!)
  } finally {
    child.kill('SIGKILL')
  }
}

// ───────────────────────────── images ─────────────────────────────

export const MiB = 2 ** 20
export const mib = (bytes: number): string => (bytes % MiB === 0 ? `${bytes / MiB} MiB` : `${bytes / 1024} KiB`)

/** The part of `kheadersfs info --json IMAGE` the bench reads. */
export interface Manifest {
  payloads: { 'kheaders.tar.xz': { size: number; uncompressedSize: number; blockSize?: number } }
  /** The archive's order (src/pack/build-order.ts), absent in images of format 1.1 and before. */
  layout?: { order: string }
}
export const info = (ws: Workspace, image: string): Manifest =>
  JSON.parse(run(NODE, [CLI, 'info', '--json', image], { env: ws.env })) as Manifest

/** Blocks of the image's kheaders.tar.xz. */
export const blocks = (m: Manifest): number =>
  Math.ceil(m.payloads['kheaders.tar.xz'].uncompressedSize / (m.payloads['kheaders.tar.xz'].blockSize ?? Infinity))
