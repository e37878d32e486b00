// What a directory tree holds, as one comparable map, and the digest of one file (src's sha256).
// treeDigest: path → "f mode sha256" for files, "d mode" for directories, "l target" for symlinks;
// used to compare extractions and the kheaders/ view. treeMap: the same without modes, as a plain
// object (the expected tree the stress readers compare a mount with).
import { lstatSync, readFileSync, readlinkSync } from 'node:fs'
import path from 'node:path'
import { sha256 } from '../../src/image/format'
import { walkTree } from './walk'

/** sha256 (lowercase hex) of a file's bytes. */
export function fileSha256(file: string): string {
  return sha256(readFileSync(file))
}

export function treeDigest(dir: string): Map<string, string> {
  const out = new Map<string, string>()
  walkTree(dir, (r, e) => {
    const full = path.join(dir, r)
    const mode = (lstatSync(full).mode & 0o7777).toString(8)
    if (e.isSymbolicLink()) out.set(r, `l ${readlinkSync(full)}`)
    else if (e.isDirectory()) out.set(r, `d ${mode}`)
    else out.set(r, `f ${mode} ${fileSha256(full)}`)
  })
  return out
}

/** Paths whose digests differ between two trees (or exist in one only), sorted. */
export function digestDiff(a: Map<string, string>, b: Map<string, string>): string[] {
  const names = new Set([...a.keys(), ...b.keys()])
  return [...names].filter((n) => a.get(n) !== b.get(n)).sort()
}

/** rel path → "f <sha256>" for files, "d" for directories, "l <target>" for links, under `dir`. */
export function treeMap(dir: string): Record<string, string> {
  const out: Record<string, string> = {}
  walkTree(dir, (r, e) => {
    const full = path.join(dir, r)
    if (e.isSymbolicLink()) out[r] = `l ${readlinkSync(full)}`
    else if (e.isDirectory()) out[r] = 'd'
    else out[r] = `f ${fileSha256(full)}`
  })
  return out
}
