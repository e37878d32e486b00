import t from 'tap'
import { buildOrder, COMMON_BYTES, SEEDS } from '../../src/pack/build-order'
import type { SourceEntry } from '../../src/pack/entries'
import { compareTarPaths } from '../../src/pack/tar-order'

type Spec = Record<string, string | { link: string } | null>

/** Entries in name order, as selectFiles gives them; null = a directory. */
function tree(spec: Spec): { entries: SourceEntry[]; content: (i: number) => Buffer | undefined } {
  const entries: SourceEntry[] = Object.entries(spec)
    .map(([p, v]): SourceEntry => {
      if (v === null) return { path: p, type: 'directory', mode: 0o755, size: 0, strip: false }
      if (typeof v === 'object')
        return { path: p, type: 'symlink', mode: 0o777, linkname: v.link, size: 0, strip: false }
      return { path: p, type: 'file', mode: 0o644, data: Buffer.from(v), size: v.length, strip: false }
    })
    .sort((a, b) => compareTarPaths(a.path, b.path))
  return { entries, content: (i) => entries[i].data }
}

const order = (spec: Spec, arch = 'x86'): string[] => {
  const { entries, content } = tree(spec)
  return buildOrder(entries, arch, content).map((i) => entries[i].path)
}

const BASE: Spec = {
  include: null,
  'include/linux': null,
  'include/config': null,
  scripts: null,
  'scripts/mod': null,
  'scripts/basic': null,
  'arch/x86': null,
  'arch/x86/include/asm': null,
  Makefile: 'include scripts/Kbuild.include\n',
  'Module.symvers': '0x0\tsym\tvmlinux\tEXPORT_SYMBOL\t\n',
  '.config': 'CONFIG_X=y\n',
  'include/config/auto.conf': 'CONFIG_X=y\n',
  'scripts/Kbuild.include': 'fixdep := scripts/basic/fixdep\n',
  'scripts/Makefile.modpost': 'cmd = scripts/mod/modpost $(args)\n',
  'scripts/basic/fixdep': '\x7fELF fixdep',
  'scripts/mod/modpost': '#!/bin/sh\nexec "$0.real-lsb-64"\n',
  'scripts/mod/modpost.real-lsb-64': '\x7fELF\0\0#include <linux/vermagic.h>\n\0#include <linux/module.h>\n\0',
  'scripts/kernel-doc': '#!/usr/bin/perl\n',
  'arch/x86/Makefile': 'KBUILD_CFLAGS += -m64\n',
  'include/linux/kconfig.h': '#include <generated/autoconf.h>\n',
  'include/generated/autoconf.h': '#define CONFIG_X 1\n',
  'include/linux/module.h': '#include <linux/types.h>\n#include "export.h"\n#include <asm/module.h>\n',
  'include/linux/export.h': '#include <linux/types.h>\n',
  'include/linux/types.h': '#include <uapi/linux/types.h>\n',
  'include/uapi/linux/types.h': '#include <asm/types.h>\n',
  'arch/x86/include/asm/module.h': '#include <asm-generic/module.h>\n',
  'include/asm-generic/module.h': '\n',
  'include/asm-generic/types.h': '\n',
  'arch/x86/include/uapi/asm/types.h': '#include <asm-generic/types.h>\n',
  'include/linux/vermagic.h': '#include <generated/utsrelease.h>\n',
  'include/generated/utsrelease.h': '#define UTS_RELEASE "6.1"\n',
  'include/linux/netfilter.h': '#include <linux/skbuff.h>\n#include <linux/types.h>\n',
  'include/linux/skbuff.h': '#include <linux/types.h>\n',
  'include/net/ip.h': '#include <linux/netfilter.h>\n',
  'include/net/tcp.h': '#include <linux/netfilter.h>\n#include <net/ip.h>\n',
  'include/linux/rare.h': '#include <linux/types.h>\n',
}

t.test(
  'tiers, each in name order: directories and links, Kbuild files and what they name, the seeds closure, common headers, the rest',
  async (t) => {
    const o = order(BASE)
    const at = (p: string): number => {
      const i = o.indexOf(p)
      if (i < 0) throw new Error(`${p} not in the order`)
      return i
    }
    t.equal(o.length, Object.keys(BASE).length, 'every entry exactly once')
    t.equal(new Set(o).size, o.length)
    const dirs = Object.keys(BASE).filter((p) => BASE[p] === null)
    t.same(o.slice(0, dirs.length), [...dirs].sort(compareTarPaths), 'directories first, in name order')
    const kbuild = [
      'Makefile',
      'Module.symvers',
      'arch/x86/Makefile',
      'include/config/auto.conf',
      'scripts/Kbuild.include',
      'scripts/Makefile.modpost',
    ]
    const named = ['scripts/basic/fixdep', 'scripts/mod/modpost', 'scripts/mod/modpost.real-lsb-64']
    const tier1 = o.slice(dirs.length, dirs.length + kbuild.length + named.length)
    t.same(
      tier1,
      [...kbuild, ...named].sort(compareTarPaths),
      'Kbuild files, the programs they name and NAME.* siblings, in name order',
    )
    // Tier 2: closure of the seeds and of what modpost writes out (vermagic.h → utsrelease.h).
    const closure = [
      'include/linux/kconfig.h',
      'include/generated/autoconf.h',
      'include/linux/module.h',
      'include/linux/export.h',
      'include/linux/types.h',
      'include/uapi/linux/types.h',
      'arch/x86/include/uapi/asm/types.h',
      'include/asm-generic/types.h',
      'arch/x86/include/asm/module.h',
      'include/asm-generic/module.h',
      'include/linux/vermagic.h',
      'include/generated/utsrelease.h',
    ]
    const start = dirs.length + tier1.length
    t.same(
      o.slice(start, start + closure.length),
      [...closure].sort(compareTarPaths),
      'the seeds closure follows, in name order, and nothing else',
    )
    // Tier 3: the other headers with their closures (all fit in COMMON_BYTES here), in name order.
    const common = ['include/linux/netfilter.h', 'include/linux/skbuff.h', 'include/net/ip.h', 'include/net/tcp.h']
    const start3 = start + closure.length
    t.same(o.slice(start3, start3 + common.length + 1), [...common, 'include/linux/rare.h'].sort(compareTarPaths))
    // Tier 4: what nothing names.
    t.same(o.slice(-2), ['.config', 'scripts/kernel-doc'], 'the rest last, in name order')
    t.ok(at('include/linux/rare.h') > at('include/generated/utsrelease.h'))
  },
)

