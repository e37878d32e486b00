// Reliability under load: many reader processes at once on the flat archive and on the kheaders/
// view, every byte checked against the image's own payloads (or GNU tar's extraction), the daemon's
// RSS measured before and after; and hundreds of mount/umount cycles on one mountpoint that must
// leave no mount, process, descriptor or state file behind.
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { sha256 } from '../../src/image/format'
import { runCli } from '../helpers/cli'
import { debianTree, packedImage, SKIP_NO_DEBIAN } from '../helpers/debian'
import { tinyImage } from '../helpers/images'
import { daemonPids, isMounted, mountDirs, mountImage } from '../helpers/mount'
import {
  daemonStats,
  fdCount,
  heapRss,
  logErrors,
  logText,
  MB,
  mb,
  peakOf,
  procsMentioning,
  rss,
  waitFor,
} from '../helpers/observe'
import { checkReaders, startWorker, sumResults } from '../helpers/readers'
import { imageParts, referenceTree } from '../helpers/reference-tree'
import { record, size } from '../helpers/stress'
import { tmpDir } from '../helpers/tmp'
import { treeMap } from '../helpers/tree-digest'

const tree = debianTree()

/** The daemon's highest RSS while `work` runs. */
async function peakRss(pid: number, work: Promise<unknown>): Promise<number> {
  return (await peakOf(pid, work)).rss
}

t.test(
  '64 concurrent readers × 50 whole reads of kheaders.txz, with random preads and stats',
  { skip: tree === undefined && SKIP_NO_DEBIAN },
  async (t) => {
    const image = await packedImage(tree!)
    const parts = imageParts(image)
    t.equal(
      sha256(parts.headers),
      parts.manifest.payloads['kheaders.tar.xz'].sha256,
      'the expected bytes are the manifest payload',
    )
    const ref = path.join(tmpDir(t), 'kheaders.txz')
    writeFileSync(ref, parts.headers)
    const m = await mountImage(t, image)
    const file = path.join(m.mnt, 'kheaders.txz')
    t.ok(readFileSync(file).equals(parts.headers), 'warm-up read')
    const rssStart = rss(m.pid)
    const opsBefore = (await daemonStats(m)).ops.read ?? 0

    // 16 processes × 4 concurrent loops (libuv's 4 threads issue them at once) = 64 readers; even loops
    // read with O_DIRECT, so half the reads reach the daemon whatever the page cache holds.
    const procs = size(16, 4)
    const concurrency = 4
    const rounds = size(50, 3)
    const preads = size(20, 5)
    const t0 = Date.now()
    const workers = Array.from({ length: procs }, (_, i) =>
      startWorker('flat', { file, ref, rounds, concurrency, preads, direct: 'mixed', seed: i + 1 }),
    )
    const all = Promise.all(workers.map((w) => w.result))
    const peak = await peakRss(m.pid, all)
    const results = await all
    const seconds = (Date.now() - t0) / 1000
    const rssEnd = rss(m.pid)
    const daemonReads = ((await daemonStats(m)).ops.read ?? 0) - opsBefore
    const sum = sumResults(results)
    const tried = procs * concurrency * rounds * (2 + preads)
    const done = sum.fullReads + sum.preads + sum.stats
    record({
      area: 'Load',
      name: `${procs * concurrency} concurrent readers (${procs} processes) × ${rounds} whole reads of kheaders.txz (${mb(parts.headers.length)}), ${preads} random preads and a stat after each`,
      tried,
      passed: done - sum.wrong,
      detail: `${sum.fullReads} whole reads (${sum.direct} O_DIRECT), ${sum.preads} preads, ${sum.stats} stats, ${(sum.bytes / 1e9).toFixed(1)} GB checked in ${seconds.toFixed(1)} s; ${daemonReads} reads served by the daemon; ${sum.wrong} mismatches; errors ${JSON.stringify(sum.errors)}; daemon RSS ${mb(rssStart)} → ${mb(rssEnd)} (peak ${mb(peak)})`,
    })
    checkReaders(t, results, sum)
    t.equal(done, tried, `all ${tried} checks ran`)
    t.ok(daemonReads > 0, `the daemon served ${daemonReads} reads`)
    t.ok(rssEnd <= rssStart + 16 * MB, `daemon RSS stays flat: ${mb(rssStart)} → ${mb(rssEnd)}`)
  },
)

