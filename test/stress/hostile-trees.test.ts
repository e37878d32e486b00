// Hostile kernel trees given to `kheadersfs pack`: every oddity is skipped by name (the image is
// still made) or refused with one line, pack never hangs, and nothing outside the tree reaches the
// archive. A link that leads out of the tree is refused (no image), also when it only gets out
// through other links or is one of the top-level files; the one link followed out of the tree is a
// split tree's top-level scripts (or tools) link into Debian's linux-kbuild-<version>.
import { execFileSync, spawnSync } from 'node:child_process'
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs'
import path from 'node:path'
import t, { type Test } from 'tap'
import type { FileType } from '../../src/image/format'
import { parseImage } from '../../src/image/read'
import { errorLines, run, runCli } from '../helpers/cli'
import { record } from '../helpers/stress'
import { tinyTree, TINY_RELEASE } from '../helpers/tiny-tree'
import { tmpDir } from '../helpers/tmp'

interface Outcome {
  code: number | null
  stderr: string
  /** The image file exists after pack. */
  made: boolean
  /** Archive paths and their types, when an image was made. */
  paths: Map<string, FileType>
  /** Every file's bytes in the archive, concatenated (to look for content from outside the tree). */
  bytes: Buffer
}

async function pack(t: Test, tree: string, extraArgs: string[] = []): Promise<Outcome> {
  const out = path.join(tmpDir(t), 'x.img')
  const r = await runCli(['pack', '--kernel', tree, '-o', out, ...extraArgs], { env: { KHEADERSFS_LOG_LEVEL: 'warn' } })
  const made = existsSync(out)
  if (r.code !== 0 || !made) return { code: r.code, stderr: r.stderr, made, paths: new Map(), bytes: Buffer.alloc(0) }
  const img = parseImage(readFileSync(out), out)
  const tar = execFileSync('xz', ['-dc'], { input: img.headers, maxBuffer: 1 << 30 })
  return {
    code: r.code,
    stderr: r.stderr,
    made,
    paths: new Map(img.manifest.files.map((f) => [f.path, f.type])),
    bytes: tar,
  }
}

/** The warning pack logs for a skipped path (JSON log line, or a human line on a terminal). */
const skipped = (stderr: string, rel: string, why: RegExp): boolean =>
  stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { path?: string; reason?: string })
    .some((r) => r.path === rel && why.test(r.reason ?? ''))

/** Refused: exit 7, no image, one line on stderr that holds every one of `says`, and no stack trace. */
const refused = (o: Outcome, ...says: string[]): boolean[] => {
  const lines = errorLines(o.stderr)
  return [
    o.code === 7,
    !o.made,
    lines.length === 1,
    ...says.map((s) => (lines[0] ?? '').includes(s)),
    !/RangeError|Maximum call stack|^\s+at /m.test(o.stderr),
  ]
}

/** What pack says of a link whose physical target is outside the tree. */
const leadsOut = (tree: string, rel: string, target: string, real: string): string =>
  `kheadersfs: Cannot pack ${tree}: ${rel} is a symlink to ${target}, which leads to ${real}, outside the kernel tree (`

/**
 * What pack says of a kept link that resolves outside the archive through the archive's own links: the
 * link, its target, that it does not resolve inside the archive, and why (the link it climbs through).
 */
const climbsOut = (tree: string, rel: string, target: string, via: string): string[] => [
  `kheadersfs: Cannot pack ${tree}: ${rel} is a symlink to ${target}, which does not resolve inside the archive: `,
  `it climbs above the archive's root (through ${via})`,
  '; replace it with the file it should name',
]

/**
 * `levels` directories named d below `dir`, a header at the bottom. Made one level at a time from
 * inside (a 10,000-deep path is 20 kB, far over PATH_MAX, so no absolute path reaches the bottom).
 */
function nest(dir: string, levels: number): void {
  const r = spawnSync('python3', [
    '-c',
    'import os,sys\nos.chdir(sys.argv[1])\nfor _ in range(int(sys.argv[2])):\n  os.mkdir("d"); os.chdir("d")\nopen("deep.h","w").write("#define DEEP 1\\n")',
    dir,
    String(levels),
  ])
  if (r.status !== 0) throw new Error(r.stderr.toString())
}

