// Faults: the daemon killed with -9 in the middle of heavy reads, the image file changed under a
// running mount, and unmounts while a reader sits in a long read. Readers may get an error, never
// wrong bytes; the next mount/umount cleans up; a detached daemon finishes its readers and exits 0.
import { execFileSync, spawn } from 'node:child_process'
import {
  closeSync,
  copyFileSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  statSync,
  truncateSync,
  unlinkSync,
  writeSync,
} from 'node:fs'
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import t, { type Test } from 'tap'
import { running } from '../../src/procfs'
import { CLI, runCli } from '../helpers/cli'
import { debianTree, packedImage } from '../helpers/debian'
import { errnoCode } from '../helpers/fs-errors'
import { tinyImage } from '../helpers/images'
import { cleanupMount, daemonPids, isMounted, killDaemon, mountDirs, mountImage, waitGone } from '../helpers/mount'
import { logErrors, logText, procsMentioning, waitFor } from '../helpers/observe'
import { startWorker, sumResults, type ReaderResult, type Worker } from '../helpers/readers'
import { imageParts, referenceTree } from '../helpers/reference-tree'
import { record, size } from '../helpers/stress'
import { tmpDir } from '../helpers/tmp'

const tree = debianTree()

/** The Debian module-build image when installed (many xz blocks), else the tiny one. */
async function testImage(t: Test): Promise<string> {
  return tree !== undefined ? packedImage(tree) : tinyImage(t)
}

interface Expected {
  image: string
  /** Reference copies: mount-relative path → file holding the expected bytes. */
  flat: Array<{ rel: string; ref: string }>
  view: Array<{ rel: string; ref: string }>
  /** The largest file of the view. */
  big: { rel: string; ref: string }
}

/** Reference bytes for the flat files and ~24 view files spread over the whole archive. */
function expected(t: Test, image: string): Expected {
  const parts = imageParts(image)
  const dir = referenceTree(parts, path.join(tmpDir(t), 'ref'))
  const files = parts.manifest.files.filter((f) => f.type === 'file' && f.size > 0).sort((a, b) => a.offset - b.offset)
  const step = Math.max(1, Math.floor(files.length / 24))
  const picked = files.filter((_, i) => i % step === 0)
  const big = files.reduce((a, b) => (b.size > a.size ? b : a))
  const v = (rel: string): { rel: string; ref: string } => ({
    rel: `kheaders/${rel}`,
    ref: path.join(dir, 'kheaders', rel),
  })
  return {
    image,
    flat: ['kheaders.txz', 'kheaders.tar.xz', 'config.gz'].map((rel) => ({ rel, ref: path.join(dir, rel) })),
    view: [...picked, big].map((f) => v(f.path)),
    big: v(big.path),
  }
}

const at = (mnt: string, list: Array<{ rel: string; ref: string }>): Array<{ path: string; ref: string }> =>
  list.map((f) => ({ path: path.join(mnt, f.rel), ref: f.ref }))

/** Resolve with `p`, or with 'timeout' after `ms` (a hang detector, not a timing check). */
function within<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), ms))),
  ])
}

/** Wait for a worker's next line to be `want`. */
async function expectLine(w: Worker, want: string): Promise<void> {
  const l = await within(w.line(), 120000)
  if (l !== want) throw new Error(`reader said ${JSON.stringify(l)}, expected ${JSON.stringify(want)}`)
}

/** Errors a reader may get from a killed daemon: the connection is gone, or (after the helper unmounted) the name. */
const KILL_ERRORS = new Set(['EIO', 'ENOTCONN', 'ECONNABORTED', 'ENOENT'])

/** Every byte of the flat files and of the view's big file, read once more, fresh. */
function freshReadsOk(mnt: string, e: Expected): boolean {
  return [...e.flat, e.big].every((f) => readFileSync(path.join(mnt, f.rel)).equals(readFileSync(f.ref)))
}

