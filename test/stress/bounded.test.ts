// A root daemon no local user can hurt: whatever an unprivileged user does through the allow_other
// mount — thousands of directory and file handles held open and listed, huge listings, hundreds of
// parallel O_DIRECT readers, stat storms — the daemon's memory stays within the bound kheadersfs(1)
// documents (what it held when idle + the block cache + the blocks being decoded + a small fixed
// amount), its thread count does not grow with the readers, and root's reads still come first: a
// root read waits for the decodes already running, never for the flood queued behind them.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { chmodSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t, { type Test } from 'tap'
import { readImage, type Image } from '../../src/image/read'
import { runCli } from '../helpers/cli'
import { debianTree, packedImage, SKIP_NO_DEBIAN } from '../helpers/debian'
import { mountDirs, mountImage, type TestMount } from '../helpers/mount'
import { logErrors, logText, MB, mb, peakOf, rss, threads, viewStats, waitFor } from '../helpers/observe'
import { record, size } from '../helpers/stress'
import { tinyTree } from '../helpers/tiny-tree'
import { tmpDir } from '../helpers/tmp'

const tree = debianTree()
const NOBODY = 'nobody'
/** A second unprivileged user, whose reads must not wait behind nobody's flood. */
const SECOND = 'daemon'
const secondUid = Number(spawnSync('id', ['-u', SECOND], { encoding: 'utf8' }).stdout.trim())
/** Fixed memory allowed on top of the idle daemon, the cache and the blocks in flight (kheadersfs(1)). */
const SLACK = 16 * MB

/** A python3 program run as nobody; resolves with its stdout lines once it printed `until` (or exited). */
function asNobody(t: Test, script: string, args: string[]): { child: ChildProcess; out: Promise<string> } {
  const dir = tmpDir(t)
  chmodSync(dir, 0o755)
  const file = path.join(dir, 'p.py')
  writeFileSync(file, script, { mode: 0o644 })
  const child = spawn('runuser', ['-u', NOBODY, '--', 'python3', file, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
  t.teardown(() => child.kill('SIGKILL'))
  let out = ''
  let err = ''
  child.stdout.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr.on('data', (d: Buffer) => (err += d.toString()))
  return {
    child,
    out: new Promise((resolve, reject) =>
      child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`python exited ${code}: ${err}`)))),
    ),
  }
}

/**
 * Open `count` handles on `target` (directories: each listed to its end once; files: each read once),
 * print "held N", then hold them until stdin closes.
 */
const HOLD = String.raw`
import os, sys, resource
target, count, kind = sys.argv[1], int(sys.argv[2]), sys.argv[3]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 64), hard))
fds = []
entries = 0
for i in range(count):
    if kind == 'dir':
        fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY)
        entries += len(os.listdir(fd))
    else:
        fd = os.open(target, os.O_RDONLY)
        os.pread(fd, 4096, 0)
    fds.append(fd)
print("held", len(fds), entries, flush=True)
sys.stdin.read()
`

/** stat `count` missing and `count` existing names under `dir`, then print "done". */
const STATS = String.raw`
import os, sys
d, count = sys.argv[1], int(sys.argv[2])
names = os.listdir(d)
missing = 0
for i in range(count):
    try: os.stat(os.path.join(d, "no-such-%d.h" % i))
    except FileNotFoundError: missing += 1
    os.stat(os.path.join(d, names[i % len(names)]))
print("done", missing, flush=True)
`

/**
 * The flood: THREADS pthreads, each reading 128 KiB with O_DIRECT at random offsets of the given files
 * (the page cache never answers) for SECONDS; prints "reads errors".
 */
const FLOOD_C = String.raw`
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
static char **files; static int nfiles; static double until;
static long reads, errors; static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static double now(void) { struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts); return ts.tv_sec + ts.tv_nsec / 1e9; }
static void *run(void *arg) {
  unsigned seed = (unsigned) (long) arg; void *buf; long r = 0, e = 0;
  if (posix_memalign(&buf, 4096, 131072)) return NULL;
  while (now() < until) {
    int fd = open(files[rand_r(&seed) % nfiles], O_RDONLY | O_DIRECT);
    if (fd < 0) { e++; continue; }
    struct stat st; fstat(fd, &st);
    off_t off = st.st_size > 131072 ? ((off_t) rand_r(&seed) % (st.st_size / 4096)) * 4096 : 0;
    if (pread(fd, buf, 131072, off) < 0) e++; else r++;
    close(fd);
  }
  pthread_mutex_lock(&m); reads += r; errors += e; pthread_mutex_unlock(&m);
  return NULL;
}
int main(int argc, char **argv) {
  int n = atoi(argv[1]); until = now() + atof(argv[2]); files = argv + 3; nfiles = argc - 3;
  pthread_t *t = calloc(n, sizeof *t);
  for (int i = 0; i < n; i++) if (pthread_create(&t[i], NULL, run, (void *) (long) (i + 1))) { perror("pthread_create"); return 1; }
  printf("started %d\n", n); fflush(stdout);
  for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
  printf("%ld %ld\n", reads, errors);
  return 0;
}
`

