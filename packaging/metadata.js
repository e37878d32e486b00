#!/usr/bin/env node
// The project's metadata for every package a release makes, from one place: package.json's
// "author" (the maintainer), "homepage" and "bugs". A distributor overrides any of them for a whole
// build without editing the tree:
//   KHEADERSFS_MAINTAINER='Jane Doe <jane@vendor.example>' KHEADERSFS_HOMEPAGE=... KHEADERSFS_BUGS=... npm run release
// The values end up in the .debs' control files, the copyright files, the Debian changelog, the
// packaged app's package.json (which `kheadersfs pack --deb` reads for its default maintainer) and
// the npm tarball's package.json.
//   metadata.js PACKAGE_JSON FIELD      -> one value (maintainer | homepage | bugs) on stdout
//   metadata.js PACKAGE_JSON --json     -> package.json with the overrides applied, on stdout
'use strict'
const fs = require('node:fs')

const OVERRIDES = { maintainer: 'KHEADERSFS_MAINTAINER', homepage: 'KHEADERSFS_HOMEPAGE', bugs: 'KHEADERSFS_BUGS' }

/** "Name <email>" from npm's author field (a string or {name, email}). */
function person(p) {
  if (typeof p === 'string') return p
  if (p && p.name) return p.email ? `${p.name} <${p.email}>` : p.name
  return undefined
}

function metadata(pkg, env = process.env) {
  const bugs = typeof pkg.bugs === 'string' ? pkg.bugs : pkg.bugs && (pkg.bugs.url || pkg.bugs.email)
  const meta = {
    maintainer: env[OVERRIDES.maintainer] || person(pkg.author),
    homepage: env[OVERRIDES.homepage] || pkg.homepage,
    bugs: env[OVERRIDES.bugs] || bugs,
  }
  for (const [k, v] of Object.entries(meta)) {
    if (!v) throw new Error(`package.json has no ${k === 'maintainer' ? 'author' : k}; set it or ${OVERRIDES[k]}`)
    if (/[\n\r]/.test(v)) throw new Error(`${OVERRIDES[k]}: one line please`)
  }
  if (!/^[^<>]+ <[^<>@\s]+@[^<>\s]+>$/.test(meta.maintainer))
    throw new Error(`maintainer "${meta.maintainer}" is not "Name <email>" (${OVERRIDES.maintainer})`)
  return meta
}

/** package.json with the overrides written into author, homepage and bugs. */
function withOverrides(pkg, env = process.env) {
  const meta = metadata(pkg, env)
  const bugs = /^https?:/.test(meta.bugs) ? { url: meta.bugs } : { email: meta.bugs }
  return { ...pkg, author: meta.maintainer, homepage: meta.homepage, bugs }
}

module.exports = { metadata, withOverrides }

if (require.main === module) {
  const [file, field] = process.argv.slice(2)
  try {
    const pkg = JSON.parse(fs.readFileSync(file, 'utf8'))
    if (field === '--json') process.stdout.write(JSON.stringify(withOverrides(pkg), null, 2) + '\n')
    else if (field in OVERRIDES) process.stdout.write(metadata(pkg)[field] + '\n')
    else throw new Error('usage: metadata.js PACKAGE_JSON maintainer|homepage|bugs|--json')
  } catch (e) {
    process.stderr.write(`metadata.js: ${e.message}\n`)
    process.exit(2)
  }
}
