import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import type { SourceEntry } from '../../src/pack/entries'
import { buildHeadersTxz } from '../../src/pack/headers-txz'
import { listTar, xzDecode } from '../../src/image/verify'
import { tmpDir } from '../helpers/tmp'

const file = (p: string, data: string | Buffer, extra: Partial<SourceEntry> = {}): SourceEntry => {
  const b = Buffer.isBuffer(data) ? data : Buffer.from(data)
  return { path: p, type: 'file', mode: 0o644, data: b, size: b.length, strip: p.endsWith('.h'), ...extra }
}
const dir = (p: string): SourceEntry => ({ path: p, type: 'directory', mode: 0o755, size: 0, strip: false })
const LONG = 'include/' + 'long-directory-name/'.repeat(8) + 'x.h' // > 255 bytes: needs a pax header
const ENTRIES: SourceEntry[] = [
  file('big.bin', Buffer.alloc(300_000, 7)),
  dir('include'),
  file('include/a.h', '/* gone */\n#define A 1 // gone too\n'),
  { path: 'include/b.h', type: 'symlink', mode: 0o777, linkname: 'a.h', size: 0, strip: false },
  dir(path.posix.dirname(LONG)),
  file(LONG, '#define LONG 1\n'),
  dir('scripts'),
  file('scripts/fixdep', '#!/bin/sh\n', { mode: 0o755 }),
]

const opts = { preset: 6, blockSize: 64 << 10, threads: 1, epoch: 1_700_000_000, arch: 'x86' }

t.test('normalized tar: uid/gid 0, no owner names, fixed mtime, given modes, comments stripped', async (t) => {
  const a = await buildHeadersTxz(ENTRIES, opts)
  const tar = await xzDecode(a.txz)
  t.equal(tar.length, a.tarSize)
  const w = tmpDir(t)
  writeFileSync(path.join(w, 'a.tar'), tar)
  const listing = execFileSync('tar', ['--numeric-owner', '--full-time', '-tvf', path.join(w, 'a.tar')], {
    env: { TZ: 'UTC' },
  }).toString()
  for (const line of listing.trim().split('\n'))
    t.match(line, /^([-d]rw[-x]r-[-x]r-[-x]|lrwxrwxrwx) 0\/0 +\d+ 2023-11-14 22:13:20 /, line)
  t.match(listing, /^-rwxr-xr-x .* scripts\/fixdep$/m)
  t.match(listing, /^lrwxrwxrwx .* include\/b\.h -> a\.h$/m)
  execFileSync('tar', ['-xf', path.join(w, 'a.tar'), '-C', w])
  t.equal(execFileSync('cat', [path.join(w, 'include/a.h')]).toString(), ' \n#define A 1  \n')
  t.equal(
    a.rawBytes,
    ENTRIES.reduce((n, e) => n + (e.data?.length ?? 0), 0),
  )
  t.ok(a.strippedBytes < a.rawBytes)
})

t.test("recorded offsets point at each file's bytes in the tar (incl. pax long names)", async (t) => {
  const a = await buildHeadersTxz(ENTRIES, opts)
  const tar = await xzDecode(a.txz)
  const listed = await listTar(tar)
  t.same(
    listed.map((f) => f.path),
    a.files.map((f) => f.path),
  )
  for (const f of a.files.filter((f) => f.type === 'file')) {
    const got = listed.find((l) => l.path === f.path)!
    t.equal(f.offset, got.offset, `${f.path} offset`)
    t.equal(f.size, got.size)
  }
  const big = a.files.find((f) => f.path === 'big.bin')!
  t.ok(tar.subarray(big.offset, big.offset + big.size).equals(Buffer.alloc(300_000, 7)))
})

t.test('same bytes whatever the thread count; several independent blocks', async (t) => {
  const one = await buildHeadersTxz(ENTRIES, { ...opts, threads: 1 })
  const two = await buildHeadersTxz(ENTRIES, { ...opts, threads: 2 })
  const all = await buildHeadersTxz(ENTRIES, { ...opts, threads: 0 })
  t.ok(one.txz.equals(two.txz) && one.txz.equals(all.txz), 'identical xz output')
  const w = tmpDir(t)
  writeFileSync(path.join(w, 'a.txz'), one.txz)
  const robot = execFileSync('xz', ['--robot', '--list', path.join(w, 'a.txz')]).toString()
  const blocks = Number(/^file\t\d+\t(\d+)/m.exec(robot)![1])
  t.ok(blocks >= 5, `${blocks} xz blocks for ${one.tarSize} bytes of tar at 64 KiB blocks`)
  t.match(robot, /CRC64/)
})

t.test('abort stops the archive with the signal reason', async (t) => {
  const ac = new AbortController()
  ac.abort(new Error('stop now'))
  await t.rejects(buildHeadersTxz(ENTRIES, { ...opts, signal: ac.signal }), { message: 'stop now' })
})

t.test('a file that cannot be read is named', async (t) => {
  await t.rejects(
    buildHeadersTxz(
      [{ path: 'x.h', type: 'file', mode: 0o644, source: '/nonexistent/x.h', size: 1, strip: true }],
      opts,
    ),
    {
      exitCode: 7,
      message: /Cannot read \/nonexistent\/x\.h \(x\.h\): ENOENT/,
    },
  )
})