/** Files of the archive at least 8 KiB long that lie in one xz block, by block. */
function filesByBlock(image: Image): Map<number, string[]> {
  const block = image.manifest.payloads['kheaders.tar.xz'].blockSize
  const out = new Map<number, string[]>()
  for (const f of image.manifest.files) {
    if (f.type !== 'file' || f.size < 8192) continue
    const first = Math.floor(f.offset / block)
    if (Math.floor((f.offset + f.size - 1) / block) !== first) continue
    out.set(first, [...(out.get(first) ?? []), f.path])
  }
  return out
}

t.test('held-open handles, huge listings and stat storms leave the daemon as it was', async (t) => {
  const dir = tmpDir(t)
  // A directory of 20,000 entries: the old binding copied each listing whole per open handle (~3 MB).
  const wide = Object.fromEntries(
    Array.from({ length: size(20_000, 20_000) }, (_, i) => [`include/wide/kheadersfs-entry-${i}.h`, '']),
  )
  // include/linux as large as Debian's (~700 entries), where the issue measured 0.06 MB per handle.
  const linux = Object.fromEntries(Array.from({ length: 700 }, (_, i) => [`include/linux/kh-header-${i}.h`, '']))
  const k = tinyTree(path.join(dir, 'tree'), { extra: { ...wide, ...linux } })
  const image = path.join(dir, 'wide.img')
  const r = await runCli(['pack', '--kernel', k, '--release', '6.9.0-wide', '-o', image], {
    env: { KHEADERSFS_LOG_LEVEL: 'warn' },
  })
  t.equal(r.code, 0, `pack: ${r.stderr}`)
  const m = await mountImage(t, image)
  const view = path.join(m.mnt, 'kheaders')
  // Idle: the view's table built and the load's garbage collected (serve/reclaim.ts, 0.5 s after ready).
  readdirSync(path.join(view, 'include'))
  await new Promise((r) => setTimeout(r, 1500))
  const idle = rss(m.pid)
  const idleThreads = threads(m.pid)
  const rows: string[] = []
  let passed = 0
  let tried = 0

  const hold = async (name: string, target: string, count: number, kind: 'dir' | 'file'): Promise<void> => {
    tried++
    const p = asNobody(t, HOLD, [target, String(count), kind])
    let held = ''
    p.child.stdout!.on('data', (d: Buffer) => (held += d.toString()))
    const ready = waitFor(() => held.includes('held'), 600_000, 50)
    const peak = await peakOf(m.pid, ready, 20)
    t.ok(await ready, `${name}: the reader opened them all`)
    const holding = rss(m.pid)
    p.child.stdin!.end()
    await p.out
    const ok = t.ok(
      peak.rss <= idle + SLACK,
      `${name}: daemon RSS peak ${mb(peak.rss)} within idle ${mb(idle)} + ${mb(SLACK)}`,
    )
    const threadsOk = t.ok(peak.threads <= idleThreads + 4, `${name}: threads ${idleThreads} → peak ${peak.threads}`)
    if (ok && threadsOk) passed++
    const [, n, entries] = held.trim().split(' ').map(Number)
    rows.push(
      `${name}: ${n} held${entries ? `, ${entries.toLocaleString('en')} entries listed` : ''}; RSS idle ${mb(idle)}, peak ${mb(peak.rss)}, while held ${mb(holding)}`,
    )
  }
  const handles = size(10_000, 10_000)
  await hold(
    `${handles} handles on kheaders/include/linux, each listed`,
    path.join(view, 'include/linux'),
    handles,
    'dir',
  )
  await hold(
    `500 handles on a directory of ${Object.keys(wide).length} entries, each listed`,
    path.join(view, 'include/wide'),
    500,
    'dir',
  )
  await hold(`${handles} open files of the view, each read`, path.join(view, 'include/linux/kernel.h'), handles, 'file')
  await hold(`${handles} open kheaders.txz, each read`, path.join(m.mnt, 'kheaders.txz'), handles, 'file')

  tried++
  const storm = asNobody(t, STATS, [path.join(view, 'include/wide'), String(size(50_000, 20_000))])
  const peak = await peakOf(m.pid, storm.out, 20)
  const out = await storm.out
  if (t.ok(peak.rss <= idle + SLACK, `stat storm: RSS peak ${mb(peak.rss)} within idle ${mb(idle)} + ${mb(SLACK)}`))
    passed++
  rows.push(`stat storm (${out.trim()}: missing names, and as many existing): RSS peak ${mb(peak.rss)}`)
  t.same(logErrors(m.runDir), [], 'no error in the daemon log')
  record({
    area: 'Bounded daemon',
    name: 'handles held open by nobody and listed, huge listings, stat storms: daemon memory within idle + 16 MB',
    tried,
    passed,
    detail: rows.join('; '),
  })
})