t.test(
  'kill -9 of the daemon during heavy reads: errors or right bytes, never wrong ones; the next mount/umount clean up',
  async (t) => {
    const e = expected(t, await testImage(t))
    const { mnt, runDir, env } = mountDirs(t)
    const rounds = size(8, 3)
    const fails: string[] = []
    const totals: ReaderResult[] = []
    const how: string[] = []
    let passed = 0
    for (let round = 0; round < rounds; round++) {
      const problems: string[] = []
      // Even rounds: daemon and its children killed (libfuse's fusermount auto_unmount helper too): a
      // real stale mount. Odd rounds: only the daemon, and the helper unmounts.
      const stale = round % 2 === 0
      try {
        const m = await runCli(['mount', '--image', e.image, '--force', mnt], { env })
        if (m.code !== 0) problems.push(`mount exited ${m.code}: ${m.stderr}`)
        const pid = daemonPids(runDir)[0]
        // O_DIRECT readers reach the daemon on every read; one page-cache reader may keep reading cached pages.
        const workers = [
          startWorker('hammer', {
            files: at(mnt, e.flat),
            concurrency: 4,
            warmup: 20,
            direct: true,
            seed: round * 10 + 1,
            allowShort: true,
          }),
          startWorker('hammer', {
            files: at(mnt, e.view),
            concurrency: 4,
            warmup: 20,
            direct: true,
            seed: round * 10 + 2,
            allowShort: true,
          }),
          startWorker('hammer', {
            files: at(mnt, [...e.flat, ...e.view]),
            concurrency: 4,
            warmup: 20,
            direct: true,
            seed: round * 10 + 3,
            allowShort: true,
          }),
          startWorker('hammer', {
            files: at(mnt, [...e.flat, ...e.view]),
            concurrency: 2,
            warmup: 20,
            direct: false,
            seed: round * 10 + 4,
            allowShort: true,
          }),
        ]
        for (const w of workers) await expectLine(w, 'ready')
        const killed = await killDaemon(pid, stale)
        how.push(stale ? `daemon + ${killed.join('+')}` : 'daemon only')
        // The O_DIRECT readers must end by themselves with an error; the page-cache one is told to stop.
        const direct = await within(Promise.all(workers.slice(0, 3).map((w) => w.result)), 60000)
        workers[3].child.stdin.end()
        if (direct === 'timeout') {
          problems.push('O_DIRECT readers still blocked 60 s after the kill (hang)')
          for (const w of workers) w.child.kill('SIGKILL')
        }
        const results = await Promise.all(
          workers.map((w) => w.result.catch((err: Error) => ({ ...sumResults([]), code: -1, stderr: err.message }))),
        )
        const sum = sumResults(results)
        totals.push(sum)
        if (sum.wrong > 0) problems.push(`wrong bytes: ${sum.wrongDetail.slice(0, 3).join('; ')}`)
        const odd = Object.keys(sum.errors).filter((c) => !KILL_ERRORS.has(c))
        if (odd.length) problems.push(`unexpected errors ${JSON.stringify(sum.errors)}`)
        for (const r of results.slice(0, 3))
          if (Object.keys(r.errors).length === 0) problems.push('an O_DIRECT reader ended without an error')

        if (stale) {
          const ls = errnoCode(() => readdirSync(mnt))
          if (!isMounted(mnt) || ls !== 'ENOTCONN')
            problems.push(`expected a stale mount, got mounted=${isMounted(mnt)} readdir=${ls}`)
        } else if (!(await waitFor(() => !isMounted(mnt), 10000)))
          problems.push('libfuse auto_unmount did not remove the mount')

        // Clean up with the next command: a mount (which must clean a stale mount and serve), or, on
        // every other stale round, kheadersfs umount straight away.
        if (stale && round % 4 === 2) {
          const u = await runCli(['umount', mnt], { env })
          if (u.code !== 0 || !/cleaned up the stale mount/.test(u.stdout) || isMounted(mnt))
            problems.push(`umount of the stale mount: ${u.code} ${u.stdout}${u.stderr}`)
        } else {
          const again = await runCli(['mount', '--image', e.image, '--force', mnt], { env })
          if (again.code !== 0) problems.push(`mount after the kill exited ${again.code}: ${again.stderr}`)
          if (stale && !/cleaned up a stale mount/.test(again.stderr))
            problems.push('the mount did not say it cleaned the stale mount')
          if (again.code === 0 && !freshReadsOk(mnt, e)) problems.push('wrong bytes after the remount')
          const u = await runCli(['umount', mnt], { env })
          if (u.code !== 0 || isMounted(mnt)) problems.push(`umount exited ${u.code}: ${u.stderr}`)
        }
      } catch (err) {
        // A reader that never got ready, a command that threw: a failed round; clean up for the next.
        problems.push((err as Error).message)
        cleanupMount(mnt, runDir)
      }
      if (!(await waitFor(() => procsMentioning(mnt).length === 0, 10000)))
        problems.push(`processes left: ${JSON.stringify(procsMentioning(mnt))}`)
      if (problems.length === 0) passed++
      else fails.push(`round ${round} (${stale ? 'stale' : 'auto_unmount'}): ${problems.join('; ')}`)
    }
    const sum = sumResults(totals)
    record({
      area: 'Faults',
      name: `kill -9 of the daemon during heavy reads of the flat files and the view (${rounds} rounds: daemon and helper killed → stale mount, or daemon only → auto_unmount)`,
      tried: rounds,
      passed,
      detail: `${sum.preads} reads checked (${sum.direct} O_DIRECT), ${sum.wrong} wrong, ${sum.short} short reads with the right bytes at the kill; errors after the kill ${JSON.stringify(sum.errors)}; killed: ${[...new Set(how)].join(', ')}`,
    })
    t.same(fails, [], 'every round: no wrong byte, readers ended, the next command cleaned up')
    t.equal(sum.wrong, 0, 'never a wrong byte')
    t.notOk(isMounted(mnt), 'nothing mounted at the end')
  },
)

