// The project's one file writer (src/fs-atomic.ts), used for images, state files and installed
// helpers: whole or nothing, never through a link at the target or the temp path, the temp file
// removed on failure, the mode as asked (umask applied unless exactMode).
import { lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { tempPathFor, writeFileAtomic } from '../../src/fs-atomic'
import { tmpDir } from '../helpers/tmp'

const mode = (p: string): number => lstatSync(p).mode & 0o7777

/** Run `fn` under `mask`, restoring the process's umask afterwards. */
function withUmask<T>(mask: number, fn: () => T): T {
  const old = process.umask(mask)
  try {
    return fn()
  } finally {
    process.umask(old)
  }
}

t.test('replaces the target whole; strings and Buffers; no temp left', async (t) => {
  const w = tmpDir(t)
  const target = path.join(w, 'x.json')
  writeFileAtomic(target, '{"a":1}\n', { mode: 0o600 })
  t.equal(readFileSync(target, 'utf8'), '{"a":1}\n')
  writeFileAtomic(target, Buffer.from('second'), { mode: 0o600, fsync: true })
  t.equal(readFileSync(target, 'utf8'), 'second')
  writeFileAtomic(path.join(w, 'empty'), '', { mode: 0o644 })
  t.equal(readFileSync(path.join(w, 'empty'), 'utf8'), '', 'an empty file')
  t.same(readdirSync(w).sort(), ['empty', 'x.json'])
  t.equal(
    tempPathFor(target, 42),
    path.join(w, '.x.json.kheadersfs-tmp-42'),
    'temp files: hidden, beside the target, named by pid',
  )
})

t.test('mode: the umask applies, unless exactMode', async (t) => {
  const w = tmpDir(t)
  withUmask(0o077, () => {
    writeFileAtomic(path.join(w, 'masked'), 'x', { mode: 0o755 })
    writeFileAtomic(path.join(w, 'exact'), 'x', { mode: 0o755, exactMode: true })
  })
  t.equal(mode(path.join(w, 'masked')), 0o700)
  t.equal(mode(path.join(w, 'exact')), 0o755, 'an installed script stays executable for all')
  withUmask(0o022, () => writeFileAtomic(path.join(w, 'image'), 'x', { mode: 0o644, fsync: true }))
  t.equal(mode(path.join(w, 'image')), 0o644)
})

t.test('never writes through a link at the target or at the temp path', async (t) => {
  const w = tmpDir(t)
  const victim = path.join(w, 'victim')
  writeFileSync(victim, 'precious')
  const target = path.join(w, 'state.json')
  symlinkSync(victim, target)
  symlinkSync(victim, tempPathFor(target))
  writeFileAtomic(target, 'new', { mode: 0o600 })
  t.equal(readFileSync(victim, 'utf8'), 'precious', 'the link target is untouched')
  t.ok(lstatSync(target).isFile(), 'the target is a regular file now')
  t.equal(readFileSync(target, 'utf8'), 'new')
  t.same(readdirSync(w).sort(), ['state.json', 'victim'], 'the planted temp link is gone')
})

t.test('failure: the system error as is, the temp removed, the old target kept', async (t) => {
  const w = tmpDir(t)
  t.throws(() => writeFileAtomic(path.join(w, 'no/such/dir/x'), 'x', { mode: 0o644 }), {
    code: 'ENOENT',
    syscall: 'open',
  })
  // rename onto a non-empty directory fails after the temp was written: the temp must go.
  const dir = path.join(w, 'target')
  mkdirSync(dir)
  writeFileSync(path.join(dir, 'inside'), 'kept')
  t.throws(() => writeFileAtomic(dir, 'x', { mode: 0o644 }), { name: 'Error', syscall: 'rename' })
  t.same(readdirSync(w), ['target'], 'no temp file left')
  t.equal(readFileSync(path.join(dir, 'inside'), 'utf8'), 'kept')
})