t.test(
  'concurrent readers walking and reading all of kheaders/ with -o cache_mb=4, against GNU tar',
  { skip: tree === undefined && SKIP_NO_DEBIAN },
  async (t) => {
    const image = await packedImage(tree!)
    const dir = tmpDir(t)
    const refDir = referenceTree(imageParts(image), path.join(dir, 'ref'))
    const expected = treeMap(path.join(refDir, 'kheaders'))
    const expectedFile = path.join(dir, 'expected.json')
    writeFileSync(expectedFile, JSON.stringify(expected))
    const files = Object.values(expected).filter((v) => v.startsWith('f ')).length
    const m = await mountImage(t, image, ['--force', '-o', 'cache_mb=4'])
    const rssStart = rss(m.pid)
    const heapStart = heapRss(m.pid)

    // Each reader walks the whole tree (names, types, link targets) and reads every file from its own
    // starting point; 5% of the files again with O_DIRECT, so readers compete for the 4 MiB of cache.
    const procs = size(8, 2)
    const concurrency = 2
    const t0 = Date.now()
    const workers = Array.from({ length: procs }, (_, i) =>
      startWorker('view', {
        root: path.join(m.mnt, 'kheaders'),
        expected: expectedFile,
        passes: 1,
        concurrency,
        directFraction: 0.05,
        seed: i + 1,
      }),
    )
    const all = Promise.all(workers.map((w) => w.result))
    const peak = await peakRss(m.pid, all)
    const results = await all
    const seconds = (Date.now() - t0) / 1000
    const rssEnd = rss(m.pid)
    const stats = await daemonStats(m)
    const sum = sumResults(results)
    const readers = procs * concurrency
    const tried = readers * files
    const plain = sum.fullReads - sum.direct
    record({
      area: 'Load',
      name: `${readers} concurrent readers (${procs} processes) each walking kheaders/ and reading all ${files} files, -o cache_mb=4, vs GNU tar`,
      tried,
      passed: Math.max(0, plain - sum.wrong),
      detail: `${sum.fullReads} file reads (${sum.direct} O_DIRECT), ${sum.stats} entries walked, ${(sum.bytes / 1e9).toFixed(2)} GB in ${seconds.toFixed(1)} s; ${sum.wrong} mismatches; errors ${JSON.stringify(sum.errors)}; cache ${mb(stats.cache!.bytes)} of ${mb(stats.cache!.boundBytes)}, ${stats.cache!.decodes} decodes, ${stats.cache!.evictions} evictions; daemon RSS ${mb(rssStart)} → ${mb(rssEnd)} (peak ${mb(peak)})`,
    })
    checkReaders(t, results, sum)
    t.equal(plain, tried, `every reader read all ${files} files`)
    t.ok(stats.cache!.bytes <= stats.cache!.boundBytes, 'the cache stayed within its bound')
    t.ok(stats.cache!.evictions > 0, 'the readers made the cache evict')
    // kheadersfs(1): "the daemon's memory stays under the image size + this bound + a fixed overhead
    // (about 20 MB) however much is read". The image and the fixed part are in rssStart already, so
    // this reading of the bound is generous; "however much is read" makes it a bound on the peak.
    const bound = rssStart + stats.cache!.boundBytes + 20 * MB
    record({
      area: 'Load',
      name: "daemon memory under those readers within kheadersfs(1)'s bound (start + cache_mb + 20 MB)",
      tried: 1,
      passed: peak <= bound && rssEnd <= bound ? 1 : 0,
      detail: `RSS ${mb(rssStart)} at start, ${mb(rssEnd)} at the end, peak ${mb(peak)}, bound ${mb(bound)}; glibc [heap] ${mb(heapStart)} → ${mb(heapRss(m.pid))}`,
    })
    t.ok(
      rssEnd <= bound,
      `daemon RSS at the end within the documented bound (start + cache bound + 20 MB = ${mb(bound)}): ${mb(rssStart)} → ${mb(rssEnd)}`,
    )
    t.ok(peak <= bound, `daemon RSS peak within the documented bound (${mb(bound)}): peak ${mb(peak)}`)
  },
)

