import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { detectKernelTree } from '../../src/pack/kernel-tree'
import { selectFiles } from '../../src/pack/select'
import { compareTarPaths } from '../../src/pack/tar-order'
import { tmpDir } from '../helpers/tmp'
import { tinyTree } from '../helpers/tiny-tree'

const env = {}
const paths = async (dir: string, profile: 'headers' | 'module-build') =>
  (await selectFiles(detectKernelTree({ kernel: dir, env }), profile)).entries.map((e) => e.path)

t.test('headers profile: every *.h under include/ and arch/<arch>/include/, parents included', async (t) => {
  const dir = tinyTree(tmpDir(t))
  t.same(await paths(dir, 'headers'), [
    'arch',
    'arch/x86',
    'arch/x86/include',
    'arch/x86/include/asm',
    'arch/x86/include/asm/page.h',
    'arch/x86/include/generated',
    'arch/x86/include/generated/asm',
    'arch/x86/include/generated/asm/unistd.h',
    'include',
    'include/generated',
    'include/generated/autoconf.h',
    'include/generated/utsrelease.h',
    'include/generated/utsversion.h',
    'include/linux',
    'include/linux/kernel.h',
    'include/linux/types.h',
  ])
})

t.test(
  'module-build profile: headers + Makefiles, config, scripts (no junk), symvers; no other arch, no stamps',
  async (t) => {
    const dir = tinyTree(tmpDir(t))
    const sel = await selectFiles(detectKernelTree({ kernel: dir, env }), 'module-build')
    const p = sel.entries.map((e) => e.path)
    for (const want of [
      '.config',
      'Makefile',
      'Module.symvers',
      'arch/x86/Makefile',
      'arch/x86/Makefile_32.cpu',
      'include/config/auto.conf',
      'include/config/kernel.release',
      'scripts/Makefile.build',
      'scripts/basic/fixdep',
    ]) {
      t.ok(p.includes(want), `has ${want}`)
    }
    for (const not of [
      'include/config/MODULES',
      'arch/arm64/include/asm/page.h',
      'arch/x86/kernel/setup.c',
      'scripts/basic/.fixdep.cmd',
      'scripts/mod/modpost.o',
      'Documentation/index.rst',
    ]) {
      t.notOk(p.includes(not), `has no ${not}`)
    }
    const fixdep = sel.entries.find((e) => e.path === 'scripts/basic/fixdep')!
    t.equal(fixdep.mode, 0o755, 'executables keep +x (as 0755)')
    t.equal(sel.entries.find((e) => e.path === 'Makefile')!.mode, 0o644)
    t.ok(sel.entries.find((e) => e.path === 'include/linux/kernel.h')!.strip, 'headers are stripped')
    t.notOk(sel.entries.find((e) => e.path === 'Makefile')!.strip)
  },
)

t.test('module-build names the missing piece and the fix', async (t) => {
  for (const [omit, re] of [
    ['.config', /\.config is missing; pass --config/],
    ['include/config/auto.conf', /auto\.conf is missing; run "make modules_prepare"/],
    ['Module.symvers', /Module\.symvers is missing; run "make modules"/],
    ['scripts/Makefile.build', /scripts\/Makefile\.build is missing/],
  ] as const) {
    const dir = tinyTree(tmpDir(t), { omit: [omit] })
    await t.rejects(
      () => selectFiles(detectKernelTree({ kernel: dir, env }), 'module-build'),
      { exitCode: 7, message: re },
      omit,
    )
  }
})

t.test('objtree wins over srctree; a stub Makefile is replaced by the real one', async (t) => {
  const base = tmpDir(t)
  const src = tinyTree(path.join(base, 'src'), { extra: { 'include/linux/kernel.h': '/* src */\n' } })
  const obj = path.join(base, 'obj')
  mkdirSync(path.join(obj, 'include/linux'), { recursive: true })
  mkdirSync(path.join(obj, 'include/generated'), { recursive: true })
  mkdirSync(path.join(obj, 'arch/x86/include/generated'), { recursive: true })
  writeFileSync(path.join(obj, 'include/generated/utsrelease.h'), '#define UTS_RELEASE "6.9.0-obj"\n')
  writeFileSync(path.join(obj, 'include/linux/kernel.h'), '/* obj wins */\n')
  writeFileSync(path.join(obj, 'Makefile'), `include ${src}/Makefile\n`)
  const sel = await selectFiles(
    detectKernelTree({ kernel: obj, env, config: path.join(src, '.config') }),
    'module-build',
  )
  t.equal(
    sel.entries.find((e) => e.path === 'include/linux/kernel.h')!.source,
    path.join(obj, 'include/linux/kernel.h'),
  )
  t.equal(sel.entries.find((e) => e.path === 'Makefile')!.source, path.join(src, 'Makefile'))
})

