// What a directory tree holds, as one comparable map: path → "type mode sha256" for files, "d mode"
// for directories, "l target" for symlinks. Used to compare extractions and the kheaders/ view.
import { createHash } from 'node:crypto'
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs'
import path from 'node:path'

export function treeDigest(dir: string): Map<string, string> {
  const out = new Map<string, string>()
  const walk = (rel: string): void => {
    for (const e of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel === '' ? e.name : `${rel}/${e.name}`
      const full = path.join(dir, r)
      const mode = (lstatSync(full).mode & 0o7777).toString(8)
      if (e.isSymbolicLink()) out.set(r, `l ${readlinkSync(full)}`)
      else if (e.isDirectory()) {
        out.set(r, `d ${mode}`)
        walk(r)
      } else out.set(r, `f ${mode} ${createHash('sha256').update(readFileSync(full)).digest('hex')}`)
    }
  }
  walk('')
  return out
}

/** Paths whose digests differ between two trees (or exist in one only), sorted. */
export function digestDiff(a: Map<string, string>, b: Map<string, string>): string[] {
  const names = new Set([...a.keys(), ...b.keys()])
  return [...names].filter((n) => a.get(n) !== b.get(n)).sort()
}
