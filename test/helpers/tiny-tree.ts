// A minimal synthetic kernel build tree with every file `pack` looks for, for unit tests and error
// cases that need to remove or break one piece at a time.
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'

export const TINY_RELEASE = '6.9.0-tiny'

const TINY_FILES: Record<string, string> = {
  Makefile: 'VERSION = 6\nPATCHLEVEL = 9\n# the real top Makefile\n',
  '.config': '# tiny\nCONFIG_X86=y\nCONFIG_MODULES=y\n',
  'Module.symvers': '0x12345678\tprintk\tvmlinux\tEXPORT_SYMBOL\t\n',
  'include/linux/kernel.h':
    '/* SPDX-License-Identifier: GPL-2.0 */\n#ifndef _K_H\n#define _K_H /* a comment */ 1\n// line comment\n#endif\n',
  'include/linux/types.h': '#define T "/* not a comment */"\n',
  'include/generated/utsrelease.h': `#define UTS_RELEASE "${TINY_RELEASE}"\n`,
  'include/generated/utsversion.h': '#define UTS_VERSION "#1 SMP PREEMPT_DYNAMIC Tue Nov 24 10:00:00 UTC 2026"\n',
  'include/generated/autoconf.h': '#define CONFIG_X86 1\n',
  'include/config/auto.conf': 'CONFIG_X86=y\nCONFIG_MODULES=y\n',
  'include/config/kernel.release': `${TINY_RELEASE}\n`,
  'include/config/MODULES': '',
  'arch/x86/Makefile': '# arch makefile\n',
  'arch/x86/Makefile_32.cpu': '# cpu\n',
  'arch/x86/include/asm/page.h': '#define PAGE_SHIFT 12\n',
  'arch/x86/include/generated/asm/unistd.h': '#define NR 1\n',
  'arch/x86/kernel/setup.c': 'int x;\n',
  'arch/arm64/include/asm/page.h': '#define PAGE_SHIFT 16\n',
  'scripts/Makefile.build': '# build\n',
  'scripts/basic/fixdep': '#!/bin/sh\n',
  'scripts/basic/.fixdep.cmd': 'junk\n',
  'scripts/mod/modpost.o': 'junk\n',
  'Documentation/index.rst': 'not packed\n',
}

/** Write the tiny tree under `dir`; `omit` leaves files out, `extra` adds or replaces some. */
export function tinyTree(dir: string, opts: { omit?: string[]; extra?: Record<string, string> } = {}): string {
  const files = { ...TINY_FILES, ...opts.extra }
  for (const [rel, content] of Object.entries(files)) {
    if (opts.omit?.includes(rel)) continue
    const p = path.join(dir, rel)
    mkdirSync(path.dirname(p), { recursive: true })
    writeFileSync(p, content)
  }
  if (!opts.omit?.includes('scripts/basic/fixdep')) chmodSync(path.join(dir, 'scripts/basic/fixdep'), 0o700)
  return dir
}
