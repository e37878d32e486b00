// --sysroot: a kernel tree installed in another root file system (a board's root, an SDK sysroot)
// names absolute paths of that system. They must resolve inside the root, never on this machine,
// even when this machine has a file at the same path (a decoy planted here proves it).
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { detectKernelTree } from '../../src/pack/kernel-tree'
import { selectFiles } from '../../src/pack/select'
import { realpathIn } from '../../src/pack/sysroot'
import { tmpDir } from '../helpers/tmp'

const env = {}

function write(file: string, content: string): void {
  mkdirSync(path.dirname(file), { recursive: true })
  writeFileSync(file, content)
}

t.test('realpathIn: absolute links and .. stay inside the root; loops fail with ELOOP', async (t) => {
  const root = tmpDir(t)
  write(path.join(root, 'usr/lib/kbuild/scripts/Makefile.build'), '# in root\n')
  mkdirSync(path.join(root, 'usr/src/tree'), { recursive: true })
  symlinkSync('/usr/lib/kbuild/scripts', path.join(root, 'usr/src/tree/scripts'))
  symlinkSync('../../../../../../../../usr/lib/kbuild', path.join(root, 'usr/src/tree/up'))
  symlinkSync('loop-b', path.join(root, 'usr/src/tree/loop-a'))
  symlinkSync('loop-a', path.join(root, 'usr/src/tree/loop-b'))
  const tree = path.join(root, 'usr/src/tree')
  t.equal(
    realpathIn(path.join(tree, 'scripts/Makefile.build'), root),
    path.join(root, 'usr/lib/kbuild/scripts/Makefile.build'),
  )
  t.equal(
    realpathIn(path.join(tree, 'up'), root),
    path.join(root, 'usr/lib/kbuild'),
    '.. is clamped at the root, as in a chroot',
  )
  t.throws(() => realpathIn(path.join(tree, 'loop-a'), root), { code: 'ELOOP' })
  t.throws(() => realpathIn(path.join(tree, 'missing'), root), { code: 'ENOENT' })
  t.throws(
    () => realpathIn(path.join(tree, 'scripts'), undefined),
    { code: 'ENOENT' },
    "no root: the link means this machine's /usr/lib/kbuild (absent)",
  )
})

t.test(
  'a Debian-style split tree inside a root packs from the root, not from this machine',
  { skip: process.getuid?.() !== 0 && 'needs root: the tree names /usr/src and /usr/lib of this machine' },
  async (t) => {
    const root = tmpDir(t)
    const ver = `9.9.9-kheadersfs-test-${process.pid}`
    const obj = path.join(root, `usr/src/linux-headers-${ver}-arm64`)
    const common = `/usr/src/linux-headers-${ver}-common`
    const kbuild = `/usr/lib/linux-kbuild-${ver}`
    // The objtree: Debian's one-line stub Makefile and an ABSOLUTE link into kbuild (arm64 packages
    // use relative ones; SDK sysroots and hand-made trees use both).
    write(path.join(obj, 'Makefile'), `include ${common}/Makefile\n`)
    write(path.join(obj, '.config'), 'CONFIG_ARM64=y\nCONFIG_MODULES=y\n')
    write(path.join(obj, 'Module.symvers'), '0x1\tprintk\tvmlinux\tEXPORT_SYMBOL\t\n')
    write(path.join(obj, 'include/generated/utsrelease.h'), `#define UTS_RELEASE "${ver}-arm64"\n`)
    write(path.join(obj, 'include/generated/autoconf.h'), '#define CONFIG_ARM64 1\n')
    write(path.join(obj, 'include/config/auto.conf'), 'CONFIG_ARM64=y\n')
    write(path.join(obj, 'arch/arm64/include/generated/asm/cpucaps.h'), '#define X 1\n')
    symlinkSync(`${kbuild}/scripts`, path.join(obj, 'scripts'))
    // The srctree and kbuild, inside the root.
    write(path.join(root, common, 'Makefile'), 'VERSION = 9\n# the real top Makefile, in the root\n')
    write(path.join(root, common, 'include/linux/kernel.h'), '#define IN_ROOT 1\n')
    write(path.join(root, common, 'arch/arm64/Makefile'), '# arm64\n')
    write(path.join(root, common, 'arch/arm64/include/asm/page.h'), '#define PAGE_SHIFT 12\n')
    write(path.join(root, kbuild, 'scripts/Makefile.build'), '# build, in the root\n')

    t.throws(() => detectKernelTree({ kernel: obj, env }), {
      exitCode: 7,
      message: new RegExp(`includes ${common}/Makefile, which is not on this machine; .*pass --sysroot ROOT`),
    })

    // A decoy at the same absolute paths on this machine: with --sysroot it must never be read.
    const decoys = [common, kbuild]
    t.teardown(() => decoys.forEach((d) => rmSync(d, { recursive: true, force: true })))
    write(path.join(common, 'Makefile'), '# DECOY\n')
    write(path.join(common, 'include/linux/kernel.h'), '#define DECOY 1\n')
    write(path.join(kbuild, 'scripts/Makefile.build'), '# DECOY\n')

    const tree = detectKernelTree({ kernel: obj, sysroot: root, env })
    t.equal(tree.layout, 'split')
    t.equal(tree.srctree, path.join(root, common))
    t.equal(tree.arch, 'arm64')
    t.equal(tree.release, `${ver}-arm64`)
    const { entries } = await selectFiles(tree, 'module-build')
    const sources = entries.filter((e) => e.source !== undefined).map((e) => e.source!)
    t.ok(sources.length >= 8, `${sources.length} files read`)
    t.same(
      sources.filter((s) => !s.startsWith(root + '/')),
      [],
      'every file read is inside the root',
    )
    t.equal(
      entries.find((e) => e.path === 'Makefile')?.source,
      path.join(root, common, 'Makefile'),
      "the stub is replaced by the root's Makefile",
    )
    t.equal(
      entries.find((e) => e.path === 'scripts/Makefile.build')?.source,
      path.join(root, kbuild, 'scripts/Makefile.build'),
    )

    t.throws(() => detectKernelTree({ kernel: obj, sysroot: path.join(root, 'nope'), env }), {
      exitCode: 7,
      message: /Cannot read sysroot .*nope: ENOENT.*; pass --sysroot an existing directory/,
    })
    rmSync(path.join(root, common), { recursive: true })
    t.throws(() => detectKernelTree({ kernel: obj, sysroot: root, env }), {
      exitCode: 7,
      message: new RegExp(`includes ${common}/Makefile, which is not in the sysroot`),
    })
  },
)