t.test('200 mount/umount cycles on one mountpoint leak no mount, process, descriptor or state file', async (t) => {
  const image = await tinyImage(t)
  const { mnt, runDir, env } = mountDirs(t)
  const cycles = size(200, 20)
  // umount(8), kheadersfs umount and fusermount -u in turn. The next mount does not wait for the old
  // daemon to exit: that race is part of the test.
  const ways: Array<[string, () => Promise<number | null>]> = [
    ['umount', async () => run(['umount', mnt])],
    ['kheadersfs umount', async () => (await runCli(['umount', mnt], { env })).code],
    ['fusermount -u', async () => run(['fusermount', '-u', mnt])],
  ]
  const fdsBefore = fdCount()
  const pids: number[] = []
  const failures: string[] = []
  let passed = 0
  const t0 = Date.now()
  for (let i = 0; i < cycles; i++) {
    const [how, unmount] = ways[i % ways.length]
    const r = await runCli(['mount', '--image', image, mnt], { env })
    let ok = r.code === 0
    if (!ok) failures.push(`cycle ${i}: mount exited ${r.code}: ${r.stderr.trim()}`)
    const pid = daemonPids(runDir).find((p) => !pids.includes(p))
    if (pid !== undefined) pids.push(pid)
    else if (ok) failures.push(`cycle ${i}: no new daemon pid in the run dir`)
    try {
      if (
        readFileSync(path.join(mnt, 'config.gz'))[0] !== 0x1f ||
        !statSync(path.join(mnt, 'kheaders', 'Makefile')).isFile()
      )
        throw new Error('wrong content')
    } catch (e) {
      ok = false
      failures.push(`cycle ${i}: not readable: ${(e as Error).message}`)
    }
    const code = await unmount()
    if (code !== 0 || isMounted(mnt)) {
      ok = false
      failures.push(`cycle ${i}: ${how} exited ${code}, mounted after: ${isMounted(mnt)}`)
      if (isMounted(mnt)) run(['umount', '-l', mnt])
    }
    if (ok) passed++
  }
  const seconds = (Date.now() - t0) / 1000
  // Every daemon must exit (a zombie counts as exited), and nothing may mention the mountpoint.
  const allGone = await waitFor(() => procsMentioning(mnt).length === 0, 10000)
  const leftProcs = procsMentioning(mnt)
  const leftMounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.split(' ')[4] === mnt)
  const fdsAfter = fdCount()
  const runFiles = readdirSync(runDir)
  const log = logText(runDir)
  const mountedLines = log.split('\n').filter((l) => l.includes('"msg":"mounted"')).length
  const exitedLines = log.split('\n').filter((l) => l.includes('"msg":"unmounted; exiting"')).length
  const errors = logErrors(runDir)
  const clean =
    allGone &&
    leftMounts.length === 0 &&
    fdsAfter === fdsBefore &&
    runFiles.every((f) => f.endsWith('.log')) &&
    runFiles.length <= 1
  record({
    area: 'Load',
    name: `${cycles} mount/umount cycles on one mountpoint (umount, kheadersfs umount, fusermount -u in turn; next mount without waiting)`,
    tried: cycles,
    passed: clean ? passed : Math.min(passed, cycles - 1),
    detail: `${seconds.toFixed(1)} s (${((seconds * 1000) / cycles).toFixed(0)} ms/cycle); ${pids.length} daemons, ${exitedLines} logged a clean exit; left: ${leftMounts.length} mounts, ${leftProcs.length} processes, fds ${fdsBefore} → ${fdsAfter}, run dir [${runFiles.join(', ')}]; ${errors.length} error log lines`,
  })
  t.same(failures.slice(0, 10), [], 'every cycle mounted, served and unmounted')
  t.equal(passed, cycles)
  t.equal(pids.length, cycles, 'one daemon per cycle')
  t.same(leftProcs, [], 'no daemon or helper left (no process mentions the mountpoint)')
  t.same(leftMounts, [], 'no mount left')
  t.equal(fdsAfter, fdsBefore, 'no descriptor leaked in the test process')
  t.same(
    runFiles,
    runFiles.length ? [runFiles.find((f) => f.endsWith('.log'))] : [],
    'the run dir holds only the log (no .json, no .pid)',
  )
  t.equal(mountedLines, cycles, 'the log shows every mount')
  t.equal(exitedLines, cycles, 'every daemon exited through its clean unmount path')
  t.same(errors, [], 'no error in the daemon log')
})

function run(argv: string[]): number | null {
  try {
    execFileSync(argv[0], argv.slice(1), { stdio: 'ignore' })
    return 0
  } catch (e) {
    return (e as { status: number | null }).status
  }
}
