// What pack shows while it works, on Debian's real tree: on a terminal (a pty, from util-linux's
// script) one bar whose percentage only rises, through every phase, to 100 %; off a terminal plain
// lines, no JSON; with --json, NDJSON on stdout covering every phase and ending with the image.
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { CLI, run, runCli } from '../helpers/cli'
import { debianTree, SKIP_NO_DEBIAN } from '../helpers/debian'
import { tmpDir } from '../helpers/tmp'

const PHASES = ['reading files', 'writing the tar', 'compressing (xz)', 'writing the image']

/** Each value is at least the one before it. */
const rising = (xs: number[]): boolean => xs.every((x, i) => i === 0 || x >= xs[i - 1])

const tree = debianTree()
if (tree === undefined) {
  t.test('Debian kernel tree', { skip: SKIP_NO_DEBIAN }, async () => undefined)
} else {
  const args = (out: string): string[] => ['pack', '--kernel', tree.objtree, '--xz-preset', '1', '-o', out]
  const env = { KHEADERSFS_LOG_LEVEL: '' }

  t.test('on a terminal: one bar by bytes, rising through every phase to 100 %', async (t) => {
    const img = path.join(tmpDir(t), 'k.img')
    const cmd = [process.execPath, CLI, ...args(img)].map((a) => `'${a}'`).join(' ')
    const r = await run('script', ['-qec', cmd, '/dev/null'], { env })
    t.equal(r.code, 0, r.stdout)
    const frames = r.stdout.split(/\r|\x1b\[1G/).filter((f) => f.startsWith('packing ['))
    const pcts = frames.map((f) => Number(/\] (\d+)% \|/.exec(f)![1]))
    t.ok(frames.length > 10, `${frames.length} frames`)
    t.ok(rising(pcts), 'the percentage never goes back')
    t.equal(pcts.at(-1), 100, 'the last frame is 100 %')
    t.equal(pcts.filter((p) => p === 100).length, pcts.length - pcts.indexOf(100), '100 % only at the end')
    for (const p of PHASES)
      t.ok(
        frames.some((f) => f.includes(`| ${p}`)),
        `a frame in phase ${p}`,
      )
    const xz = frames.filter((f) => f.includes('compressing (xz)')).map((f) => Number(/\] (\d+)%/.exec(f)![1]))
    t.ok(new Set(xz).size >= 3, `the bar moves during xz (${[...new Set(xz)].join(' ')} %)`)
    t.match(frames.at(-1), /writing the image [\d.]+ [kM]B of [\d.]+ [kM]B/, 'bytes of the phase')
    t.match(r.stdout, /packed [\d,]+ files .* into .*k\.img/)
  })

  t.test('off a terminal: plain lines on stderr, no JSON, percentages rising', async (t) => {
    const img = path.join(tmpDir(t), 'k.img')
    const r = await runCli(args(img).slice(), { env })
    t.equal(r.code, 0, r.stderr)
    const lines = r.stderr.split('\n').filter((l) => l !== '')
    t.same(
      lines.filter((l) => l.startsWith('{')),
      [],
      'no JSON record',
    )
    t.match(lines[0], /^kheadersfs: packing \S+ \(x86\) from .*: [\d,]+ files, [\d.]+ MB$/)
    const progress = lines.slice(1)
    for (const l of progress)
      t.match(l, /^kheadersfs: pack: +\d+% [a-z (),]+?( [\d.]+ [kM]?B of [\d.]+ [kM]?B)? \((\d+m)?\d+s\)$/, l)
    t.ok(rising(progress.map((l) => Number(/(\d+)%/.exec(l)![1]))), 'percentages never go back')
    for (const p of PHASES)
      t.ok(
        progress.some((l) => l.includes(`% ${p}`)),
        `a line as ${p} starts`,
      )
    t.match(r.stdout, /^packed [\d,]+ files/)
  })

  t.test('--json: every line parses, every phase in order, the result with path, size and sha256', async (t) => {
    const img = path.join(tmpDir(t), 'k.img')
    const r = await runCli([...args(img), '--json'], { env })
    t.equal(r.code, 0, r.stderr)
    t.equal(r.stderr, '', 'nothing on stderr')
    const events = r.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string; phase?: string; [k: string]: unknown })
    const starts = events.filter((e) => e.event === 'phase').map((e) => e.phase)
    t.same(starts, ['select', 'read', 'tar', 'xz', 'write'])
    const ends = events.filter((e) => e.event === 'phase-end').map((e) => e.phase)
    t.same(ends, starts, 'each phase ends')
    t.match(
      events.find((e) => e.event === 'selected'),
      { release: tree.release, files: Number, bytes: Number },
    )
    const done = events.at(-1)!
    const file = readFileSync(img)
    t.match(done, {
      event: 'done',
      output: img,
      bytes: file.length,
      image: { bytes: file.length, sha256: createHash('sha256').update(file).digest('hex') },
      release: tree.release,
    })
    for (const e of events) t.match(e.time, /^\d{4}-\d\d-\d\dT/, `${e.event} has a time`)
  })
}
