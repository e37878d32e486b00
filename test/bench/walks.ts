// 4.6 of `npm run bench` (called by view.ts's benchView): walks through the kheaders/ view, the first
// things people do with a directory of headers: `grep -r`, `tar -c`, `cp -r` and `find | xargs cat`,
// over the whole view and over include/, cold, at -o cache_mb= 4, 8 (the default) and 16, each against
// extracting kheaders.txz and running the same walk on the extracted tree. Blocks decoded and the
// daemon's RSS peak beside the times.
//
// `node dist/test/bench/bench.js --only walks` runs this subsection alone (bench.ts).
import { mkdirSync, rmSync } from 'node:fs'
import path from 'node:path'
import { DEFAULT_CACHE_MB } from '../../src/mounts/mount-options'
import {
  atMost,
  blocks,
  coldOnFreshMount,
  type ColdRun,
  dropCaches,
  dropCachesHow,
  fmtMB,
  fmtMs,
  fmtRatio,
  info,
  mib,
  mountImage,
  plusMB,
  q,
  rotate,
  run,
  Section,
  spread,
  stats,
  tick,
  time,
  umountImage,
  type Workspace,
} from './lib'

/** The symbol `grep -r` looks for: in hundreds of headers, so grep has matches to print. */
const SYMBOL = 'task_struct'
/** The caches the walks run at; the target is at the default (mounted without the option). */
const CACHES = [...new Set([4, DEFAULT_CACHE_MB, 16])].sort((a, b) => a - b)
/** A walk whose first run takes longer runs once (noted in its row). */
const ONCE_MS = 20_000
const RUNS = 3
/** The issue's target: a walk of the view at the default cache within 2× extract + the same walk. */
const TARGET_RATIO = 2

interface Walk {
  /** As the rows name it. */
  name: string
  /** The command, as the intro shows it; DIR is the walked directory. */
  command: string
  /** Run the walk over `dir`; `scratch` is a path on /dev/shm it may create (removed afterwards, untimed). */
  run: (dir: string, scratch: string) => void
}

/** A shell pipeline that fails when any of its commands fails. */
const pipeline = (script: string): void => void run('bash', ['-o', 'pipefail', '-c', script])

const WALKS: Walk[] = [
  {
    name: '`grep -r`',
    command: `\`grep -r ${SYMBOL} DIR > /dev/null\``,
    // Exit 0: found (1 would mean no match: a broken view).
    run: (dir) => void run('grep', ['-r', SYMBOL, dir], { stdio: ['ignore', 'ignore', 'pipe'] }),
  },
  {
    // Through a pipe: GNU tar writing to /dev/null itself does not read file data.
    name: '`tar -c`',
    command: '`tar -cf - DIR | cat > /dev/null`',
    run: (dir) => pipeline(`tar -C ${q(path.dirname(dir))} -cf - ${q(path.basename(dir))} | cat > /dev/null`),
  },
  {
    name: '`cp -r`',
    command: '`cp -r DIR /dev/shm/…`',
    run: (dir, scratch) => void run('cp', ['-r', dir, scratch]),
  },
  {
    name: '`find | xargs cat`',
    command: '`find DIR -type f -print0 | xargs -0 cat > /dev/null`',
    run: (dir) => pipeline(`find ${q(dir)} -type f -print0 | xargs -0 cat > /dev/null`),
  },
]

/** What is walked: a directory of the view, and the same directory of the extracted tree. */
interface Scope {
  name: string
  /** Relative to the view's root (and the extracted tree's). */
  rel: string
}
const SCOPES: Scope[] = [
  { name: 'kheaders/', rel: '' },
  { name: 'kheaders/include/', rel: 'include' },
]

