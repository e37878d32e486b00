// Reader processes for the reliability suite (test/stress/): start them, talk to them, sum what
// they found. Each one is test/helpers/reader-process.ts run as a program, so it is a real OS process
// with its own descriptors and threads (libuv's pool issues the reads concurrently) that loads a mount
// through the kernel and checks every byte it gets.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import path from 'node:path'

/** The reader program: node READER flat|view|hammer|slow '<json args>' (see reader-process.ts). */
const READER = path.join(__dirname, 'reader-process.js')

export interface ReaderResult {
  /** Whole-file reads and their checks. */
  fullReads: number
  /** Positioned reads (and chunks of hammer/slow readers). */
  preads: number
  stats: number
  /** Checks that got wrong bytes, sizes or names (never acceptable). */
  wrong: number
  wrongDetail: string[]
  bytes: number
  /** Failed calls by errno code. */
  errors: Record<string, number>
  /** Reads issued with O_DIRECT (they reach the daemon whatever the page cache holds). */
  direct: number
  /**
   * Short reads whose bytes were right (hammer readers with `allowShort` only): a read split into
   * several FUSE requests returns what arrived before the connection was aborted, as POSIX allows.
   */
  short: number
}

export interface Worker {
  child: ChildProcessWithoutNullStreams
  /** Resolves with the next stdout line (protocol lines of hammer/slow readers). */
  line(): Promise<string>
  send(line: string): void
  /** The final JSON result (rejects if the process did not print one). */
  result: Promise<ReaderResult & { code: number | null; stderr: string }>
}

/** A result with nothing counted yet. */
export function emptyResult(): ReaderResult {
  return { fullReads: 0, preads: 0, stats: 0, wrong: 0, wrongDetail: [], bytes: 0, errors: {}, direct: 0, short: 0 }
}

/** Start a reader process (reader-process.ts) in `mode` with `args`, optionally as another user. */
export function startWorker(mode: string, args: object, opts: { user?: string } = {}): Worker {
  const argv = [process.execPath, READER, mode, JSON.stringify(args)]
  if (opts.user !== undefined) argv.unshift('runuser', '-u', opts.user, '--')
  const child = spawn(argv[0], argv.slice(1), { stdio: 'pipe', env: { ...process.env, UV_THREADPOOL_SIZE: '4' } })
  let out = ''
  let err = ''
  const lines: string[] = []
  const waiters: Array<(l: string) => void> = []
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString()
    for (let nl = out.indexOf('\n'); nl >= 0; nl = out.indexOf('\n')) {
      const l = out.slice(0, nl)
      out = out.slice(nl + 1)
      const w = waiters.shift()
      if (w) w(l)
      else lines.push(l)
    }
  })
  child.stderr.on('data', (d: Buffer) => (err += d.toString()))
  child.stdin.on('error', () => undefined)
  const closed = new Promise<number | null>((r) => child.on('close', (code) => r(code)))
  const result = closed.then((code) => {
    const last = [...lines, out].filter((l) => l.startsWith('{')).pop()
    if (last === undefined) throw new Error(`reader ${mode} exited ${code} without a result: ${err.slice(-2000)}`)
    return { ...(JSON.parse(last) as ReaderResult), code, stderr: err }
  })
  result.catch(() => undefined)
  return {
    child,
    line: () =>
      new Promise<string>((resolve, reject) => {
        const l = lines.shift()
        if (l !== undefined) return resolve(l)
        waiters.push(resolve)
        closed.then(
          () => reject(new Error(`reader ${mode} exited before printing a line: ${err.slice(-2000)}`)),
          () => undefined,
        )
      }),
    send: (l) => child.stdin.write(l + '\n'),
    result,
  }
}

/** Sum reader results. */
export function sumResults(rs: ReaderResult[]): ReaderResult {
  const out = emptyResult()
  for (const r of rs) {
    out.fullReads += r.fullReads
    out.preads += r.preads
    out.stats += r.stats
    out.wrong += r.wrong
    out.bytes += r.bytes
    out.direct += r.direct
    out.short += r.short ?? 0
    out.wrongDetail.push(...r.wrongDetail.slice(0, 5))
    for (const [k, v] of Object.entries(r.errors)) out.errors[k] = (out.errors[k] ?? 0) + v
  }
  return out
}

/** The assertions a test needs from its readers (tap's Test has these). */
interface Asserts {
  same(found: unknown, wanted: unknown, message: string): boolean
  equal(found: unknown, wanted: unknown, message: string): boolean
}

/** Every reader process exited 0, and together they saw no wrong byte and no failed call. */
export function checkReaders(t: Asserts, results: Array<{ code: number | null }>, sum: ReaderResult): void {
  t.same(
    results.map((r) => r.code),
    results.map(() => 0),
    'every reader process exited 0',
  )
  t.equal(sum.wrong, 0, `no mismatch ${JSON.stringify(sum.wrongDetail.slice(0, 5))}`)
  t.same(sum.errors, {}, 'no read failed')
}