t.test('hostile kernel trees: skipped by name or refused, never read outside, never hang', async (t) => {
  const outside = tmpDir(t)
  const secret = `kheadersfs-secret-${process.pid}-${Date.now()}`
  writeFileSync(path.join(outside, 'secret.h'), `#define SECRET "${secret}"\n`)
  mkdirSync(path.join(outside, 'dir'))
  writeFileSync(path.join(outside, 'dir', 'inner.h'), `#define INNER "${secret}"\n`)
  const secretFile = path.join(realpathSync(outside), 'secret.h')
  /** From a directory of the tree, the relative path that reaches `outside` by climbing physically. */
  const toOutside = (from: string): string => path.relative(realpathSync(from), secretFile)

  // One row of figures for the classes this suite always had, one for those added with confinement.
  const rows = { classic: { tried: 0, passed: 0 }, confined: { tried: 0, passed: 0 } }
  const check = async (
    name: string,
    /** Change the tree `k` (its parent directory is this case's own); may return a cleanup. */
    build: (k: string) => void | (() => void) | Promise<void>,
    expect: (o: Outcome, k: string) => boolean[],
    opts: { row?: keyof typeof rows; args?: (k: string) => string[] } = {},
  ): Promise<void> => {
    await t.test(name, async (t) => {
      const k = realpathSync(tinyTree(path.join(tmpDir(t), 'k')))
      const cleanup = await build(k)
      let o: Outcome
      try {
        o = await pack(t, k, opts.args?.(k))
      } finally {
        if (typeof cleanup === 'function') cleanup()
      }
      const results = expect(o, k).map((ok, i) => t.ok(ok, `${name}: check ${i + 1}`))
      const clean = t.notOk(o.bytes.includes(secret), `${name}: nothing from outside the tree in the archive`)
      const row = rows[opts.row ?? 'classic']
      row.tried++
      if (results.every(Boolean) && clean) row.passed++
      else t.comment(o.stderr)
    })
  }

  await check(
    'symlink to a file outside the tree (absolute): refused',
    (k) => symlinkSync(path.join(outside, 'secret.h'), path.join(k, 'include/linux/evil.h')),
    (o, k) => refused(o, leadsOut(k, 'include/linux/evil.h', path.join(outside, 'secret.h'), secretFile)),
  )
  await check(
    'symlink to a file outside the tree (relative ../../..): refused',
    (k) => symlinkSync(toOutside(path.join(k, 'include/linux')), path.join(k, 'include/linux/evil2.h')),
    (o, k) =>
      refused(
        o,
        leadsOut(k, 'include/linux/evil2.h', toOutside(path.join(k, 'include/linux')), secretFile),
        'replace the link with what it points at, or pass --sysroot ROOT',
      ),
  )
  await check(
    'symlink to a directory outside the tree: refused',
    (k) => symlinkSync(path.join(outside, 'dir'), path.join(k, 'include/evil-dir')),
    (o, k) =>
      refused(o, leadsOut(k, 'include/evil-dir', path.join(outside, 'dir'), path.join(realpathSync(outside), 'dir'))),
  )
  await check(
    'symlink loop (absolute, a → a)',
    (k) => symlinkSync(path.join(k, 'include/linux/loop.h'), path.join(k, 'include/linux/loop.h')),
    (o) => [o.code === 0, skipped(o.stderr, 'include/linux/loop.h', /symlink loop/)],
  )
  await check(
    'symlink loop (relative, a → b → a): refused, never followed (an image holding it is refused at load)',
    (k) => {
      symlinkSync('b.h', path.join(k, 'include/linux/a.h'))
      symlinkSync('a.h', path.join(k, 'include/linux/b.h'))
    },
    (o, k) =>
      refused(
        o,
        `kheadersfs: Cannot pack ${k}: include/linux/a.h is a symlink to b.h, which does not resolve inside the archive: `,
        'it loops: more than 40 links in a row',
      ),
  )
  await check(
    'directory symlink back to an ancestor (absolute): the walk does not recurse forever',
    (k) => symlinkSync(path.join(k, 'include'), path.join(k, 'include/linux/again')),
    (o) => [
      o.code === 0,
      skipped(o.stderr, 'include/linux/again', /symlink loop/),
      ![...o.paths.keys()].some((p) => p.includes('again/')),
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
      ![...o.paths.keys()].some((p) => p.includes('\n')),
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

  // Links that get out of the tree in ways the walk used to let through, and deep trees.
  const confined = { row: 'confined' as const }
  await check(
    'top-level Module.symvers, a link to a file outside the tree: refused (it used to be archived)',
    (k) => {
      rmSync(path.join(k, 'Module.symvers'))
      symlinkSync(path.join(outside, 'secret.h'), path.join(k, 'Module.symvers'))
    },
    (o, k) => refused(o, leadsOut(k, 'Module.symvers', path.join(outside, 'secret.h'), secretFile)),
    confined,
  )
  await check(
    'top-level scripts, a link to a directory outside the tree that is no linux-kbuild: refused',
    (k) => {
      const elsewhere = path.join(path.dirname(k), 'elsewhere', 'scripts')
      mkdirSync(path.dirname(elsewhere))
      renameSync(path.join(k, 'scripts'), elsewhere)
      writeFileSync(path.join(elsewhere, 'evil.h'), `#define EVIL "${secret}"\n`)
      symlinkSync(elsewhere, path.join(k, 'scripts'))
    },
    (o, k) => {
      const elsewhere = path.join(path.dirname(k), 'elsewhere', 'scripts')
      return refused(o, leadsOut(k, 'scripts', elsewhere, elsewhere))
    },
    confined,
  )
  const KBUILD_MARK = '# linux-kbuild-9.9 Makefile.build, from outside the tree'
  await check(
    "top-level scripts, a relative link to .../linux-kbuild-9.9/scripts outside the tree (Debian's split tree): followed and packed",
    (k) => {
      const kbuild = path.join(path.dirname(k), 'usr', 'lib', 'linux-kbuild-9.9', 'scripts')
      mkdirSync(path.dirname(kbuild), { recursive: true })
      renameSync(path.join(k, 'scripts'), kbuild)
      writeFileSync(path.join(kbuild, 'Makefile.build'), `${KBUILD_MARK}\n`)
      symlinkSync(path.relative(k, kbuild), path.join(k, 'scripts'))
    },
    (o) => [
      o.code === 0 && o.made,
      o.paths.get('scripts') === 'directory',
      o.paths.get('scripts/Makefile.build') === 'file',
      o.paths.get('scripts/basic/fixdep') === 'file',
      o.bytes.includes(KBUILD_MARK),
    ],
    confined,
  )
  await check(
    'include/up -> .. and include/linux/evil.h -> ../up/../../OUTSIDE/secret.h (out only through the other link): refused',
    (k) => {
      symlinkSync('..', path.join(k, 'include/up'))
      // Read lexically the target stays in the tree; physically, up is the tree's root and ../.. climbs out.
      const target = `../up/../${path.relative(path.dirname(k), secretFile)}`
      symlinkSync(target, path.join(k, 'include/linux/evil.h'))
      if (!readFileSync(path.join(k, 'include/linux/evil.h'), 'utf8').includes(secret))
        throw new Error(`${target} does not reach the secret`)
    },
    (o, k) =>
      refused(
        o,
        ...climbsOut(k, 'include/linux/evil.h', `../up/../${path.relative(path.dirname(k), secretFile)}`, 'include/up'),
      ),
    confined,
  )
  await check(
    'a chain of relative links, each text inside the tree, whose last target is outside: refused',
    (k) => {
      // evil.h -> hop1.h -> ../asm-generic/hop2.h -> ../sub/top/../../OUTSIDE/secret.h, top -> ../..
      mkdirSync(path.join(k, 'include/sub'))
      mkdirSync(path.join(k, 'include/asm-generic'))
      symlinkSync('../..', path.join(k, 'include/sub/top'))
      const hop2 = `../sub/top/../${path.relative(path.dirname(k), secretFile)}`
      symlinkSync(hop2, path.join(k, 'include/asm-generic/hop2.h'))
      symlinkSync('../asm-generic/hop2.h', path.join(k, 'include/linux/hop1.h'))
      symlinkSync('hop1.h', path.join(k, 'include/linux/evil.h'))
      for (const [from, to] of [
        ['include/sub', '../..'],
        ['include/asm-generic', hop2],
        ['include/linux', '../asm-generic/hop2.h'],
        ['include/linux', 'hop1.h'],
      ]) {
        const lexical = path.posix.normalize(path.posix.join(from, to))
        if (lexical === '..' || lexical.startsWith('../')) throw new Error(`${from}/${to} is not inside lexically`)
      }
      if (!readFileSync(path.join(k, 'include/linux/evil.h'), 'utf8').includes(secret))
        throw new Error('the chain does not reach the secret')
    },
    (o, k) =>
      refused(
        o,
        ...climbsOut(
          k,
          'include/asm-generic/hop2.h',
          `../sub/top/../${path.relative(path.dirname(k), secretFile)}`,
          'include/sub/top',
        ),
      ),
    confined,
  )
  await check(
    '--sysroot given, tree outside it, a relative link climbing into neither the tree nor the sysroot: refused',
    (k) => {
      mkdirSync(path.join(path.dirname(k), 'root', 'usr', 'src'), { recursive: true })
      symlinkSync(toOutside(path.join(k, 'include/linux')), path.join(k, 'include/linux/evil.h'))
    },
    (o, k) => {
      const root = path.join(path.dirname(k), 'root')
      const line = errorLines(o.stderr)[0] ?? ''
      return [
        ...refused(
          o,
          `${leadsOut(k, 'include/linux/evil.h', toOutside(path.join(k, 'include/linux')), secretFile)}${k}, ${root}); `,
        ),
        line.endsWith('; replace the link with what it points at'), // --sysroot was given: no hint to pass it
      ]
    },
    { ...confined, args: (k) => ['--sysroot', path.join(path.dirname(k), 'root')] },
  )
  for (const levels of [70, 10_000]) {
    await check(
      `a tree ${levels.toLocaleString('en-US')} directories deep: refused with one line, no stack overflow`,
      (k) => {
        nest(path.join(k, 'include'), levels)
        // rmSync walks by absolute path (ENAMETOOLONG this deep); GNU rm descends by descriptor.
        return () => execFileSync('rm', ['-rf', path.join(k, 'include', 'd')])
      },
      (o, k) =>
        refused(
          o,
          `kheadersfs: Cannot pack ${k}: include/d/d/... is nested 64 or more directories deep`,
          '; no kernel tree is, remove it',
        ),
      confined,
    )
  }

  await t.test('an empty tree is refused with one line', async (t) => {
    const k = path.join(tmpDir(t), 'empty')
    mkdirSync(k)
    const o = await pack(t, k)
    const ok = [
      t.equal(o.code, 7),
      t.equal(errorLines(o.stderr).length, 1, errorLines(o.stderr).join(' | ')),
      t.match(errorLines(o.stderr)[0], /^kheadersfs: Cannot pack .*empty: /),
    ].every(Boolean)
    rows.classic.tried++
    if (ok) rows.classic.passed++
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
      rows.classic.tried++
      if (ok) rows.classic.passed++
    },
  )

  record({
    area: 'Hostile input',
    name: 'Kernel trees: links out of the tree, symlink and directory loops, device nodes, FIFO, socket, newline and non-UTF-8 names, a 2 GB file, an empty tree, an unreadable file',
    tried: rows.classic.tried,
    passed: rows.classic.passed,
    detail:
      'links out of the tree refused with one line naming the link and where it leads, no image; the rest skipped by name (image made) or refused with one line; no byte from outside the tree in any archive',
  })
  record({
    area: 'Hostile input',
    name: "Kernel trees: top-level links out of the tree (Module.symvers, scripts), Debian's linux-kbuild scripts link, links that climb out only through other links (one hop and a chain), a link out with --sysroot, trees 70 and 10,000 directories deep",
    tried: rows.confined.tried,
    passed: rows.confined.passed,
    detail:
      'refused with one line (exit 7, no image, no stack trace); the linux-kbuild-9.9/scripts link followed and its files packed',
  })
  t.equal(rows.classic.passed, rows.classic.tried, 'every hostile tree of the first classes handled')
  t.equal(rows.confined.passed, rows.confined.tried, 'every link and depth case handled')
})