t.test(
  'hundreds of parallel O_DIRECT readers: fixed threads, bounded memory, root first',
  { skip: tree === undefined && SKIP_NO_DEBIAN },
  async (t) => {
    const file = await packedImage(tree!)
    const image = readImage(file)
    const blockSize = image.manifest.payloads['kheaders.tar.xz'].blockSize
    const byBlock = filesByBlock(image)
    const blocks = [...byBlock.keys()].sort((a, b) => a - b)
    t.ok(blocks.length >= 6, `${blocks.length} blocks hold whole files`)
    // root's and the second user's files lie in blocks nobody's flood never reads: their reads are misses.
    const [rootBlock, otherBlock, ...floodBlocks] = blocks
    const cacheMb = 4
    const m: TestMount = await mountImage(t, file, ['--force', '-o', `cache_mb=${cacheMb}`])
    const view = path.join(m.mnt, 'kheaders')
    const floodFiles = floodBlocks.flatMap((b) => byBlock.get(b)!.slice(0, 8)).map((p) => path.join(view, p))
    // Warm up: one decode starts libuv's thread pool, which the idle figures then include.
    readFileSync(floodFiles[0])
    await new Promise((r) => setTimeout(r, 1500))
    const tar = execFileSync('xz', ['-dc'], { input: image.headers, maxBuffer: 1 << 30 })
    const idle = rss(m.pid)
    const idleThreads = threads(m.pid)

    const dir = tmpDir(t)
    chmodSync(dir, 0o755)
    const bin = path.join(dir, 'flood')
    writeFileSync(`${bin}.c`, FLOOD_C)
    execFileSync('gcc', ['-O2', '-pthread', '-o', bin, `${bin}.c`])
    const readers = size(600, 400)
    const seconds = size(20, 8)
    const flood = spawn('runuser', ['-u', NOBODY, '--', bin, String(readers), String(seconds), ...floodFiles], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    t.teardown(() => flood.kill('SIGKILL'))
    let floodOut = ''
    flood.stdout.on('data', (d: Buffer) => (floodOut += d.toString()))
    const floodDone = new Promise<number | null>((r) => flood.on('close', r))
    const peak = peakOf(m.pid, floodDone, 20)
    await waitFor(() => floodOut.includes('started'), 30_000)
    await new Promise((r) => setTimeout(r, 2000)) // let the flood fill the queue

    /** A cold read by `user` (undefined: root) during the flood: its bytes, wall time and the decodes it waited for. */
    const coldRead = async (rel: string, user?: string): Promise<{ ok: boolean; ms: number; decodes: number }> => {
      const before = await viewStats(m)
      const t0 = process.hrtime.bigint()
      const got =
        user === undefined
          ? readFileSync(path.join(view, rel))
          : Buffer.from(
              spawnSync('runuser', ['-u', user, '--', 'cat', path.join(view, rel)], { maxBuffer: 1 << 26 }).stdout,
            )
      const ms = Number(process.hrtime.bigint() - t0) / 1e6
      const after = await viewStats(m)
      const f = image.manifest.files.find((x) => x.path === rel)!
      const want = tar.subarray(f.offset, f.offset + f.size)
      return { ok: got.equals(want), ms, decodes: after.cache.queue.started - before.cache.queue.started }
    }
    const rootRel = byBlock.get(rootBlock)![0]
    const otherRel = byBlock.get(otherBlock)![0]
    const root = await coldRead(rootRel)
    const other = await coldRead(otherRel, SECOND)
    const stats = await viewStats(m)
    const floodCode = await floodDone
    const p = await peak
    const [reads, errors] = floodOut.trim().split('\n').pop()!.split(' ').map(Number)

    t.equal(floodCode, 0, 'the flood ran')
    t.equal(errors, 0, `no flood read failed (${reads} reads)`)
    const checks = [
      t.ok(root.ok, `root's read of ${rootRel} got the right bytes`),
      t.ok(other.ok, `a second user's read of ${otherRel} got the right bytes`),
      t.ok(
        p.threads <= idleThreads + 2,
        `daemon threads ${idleThreads} idle, ${p.threads} at most with ${readers} readers`,
      ),
      t.ok(
        p.rss <= idle + cacheMb * 2 ** 20 + 2 * blockSize + SLACK,
        `RSS peak ${mb(p.rss)} within idle ${mb(idle)} + cache ${cacheMb} MiB + 2 blocks + ${mb(SLACK)}`,
      ),
      // Counted by the queue itself (no timing): root's decode starts at the next free decoder, so no
      // other user's decode starts while it waits; the second user's waits for at most nobody's turn
      // (and the other decoder's). A FIFO would make both wait behind the whole flood.
      t.equal(stats.cache.queue.rootOvertaken, 0, 'no decode of another user started while root waited'),
      t.equal(stats.cache.queue.waitedBehind[0] ?? 0, 0, "root's decodes waited behind no one else's"),
      t.ok(
        (stats.cache.queue.waitedBehind[secondUid] ?? 0) <= 2,
        `the second user's decodes waited behind at most 2 others (${stats.cache.queue.waitedBehind[secondUid] ?? 0})`,
      ),
    ]
    t.same(logErrors(m.runDir), [], 'no error in the daemon log')
    t.notMatch(logText(m.runDir), /check \(crc64\) mismatch/, 'no block check failed')
    record({
      area: 'Bounded daemon',
      name: `${readers} parallel O_DIRECT readers (nobody) on cold blocks for ${seconds} s, cache_mb=${cacheMb}, while root and a second user read`,
      tried: checks.length,
      passed: checks.filter(Boolean).length,
      detail: `${reads} flood reads; daemon threads ${idleThreads} → peak ${p.threads}; RSS idle ${mb(idle)} → peak ${mb(p.rss)}; root's cold read ${root.ms.toFixed(0)} ms (${root.decodes} decodes in the daemon meanwhile), the second user's ${other.ms.toFixed(0)} ms (${other.decodes}); decodes queued at most ${stats.cache.queue.peakQueued}; waited behind others' decodes: root ${stats.cache.queue.waitedBehind[0] ?? 0}, the second user ${stats.cache.queue.waitedBehind[secondUid] ?? 0}, nobody ${stats.cache.queue.waitedBehind[65534] ?? 0}`,
    })
  },
)

t.test('a cache that cannot hold one xz block is refused (or, by default, raised)', async (t) => {
  const dir = tmpDir(t)
  const k = tinyTree(path.join(dir, 'tree'))
  const image = path.join(dir, 'big-blocks.img')
  const r = await runCli(['pack', '--kernel', k, '--release', '6.9.0-blocks', '--block-size', '16M', '-o', image], {
    env: { KHEADERSFS_LOG_LEVEL: 'warn' },
  })
  t.equal(r.code, 0, r.stderr)
  const { mnt, env } = mountDirs(t)
  const refused = await runCli(['mount', '--image', image, '--force', '-o', 'cache_mb=4', mnt], { env })
  t.equal(refused.code, 2, 'exit 2')
  t.match(refused.stderr, /cache_mb=4 .*xz blocks are 16 MiB.*give cache_mb=16 or more/)
  const m = await mountImage(t, image)
  t.match(logText(m.runDir), /raised to 16 MiB/, 'the default cache is raised to one block, and the log says so')
  record({
    area: 'Bounded daemon',
    name: 'cache_mb below one xz block (16 MiB blocks)',
    tried: 2,
    passed: Number(refused.code === 2) + Number(/raised to 16 MiB/.test(logText(m.runDir))),
    detail: 'cache_mb=4 refused with exit 2 and the size to give; the default 8 MiB raised to 16 MiB',
  })
})
