// Bad input to `kheadersfs pack`: one clear line naming the problem and the fix, a non-zero exit, and
// no output file (nor temp file) left behind.
import { execFileSync, spawn } from 'node:child_process'
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { tempPathFor } from '../../src/fs-atomic'
import { errorLines, CLI, run, runCli, shellStatus } from '../helpers/cli'
import { debianTree } from '../helpers/debian'
import { tmpDir } from '../helpers/tmp'
import { tinyTree } from '../helpers/tiny-tree'

const quiet = { KHEADERSFS_LOG_LEVEL: 'error' }

t.test('each bad input: its error, its exit code, no file', async (t) => {
  const cases: Array<[string, (w: string) => string[], number, RegExp]> = [
    ['no --kernel', () => ['pack'], 2, /--kernel DIR is required/],
    [
      '--kernel does not exist',
      (w) => ['pack', '--kernel', path.join(w, 'nope')],
      7,
      /Cannot read kernel tree .*nope: ENOENT: no such file or directory; pass --kernel/,
    ],
    ['not a kernel tree', (w) => ['pack', '--kernel', w], 7, /not a kernel build tree \(no Makefile and include\/\)/],
    [
      'no release',
      (w) => [
        'pack',
        '--kernel',
        tinyTree(path.join(w, 'k'), { omit: ['include/generated/utsrelease.h', 'include/config/kernel.release'] }),
      ],
      7,
      /Cannot find the kernel release .*make modules_prepare.*--release/,
    ],
    [
      'no arch',
      (w) => [
        'pack',
        '--kernel',
        tinyTree(path.join(w, 'k'), {
          omit: ['arch/x86/include/generated/asm/unistd.h', 'include/generated/autoconf.h'],
        }),
      ],
      7,
      /Cannot find the architecture/,
    ],
    [
      'no .config',
      (w) => ['pack', '--kernel', tinyTree(path.join(w, 'k'), { omit: ['.config'] })],
      7,
      /has no \.config; pass --config FILE/,
    ],
    [
      'no auto.conf',
      (w) => ['pack', '--kernel', tinyTree(path.join(w, 'k'), { omit: ['include/config/auto.conf'] })],
      7,
      /include\/config\/auto\.conf is missing; run "make modules_prepare"/,
    ],
    [
      'no Module.symvers',
      (w) => ['pack', '--kernel', tinyTree(path.join(w, 'k'), { omit: ['Module.symvers'] })],
      7,
      /Module\.symvers is missing; run "make modules" in the tree \(or pass --profile headers\)/,
    ],
    [
      'output inside the tree',
      (w) => ['pack', '--kernel', tinyTree(path.join(w, 'k')), '-o', path.join(w, 'k', 'x.img')],
      2,
      /is inside the kernel tree .*pass -o a path outside it/,
    ],
    [
      'output directory missing',
      (w) => ['pack', '--kernel', tinyTree(path.join(w, 'k')), '-o', path.join(w, 'no/dir/x.img')],
      8,
      /Cannot write image .*ENOENT.*create the directory or pass -o/,
    ],
    [
      'output is a directory',
      (w) => ['pack', '--kernel', tinyTree(path.join(w, 'k')), '-o', w],
      2,
      /it is a directory; pass -o a file path/,
    ],
    [
      'bad --xz-preset',
      (w) => ['pack', '--kernel', w, '--xz-preset', '0'],
      2,
      /Cannot use --xz-preset "0": give a whole number from 1 to 9/,
    ],
    ['bad --block-size', (w) => ['pack', '--kernel', w, '--block-size', 'big'], 2, /Cannot use --block-size "big"/],
    ['bad --threads', (w) => ['pack', '--kernel', w, '--threads', '-1'], 2, /--threads/],
    [
      'bad --profile',
      (w) => ['pack', '--kernel', w, '--profile', 'all'],
      2,
      /Cannot use --profile "all": choose one of module-build, headers/,
    ],
    [
      '--config garbage',
      (w) => {
        writeFileSync(path.join(w, 'cfg'), 'hello')
        return ['pack', '--kernel', tinyTree(path.join(w, 'k')), '--config', path.join(w, 'cfg')]
      },
      7,
      /no CONFIG_ lines in it/,
    ],
    ['empty value', () => ['pack', '--kernel', ''], 2, /Cannot use --kernel "": give it a value/],
    ['unknown option', (w) => ['pack', '--kernal', w], 2, /Unknown option '--kernal'.*see "kheadersfs pack --help"/],
  ]
  for (const [name, args, code, re] of cases) {
    const w = tmpDir(t)
    const r = await runCli(args(w), { cwd: w, env: quiet })
    t.equal(r.code, code, `${name}: exit ${code}`)
    const lines = errorLines(r.stderr)
    t.equal(lines.length, 1, `${name}: one line: ${lines.join(' | ')}`)
    t.match(lines[0] ?? '', re, name)
    const left = readdirSync(w).filter((f) => f.endsWith('.img') || f.includes('kheadersfs-tmp'))
    t.same(left, [], `${name}: no image or temp file`)
  }
})

