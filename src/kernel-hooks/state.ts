// What the kernel hooks packed: one record per release, /var/lib/kheadersfs/kernel-hooks/<release>.
// An image is the hooks' own only while its sha256 is the one recorded here: anything else at
// /lib/modules/<release>/kheaders.img (placed by hand, replaced by hand) is never overwritten or
// removed. KEY=value lines, so the package's postrm can still read them on purge, when the program
// itself is already gone.
import { createHash } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, statSync } from 'node:fs'
import path from 'node:path'
import { writeFileAtomic } from '../fs-atomic'
import { RELEASE, sha256 } from '../image/format'

export interface HookRecord {
  release: string
  image: string
  sha256: string
  /** The headers tree packed, and its stamp when packed (treeStamp), to skip a second pack of it. */
  tree: string
  treeStamp: string
  profile: string
}

const KEYS: Array<[keyof HookRecord, string]> = [
  ['release', 'RELEASE'],
  ['image', 'IMAGE'],
  ['sha256', 'SHA256'],
  ['tree', 'TREE'],
  ['treeStamp', 'TREE_STAMP'],
  ['profile', 'PROFILE'],
]

export function writeRecord(dir: string, r: HookRecord): void {
  mkdirSync(dir, { recursive: true, mode: 0o755 })
  const lines = KEYS.map(([k, name]) => `${name}=${r[k]}`)
  const text = `# packed by the kheadersfs kernel hooks; see kheadersfs(1), KERNEL HOOKS\n${lines.join('\n')}\n`
  writeFileAtomic(path.join(dir, r.release), text, { mode: 0o644, fsync: true })
}

/** The record of `release`, or undefined when there is none (or it is unreadable: then nothing is ours). */
export function readRecord(dir: string, release: string): HookRecord | undefined {
  let text: string
  try {
    text = readFileSync(path.join(dir, release), 'utf8')
  } catch {
    return undefined
  }
  const values = new Map<string, string>()
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=')
    if (!line.startsWith('#') && eq > 0) values.set(line.slice(0, eq), line.slice(eq + 1))
  }
  const r = Object.fromEntries(KEYS.map(([k, name]) => [k, values.get(name)])) as Partial<HookRecord>
  if (KEYS.some(([k]) => r[k] === undefined) || r.release !== release) return undefined
  return r as HookRecord
}

export function removeRecord(dir: string, release: string): void {
  rmSync(path.join(dir, release), { force: true })
}

/** Releases with a record. */
export function recordedReleases(dir: string): string[] {
  try {
    return readdirSync(dir)
      .filter((n) => RELEASE.test(n))
      .sort()
  } catch {
    return []
  }
}

export function sha256File(file: string): string {
  return sha256(readFileSync(file))
}

/** True when `image` is there and is byte for byte what the hooks recorded. */
export function isHooksImage(r: HookRecord | undefined, image: string): boolean {
  if (r === undefined || r.image !== image) return false
  try {
    return sha256File(image) === r.sha256
  } catch {
    return false
  }
}

/**
 * A cheap stamp of a headers tree: its real path and the size and mtime of the files a headers
 * package changes with each build. dpkg sets mtimes from the package, so the same package installed
 * again (or the image package's postinst.d before the headers' header_postinst.d in one apt run)
 * gives the same stamp, and the hook does not pack the same tree twice.
 */
export function treeStamp(tree: string): string {
  const h = createHash('sha256')
  let real = tree
  try {
    real = realpathSync(tree)
  } catch {
    // stamped by its given path
  }
  h.update(real)
  for (const f of ['.config', 'Makefile', 'Module.symvers', 'include/config/kernel.release']) {
    try {
      const st = statSync(path.join(tree, f))
      h.update(`\0${f}\0${st.size}\0${st.mtimeMs}`)
    } catch {
      h.update(`\0${f}\0-`)
    }
  }
  return h.digest('hex').slice(0, 32)
}
