// Walking a directory tree: every entry under a root, depth first, links not followed.
import { readdirSync, type Dirent } from 'node:fs'
import path from 'node:path'

/**
 * Call `visit(rel, entry)` for every entry under `root`, depth first: a directory's entries come
 * right after it. `rel` is the path below `root` ("a/b"). Names in readdir's order, or sorted
 * (by UTF-16 code units, as Array.prototype.sort does) with `sorted`.
 */
export function walkTree(root: string, visit: (rel: string, e: Dirent) => void, opts: { sorted?: boolean } = {}): void {
  const go = (rel: string): void => {
    const entries = readdirSync(path.join(root, rel), { withFileTypes: true })
    if (opts.sorted) entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    for (const e of entries) {
      const r = rel === '' ? e.name : `${rel}/${e.name}`
      visit(r, e)
      if (e.isDirectory()) go(r)
    }
  }
  go('')
}