t.test(
  'an unreadable file is named (run as nobody, who cannot read a 0000 header)',
  { skip: process.getuid?.() !== 0 && 'needs root to switch users' },
  async (t) => {
    const w = tmpDir(t)
    chmodSync(w, 0o755)
    const tree = tinyTree(path.join(w, 'k'))
    chmodSync(path.join(tree, 'include/linux/types.h'), 0o000)
    const out = path.join(w, 'out')
    mkdirSync(out)
    chownSync(out, 65534, 65534)
    const r = await run(
      'runuser',
      ['-u', 'nobody', '--', process.execPath, CLI, 'pack', '--kernel', tree, '-o', path.join(out, 'x.img')],
      { env: quiet },
    )
    t.equal(r.code, 7)
    t.match(
      errorLines(r.stderr)[0],
      /Cannot read .*include\/linux\/types\.h \(include\/linux\/types\.h\): EACCES: permission denied; make it readable/,
    )
    t.same(readdirSync(out), [])
  },
)

t.test('FIFOs and device nodes in the tree are skipped by name; the image is made', async (t) => {
  const w = tmpDir(t)
  const tree = tinyTree(path.join(w, 'k'))
  execFileSync('mkfifo', [path.join(tree, 'include/linux/pipe.h')])
  execFileSync('mknod', [path.join(tree, 'include/linux/dev.h'), 'c', '1', '3'])
  const r = await runCli(['pack', '--kernel', tree, '-o', path.join(w, 'x.img')], {
    env: { KHEADERSFS_LOG_LEVEL: 'warn' },
  })
  t.equal(r.code, 0, r.stderr)
  t.match(r.stderr, /skipped include\/linux\/pipe\.h: FIFO, not a regular file/)
  t.match(r.stderr, /skipped include\/linux\/dev\.h: character device, not a regular file/)
  t.ok(existsSync(path.join(w, 'x.img')))
})

t.test(
  'SIGINT while packing: exit 130, no image, no temp file',
  { skip: debianTree() === undefined && 'needs the Debian tree for a pack that lasts long enough' },
  async (t) => {
    const w = tmpDir(t)
    const out = path.join(w, 'x.img')
    const child = spawn(process.execPath, [CLI, 'pack', '--kernel', debianTree()!.objtree, '-o', out], {
      env: { ...process.env, KHEADERSFS_LOG_LEVEL: 'info' },
    })
    let err = ''
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString()
      if (err.includes('kheadersfs: packing')) child.kill('SIGINT')
    })
    const code = await new Promise<number | null>((r) => child.on('exit', (c, sig) => r(shellStatus(c, sig))))
    t.equal(code, 130)
    t.match(err, /^kheadersfs pack: interrupted by SIGINT; no image was written$/m)
    t.same(readdirSync(w), [])
  },
)

t.test('a temp file left by a killed pack is recognized and removed by the next pack', async (t) => {
  const w = tmpDir(t)
  const tree = tinyTree(path.join(w, 'k'))
  const out = path.join(w, 'x.img')
  const stale = tempPathFor(out, 999_999_999)
  writeFileSync(stale, 'half an image')
  const r = await runCli(['pack', '--kernel', tree, '-o', out], { env: { KHEADERSFS_LOG_LEVEL: 'warn' } })
  t.equal(r.code, 0, r.stderr)
  t.notOk(existsSync(stale))
  t.match(r.stderr, /removed a temp file left by an interrupted pack/)
  t.same(readdirSync(w).sort(), ['k', 'x.img'])
})