t.test(
  'the image file truncated, overwritten, deleted or replaced while mounted and read: readers still get the original bytes',
  async (t) => {
    const e = expected(t, await testImage(t))
    const other = await tinyImage(t, '6.9.0-other')
    const changes: Array<[string, (img: string) => void]> = [
      ['truncated to 0 bytes', (img) => truncateSync(img, 0)],
      [
        'overwritten in place with random bytes',
        (img) => {
          const fd = openSync(img, 'r+')
          const size = statSync(img).size
          for (let off = 0; off < size; off += 1 << 20)
            writeSync(fd, randomBytes(Math.min(1 << 20, size - off)), 0, Math.min(1 << 20, size - off), off)
          closeSync(fd)
        },
      ],
      ['deleted', (img) => unlinkSync(img)],
      [
        'replaced (rename over it) by another image',
        (img) => {
          copyFileSync(other, `${img}.new`)
          renameSync(`${img}.new`, img)
        },
      ],
    ]
    const dir = tmpDir(t)
    const fails: string[] = []
    const totals: ReaderResult[] = []
    let passed = 0
    for (const [i, [what, change]] of changes.entries()) {
      const copy = path.join(dir, `image-${i}.img`)
      copyFileSync(e.image, copy)
      const m = await mountImage(t, copy)
      const during = [
        startWorker('hammer', {
          files: at(m.mnt, [...e.flat, ...e.view]),
          concurrency: 4,
          warmup: 20,
          direct: true,
          seed: 7,
        }),
        startWorker('hammer', { files: at(m.mnt, e.view), concurrency: 4, warmup: 20, direct: true, seed: 8 }),
      ]
      for (const w of during) await expectLine(w, 'ready')
      change(copy)
      // Fresh readers after the change: whole reads of every flat file and a full walk of the view.
      const after = [
        ...e.flat.map((f, i) =>
          startWorker('flat', {
            file: path.join(m.mnt, f.rel),
            ref: f.ref,
            rounds: 2,
            concurrency: 2,
            preads: 10,
            direct: 'mixed',
            seed: 20 + i,
          }),
        ),
        startWorker('hammer', { files: at(m.mnt, e.view), concurrency: 2, warmup: 1, direct: true, seed: 9 }),
      ]
      await expectLine(after[after.length - 1], 'ready')
      after[after.length - 1].child.stdin.end()
      for (const w of during) w.child.stdin.end()
      const results = await Promise.all([...during, ...after].map((w) => w.result))
      const sum = sumResults(results)
      totals.push(sum)
      const ok =
        sum.wrong === 0 &&
        Object.keys(sum.errors).length === 0 &&
        results.every((r) => r.code === 0) &&
        freshReadsOk(m.mnt, e) &&
        running(m.pid)
      if (ok) passed++
      else
        fails.push(
          `${what}: wrong ${sum.wrong} ${JSON.stringify(sum.wrongDetail.slice(0, 3))}, errors ${JSON.stringify(sum.errors)}, daemon alive ${running(m.pid)}`,
        )
      execFileSync('umount', [m.mnt])
      await waitGone(m.pid)
    }
    const sum = sumResults(totals)
    record({
      area: 'Faults',
      name: 'image file truncated / overwritten in place / deleted / replaced while mounted, with O_DIRECT readers running (flat + view)',
      tried: changes.length,
      passed,
      detail: `${sum.preads + sum.fullReads} reads checked (${sum.direct} O_DIRECT), ${sum.wrong} wrong, errors ${JSON.stringify(sum.errors)}`,
    })
    t.same(fails, [], 'the original bytes, whatever happens to the file')
  },
)

