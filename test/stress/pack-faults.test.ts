// `kheadersfs pack` interrupted at random points (kill -9, SIGINT), also right while it writes, and
// packing onto a full filesystem: the output path never holds a partial image (an older image there
// stays byte for byte), SIGINT and ENOSPC leave no temp file, and the temp file a kill -9 leaves is
// recognizable and removed by the next pack.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { TEMP_MARK } from '../../src/fs-atomic'
import { CLI, errorLines, runCli, shellStatus } from '../helpers/cli'
import { debianTree, SKIP_NO_DEBIAN } from '../helpers/debian'
import { record, size } from '../helpers/stress'
import { tmpDir } from '../helpers/tmp'
import { fileSha256 } from '../helpers/tree-digest'

const tree = debianTree()
const temps = (dir: string): string[] => readdirSync(dir).filter((n) => n.includes(TEMP_MARK))

interface Interrupted {
  code: number | null
  signal: NodeJS.Signals | null
  stderr: string
  /** Whether the temp file existed when the signal was sent. */
  duringWrite: boolean
}

/** Start a pack into `out` and send `signal` after `delayMs`, or as soon as its temp file appears. */
function interrupt(out: string, signal: NodeJS.Signals, when: number | 'write'): Promise<Interrupted> {
  const child = spawn(process.execPath, [CLI, 'pack', '--kernel', tree!.objtree, '--profile', 'headers', '-o', out], {
    env: { ...process.env, KHEADERSFS_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  let duringWrite = false
  let poll: NodeJS.Timeout | undefined
  const send = (): void => {
    duringWrite = temps(path.dirname(out)).length > 0
    child.kill(signal)
  }
  if (when === 'write') {
    poll = setInterval(() => {
      if (temps(path.dirname(out)).length > 0) {
        clearInterval(poll)
        send()
      }
    }, 1)
  } else setTimeout(send, when)
  return new Promise((resolve) =>
    child.on('exit', (code, sig) => {
      clearInterval(poll)
      resolve({ code, signal: sig, stderr, duringWrite })
    }),
  )
}

t.test('pack interrupted at random points', { skip: tree === undefined && SKIP_NO_DEBIAN }, async (t) => {
  const dir = tmpDir(t)
  const out = path.join(dir, 'kheaders.img')
  const t0 = Date.now()
  const first = await runCli(['pack', '--kernel', tree!.objtree, '--profile', 'headers', '-o', out], {
    env: { KHEADERSFS_LOG_LEVEL: 'warn' },
  })
  t.equal(first.code, 0, first.stderr)
  const packMs = Date.now() - t0
  const good = fileSha256(out)

  for (const signal of ['SIGKILL', 'SIGINT'] as const) {
    const runs = size(20, 2)
    let passed = 0
    let inWrite = 0
    for (let i = 0; i < runs; i++) {
      // Random points over the whole run; every fourth run aimed at the moment the image is written.
      const when = i % 4 === 3 ? 'write' : Math.floor(Math.random() * packMs * 1.1)
      const r = await interrupt(out, signal, when)
      if (r.duringWrite) inWrite++
      const left = temps(dir)
      const checks =
        signal === 'SIGKILL'
          ? [
              t.equal(
                r.signal ?? 'exited',
                r.code === 0 ? 'exited' : 'SIGKILL',
                `kill -9 at ${when}: killed (or done)`,
              ),
              t.ok(
                left.every((n) => /^\.kheaders\.img\.kheadersfs-tmp-\d+$/.test(n)),
                `kill -9 at ${when}: a temp file left is recognizable (${left.join(', ')})`,
              ),
            ]
          : [
              // pack ends by the signal once it has cleaned up (status 130, src/cli.ts). A SIGINT that
              // lands while node is still starting, before pack has installed its handler (and long
              // before any file exists), ends it the same way with nothing said: that is Ctrl-C too.
              t.ok(
                r.code === 0 || (shellStatus(r.code, r.signal) === 130 && (r.stderr !== '' || !r.duringWrite)),
                `SIGINT at ${when}: status 130, done, or ended before pack started: ${r.code ?? r.signal} ${r.stderr}`,
              ),
              t.same(left, [], `SIGINT at ${when}: no temp file`),
              r.code !== 0 && r.stderr !== ''
                ? t.match(
                    errorLines(r.stderr).join('\n'),
                    /^kheadersfs pack: interrupted by SIGINT; no image was written$/m,
                    'says so',
                  )
                : true,
            ]
      const intact = t.equal(
        fileSha256(out),
        good,
        `${signal} at ${when}: the image at the output path is the old one, whole`,
      )
      // The next pack cleans up what a kill left, and still gives the same bytes.
      const next = await runCli(['pack', '--kernel', tree!.objtree, '--profile', 'headers', '-o', out], {
        env: { KHEADERSFS_LOG_LEVEL: 'warn' },
      })
      const cleaned = [
        t.equal(next.code, 0, next.stderr),
        t.same(temps(dir), [], 'no temp file after the next pack'),
        left.length > 0 ? t.match(next.stderr, /removed a temp file left by an interrupted pack/) : true,
        t.equal(fileSha256(out), good, 'the next pack gives the same bytes'),
      ]
      if ([...checks, intact, ...cleaned].every(Boolean)) passed++
    }
    record({
      area: 'Faults',
      name:
        signal === 'SIGKILL'
          ? '`kill -9` of pack at random points (and during the write)'
          : 'SIGINT of pack at random points (and during the write)',
      tried: runs,
      passed,
      detail: `pack takes ~${(packMs / 1000).toFixed(1)} s; ${inWrite} signals landed while the temp file existed; output never partial${signal === 'SIGKILL' ? '; leftover temp removed by the next pack' : '; exit 130, no temp file'}`,
    })
    t.equal(passed, runs, `${signal}: every run left a whole image or none`)
  }
})

t.test(
  'pack onto a full filesystem: clear ENOSPC, no file, no temp',
  { skip: (tree === undefined && SKIP_NO_DEBIAN) || (process.getuid?.() !== 0 && 'needs root to mount a small tmpfs') },
  async (t) => {
    const dir = path.join(tmpDir(t), 'small')
    mkdirSync(dir)
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'kheadersfs-test-full', dir])
    t.equal(m.status, 0, m.stderr?.toString())
    t.teardown(() => {
      spawnSync('umount', [dir])
    })
    const out = path.join(dir, 'kheaders.img')
    const r = await runCli(['pack', '--kernel', tree!.objtree, '--profile', 'headers', '-o', out], {
      env: { KHEADERSFS_LOG_LEVEL: 'warn' },
    })
    const ok = [
      t.equal(r.code, 8, 'exit 8 (I/O)'),
      t.equal(errorLines(r.stderr).length, 1, errorLines(r.stderr).join(' | ')),
      t.match(
        errorLines(r.stderr)[0] ?? '',
        /^kheadersfs: Cannot write image .*kheaders\.img: ENOSPC: no space left on device; free some space or pass -o a path on another filesystem$/,
      ),
      t.notOk(existsSync(out), 'no image'),
      t.same(readdirSync(dir), [], 'no temp file'),
    ].every(Boolean)
    record({
      area: 'Faults',
      name: 'pack onto a full filesystem (1 MiB tmpfs)',
      tried: 1,
      passed: ok ? 1 : 0,
      detail: 'exit 8, one ENOSPC line naming the fix, no image, no temp file',
    })
  },
)
