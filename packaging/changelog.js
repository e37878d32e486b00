#!/usr/bin/env node
// CHANGELOG.md (Keep a Changelog: "## [1.2.3] - YYYY-MM-DD" sections) as the other formats a release needs:
//   changelog.js debian CHANGELOG.md PACKAGE VERSION MAINTAINER -> debian/changelog text (newest first; the
//                                                              newest entry carries VERSION, e.g. 0.1.0~deb12)
//   changelog.js notes CHANGELOG.md VERSION                    -> that version's section, Markdown
// Dates come from the headings (noon UTC), so the output depends on the file alone: reproducible.
'use strict'
const fs = require('node:fs')

/** The released sections, newest first: { version, date, body } (an "Unreleased" section is skipped). */
function sections(text) {
  const out = []
  const re = /^## \[([^\]]+)\](?: - (\d{4}-\d{2}-\d{2}))?[^\n]*\n([\s\S]*?)(?=^## |(?![\s\S]))/gm
  for (const m of text.matchAll(re)) {
    if (m[1].toLowerCase() === 'unreleased') continue
    if (!m[2]) throw new Error(`CHANGELOG.md: "## [${m[1]}]" has no " - YYYY-MM-DD" date`)
    out.push({ version: m[1], date: m[2], body: m[3].trim() })
  }
  return out
}

/** Markdown list items of a section, as plain text (no links, no code marks). */
function items(body) {
  const plain = (s) =>
    s
      .replace(/\[([^\]]+)\]\([^)]+\)/g, '$1')
      .replace(/`/g, '')
      .replace(/\*\*/g, '')
  const out = []
  for (const line of body.split('\n')) {
    if (/^- /.test(line)) out.push(plain(line.slice(2).trim()))
    else if (/^\s+\S/.test(line) && out.length > 0) out[out.length - 1] += ' ' + plain(line.trim())
  }
  return out
}

/** Wrap to 78 columns after a "  * " or "    " prefix, as dch does. */
function wrap(text, first, rest) {
  const lines = []
  let line = first
  for (const word of text.split(/\s+/)) {
    if (line.length + word.length + 1 > 78 && line.trim() !== first.trim()) {
      lines.push(line)
      line = rest
    }
    line += (line === first || line === rest ? '' : ' ') + word
  }
  return [...lines, line].join('\n')
}

function debian(text, pkg, version, maintainer) {
  const all = sections(text)
  if (all.length === 0) throw new Error('CHANGELOG.md has no released "## [x.y.z] - date" section')
  return all
    .map((s, i) => {
      const when = new Date(`${s.date}T12:00:00Z`).toUTCString().replace('GMT', '+0000')
      const v = i === 0 ? version : s.version
      const body = items(s.body).map((it) => wrap(it, '  * ', '    '))
      return `${pkg} (${v}) unstable; urgency=medium\n\n${body.join('\n')}\n\n -- ${maintainer}  ${when}\n`
    })
    .join('\n')
}

function notes(text, version) {
  const s = sections(text).find((x) => x.version === version)
  if (!s) throw new Error(`CHANGELOG.md has no "## [${version}] - YYYY-MM-DD" section: add one before releasing`)
  return `${s.body}\n`
}

const [cmd, file, ...rest] = process.argv.slice(2)
try {
  const text = fs.readFileSync(file, 'utf8')
  if (cmd === 'debian' && rest.length === 3) process.stdout.write(debian(text, ...rest))
  else if (cmd === 'notes' && rest.length === 1) process.stdout.write(notes(text, rest[0]))
  else throw new Error('usage: changelog.js debian FILE PACKAGE VERSION MAINTAINER | notes FILE VERSION')
} catch (e) {
  process.stderr.write(`changelog.js: ${e.message}\n`)
  process.exit(2)
}