/** Start `kheadersfs mount -f` as our own child, with the daemon's environment; its log goes to the run dir. */
async function foregroundDaemon(
  t: Test,
  image: string,
): Promise<{ mnt: string; runDir: string; env: Record<string, string>; exit: Promise<number | null>; pid: number }> {
  const { mnt, runDir, env } = mountDirs(t)
  execFileSync('mkdir', ['-p', '-m', '0700', runDir])
  const logFd = openSync(path.join(runDir, 'foreground.log'), 'a', 0o600)
  const child = spawn(
    process.execPath,
    ['--max-semi-space-size=1', CLI, 'mount', '-f', '--force', '--image', image, mnt],
    {
      stdio: ['ignore', logFd, logFd],
      env: { ...process.env, ...env, MALLOC_MMAP_THRESHOLD_: '65536' },
    },
  )
  closeSync(logFd)
  const exit = new Promise<number | null>((r) => child.on('exit', (c) => r(c)))
  t.teardown(() => {
    if (running(child.pid!)) child.kill('SIGKILL')
  })
  const ready = await waitFor(() => logText(runDir).includes('"msg":"mounted"') || !running(child.pid!), 30000)
  if (!ready || !running(child.pid!)) throw new Error(`foreground daemon did not mount: ${logText(runDir)}`)
  return { mnt, runDir, env, exit, pid: child.pid! }
}