t.test(
  "symlinks: inside the tree kept, the split tree's kbuild links followed, dangling ones skipped, others refused",
  async (t) => {
    const base = tmpDir(t)
    const tree = (): string => {
      const dir = tinyTree(path.join(base, `tree-${Math.random().toString(36).slice(2)}`), {
        omit: ['scripts/Makefile.build', 'scripts/basic/fixdep', 'scripts/basic/.fixdep.cmd', 'scripts/mod/modpost.o'],
      })
      rmSync(path.join(dir, 'scripts'), { recursive: true, force: true })
      return dir
    }
    // Debian-style: scripts/ lives in /usr/lib/linux-kbuild-<version> and the tree links to it at the top.
    const kbuild = path.join(base, 'lib', 'linux-kbuild-9.9', 'scripts')
    mkdirSync(path.join(kbuild, 'basic'), { recursive: true })
    writeFileSync(path.join(kbuild, 'Makefile.build'), '# build\n')
    const dir = tree()
    symlinkSync(kbuild, path.join(dir, 'scripts'))
    symlinkSync('kernel.h', path.join(dir, 'include/linux/alias.h'))
    symlinkSync('missing-target', path.join(dir, 'include/linux/dangling.h'))
    symlinkSync('/nonexistent/x.h', path.join(dir, 'include/linux/dangling-abs.h'))
    const sel = await selectFiles(detectKernelTree({ kernel: dir, env }), 'module-build')
    const by = new Map(sel.entries.map((e) => [e.path, e]))
    t.match(by.get('include/linux/alias.h'), { type: 'symlink', linkname: 'kernel.h' })
    t.match(
      by.get('include/linux/dangling.h'),
      { type: 'symlink', linkname: 'missing-target' },
      'in-tree links are kept even if dangling, as cpio does',
    )
    t.match(by.get('scripts/Makefile.build'), { type: 'file', source: path.join(kbuild, 'Makefile.build') })
    t.same(
      sel.skipped.map((s) => s.path),
      ['include/linux/dangling-abs.h'],
      'a link to nothing is skipped by name: nothing is read through it',
    )

    writeFileSync(path.join(base, 'outside.h'), 'secret\n')
    const refused = async (name: string, make: (dir: string) => void, why: RegExp): Promise<void> => {
      const d = tree()
      symlinkSync(kbuild, path.join(d, 'scripts'))
      make(d)
      await t.rejects(() => selectFiles(detectKernelTree({ kernel: d, env }), 'module-build'), why, name)
    }
    await refused(
      'a relative link out of the tree',
      (d) => symlinkSync('../../../outside.h', path.join(d, 'include/linux/escape.h')),
      /include\/linux\/escape\.h is a symlink to \.\.\/\.\.\/\.\.\/outside\.h, which leads to .*outside\.h, outside the kernel tree/,
    )
    await refused(
      'an absolute link out of the tree',
      (d) => symlinkSync('/etc/passwd', path.join(d, 'include/linux/abs.h')),
      /include\/linux\/abs\.h is a symlink to \/etc\/passwd, which leads to \/etc\/passwd, outside the kernel tree/,
    )
    const other = path.join(base, 'elsewhere', 'scripts')
    mkdirSync(other, { recursive: true })
    const d = tree()
    symlinkSync(other, path.join(d, 'scripts'))
    await t.rejects(
      () => selectFiles(detectKernelTree({ kernel: d, env }), 'module-build'),
      /scripts is a symlink to .*elsewhere\/scripts, .*outside the kernel tree/,
      'a top-level scripts link to a directory that is not a kbuild directory',
    )
  },
)

t.test('FIFOs, device nodes, sockets and unprintable names are skipped by name', async (t) => {
  const dir = tinyTree(tmpDir(t))
  execFileSync('mkfifo', [path.join(dir, 'include/linux/fifo.h')])
  const root = process.getuid?.() === 0 // only root makes device nodes
  if (root) execFileSync('mknod', [path.join(dir, 'include/linux/null.h'), 'c', '1', '3'])
  writeFileSync(path.join(dir, 'include/linux/new\nline.h'), '')
  writeFileSync(Buffer.concat([Buffer.from(path.join(dir, 'include/linux/bad')), Buffer.from([0xff, 0x2e, 0x68])]), '')
  const sel = await selectFiles(detectKernelTree({ kernel: dir, env }), 'headers')
  const skipped = new Map(sel.skipped.map((s) => [s.path, s.reason]))
  t.match(skipped.get('include/linux/fifo.h'), /FIFO/)
  if (root) t.match(skipped.get('include/linux/null.h'), /character device/)
  t.match(skipped.get('include/linux/new\\nline.h'), /not printable UTF-8/)
  t.equal([...skipped.keys()].filter((k) => k.startsWith('include/linux/bad')).length, 1)
  t.notOk(sel.entries.some((e) => /fifo|null|line|bad/.test(e.path)))
})

t.test('compareTarPaths sorts directory by directory, like GNU tar --sort=name', async (t) => {
  const list = ['include/acpi-x.h', 'include/acpi/b.h', 'include', 'include/acpi', 'include/Z.h', 'include/acpi/a.h']
  t.same([...list].sort(compareTarPaths), [
    'include',
    'include/Z.h',
    'include/acpi',
    'include/acpi/a.h',
    'include/acpi/b.h',
    'include/acpi-x.h',
  ])
  // Names the first differing character decides in other ways: a '.' or '-' below '/', a name that is
  // a prefix of another, and UTF-8 past the surrogates (U+E000 and U+1F600: bytewise E0… before F0…,
  // where UTF-16 code units would put U+1F600's D83D first).
  list.push(
    'include/netfilter.h',
    'include/netfilter/x.h',
    'include/net.h',
    'include/é.h',
    'include/\u{e000}.h',
    'include/\u{1f600}.h',
    'include/\u{1f600}/a.h',
  )
  // Same order as GNU tar's own --sort=name on a real directory.
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kh-sort-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  for (const f of list.filter((f) => f.endsWith('.h'))) {
    mkdirSync(path.join(dir, path.dirname(f)), { recursive: true })
    writeFileSync(path.join(dir, f), '')
  }
  const gnu = execFileSync('tar', ['--sort=name', '-cf', '-', '-C', dir, 'include'])
  const names = execFileSync('tar', ['-tf', '-'], { input: gnu })
    .toString()
    .trim()
    .split('\n')
    .map((s) => s.replace(/\/$/, ''))
  // From the reverse order: a list already in order would pass an inconsistent comparison.
  t.same([...names].reverse().sort(compareTarPaths), names)
})