t.test('tier 3 takes the most included headers with their closures until COMMON_BYTES, in name order', async (t) => {
  // Three headers of 0.9 MiB each beyond the seeds: the two most included fit in 2 MiB, the third does not.
  const big = (tag: string, extra = ''): string => `${extra}/* ${tag} */\n${'x'.repeat(0.9 * 2 ** 20)}\n`
  const spec: Spec = {
    ...BASE,
    'include/linux/zz-most.h': big('most'),
    'include/linux/aa-second.h': big('second'),
    'include/linux/mm-third.h': big('third'),
    'include/net/a.h': '#include <linux/zz-most.h>\n#include <linux/aa-second.h>\n#include <linux/mm-third.h>\n',
    'include/net/b.h': '#include <linux/zz-most.h>\n#include <linux/aa-second.h>\n',
    'include/net/c.h': '#include <linux/zz-most.h>\n',
  }
  const o = order(spec)
  t.ok(COMMON_BYTES < 3 * 0.9 * 2 ** 20 && COMMON_BYTES > 2 * 0.9 * 2 ** 20, 'the sizes straddle the budget')
  // Tiers 0-2 are those of BASE: 8 directories, 9 Kbuild files and programs, the seeds' 12 headers.
  const tier3 = o.slice(8 + 9 + 12, o.indexOf('.config'))
  t.same(
    tier3,
    ['include/linux/aa-second.h', 'include/linux/netfilter.h', 'include/linux/skbuff.h', 'include/linux/zz-most.h'],
    'by rank zz-most (3 includers), aa-second and netfilter (2) with skbuff; then mm-third no longer fits: in name order',
  )
  const rest = o.slice(o.indexOf('.config'))
  t.same([...rest].sort(compareTarPaths), rest, 'the rest, from the header that did not fit on, in name order')
  t.ok(rest.includes('include/linux/mm-third.h') && rest.includes('include/net/a.h'))
})

t.test('include resolution: arch before generic, quoted next to the file first, links followed', async (t) => {
  const o = order(
    {
      'include/linux': null,
      'include/linux/module.h': '#include <asm/page.h>\n#include "local.h"\n#include <linux/link.h>\n',
      'include/linux/local.h': '\n',
      'include/local.h': '\n',
      'arch/arm64/include/asm/page.h': '\n',
      'include/asm/page.h': '\n',
      'include/linux/link.h': { link: '../real/target.h' },
      'include/real/target.h': '\n',
      'include/zz/unrelated.h': '\n',
    },
    'arm64',
  )
  t.same(o.slice(0, 2), ['include/linux', 'include/linux/link.h'], 'the directory and the link first')
  const first = o.slice(2, 6)
  t.same(
    new Set(first),
    new Set([
      'include/linux/module.h',
      'arch/arm64/include/asm/page.h',
      'include/linux/local.h',
      'include/real/target.h',
    ]),
  )
  t.ok(
    o.indexOf('include/asm/page.h') > o.indexOf('include/real/target.h'),
    'the generic asm/page.h is shadowed by the arch one',
  )
  t.ok(o.indexOf('include/local.h') > o.indexOf('include/linux/local.h'), '"local.h" resolves next to module.h')
})

t.test('deterministic, whatever the input order of equal trees, and no entry lost with cycles', async (t) => {
  const spec: Spec = {
    ...BASE,
    'include/linux/a.h': '#include <linux/b.h>\n',
    'include/linux/b.h': '#include <linux/a.h>\n#include <linux/sched.h>\n',
    'include/linux/sched.h': '#include <linux/b.h>\n',
  }
  const one = order(spec)
  const two = order(Object.fromEntries(Object.entries(spec).reverse()))
  t.same(one, two)
  t.equal(new Set(one).size, Object.keys(spec).length)
  t.ok(
    one.indexOf('include/linux/a.h') < one.indexOf('include/linux/netfilter.h'),
    'a.h is in the closure of the seed sched.h',
  )
  t.ok(SEEDS.includes('include/linux/sched.h'))
})
