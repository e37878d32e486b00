// /usr/share/doc/<package>/: the copyright file (DEP-5: what the image holds is the Linux kernel's)
// and the Debian changelog, gzip -9n as dh_compress makes it.
import { gzipSync } from 'node:zlib'
import { project } from '../project'
import { wrap } from './control'

export interface DocFacts {
  package: string
  version: string
  release: string
  maintainer: string
  /** Seconds since 1970: the changelog's date. */
  epoch: number
}

/** The Linux kernel's own statement on user programs (LICENSES/exceptions/Linux-syscall-note). */
const SYSCALL_NOTE = `NOTE! This copyright does *not* cover user programs that use kernel
services by normal system calls - this is merely considered normal use
of the kernel, and does *not* fall under the heading of "derived work".
Also note that the GPL below is copyrighted by the Free Software
Foundation, but the instance of code that it refers to (the Linux
kernel) is copyrighted by me and others who actually wrote it.
.
Also note that the only valid version of the GPL as far as the kernel
is concerned is _this_ particular version of the license (ie v2, not
v2.2 or v3.x or whatever), unless explicitly otherwise stated.
.
Linus Torvalds`

export function copyright(f: DocFacts): string {
  const p = project()
  const lines = [
    'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/',
    `Upstream-Name: linux (kernel headers and configuration of ${f.release})`,
    'Source: https://www.kernel.org/',
    `Comment: usr/lib/kheadersfs/${f.release}.img is an image written by "kheadersfs pack"`,
    wrap(
      `(kheadersfs ${p.version}${p.homepage === undefined ? '' : `, ${p.homepage}`}). It holds files of the Linux ` +
        `${f.release} kernel source and build trees (headers, and for module builds Makefiles, Kconfig files, ` +
        'scripts and Module.symvers) with their comments stripped, the .config the kernel was built with, and a ' +
        'manifest listing them. The kernel is licensed GPL-2.0-only; its user-space API headers carry the ' +
        'Linux-syscall-note. Individual files name their own licenses in SPDX-License-Identifier lines.',
    ),
    '',
    'Files: *',
    `Copyright: 1991-${new Date(f.epoch * 1000).getUTCFullYear()} Linus Torvalds and the Linux kernel contributors`,
    'License: GPL-2.0-only WITH Linux-syscall-note',
    '',
    'License: GPL-2.0-only WITH Linux-syscall-note',
    wrap(
      'This program is free software; you can redistribute it and/or modify it under the terms of the GNU ' +
        'General Public License version 2 as published by the Free Software Foundation.',
    ),
    ' .',
    ' On Debian systems, the complete text of the GNU General Public License',
    ' version 2 can be found in "/usr/share/common-licenses/GPL-2".',
    ' .',
    ...SYSCALL_NOTE.split('\n').map((l) => ` ${l}`),
    '',
  ]
  return lines.join('\n')
}

/**
 * The changelog: one entry for this version, dated by the image. Its name: changelog.Debian.gz for a
 * version with a Debian revision (6.1.76-1), changelog.gz for a native one (Policy §12.7).
 */
export function changelog(f: DocFacts): { name: string; data: Buffer } {
  const date = new Date(f.epoch * 1000).toUTCString().replace(/GMT$/, '+0000')
  const text =
    `${f.package} (${f.version}) unstable; urgency=medium\n\n` +
    `  * kheadersfs image of the Linux ${f.release} kernel headers and config,\n` +
    `    packed by kheadersfs ${project().version}.\n\n` +
    ` -- ${f.maintainer}  ${date}\n`
  const native = !/-[^-]*$/.test(f.version.replace(/^\d+:/, ''))
  return { name: native ? 'changelog.gz' : 'changelog.Debian.gz', data: gzipSync(text, { level: 9 }) }
}
