// Helpers for the reliability suite (test/stress/): what a mount and its daemon hold (RSS, fds,
// processes, log lines), the expected bytes of an image, and reader processes that load a mount
// through the kernel and check every byte they get.
//
// The readers are this same file run as a program, so they are real OS processes with their own
// descriptors and threads (libuv's pool issues the reads concurrently):
//   node dist/test/helpers/stress-mount.js flat|view|hammer|slow '<json args>'
// Each prints one JSON result line last (and, for hammer and slow, protocol lines before it).
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { createHash } from 'node:crypto'
import { constants, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs'
import { open, readdir, readlink, stat, type FileHandle } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { parseImage, type Image } from '../../src/image/read'
import { alive, childPids, waitGone } from './mount'

export const SELF = __filename

// ---------------------------------------------------------------------------------------------
// Observing the system

/** Resident set size of `pid` in bytes (VmRSS), or 0 when it is gone. */
export function rss(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) * 1024 : 0
  } catch {
    return 0
  }
}

/** RSS of the glibc main-arena heap ([heap] in smaps) of `pid`, in bytes: where malloc'ed memory that is never given back shows. */
export function heapRss(pid: number): number {
  try {
    const m = /\[heap\]\n(?:.*\n)*?Rss:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/smaps`, 'utf8'))
    return m ? Number(m[1]) * 1024 : 0
  } catch {
    return 0
  }
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
      if (cmdline.includes(needle) && alive(Number(p))) out.push({ pid: Number(p), cmdline })
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
export function logFile(runDir: string): string | undefined {
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
 * kill -9 of the daemon and of its children (libfuse's fusermount auto_unmount helper, the findmnt
 * watcher), so nothing removes the mount: a real stale mount. With `children: false` only the daemon
 * dies and libfuse's helper unmounts.
 */
export async function killDaemon(pid: number, children = true): Promise<string[]> {
  const kids = children ? childPids(pid) : []
  const names = kids.map((c) => {
    try {
      return readFileSync(`/proc/${c}/comm`, 'utf8').trim()
    } catch {
      return '?'
    }
  })
  for (const c of kids) kill(c)
  kill(pid)
  await waitGone(pid)
  for (const c of kids) await waitGone(c)
  return names
}

function kill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL')
  } catch {
    // already gone
  }
}

/** errno code of a failing call, or undefined if it succeeded. */
export function errnoOf(fn: () => unknown): string | undefined {
  try {
    fn()
    return undefined
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? String(e)
  }
}

// ---------------------------------------------------------------------------------------------
// Expected bytes

export function sha256(b: Buffer | string): string {
  return createHash('sha256').update(b).digest('hex')
}

/** The image's payloads and manifest, verified by the product's own parser. */
export function imageParts(image: string): Image {
  return parseImage(readFileSync(image), image)
}

/**
 * The reference tree of a mount, made without kheadersfs: the flat payloads written out and GNU tar's
 * extraction of kheaders.tar.xz under kheaders/, with the modes the mount promises (files 0444,
 * directories 0555). `dir` must not exist.
 */
export function referenceTree(image: Image, dir: string): string {
  mkdirSync(path.join(dir, 'kheaders'), { recursive: true })
  const txz = path.join(dir, 'kheaders.txz')
  writeFileSync(txz, image.headers, { mode: 0o444 })
  writeFileSync(path.join(dir, 'kheaders.tar.xz'), image.headers, { mode: 0o444 })
  writeFileSync(path.join(dir, 'config.gz'), image.config, { mode: 0o444 })
  const r = spawnSync('tar', ['-xJf', txz, '-C', path.join(dir, 'kheaders')], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`tar -xJf failed: ${r.stderr}`)
  spawnSync('chmod', ['0555', dir, path.join(dir, 'kheaders')])
  return dir
}

/** rel path → "f <sha256>" for files, "d" for directories, "l <target>" for links, under `dir`. */
export function treeMap(dir: string): Record<string, string> {
  const out: Record<string, string> = {}
  const walk = (rel: string): void => {
    for (const e of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel === '' ? e.name : `${rel}/${e.name}`
      const full = path.join(dir, r)
      if (e.isSymbolicLink()) out[r] = `l ${readlinkSync(full)}`
      else if (e.isDirectory()) {
        out[r] = 'd'
        walk(r)
      } else out[r] = `f ${sha256(readFileSync(full))}`
    }
  }
  walk('')
  return out
}

// ---------------------------------------------------------------------------------------------
// xattr and negative-offset syscalls, which Node's fs cannot make: one perl process per batch
// (perl is installed by .ci/setup; its syscall() reaches the kernel directly).

const SYSCALLS: Record<string, Record<string, number>> = {
  x64: { setxattr: 188, lsetxattr: 189, getxattr: 191, listxattr: 194, removexattr: 197, pread64: 17 },
  arm64: { setxattr: 5, lsetxattr: 6, getxattr: 8, listxattr: 11, removexattr: 14, pread64: 67 },
}

export const HAVE_RAW_SYSCALLS = SYSCALLS[os.arch()] !== undefined

export interface RawOp {
  op: 'setxattr' | 'lsetxattr' | 'getxattr' | 'listxattr' | 'removexattr' | 'pread'
  path: Buffer
  name?: string
  value?: string
  /** pread only: offset (may be negative) and length. */
  offset?: number
  length?: number
}

const PERL = String.raw`
use strict; use Errno;
my %nr = map { split /=/ } split /,/, $ARGV[0];
sub en { my $r = shift; return "ok $r" if $r >= 0; for my $k (sort keys %!) { next if $k eq 'ENOTSUP' || $k eq 'EWOULDBLOCK' || $k eq 'EDEADLOCK'; return "err $k" if $!{$k} } return "err ?" }
while (my $line = <STDIN>) {
  chomp $line; my ($op, $p, $n, $v, $off, $len) = split /\t/, $line, -1;
  $p = pack("H*", $p); $n = pack("H*", $n); $v = pack("H*", $v);
  my $r;
  if ($op eq 'pread') {
    if (!open(my $f, '<', $p)) { print en(-1), "\n"; next } else {
      my $buf = "\0" x $len; $r = syscall($nr{pread64}, fileno($f), $buf, $len + 0, $off + 0);
      print en($r), ($r > 0 ? " " . unpack("H*", substr($buf, 0, $r)) : ""), "\n"; close $f; next }
  } elsif ($op eq 'setxattr' || $op eq 'lsetxattr') { $r = syscall($nr{$op}, $p, $n, $v, length($v), 0) }
  elsif ($op eq 'getxattr') { my $buf = "\0" x 256; $r = syscall($nr{getxattr}, $p, $n, $buf, 256) }
  elsif ($op eq 'listxattr') { my $buf = "\0" x 4096; $r = syscall($nr{listxattr}, $p, $buf, 4096) }
  elsif ($op eq 'removexattr') { $r = syscall($nr{removexattr}, $p, $n) }
  print en($r), "\n";
}`

/** Run raw syscalls in one perl process (as `user` if given); each answer is "ok N [hex bytes]" or "err ECODE". */
export function rawSyscalls(ops: RawOp[], user?: string): string[] {
  const nr = SYSCALLS[os.arch()]
  if (nr === undefined || ops.length === 0) return ops.map(() => 'skipped')
  const hex = (s: string | Buffer | undefined): string => Buffer.from(s ?? '').toString('hex')
  const input = ops.map((o) => [o.op, hex(o.path), hex(o.name), hex(o.value), String(o.offset ?? 0), String(o.length ?? 0)].join('\t')).join('\n') + '\n'
  const perl = ['perl', '-e', PERL, Object.entries(nr).map(([k, v]) => `${k}=${v}`).join(',')]
  const argv = user === undefined ? perl : ['runuser', '-u', user, '--', ...perl]
  const r = spawnSync(argv[0], argv.slice(1), { input, encoding: 'utf8', maxBuffer: 256 * 2 ** 20 })
  if (r.status !== 0) throw new Error(`perl syscalls failed: ${r.stderr}`)
  const lines = r.stdout.split('\n').filter((l) => l !== '')
  if (lines.length !== ops.length) throw new Error(`perl answered ${lines.length} of ${ops.length} syscalls: ${r.stderr}`)
  return lines
}

// ---------------------------------------------------------------------------------------------
// Reader processes

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

/** Start a reader process (this file as a program) in `mode` with `args`, optionally as another user. */
export function startWorker(mode: string, args: object, opts: { user?: string } = {}): Worker {
  const argv = [SELF, mode, JSON.stringify(args)]
  const child = (
    opts.user === undefined
      ? spawn(process.execPath, argv, { stdio: 'pipe', env: { ...process.env, UV_THREADPOOL_SIZE: '4' } })
      : spawn('runuser', ['-u', opts.user, '--', process.execPath, ...argv], { stdio: 'pipe', env: { ...process.env, UV_THREADPOOL_SIZE: '4' } })
  ) as ChildProcessWithoutNullStreams
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
        closed.then(() => reject(new Error(`reader ${mode} exited before printing a line: ${err.slice(-2000)}`)), () => undefined)
      }),
    send: (l) => child.stdin.write(l + '\n'),
    result,
  }
}

/** Sum reader results. */
export function sumResults(rs: ReaderResult[]): ReaderResult {
  const out: ReaderResult = { fullReads: 0, preads: 0, stats: 0, wrong: 0, wrongDetail: [], bytes: 0, errors: {}, direct: 0, short: 0 }
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

// --- the reader programs ---

function newResult(): ReaderResult {
  return { fullReads: 0, preads: 0, stats: 0, wrong: 0, wrongDetail: [], bytes: 0, errors: {}, direct: 0, short: 0 }
}

function wrong(r: ReaderResult, what: string): void {
  r.wrong++
  if (r.wrongDetail.length < 20) r.wrongDetail.push(what)
}

function failed(r: ReaderResult, e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message
  r.errors[code] = (r.errors[code] ?? 0) + 1
  return code
}

/** A small seeded PRNG (mulberry32), so a run can be repeated. */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const O_DIRECT = constants.O_DIRECT ?? 0
const CHUNKS = [4096, 65536, 131072, 2 ** 20]
const LENGTHS = [1, 4096, 65536, 131072, 2 ** 20 + 3]

/** Read a whole file through `fh` in chunks of `chunk`, hashing as it goes. */
async function readAll(fh: FileHandle, chunk: number): Promise<{ hash: string; size: number }> {
  const h = createHash('sha256')
  const buf = Buffer.alloc(chunk)
  let size = 0
  for (;;) {
    const { bytesRead } = await fh.read(buf, 0, chunk, size)
    if (bytesRead === 0) break
    h.update(buf.subarray(0, bytesRead))
    size += bytesRead
  }
  return { hash: h.digest('hex'), size }
}

/**
 * One positioned read at `pos`, checked against `want`. Returns false for a short read, which is
 * wrong unless `allowShort` (then only its bytes must be right).
 */
async function checkedPread(r: ReaderResult, fh: FileHandle, want: Buffer, pos: number, len: number, what: string, allowShort = false): Promise<boolean> {
  const buf = Buffer.alloc(len)
  const { bytesRead } = await fh.read(buf, 0, len, pos)
  r.preads++
  r.bytes += bytesRead
  const expect = want.subarray(Math.min(pos, want.length), Math.min(pos + len, want.length))
  const prefixOk = bytesRead <= expect.length && buf.subarray(0, bytesRead).equals(expect.subarray(0, bytesRead))
  if (prefixOk && bytesRead === expect.length) return true
  if (prefixOk && allowShort) {
    r.short++
    return false
  }
  wrong(r, `${what}: pread(${pos}, ${len}) gave ${bytesRead} bytes${prefixOk ? ' (right ones)' : ' that differ'}, not the expected ${expect.length}`)
  return false
}

/**
 * flat: `concurrency` loops, each `rounds` × (one whole read checked by sha256, `preads` random
 * positioned reads checked byte for byte, one stat). Loop i uses O_DIRECT when `direct` says so.
 */
async function flatReader(a: { file: string; ref: string; rounds: number; concurrency: number; preads: number; direct: 'on' | 'off' | 'mixed'; seed: number }): Promise<ReaderResult> {
  const r = newResult()
  const want = readFileSync(a.ref)
  const wantHash = sha256(want)
  const loop = async (i: number): Promise<void> => {
    const rand = prng(a.seed * 1000 + i)
    const direct = a.direct === 'on' || (a.direct === 'mixed' && i % 2 === 0)
    for (let round = 0; round < a.rounds; round++) {
      try {
        const fh = await open(a.file, constants.O_RDONLY | (direct ? O_DIRECT : 0))
        try {
          const got = await readAll(fh, CHUNKS[Math.floor(rand() * CHUNKS.length)])
          r.fullReads++
          if (direct) r.direct++
          r.bytes += got.size
          if (got.hash !== wantHash || got.size !== want.length) wrong(r, `${a.file}: whole read of ${got.size} bytes, sha256 ${got.hash}`)
          for (let k = 0; k < a.preads; k++) {
            const near = rand() < 0.2
            const pos = near ? Math.max(0, want.length - 2 + Math.floor(rand() * 4)) : Math.floor(rand() * (want.length + 4096))
            await checkedPread(r, fh, want, pos, LENGTHS[Math.floor(rand() * LENGTHS.length)], a.file)
          }
        } finally {
          await fh.close()
        }
        const st = await stat(a.file)
        r.stats++
        if (st.size !== want.length || (st.mode & 0o7777) !== 0o444 || !st.isFile()) wrong(r, `${a.file}: stat says size ${st.size} mode ${st.mode.toString(8)}`)
      } catch (e) {
        failed(r, e)
      }
    }
  }
  await Promise.all(Array.from({ length: a.concurrency }, (_, i) => loop(i)))
  return r
}

/** Walk `root` asynchronously: rel path → "d" | "f" | "l <target>". */
async function walk(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  const go = async (rel: string): Promise<void> => {
    const entries = await readdir(path.join(root, rel), { withFileTypes: true })
    for (const e of entries) {
      const r = rel === '' ? e.name : `${rel}/${e.name}`
      if (e.isSymbolicLink()) out[r] = `l ${await readlink(path.join(root, r))}`
      else if (e.isDirectory()) {
        out[r] = 'd'
        await go(r)
      } else out[r] = 'f'
    }
  }
  await go('')
  return out
}

/**
 * view: `concurrency` loops, each `passes` × (walk the tree, compare every name, type and link target
 * with `expected`, then read every file from a different starting point and compare its sha256;
 * a fraction `directFraction` of the files is read again with O_DIRECT, which always reaches the
 * daemon, whatever the page cache holds).
 */
async function viewReader(a: { root: string; expected: string; passes: number; concurrency: number; directFraction: number; seed: number }): Promise<ReaderResult> {
  const r = newResult()
  const expected = JSON.parse(readFileSync(a.expected, 'utf8')) as Record<string, string>
  const files = Object.keys(expected).filter((k) => expected[k].startsWith('f '))
  const loop = async (i: number): Promise<void> => {
    const rand = prng(a.seed * 1000 + i)
    for (let p = 0; p < a.passes; p++) {
      try {
        const seen = await walk(a.root)
        r.stats += Object.keys(seen).length
        for (const [k, v] of Object.entries(expected)) {
          const kind = v.startsWith('f ') ? 'f' : v
          if (seen[k] !== kind) wrong(r, `${k}: walk saw ${seen[k]}, expected ${kind}`)
        }
        for (const k of Object.keys(seen)) if (!(k in expected)) wrong(r, `${k}: not in the archive`)
      } catch (e) {
        failed(r, e)
      }
      const start = Math.floor(rand() * files.length)
      for (let n = 0; n < files.length; n++) {
        const rel = files[(start + n) % files.length]
        const want = expected[rel].slice(2)
        for (const direct of rand() < a.directFraction ? [false, true] : [false]) {
          try {
            const fh = await open(path.join(a.root, rel), constants.O_RDONLY | (direct ? O_DIRECT : 0))
            try {
              const got = await readAll(fh, 131072)
              r.fullReads++
              r.bytes += got.size
              if (direct) r.direct++
              if (got.hash !== want) wrong(r, `${rel}: sha256 ${got.hash}${direct ? ' (O_DIRECT)' : ''}`)
            } finally {
              await fh.close()
            }
          } catch (e) {
            failed(r, e)
          }
        }
      }
    }
  }
  await Promise.all(Array.from({ length: a.concurrency }, (_, i) => loop(i)))
  return r
}

/**
 * hammer: `concurrency` loops of random positioned reads of `files` (each with the path of its
 * expected bytes), O_DIRECT so every read reaches the daemon. Even loops keep their descriptors open,
 * odd loops reopen for every read. A loop stops at its first error, or when stdin closes. Prints
 * "ready" once every loop has done `warmup` reads. With `allowShort`, a short read with the right
 * bytes is counted apart (a killed daemon), not as wrong.
 */
async function hammerReader(a: { files: Array<{ path: string; ref: string }>; concurrency: number; warmup: number; direct: boolean; seed: number; allowShort?: boolean }): Promise<ReaderResult> {
  const r = newResult()
  const wants = a.files.map((f) => readFileSync(f.ref))
  let stop = false
  process.stdin.on('data', () => undefined)
  process.stdin.on('end', () => (stop = true))
  process.stdin.on('error', () => (stop = true))
  let warm = 0
  const flags = constants.O_RDONLY | (a.direct ? O_DIRECT : 0)
  const loop = async (i: number): Promise<void> => {
    const rand = prng(a.seed * 1000 + i)
    const keep = i % 2 === 0
    const fds = new Map<number, FileHandle>()
    let done = 0
    try {
      while (!stop) {
        const k = Math.floor(rand() * a.files.length)
        const want = wants[k]
        const pos = Math.floor(rand() * want.length)
        const len = LENGTHS[Math.floor(rand() * LENGTHS.length)]
        try {
          let fh = fds.get(k)
          if (fh === undefined) {
            fh = await open(a.files[k].path, flags)
            if (keep) fds.set(k, fh)
          }
          try {
            await checkedPread(r, fh, want, pos, len, a.files[k].path, a.allowShort)
            if (a.direct) r.direct++
          } finally {
            if (!keep) await fh.close()
          }
        } catch (e) {
          failed(r, e)
          return
        }
        if (++done === a.warmup && ++warm === a.concurrency) process.stdout.write('ready\n')
      }
    } finally {
      for (const fh of fds.values()) await fh.close().catch(() => undefined)
    }
  }
  await Promise.all(Array.from({ length: a.concurrency }, (_, i) => loop(i)))
  process.stdin.destroy()
  return r
}

/**
 * slow: open `file`, say "open", then read `chunk` bytes at a time, sequentially, each time stdin
 * sends a line with a number of chunks (or "rest"), saying "at POS" after each batch. Every byte is
 * checked against `ref`; at EOF it closes and prints the result.
 */
async function slowReader(a: { file: string; ref: string; chunk: number; direct: boolean }): Promise<ReaderResult> {
  const r = newResult()
  const want = readFileSync(a.ref)
  const fh = await open(a.file, constants.O_RDONLY | (a.direct ? O_DIRECT : 0))
  process.stdout.write('open\n')
  let pos = 0
  let buffered = ''
  const commands: string[] = []
  let wake: (() => void) | undefined
  let ended = false
  process.stdin.on('data', (d: Buffer) => {
    buffered += d.toString()
    for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
      commands.push(buffered.slice(0, nl))
      buffered = buffered.slice(nl + 1)
    }
    wake?.()
  })
  process.stdin.on('end', () => {
    ended = true
    wake?.()
  })
  try {
    for (;;) {
      while (commands.length === 0 && !ended) await new Promise<void>((res) => (wake = res))
      const c = commands.shift()
      if (c === undefined) break
      let n = c === 'rest' ? Infinity : Number(c)
      let eof = false
      while (n-- > 0) {
        const buf = Buffer.alloc(a.chunk)
        let got: number
        try {
          got = (await fh.read(buf, 0, a.chunk, pos)).bytesRead
        } catch (e) {
          failed(r, e)
          eof = true
          break
        }
        r.preads++
        if (a.direct) r.direct++
        r.bytes += got
        if (!buf.subarray(0, got).equals(want.subarray(pos, pos + a.chunk))) wrong(r, `${a.file}: ${got} bytes at ${pos} differ`)
        pos += got
        if (got === 0) {
          eof = true
          break
        }
      }
      process.stdout.write(`at ${pos}\n`)
      if (eof) break
    }
    r.fullReads = pos === want.length ? 1 : 0
    if (pos !== want.length && Object.keys(r.errors).length === 0) wrong(r, `${a.file}: ended at ${pos} of ${want.length}`)
  } finally {
    await fh.close()
  }
  process.stdin.destroy()
  return r
}

async function workerMain(mode: string, json: string): Promise<void> {
  const a = JSON.parse(json)
  const programs: Record<string, (a: any) => Promise<ReaderResult>> = { flat: flatReader, view: viewReader, hammer: hammerReader, slow: slowReader }
  const program = programs[mode]
  if (program === undefined) throw new Error(`unknown reader mode ${mode}`)
  const r = await program(a)
  process.stdout.write(JSON.stringify(r) + '\n')
  process.exitCode = r.wrong === 0 ? 0 : 1
}

if (require.main === module) {
  workerMain(process.argv[2], process.argv[3]).catch((e: unknown) => {
    process.stderr.write(`${(e as Error).stack ?? String(e)}\n`)
    process.exit(2)
  })
}
