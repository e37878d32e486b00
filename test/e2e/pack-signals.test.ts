// Ctrl-C and SIGTERM during `kheadersfs pack` of Debian's real tree, in every phase: the process is
// told the phase by pack's own --json events (no sleeps), gets the signal, and must be gone within a
// second (the one timing bound, with margin: measured from the kill to the exit), exit 130 or
// 143 with one line on stderr, and leave nothing in the output directory: no image, no temp file.
import { readdirSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { errorLines, runCli } from '../helpers/cli'
import { BOUND_MS, packUntil } from '../helpers/pack-until'
import { debianTree, SKIP_NO_DEBIAN } from '../helpers/debian'
import { tmpDir } from '../helpers/tmp'

const tree = debianTree()
if (tree === undefined) {
  t.test('Debian kernel tree', { skip: SKIP_NO_DEBIAN }, async () => undefined)
} else {
  // -1 keeps the runs short; the xz phase still takes seconds, the package's own xz too.
  const base = ['--kernel', tree.objtree, '--xz-preset', '1']
  const cases: Array<{ phase: string; deb?: boolean }> = [
    { phase: 'select' },
    { phase: 'read' },
    { phase: 'tar' },
    { phase: 'xz' },
    { phase: 'deb', deb: true },
  ]
  for (const { phase, deb } of cases) {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      t.test(`${sig} while pack is in phase ${phase}${deb ? ' (--deb)' : ''}`, async (t) => {
        const dir = tmpDir(t)
        const out = deb ? ['--deb', '-o', dir] : ['-o', path.join(dir, 'k.img')]
        const r = await packUntil([...base, ...out], phase, sig)
        t.ok(
          r.events.some((e) => e.event === 'phase' && e.phase === phase),
          `pack reached ${phase} (events: ${r.events.map((e) => e.phase ?? e.event).join(' ')})`,
        )
        t.ok(r.ms < BOUND_MS, `exited ${r.ms.toFixed(0)} ms after ${sig} (bound ${BOUND_MS} ms)`)
        t.equal(r.code, sig === 'SIGINT' ? 130 : 143, 'exit status 128 + the signal number')
        t.same(errorLines(r.stderr), [`kheadersfs pack: interrupted by ${sig}; no image was written`], 'one line')
        t.same(readdirSync(dir), [], 'no image, no temp file')
        t.match(r.events.at(-1), { event: 'error', exitCode: r.code }, '--json ends with the error event')
      })
    }
  }

  // Writing the image is one synchronous write and rename: a signal seen at its start is handled after
  // it, when the image is whole. Either outcome is correct; a part or a temp file never is.
  t.test('SIGINT as the image is written: the whole image or nothing, never a part', async (t) => {
    const dir = tmpDir(t)
    const img = path.join(dir, 'k.img')
    const r = await packUntil([...base, '-o', img], 'write', 'SIGINT')
    t.ok(r.ms < BOUND_MS, `exited ${r.ms.toFixed(0)} ms after SIGINT`)
    if (r.code === 0) {
      t.same(readdirSync(dir), ['k.img'], 'the image, no temp file')
      const v = await runCli(['verify', img])
      t.equal(v.code, 0, `the image is whole: ${v.stderr}`)
    } else {
      t.equal(r.code, 130)
      t.same(readdirSync(dir), [], 'no image, no temp file')
    }
  })
}
