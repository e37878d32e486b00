#!/usr/bin/env node
// packaging/man.mjs [SRC.md [OUT]] — the manual page, rendered once for every consumer: `npm run build`
// and `prepare` (checkout, npm tarball: dist/man/kheadersfs.1, which install-helpers installs) and
// packaging/build.sh (the .debs and tarballs). Defaults: docs/kheadersfs.1.md -> dist/man/kheadersfs.1.
// SOURCE_DATE_EPOCH sets the page's date (reproducible packages); the version is package.json's.
//
// marked-man (a small npm dev dependency; pandoc would pull ~100 MB of Haskell runtime from apt for one
// page) with two fixes at the source of the bytes: marked escapes code spans for HTML (&quot; &#39;),
// which marked-man passes through to the page, so code spans are unescaped before the roff escaping;
// and a horizontal rule would be marked-man's ".HR", not a man macro. The output is refused if an
// entity or a character groff's man macros cannot read (non-ASCII) is left.
import { readFileSync, mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Marked } from 'marked'
import markedMan from 'marked-man'

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..')
const [src = path.join(ROOT, 'docs/kheadersfs.1.md'), out = path.join(ROOT, 'dist/man/kheadersfs.1')] =
  process.argv.slice(2)
const { version } = JSON.parse(readFileSync(path.join(path.dirname(src), '..', 'package.json'), 'utf8'))

/** marked's HTML escapes, back to the characters the markdown holds. */
const unhtml = (s) =>
  s.replace(/&(quot|#39|lt|gt|amp);/g, (_, e) => ({ quot: '"', '#39': "'", lt: '<', gt: '>', amp: '&' })[e])
/** roff escaping of plain text (marked-man's manEsc). */
const roff = (s) =>
  s
    .replace(/\\/g, '\\\\')
    .replace(/-/g, '\\-')
    .replace(/^\s*\./gm, '\\&.')
    .replace(/\./g, '\\.')
    .replace(/^'/gm, "\\&'")

const marked = new Marked()
marked.use(markedMan)
marked.use({
  breaks: false,
  manual: 'kheadersfs manual',
  manVersion: `kheadersfs ${version}`,
  date: process.env.SOURCE_DATE_EPOCH ? Number(process.env.SOURCE_DATE_EPOCH) * 1000 : Date.now(),
  renderer: {
    codespan(code) {
      this.jumps = false
      return `\\fB${roff(unhtml(code))}\\fP`
    },
    hr() {
      this.jumps = true
      return '.sp\n'
    },
  },
})

let page = marked.parse(readFileSync(src, 'utf8'))
// groff's man macros read ASCII: every other character becomes a \[uXXXX] escape; the NAME line's
// dash becomes "\-" so that lexgrog/mandb (whatis, apropos) parse it; dashes, arrow, ellipsis get
// groff's named glyphs, which have ASCII fallbacks (the page renders in the C locale too).
page = page.replace(/^\.SH "?NAME"?\n[^]*?\n\.SH/m, (s) => s.replace(' \u2014 ', ' \\- '))
page = page
  .replace(/\u2014/g, '\\(em')
  .replace(/\u2013/g, '\\(en')
  .replace(/\u2192/g, '\\(->')
  .replace(/\u2026/g, '...')
  .replace(/[^\x00-\x7f]/gu, (c) => `\\[u${c.codePointAt(0).toString(16).toUpperCase().padStart(4, '0')}]`)
const entity = /&(#\d+|#x[\da-f]+|[a-z]\w*);/i.exec(page)
if (entity) {
  const line = page.slice(0, entity.index).split('\n').length
  throw new Error(`${src}: the rendered page holds the HTML entity ${entity[0]} (output line ${line})`)
}
mkdirSync(path.dirname(out), { recursive: true })
writeFileSync(out, page)