export async function benchWalks(ws: Workspace, image: string): Promise<Section> {
  const manifest = info(ws, image)
  const txzInfo = manifest.payloads['kheaders.tar.xz']
  const archiveBlocks = blocks(manifest)
  const layout = manifest.layout?.order ?? 'unrecorded'
  const cacheList = CACHES.map((c) => (c === DEFAULT_CACHE_MB ? `${c} (the default, mounted without the option)` : c))
  const section = new Section(
    '4.6 Walks through the view, by cache size',
    'What people do first with a directory of headers, each timed from the start of the command to its exit: ' +
      WALKS.map((w) => w.command).join(', ') +
      ` (tar through a pipe: GNU tar writing to /dev/null itself reads no file data), over the whole view (\`MNT/kheaders\`) ` +
      `and over \`MNT/kheaders/include\`. Cold: a fresh mount with \`-o cache_mb=\` ${cacheList.join(', ')}, then caches dropped ` +
      `(${dropCachesHow()}). Baseline, extract + walk: a fresh mount, caches dropped, then \`tar -xf MNT/kheaders.txz -C /dev/shm/x\` ` +
      '(the whole archive, for the include/ scope too: what a user does) and the same walk over /dev/shm/x or /dev/shm/x/include, ' +
      `timed together. The tools walk in the order \`readdir\` returns, which the view lists in name order; the archive ` +
      `(${archiveBlocks} blocks of ${mib(txzInfo.blockSize ?? 0)}, layout ${layout}) is in tiers, each in name order ` +
      '(src/pack/build-order.ts), so a walk reads each tier front to back. ' +
      `Medians of ${RUNS} rounds (min–max in brackets); each round runs a walk's steps (view at every cache size, baseline) in a ` +
      `rotated order (reversed on odd rounds); a step taking over ${ONCE_MS / 1000} s in the first round runs once (its row says so). ` +
      'Decodes come from the daemon\'s SIGUSR1 "stats" line after the walk (a block evicted and needed again counts again); the ' +
      'RSS peak over idle is measured as in 4.1 (VmHWM after a clear_refs reset right before the walk, minus VmRSS then). ' +
      `Target (the issue's): ≤ ${TARGET_RATIO}× extract + walk at the default cache; the other caches are context. The other side ` +
      'of the layout, module builds and `gcc -E` from the view at the default cache with their blocks decoded, is in 4.1 (hello.ko, ' +
      'bigmod.ko) and 4.2, not repeated here. Ratio = view / (extract + walk).',
    3,
  )
  const view = path.join(ws.mnt, 'kheaders')
  const txz = path.join(ws.mnt, 'kheaders.txz')
  const extractTree = path.join(ws.shm, 'x')
  const scratch = path.join(ws.shm, 'walk-copy')

  const cold: Record<string, ColdRun[]> = {}
  const extract: Record<string, number[]> = {}
  const key = (w: Walk, s: Scope, c?: number): string => `${w.name} ${s.rel} ${c ?? 'extract'}`
  /** Steps whose first run took longer than ONCE_MS: not run again. */
  const once = new Set<string>()

  const steps = (w: Walk, s: Scope): Array<{ key: string; step: () => Promise<number> }> => [
    ...CACHES.map((c) => ({
      key: key(w, s, c),
      step: async (): Promise<number> => {
        rmSync(scratch, { recursive: true, force: true })
        const r = await coldOnFreshMount(ws, image, c, () => time(() => w.run(path.join(view, s.rel), scratch)))
        rmSync(scratch, { recursive: true, force: true })
        ;(cold[key(w, s, c)] ??= []).push(r)
        process.stderr.write(
          `    view, cache_mb=${c}: ${fmtMs(r.ms)}, ${r.decodes} decodes, RSS peak ${plusMB(r.peakOverIdle)}\n`,
        )
        return r.ms
      },
    })),
    {
      key: key(w, s),
      step: async (): Promise<number> => {
        await tick()
        const m = mountImage(ws, image)
        rmSync(extractTree, { recursive: true, force: true })
        rmSync(scratch, { recursive: true, force: true })
        dropCaches()
        const ms = time(() => {
          mkdirSync(extractTree)
          run('tar', ['-xf', txz, '-C', extractTree])
          w.run(path.join(extractTree, s.rel), scratch)
        })
        umountImage(ws, m.pid)
        rmSync(extractTree, { recursive: true, force: true })
        rmSync(scratch, { recursive: true, force: true })
        ;(extract[key(w, s)] ??= []).push(ms)
        process.stderr.write(`    extract + walk: ${fmtMs(ms)}\n`)
        return ms
      },
    },
  ]

  const groups = SCOPES.flatMap((s) => WALKS.map((w) => ({ w, s })))
  process.stderr.write(
    `view: walks, ${RUNS} rounds of ${groups.length} walks × (${CACHES.length} cold view walks + extract + walk)\n`,
  )
  for (let i = 0; i < RUNS; i++) {
    for (const { w, s } of i % 2 === 0 ? groups : [...groups].reverse()) {
      process.stderr.write(`  round ${i + 1}: ${w.name} over ${s.name}\n`)
      for (const { key: k, step } of rotate(steps(w, s), i)) {
        if (once.has(k)) continue
        const ms = await step()
        if (i === 0 && ms > ONCE_MS) once.add(k)
      }
    }
  }

  const count = (n: number): string => n.toFixed(0)
  const runsOf = (k: string, n: number): string =>
    once.has(k) ? `**1 run** (over ${ONCE_MS / 1000} s)` : `median of ${n}`
  const rows: string[] = []
  for (const s of SCOPES) {
    for (const w of WALKS) {
      const x = stats(extract[key(w, s)])
      for (const c of CACHES) {
        const b = cold[key(w, s, c)]
        const t = stats(b.map((r) => r.ms))
        const d = stats(b.map((r) => r.decodes))
        const over = stats(b.map((r) => r.peakOverIdle))
        const ratio = t.median / x.median
        const rss = `${plusMB(over.median)} (${plusMB(over.min)}–${plusMB(over.max)})`
        if (c === DEFAULT_CACHE_MB) {
          section.add({
            measure: `${w.name} of ${s.name}, default cache (cache_mb=${c})`,
            ours: `${spread(t)}; ${spread(d, count)} blocks decoded; RSS peak ${rss}`,
            baseline: `${spread(x)} (extract + walk)`,
            ratio: fmtRatio(ratio),
            target: atMost(ratio, TARGET_RATIO, `≤ ${TARGET_RATIO}× extract + walk`),
            how:
              `cold: fresh mount, caches dropped, the walk; ${runsOf(key(w, s, c), b.length)}; baseline: fresh mount, caches ` +
              `dropped, \`tar -xf MNT/kheaders.txz -C /dev/shm/x\` + the walk over /dev/shm/x${s.rel ? `/${s.rel}` : ''}, timed ` +
              `together, ${runsOf(key(w, s), extract[key(w, s)].length)}; the archive has ${archiveBlocks} blocks`,
          })
        }
        const cells = [
          w.name,
          s.name,
          c === DEFAULT_CACHE_MB ? `**${c} (default)**` : String(c),
          `${spread(t)}${once.has(key(w, s, c)) ? ' (1 run)' : ''}`,
          `${spread(x)}${once.has(key(w, s)) ? ' (1 run)' : ''}`,
          fmtRatio(ratio),
          spread(d, count),
          rss,
        ]
        process.stderr.write(`       ${cells.join(' | ')}\n`)
        rows.push(`| ${cells.map((l) => l.replace(/\|/g, '\\|')).join(' | ')} |`)
      }
    }
  }
  section.after.push(
    [
      `| Walk | Scope | cache_mb | Cold walk through the view (median of ${RUNS}) | Extract + walk | ÷ extract + walk | Blocks decoded | Daemon RSS peak over idle |`,
      '|---|---|---|---|---|---|---|---|',
      ...rows,
    ].join('\n'),
  )
  const walks = Object.values(cold).flat().length
  section.after.push(
    `Blocks decoded: of the archive's ${archiveBlocks} (${fmtMB(txzInfo.uncompressedSize)} of tar), counting a block again each ` +
      `time an evicted block is needed again; a walk that decodes about ${archiveBlocks} reads the archive once. ` +
      `${walks} cold walks through the view in all.`,
  )
  return section
}
