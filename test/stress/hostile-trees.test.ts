// Hostile kernel trees given to `kheadersfs pack`: every oddity is skipped by name (the image is
// still made) or refused with one line, pack never hangs, and nothing outside the tree reaches the
// archive except the documented dereference of a split tree's top-level links.
import { execFileSync, spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, readFileSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t, { type Test } from 'tap'
import { parseImage } from '../../src/image/read'
import { errorLines, run, runCli } from '../helpers/cli'
import { record } from '../helpers/stress'
import { tinyTree, TINY_RELEASE } from '../helpers/tiny-tree'
import { tmpDir } from '../helpers/tmp'

interface Outcome {
  code: number | null
  stderr: string
  /** Archive paths, when an image was made. */
  paths: Set<string>
  /** Every file's bytes in the archive, concatenated (to look for content from outside the tree). */
  bytes: Buffer
}

async function pack(t: Test, tree: string, extraArgs: string[] = []): Promise<Outcome> {
  const out = path.join(tmpDir(t), 'x.img')
  const r = await runCli(['pack', '--kernel', tree, '-o', out, ...extraArgs], { env: { KHEADERSFS_LOG_LEVEL: 'warn' } })
  if (r.code !== 0 || !existsSync(out))
    return { code: r.code, stderr: r.stderr, paths: new Set(), bytes: Buffer.alloc(0) }
  const img = parseImage(readFileSync(out), out)
  const tar = execFileSync('xz', ['-dc'], { input: img.headers, maxBuffer: 1 << 30 })
  return { code: r.code, stderr: r.stderr, paths: new Set(img.manifest.files.map((f) => f.path)), bytes: tar }
}

/** The warning pack logs for a skipped path (JSON log line, or a human line on a terminal). */
const skipped = (stderr: string, rel: string, why: RegExp): boolean =>
  stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { path?: string; reason?: string })
    .some((r) => r.path === rel && why.test(r.reason ?? ''))

