// Outputs of reference programs kept between test runs under /var/cache/kheadersfs, for results that
// do not depend on kheadersfs at all (gcc preprocessing the unstripped headers, in the whole-tree
// strip check): keyed by a digest of everything that determines them, so a changed input is a miss,
// never a stale answer. Paths of this run's temp directory are stored as a placeholder.
import { createHash } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import path from 'node:path'
import { writeFileAtomic } from '../../src/fs-atomic'

const ROOT = path.join(process.env.KHEADERSFS_CACHE ?? '/var/cache/kheadersfs', 'reference')
const PLACEHOLDER = '\u0000TMP\u0000'

export interface Output {
  stdout: string
  stderr: string
}

export class ReferenceCache {
  private readonly dir: string
  private readonly used = new Set<string>()
  hits = 0
  misses = 0

  /** `name`: the cache's folder; `tmp`: this run's temp directory, which outputs may mention. */
  constructor(
    name: string,
    private readonly tmp: string,
  ) {
    this.dir = path.join(ROOT, name)
  }

  /** `s` with this run's temp directory replaced by the placeholder, as keys and entries hold it. */
  private hide(s: string): string {
    return s.split(this.tmp).join(PLACEHOLDER)
  }

  /** The digest of `parts` (strings are hashed with this run's temp directory replaced). */
  key(parts: Array<string | Buffer>): string {
    const h = createHash('sha256')
    for (const p of parts) {
      const b = typeof p === 'string' ? Buffer.from(this.hide(p)) : p
      h.update(`${b.length}:`).update(b)
    }
    return h.digest('hex')
  }

  get(key: string): Output | undefined {
    this.used.add(key)
    let stored: Output
    try {
      stored = JSON.parse(readFileSync(path.join(this.dir, `${key}.json`), 'utf8')) as Output
    } catch {
      this.misses++
      return undefined
    }
    this.hits++
    const back = (s: string): string => s.split(PLACEHOLDER).join(this.tmp)
    return { stdout: back(stored.stdout), stderr: back(stored.stderr) }
  }

  /** Store an output; a cache that cannot be written only costs the next run its time. */
  put(key: string, out: Output): void {
    const stored: Output = { stdout: this.hide(out.stdout), stderr: this.hide(out.stderr) }
    try {
      mkdirSync(this.dir, { recursive: true })
      writeFileAtomic(path.join(this.dir, `${key}.json`), JSON.stringify(stored), { mode: 0o644 })
    } catch {
      // read-only or full /var/cache: run without the cache
    }
  }

  /** Remove the entries this run did not ask for (those of older header trees or compilers). */
  prune(): number {
    let removed = 0
    let names: string[]
    try {
      names = readdirSync(this.dir)
    } catch {
      return 0
    }
    for (const f of names) {
      if (this.used.has(f.replace(/\.json$/, ''))) continue
      rmSync(path.join(this.dir, f), { force: true })
      removed++
    }
    return removed
  }
}
