// -o link_build: while mounted, /lib/modules/<release>/build and source point at the kheaders/ view,
// so `make -C /lib/modules/$(uname -r)/build M=$PWD modules`, DKMS, BCC and bpftrace find the headers
// with no environment variable. A path that exists (even a dangling link) is never replaced; a link
// that already points at this view (left by a killed daemon) is taken over. At unload only links
// that still point at the view are removed, and the release directory only if we made it and it is
// empty again.
import { lstatSync, mkdirSync, readlinkSync, rmdirSync, symlinkSync, unlinkSync } from 'node:fs'
import path from 'node:path'
import { decodeOsPath, fsPath } from '../os-path'

export const MODULES_DIR = '/lib/modules'
const LINK_NAMES = ['build', 'source'] as const

export interface BuildLinks {
  /** Links this mount owns (to remove at unload). */
  links: string[]
  /** The release directory, when this mount created it. */
  createdDir?: string
  /** Paths left alone, with why, for the log. */
  kept: Array<{ path: string; reason: string }>
}

function linkTarget(p: string): string | undefined {
  try {
    return decodeOsPath(readlinkSync(p, { encoding: 'buffer' }))
  } catch {
    return undefined
  }
}

function exists(p: string): boolean {
  try {
    lstatSync(p)
    return true
  } catch {
    return false
  }
}

export function createBuildLinks(release: string, view: string, modulesDir = MODULES_DIR): BuildLinks {
  const dir = path.join(modulesDir, release)
  const out: BuildLinks = { links: [], kept: [] }
  if (!exists(dir)) {
    mkdirSync(dir, { recursive: true, mode: 0o755 })
    out.createdDir = dir
  }
  for (const name of LINK_NAMES) {
    const p = path.join(dir, name)
    const target = linkTarget(p)
    if (target === view) out.links.push(p)
    else if (exists(p))
      out.kept.push({ path: p, reason: target === undefined ? 'it exists' : `it exists and points at ${target}` })
    else {
      symlinkSync(fsPath(view), p)
      out.links.push(p)
    }
  }
  return out
}

/** Undo createBuildLinks; safe to call twice and after another program changed the paths. */
export function removeBuildLinks(links: { links: string[]; createdDir?: string }, view: string): void {
  for (const p of links.links) {
    if (linkTarget(p) !== view) continue
    try {
      unlinkSync(p)
    } catch {
      // gone meanwhile
    }
  }
  if (links.createdDir !== undefined) {
    try {
      rmdirSync(links.createdDir) // only if empty: someone may have put modules there since
    } catch {
      // not empty, or gone
    }
  }
}