t.test(
  'unmount while a reader sits in a long read: it detaches, the reader finishes with the right bytes, the daemon exits 0',
  async (t) => {
    const e = expected(t, await testImage(t))
    const fails: string[] = []
    const cases: string[] = []
    const slow = (mnt: string, f: { rel: string; ref: string }): Worker =>
      startWorker('slow', { file: path.join(mnt, f.rel), ref: f.ref, chunk: 4096, direct: true })
    /** Run one case; an exception (a reader that said something else, a hang) is a failed case too. */
    const attempt = async (name: string, fn: () => Promise<void>): Promise<void> => {
      cases.push(name)
      try {
        await fn()
      } catch (err) {
        fails.push(`${name}: ${(err as Error).message}`)
      }
    }

    // 1. Detached daemon, a reader doing 4 KiB O_DIRECT reads of the view's largest file with pauses in
    //    between: kheadersfs umount refuses, umount -l detaches, the reader goes on to EOF.
    await attempt('umount -l during slow 4 KiB reads of the view (kheadersfs umount refused first)', async () => {
      const name = 'umount -l during slow 4 KiB reads of the view'
      const m = await mountImage(t, e.image)
      const w = slow(m.mnt, e.big)
      await expectLine(w, 'open')
      w.send('3')
      await expectLine(w, 'at 12288')
      const busy = await runCli(['umount', m.mnt], { env: m.env })
      execFileSync('umount', ['-l', m.mnt])
      const detached = !isMounted(m.mnt) && running(m.pid)
      w.send('5')
      await expectLine(w, 'at 32768')
      w.send('rest')
      const r = await w.result
      const gone = await waitGone(m.pid, 10000)
      const log = logText(m.runDir).trim().split('\n')
      const problems = [
        busy.code !== 5 && `kheadersfs umount exited ${busy.code}, not 5 (busy)`,
        !detached && 'not detached, or the daemon quit early',
        (r.wrong > 0 || r.code !== 0 || Object.keys(r.errors).length > 0) &&
          `reader: wrong ${r.wrong}, errors ${JSON.stringify(r.errors)}, exit ${r.code}`,
        !gone && 'the daemon did not exit after the reader closed',
        logErrors(m.runDir).length > 0 && `log errors: ${logErrors(m.runDir).join(' | ')}`,
        !log[log.length - 1].includes('"msg":"unmounted; exiting"') && `last log line: ${log[log.length - 1]}`,
      ].filter(Boolean)
      if (problems.length) fails.push(`${name}: ${problems.join('; ')}`)
    })

    // 2. Detached daemon, `cat` of the flat archive into a pipe nobody drains (cat blocks in write
    //    with the file open): kheadersfs umount --lazy, then drain: every byte arrives.
    await attempt('kheadersfs umount --lazy while cat of kheaders.txz blocks on an undrained pipe', async () => {
      const name = 'kheadersfs umount --lazy during cat'
      const m = await mountImage(t, e.image)
      const cat = spawn('cat', [path.join(m.mnt, 'kheaders.txz')], { stdio: ['ignore', 'pipe', 'ignore'] })
      t.teardown(() => cat.kill('SIGKILL'))
      cat.stdout.pause()
      const catExit = new Promise<number | null>((r) => cat.on('exit', (c) => r(c)))
      const holds = await waitFor(() => {
        try {
          return readdirSync(`/proc/${cat.pid}/fd`).some((fd) => {
            try {
              return (
                readFileSync(`/proc/${cat.pid}/fdinfo/${fd}`, 'utf8').match(/^pos:\s+(\d+)/m)![1] !== '0' &&
                readlinkSafe(`/proc/${cat.pid}/fd/${fd}`).startsWith(m.mnt)
              )
            } catch {
              return false
            }
          })
        } catch {
          return false
        }
      })
      const lazy = await runCli(['umount', '--lazy', m.mnt], { env: m.env })
      const detached = !isMounted(m.mnt) && running(m.pid)
      const chunks: Buffer[] = []
      cat.stdout.on('data', (d: Buffer) => chunks.push(d))
      cat.stdout.resume()
      const code = await catExit
      await new Promise((r) => (cat.stdout.readableEnded ? r(undefined) : cat.stdout.on('end', r)))
      const same = Buffer.concat(chunks).equals(readFileSync(e.flat[0].ref))
      const gone = await waitGone(m.pid, 10000)
      const problems = [
        !holds && 'cat never held the file open mid-read',
        lazy.code !== 0 && `kheadersfs umount --lazy exited ${lazy.code}: ${lazy.stderr}`,
        !detached && 'not detached, or the daemon quit early',
        (!same || code !== 0) && `cat exited ${code}, bytes equal: ${same}`,
        !gone && 'the daemon did not exit after cat closed',
        logErrors(m.runDir).length > 0 && `log errors: ${logErrors(m.runDir).join(' | ')}`,
      ].filter(Boolean)
      if (problems.length) fails.push(`${name}: ${problems.join('; ')}`)
    })

    // 3 and 4. A foreground daemon (our child, so its exit code is seen): SIGTERM (systemctl stop) and
    //    umount -l while a slow reader of the view sits between reads.
    for (const [name, detach] of [
      [
        'SIGTERM to a foreground daemon during slow 4 KiB reads of the view: exit code 0',
        (d: { pid: number; mnt: string }) => process.kill(d.pid, 'SIGTERM'),
      ],
      [
        'umount -l of a foreground daemon during slow 4 KiB reads of the view: exit code 0',
        (d: { pid: number; mnt: string }) => execFileSync('umount', ['-l', d.mnt]),
      ],
    ] as const) {
      await attempt(name, async () => {
        const d = await foregroundDaemon(t, e.image)
        const w = slow(d.mnt, e.big)
        await expectLine(w, 'open')
        w.send('2')
        await expectLine(w, 'at 8192')
        detach(d)
        const detached = await waitFor(() => !isMounted(d.mnt), 10000)
        const stillServing = running(d.pid)
        w.send('rest')
        const r = await w.result
        const code = await within(d.exit, 30000)
        const problems = [
          !detached && 'not detached',
          !stillServing && 'the daemon quit while a file was open',
          (r.wrong > 0 || r.code !== 0 || Object.keys(r.errors).length > 0) &&
            `reader: wrong ${r.wrong}, errors ${JSON.stringify(r.errors)}, exit ${r.code}`,
          code !== 0 && `daemon exit: ${code}`,
          logErrors(d.runDir).length > 0 && `log errors: ${logErrors(d.runDir).join(' | ')}`,
          !logText(d.runDir).includes('"msg":"unmounted; exiting"') && 'no clean exit in the log',
        ].filter(Boolean)
        if (problems.length) fails.push(`${name}: ${problems.join('; ')}`)
      })
    }

    record({
      area: 'Faults',
      name: 'unmount while a reader sits in a long read (umount -l, kheadersfs umount --lazy, SIGTERM; detached and foreground daemons)',
      tried: cases.length,
      passed: cases.length - fails.length,
      detail: cases.join('; '),
    })
    t.same(fails, [], 'readers finish with the right bytes, the daemon exits 0 with no error logged')
  },
)

function readlinkSafe(p: string): string {
  try {
    return readlinkSync(p)
  } catch {
    return ''
  }
}
