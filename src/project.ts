// The project's own metadata, from its package.json: the one place a release sets it (a distributor
// overrides it there at build time, packaging/metadata.js). version.ts and the image packages read it.
import { readFileSync } from 'node:fs'
import path from 'node:path'

export interface Project {
  version: string
  /** "Name <email>", from npm's `author` (a string or { name, email }). */
  maintainer?: string
  homepage?: string
  /** The bug tracker's address (or e-mail), from npm's `bugs`. */
  bugs?: string
}

interface PackageJson {
  version: string
  author?: string | { name?: string; email?: string }
  homepage?: string
  bugs?: string | { url?: string; email?: string }
}

let cached: Project | undefined

export function project(): Project {
  cached ??= fromPackageJson(
    JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as PackageJson,
  )
  return cached
}

function fromPackageJson(p: PackageJson): Project {
  const a = p.author
  const maintainer = typeof a === 'string' ? a : a?.name && (a.email ? `${a.name} <${a.email}>` : a.name)
  const bugs = typeof p.bugs === 'string' ? p.bugs : (p.bugs?.url ?? p.bugs?.email)
  return { version: p.version, maintainer: maintainer || undefined, homepage: p.homepage, bugs }
}
