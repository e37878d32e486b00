// Files that are not images, and real images that are damaged, through the real CLI: info, verify,
// verify --json and mount each say "not a kheadersfs image (…)" for the first and the precise reason
// for the second, with exit 4 (3 for a missing file), and a mount leaves nothing behind.
import { copyFileSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { gzipSync } from 'node:zlib'
import t from 'tap'
import { errorLines, runCli } from '../helpers/cli'
import { tinyImage } from '../helpers/images'
import { daemonPids, isMounted, mountDirs } from '../helpers/mount'
import { tmpDir } from '../helpers/tmp'

interface Report {
  filename: string
  verified: boolean
  checks: Array<{ name: string; ok: boolean; detail: string }>
}

const FIX = '; give an image written by "kheadersfs pack"'

t.test('not an image, or a damaged one: info, verify, verify --json, mount', async (t) => {
  const good = await tinyImage(t)
  const dir = tmpDir(t)
  const file = (name: string, bytes: Buffer): string => {
    const f = path.join(dir, name)
    writeFileSync(f, bytes)
    return f
  }
  const elf = path.join(dir, 'node.bin')
  copyFileSync(process.execPath, elf)
  const foreign = (what: string): RegExp => new RegExp(`^not a kheadersfs image \\(${what}\\)${esc(FIX)}$`)
  const cases: Array<{ name: string; path: string; code: number; check: string; why: RegExp }> = [
    ['text', file('notes.txt', Buffer.from('hello\n')), 'it looks like text'],
    ['ELF', elf, 'it looks like an ELF program or library'],
    ['gzip', file('x.gz', gzipSync(Buffer.from('hello'))), 'it looks like gzip data'],
    ['empty', file('empty.img', Buffer.alloc(0)), 'the file is empty'],
  ].map(([name, p, what]) => ({ name, path: p, code: 4, check: 'container', why: foreign(what) }))
  const bytes = readFileSync(good)
  const flipped = Buffer.from(bytes)
  flipped[bytes.length - 2000] ^= 0x10
  cases.push(
    {
      name: 'truncated image',
      path: file('cut.img', bytes.subarray(0, 3000)),
      code: 4,
      check: 'container',
      why: /^truncated[ :]/,
    },
    {
      name: 'bit-flipped image',
      path: file('flip.img', flipped),
      code: 4,
      check: 'container',
      why: /bad checksum \(corrupted\)|padding|end-of-archive/,
    },
    { name: 'missing file', path: path.join(dir, 'none.img'), code: 3, check: 'file', why: /^no such file; / },
  )

  for (const c of cases) {
    t.test(c.name, async (t) => {
      const info = await runCli(['info', c.path])
      t.equal(info.code, c.code, `info exits ${c.code}`)
      t.equal(info.stdout, '')
      const line = errorLines(info.stderr)
      t.equal(line.length, 1, 'info: one line')
      t.match(line[0], new RegExp(`^kheadersfs: Cannot (use|read) image ${esc(c.path)}: `), 'info names the file')
      t.match(line[0].replace(/^kheadersfs: Cannot (use|read) image [^:]*: /, ''), c.why, 'info says why')
      if (c.code === 4 && !c.why.source.startsWith('^not a'))
        t.notMatch(line[0], /not a kheadersfs image/, 'a damaged image is not called foreign')

      const verify = await runCli(['verify', c.path])
      t.equal(verify.code, c.code, `verify exits ${c.code}`)
      t.same(errorLines(verify.stderr), line, 'verify: the same one line')
      t.match(verify.stdout, new RegExp(`^FAIL ${c.check} +`, 'm'), 'verify: a FAIL line')

      const json = await runCli(['verify', '--json', c.path])
      t.equal(json.code, c.code, `verify --json exits ${c.code}`)
      const report = JSON.parse(json.stdout) as Report
      t.same(Object.keys(report), ['filename', 'verified', 'checks'])
      t.equal(report.filename, c.path)
      t.equal(report.verified, false)
      const failed = report.checks.filter((x) => !x.ok)
      t.same(
        failed.map((x) => x.name),
        [c.check],
        'one failed check, named',
      )
      t.match(failed[0]?.detail ?? '', c.why, 'its detail says why')
      t.same(errorLines(json.stderr), line, 'verify --json: the same one line on stderr')

      const { mnt, env, runDir } = mountDirs(t)
      const mount = await runCli(['mount', '--force', '--image', c.path, mnt], { env })
      t.equal(mount.code, c.code, `mount exits ${c.code}`)
      const mline = errorLines(mount.stderr)
      t.equal(mline.length, 1, `mount: one line (${mline.join(' | ')})`)
      t.match(mline[0] ?? '', new RegExp(`^kheadersfs: Cannot (use|read) image ${esc(c.path)}: `))
      t.match((mline[0] ?? '').replace(/^kheadersfs: Cannot (use|read) image [^:]*: /, ''), c.why, 'mount says why')
      t.notOk(isMounted(mnt), 'nothing mounted')
      t.same(daemonPids(runDir), [], 'no daemon')
      t.same(
        existsSync(runDir) ? readdirSync(runDir).filter((f) => !f.endsWith('.log')) : [],
        [],
        'no state or pid file',
      )
    })
  }
})

function esc(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
}
