#!/usr/bin/env node
// Helpers for packaging/build.sh that are awkward in sh (file names such as proc\x2dext.mount make
// md5sum(1) escape its output, which dpkg does not read):
//   deb-meta.js app-package-json ROOT_PACKAGE_JSON          -> trimmed package.json on stdout
//   deb-meta.js copyright NODE_MODULES_DIR APP_DIR_IN_DEB    -> DEP-5 copyright on stdout
//   deb-meta.js md5sums PKGROOT                              -> DEBIAN/md5sums content on stdout
//   deb-meta.js installed-size PKGROOT                       -> KiB, as dpkg-gencontrol counts it
'use strict'
const fs = require('node:fs')
const path = require('node:path')
const crypto = require('node:crypto')
const { metadata, withOverrides } = require('./metadata')

/** Every file and directory under dir except DEBIAN/, sorted, as paths relative to dir. */
function walk(dir) {
  const out = []
  const rec = (rel) => {
    for (const name of fs.readdirSync(path.join(dir, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name
      if (r === 'DEBIAN') continue
      const st = fs.lstatSync(path.join(dir, r))
      out.push({ rel: r, st })
      if (st.isDirectory()) rec(r)
    }
  }
  rec('')
  return out
}

function appPackageJson(file) {
  const p = withOverrides(JSON.parse(fs.readFileSync(file, 'utf8')))
  const keep = [
    'name',
    'version',
    'description',
    'license',
    'author',
    'homepage',
    'bugs',
    'repository',
    'bin',
    'engines',
    'dependencies',
  ]
  const out = {}
  for (const k of keep) if (p[k] !== undefined) out[k] = p[k]
  return JSON.stringify(out, null, 2) + '\n'
}

// SPDX id (as in package.json) -> DEP-5 short name; the texts below are the ones the package needs.
const DEP5 = {
  MIT: 'Expat',
  ISC: 'ISC',
  'BSD-2-Clause': 'BSD-2-clause',
  'BSD-3-Clause': 'BSD-3-clause',
  'Apache-2.0': 'Apache-2.0',
}
const TEXTS = {
  Expat: `Permission is hereby granted, free of charge, to any person obtaining a copy
 of this software and associated documentation files (the "Software"), to deal
 in the Software without restriction, including without limitation the rights
 to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
 copies of the Software, and to permit persons to whom the Software is
 furnished to do so, subject to the following conditions:
 .
 The above copyright notice and this permission notice shall be included in
 all copies or substantial portions of the Software.
 .
 THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
 IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
 FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
 AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
 LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
 OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN
 THE SOFTWARE.`,
  ISC: `Permission to use, copy, modify, and/or distribute this software for any
 purpose with or without fee is hereby granted, provided that the above
 copyright notice and this permission notice appear in all copies.
 .
 THE SOFTWARE IS PROVIDED "AS IS" AND THE AUTHOR DISCLAIMS ALL WARRANTIES
 WITH REGARD TO THIS SOFTWARE INCLUDING ALL IMPLIED WARRANTIES OF
 MERCHANTABILITY AND FITNESS. IN NO EVENT SHALL THE AUTHOR BE LIABLE FOR
 ANY SPECIAL, DIRECT, INDIRECT, OR CONSEQUENTIAL DAMAGES OR ANY DAMAGES
 WHATSOEVER RESULTING FROM LOSS OF USE, DATA OR PROFITS, WHETHER IN AN
 ACTION OF CONTRACT, NEGLIGENCE OR OTHER TORTIOUS ACTION, ARISING OUT OF
 OR IN CONNECTION WITH THE USE OR PERFORMANCE OF THIS SOFTWARE.`,
  'BSD-2-clause': `Redistribution and use in source and binary forms, with or without
 modification, are permitted provided that the following conditions are met:
 1. Redistributions of source code must retain the above copyright notice,
 this list of conditions and the following disclaimer.
 2. Redistributions in binary form must reproduce the above copyright notice,
 this list of conditions and the following disclaimer in the documentation
 and/or other materials provided with the distribution.
 .
 THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS"
 AND ANY EXPRESS OR IMPLIED WARRANTIES ARE DISCLAIMED. IN NO EVENT SHALL THE
 COPYRIGHT HOLDER OR CONTRIBUTORS BE LIABLE FOR ANY DAMAGES ARISING IN ANY
 WAY OUT OF THE USE OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF
 SUCH DAMAGE.`,
  'BSD-3-clause': `Redistribution and use in source and binary forms, with or without
 modification, are permitted provided that the following conditions are met:
 1. Redistributions of source code must retain the above copyright notice,
 this list of conditions and the following disclaimer.
 2. Redistributions in binary form must reproduce the above copyright notice,
 this list of conditions and the following disclaimer in the documentation
 and/or other materials provided with the distribution.
 3. Neither the name of the copyright holder nor the names of its
 contributors may be used to endorse or promote products derived from this
 software without specific prior written permission.
 .
 THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS"
 AND ANY EXPRESS OR IMPLIED WARRANTIES ARE DISCLAIMED. IN NO EVENT SHALL THE
 COPYRIGHT HOLDER OR CONTRIBUTORS BE LIABLE FOR ANY DAMAGES ARISING IN ANY
 WAY OUT OF THE USE OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF
 SUCH DAMAGE.`,
  'Apache-2.0': `On Debian systems, the full text of the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0.`,
  'public-domain': `liblzma of XZ Utils 5.2.3 has been put into the public domain by its authors
 (xz-5.2.3/COPYING: "liblzma is in the public domain"). You can do whatever
 you want with these files.`,
  'GPL-2.0-only': `This program is free software; you can redistribute it and/or modify it
 under the terms of the GNU General Public License version 2 as published by
 the Free Software Foundation.
 .
 On Debian systems, the full text of the GNU General Public License version 2
 is in /usr/share/common-licenses/GPL-2.`,
}

/** The first "Copyright ..." line of a module's license file, else its author. */
function holder(dir, pkg) {
  for (const f of fs.readdirSync(dir).sort()) {
    if (!/^(licen[cs]e|copying)/i.test(f)) continue
    const line = fs
      .readFileSync(path.join(dir, f), 'utf8')
      .split('\n')
      .find((l) => /^\s*copyright\s*(\(c\)|©|\d)/i.test(l))
    if (line)
      return line
        .trim()
        .replace(/^copyright\s*/i, '')
        .replace(/^\(c\)\s*/i, '')
  }
  const a = pkg.author
  if (typeof a === 'string') return a
  if (a && a.name) return a.name + (a.email ? ` <${a.email}>` : '')
  return `the ${pkg.name} authors`
}

function copyright(nodeModules, appDir) {
  const root = JSON.parse(fs.readFileSync(path.join(nodeModules, '..', 'package.json'), 'utf8'))
  const used = new Set(['GPL-2.0-only'])
  const meta = metadata(root)
  let out = `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: kheadersfs
Upstream-Contact: ${meta.maintainer}
Source: ${meta.homepage}
Comment: The node modules under ${appDir}/node_modules are the production
 dependencies of kheadersfs from the npm registry (package-lock.json); their
 licenses are listed from their package.json files.

Files: *
Copyright: kheadersfs developers
License: GPL-2.0-only
`
  const dirs = []
  for (const name of fs.readdirSync(nodeModules).sort()) {
    if (name.startsWith('.')) continue
    if (name.startsWith('@'))
      for (const sub of fs.readdirSync(path.join(nodeModules, name)).sort()) dirs.push(`${name}/${sub}`)
    else dirs.push(name)
  }
  for (const d of dirs) {
    const dir = path.join(nodeModules, d)
    const pj = path.join(dir, 'package.json')
    if (!fs.existsSync(pj)) continue
    const pkg = JSON.parse(fs.readFileSync(pj, 'utf8'))
    const spdx = typeof pkg.license === 'string' ? pkg.license : pkg.license && pkg.license.type
    const lic = DEP5[spdx]
    if (!lic)
      throw new Error(`${d}: license ${JSON.stringify(spdx)} has no DEP-5 text here; add it to packaging/deb-meta.js`)
    used.add(lic)
    out += `
Files: ${appDir}/node_modules/${d}/*
Copyright: ${holder(dir, pkg)}
License: ${lic}
Comment: ${pkg.name} ${pkg.version}${pkg.name !== d ? ` (installed as ${d})` : ''}
`
  }
  // lzma-native's addon links the bundled xz 5.2.3 liblzma statically (public domain).
  if (dirs.includes('lzma-native')) {
    used.add('public-domain')
    out += `
Files: ${appDir}/node_modules/lzma-native/build/Release/lzma_native.node
Copyright: Anna Henningsen (lzma-native); Lasse Collin and the XZ Utils authors (liblzma 5.2.3)
License: Expat and public-domain
Comment: liblzma from xz-5.2.3.tar.bz2, bundled with lzma-native, linked statically.
`
  }
  if (root.license !== 'GPL-2.0-only')
    throw new Error(`kheadersfs's license is ${root.license}, the copyright file says GPL-2.0-only`)
  for (const lic of [...used].sort()) out += `\nLicense: ${lic}\n ${TEXTS[lic]}\n`
  return out
}

function md5sums(root) {
  let out = ''
  for (const { rel, st } of walk(root)) {
    if (!st.isFile()) continue
    out += `${crypto
      .createHash('md5')
      .update(fs.readFileSync(path.join(root, rel)))
      .digest('hex')}  ${rel}\n`
  }
  return out
}

function installedSize(root) {
  // dpkg-gencontrol: each file's size rounded up to KiB, plus 1 for every directory and symlink.
  let kib = 0
  for (const { st } of walk(root)) kib += st.isFile() ? Math.ceil(st.size / 1024) : 1
  return String(kib) + '\n'
}

const [cmd, a, b] = process.argv.slice(2)
const out = {
  'app-package-json': () => appPackageJson(a),
  copyright: () => copyright(a, b),
  md5sums: () => md5sums(a),
  'installed-size': () => installedSize(a),
}[cmd]
if (!out) {
  process.stderr.write('usage: deb-meta.js app-package-json|copyright|md5sums|installed-size ARGS\n')
  process.exit(2)
}
process.stdout.write(out())