t.test('hostile kernel trees: skipped by name or refused, never read outside, never hang', async (t) => {
  const outside = tmpDir(t)
  const secret = `kheadersfs-secret-${process.pid}-${Date.now()}`
  writeFileSync(path.join(outside, 'secret.h'), `#define SECRET "${secret}"\n`)
  mkdirSync(path.join(outside, 'dir'))
  writeFileSync(path.join(outside, 'dir', 'inner.h'), `#define INNER "${secret}"\n`)

  let tried = 0
  let passed = 0
  const check = async (
    name: string,
    build: (tree: string) => void | Promise<void>,
    expect: (o: Outcome) => boolean[],
  ): Promise<void> => {
    await t.test(name, async (t) => {
      const tree = tinyTree(path.join(tmpDir(t), 'k'))
      await build(tree)
      const o = await pack(t, tree)
      const results = expect(o).map((ok, i) => t.ok(ok, `${name}: check ${i + 1}`))
      const clean = t.notOk(o.bytes.includes(secret), `${name}: nothing from outside the tree in the archive`)
      tried++
      if (results.every(Boolean) && clean) passed++
      else t.comment(o.stderr)
    })
  }

  await check(
    'symlink to a file outside the tree (absolute)',
    (k) => symlinkSync(path.join(outside, 'secret.h'), path.join(k, 'include/linux/evil.h')),
    (o) => [
      o.code === 0,
      skipped(o.stderr, 'include/linux/evil.h', /outside the kernel tree/),
      !o.paths.has('include/linux/evil.h'),
    ],
  )
  await check(
    'symlink to a file outside the tree (relative ../../..)',
    (k) =>
      symlinkSync(
        path.relative(path.join(k, 'include/linux'), path.join(outside, 'secret.h')),
        path.join(k, 'include/linux/evil2.h'),
      ),
    (o) => [o.code === 0, skipped(o.stderr, 'include/linux/evil2.h', /outside the kernel tree/)],
  )
  await check(
    'symlink to a directory outside the tree',
    (k) => symlinkSync(path.join(outside, 'dir'), path.join(k, 'include/evil-dir')),
    (o) => [
      o.code === 0,
      skipped(o.stderr, 'include/evil-dir', /outside the kernel tree/),
      ![...o.paths].some((p) => p.startsWith('include/evil-dir/')),
    ],
  )
  await check(
    'symlink loop (absolute, a → a)',
    (k) => symlinkSync(path.join(k, 'include/linux/loop.h'), path.join(k, 'include/linux/loop.h')),
    (o) => [o.code === 0, skipped(o.stderr, 'include/linux/loop.h', /symlink loop/)],
  )
  await check(
    'symlink loop (relative, a → b → a): kept as links, never followed',
    (k) => {
      symlinkSync('b.h', path.join(k, 'include/linux/a.h'))
      symlinkSync('a.h', path.join(k, 'include/linux/b.h'))
    },
    (o) => [o.code === 0, o.paths.has('include/linux/a.h') && o.paths.has('include/linux/b.h')],
  )
  await check(
    'directory symlink back to an ancestor (absolute): the walk does not recurse forever',
    (k) => symlinkSync(path.join(k, 'include'), path.join(k, 'include/linux/again')),
    (o) => [
      o.code === 0,
      skipped(o.stderr, 'include/linux/again', /symlink loop/),
      ![...o.paths].some((p) => p.includes('again/')),
    ],
  )
  await check(
    'character and block device nodes',
    (k) => {
      execFileSync('mknod', [path.join(k, 'include/linux/null.h'), 'c', '1', '3'])
      execFileSync('mknod', [path.join(k, 'include/linux/disk.h'), 'b', '7', '0'])
    },
    (o) => [
      o.code === 0,
      skipped(o.stderr, 'include/linux/null.h', /character device/),
      skipped(o.stderr, 'include/linux/disk.h', /block device/),
    ],
  )
  await check(
    'FIFO (pack must not block on it)',
    (k) => {
      execFileSync('mkfifo', [path.join(k, 'include/linux/pipe.h')])
    },
    (o) => [o.code === 0, skipped(o.stderr, 'include/linux/pipe.h', /FIFO/)],
  )
  await check(
    'socket',
    (k) => {
      // bind() makes the socket file, and it stays when the process exits (node's close() unlinks it).
      execFileSync('python3', [
        '-c',
        'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])',
        path.join(k, 'include/linux/sock.h'),
      ])
    },
    (o) => [o.code === 0, skipped(o.stderr, 'include/linux/sock.h', /socket/)],
  )
  await check(
    'file name with a newline',
    (k) => writeFileSync(path.join(k, 'include/linux/new\nline.h'), '#define X 1\n'),
    (o) => [
      o.code === 0,
      skipped(o.stderr, 'include/linux/new\\nline.h', /not printable UTF-8/),
      ![...o.paths].some((p) => p.includes('\n')),
    ],
  )
  await check(
    'file name that is not UTF-8',
    (k) => {
      const r = spawnSync('sh', [
        '-c',
        `printf '#define Y 1\\n' > "$(printf '${path.join(k, 'include/linux')}/bad\\377name.h')"`,
      ])
      if (r.status !== 0) throw new Error(r.stderr.toString())
    },
    (o) => [o.code === 0, skipped(o.stderr, 'include/linux/bad\u00ffname.h', /not printable UTF-8/)],
  )
  await check(
    'a 2 GB file (sparse)',
    (k) => {
      const f = path.join(k, 'include/linux/huge.h')
      writeFileSync(f, '')
      truncateSync(f, 2 * 2 ** 30)
    },
    (o) => [
      o.code === 0,
      skipped(o.stderr, 'include/linux/huge.h', /2048 MiB, larger than any file a kernel build needs/),
      !o.paths.has('include/linux/huge.h'),
    ],
  )

  await t.test('an empty tree is refused with one line', async (t) => {
    const k = path.join(tmpDir(t), 'empty')
    mkdirSync(k)
    const o = await pack(t, k)
    const ok = [
      t.equal(o.code, 7),
      t.equal(errorLines(o.stderr).length, 1, errorLines(o.stderr).join(' | ')),
      t.match(errorLines(o.stderr)[0], /^kheadersfs: Cannot pack .*empty: /),
    ].every(Boolean)
    tried++
    if (ok) passed++
  })

  await t.test(
    'an unreadable file is refused, named, with no image (pack run as nobody)',
    { skip: process.getuid?.() !== 0 && 'needs root to switch users' },
    async (t) => {
      const base = tmpDir(t)
      chmodSync(base, 0o777)
      const k = tinyTree(path.join(base, 'k'))
      chmodSync(path.join(k, 'include/linux/types.h'), 0)
      const out = path.join(base, 'x.img')
      const r = await run('runuser', [
        '-u',
        'nobody',
        '--',
        process.execPath,
        path.join(__dirname, '..', '..', 'src', 'cli.js'),
        'pack',
        '--kernel',
        k,
        '--release',
        TINY_RELEASE,
        '-o',
        out,
      ])
      const ok = [
        t.equal(r.code, 7, r.stderr),
        t.match(errorLines(r.stderr)[0] ?? '', /Cannot read .*types\.h.*permission denied; make it readable/i),
        t.notOk(existsSync(out)),
      ].every(Boolean)
      tried++
      if (ok) passed++
    },
  )

  record({
    area: 'Hostile input',
    name: 'Kernel trees: links out of the tree, symlink and directory loops, device nodes, FIFO, socket, newline and non-UTF-8 names, a 2 GB file, an empty tree, an unreadable file',
    tried,
    passed,
    detail: 'skipped by name (image made) or refused with one line; no byte from outside the tree in any archive',
  })
  t.equal(passed, tried, 'every hostile tree handled')
})
