// Who besides root could change a file that root will run: its owner if not root, its group if
// group-writable (unless root's group), anyone if world-writable, and the same for every directory
// above it (a writable directory lets its file be replaced), except a root-owned sticky directory
// (/tmp), where only a file's owner may rename or remove it.
import { lstatSync, readdirSync, realpathSync, type Stats } from 'node:fs'
import path from 'node:path'

/** Why `st` (at `p`) is not root's alone, or undefined. */
function notRootOnly(p: string, st: Stats): string | undefined {
  // A link cannot be changed, only removed or replaced, which its directory decides.
  if (st.isSymbolicLink()) return undefined
  if (st.uid !== 0) return `${p} belongs to uid ${st.uid}`
  const sticky = st.isDirectory() && (st.mode & 0o1000) !== 0
  if (st.mode & 0o002 && !sticky && !st.isSymbolicLink()) return `anyone can write ${p}`
  if (st.mode & 0o020 && st.gid !== 0 && !sticky && !st.isSymbolicLink()) return `group ${st.gid} can write ${p}`
  return undefined
}

/**
 * The first reason another user could change the program at `file` or anything under `trees`
 * (walked whole, without following links), or undefined when all of it is root's alone.
 */
export function writableByOthers(file: string, trees: readonly string[] = []): string | undefined {
  const ancestors = (from: string): string | undefined => {
    for (let p = from; ; p = path.dirname(p)) {
      const why = notRootOnly(p, lstatSync(p))
      if (why !== undefined) return why
      if (p === '/') return undefined
    }
  }
  const fileWhy = ancestors(realpathSync(file))
  if (fileWhy !== undefined) return fileWhy
  for (const tree of trees) {
    // Whoever can change a directory above the tree can put another tree in its place.
    const aboveWhy = ancestors(path.dirname(realpathSync(tree)))
    if (aboveWhy !== undefined) return aboveWhy
    const stack = [realpathSync(tree)]
    while (stack.length > 0) {
      const dir = stack.pop()!
      const why = notRootOnly(dir, lstatSync(dir))
      if (why !== undefined) return why
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name)
        if (e.isDirectory()) stack.push(p)
        else {
          const w = notRootOnly(p, lstatSync(p))
          if (w !== undefined) return w
        }
      }
    }
  }
  return undefined
}

/**
 * The first reason another user could change where the directory `dir` leads (a link on the way that
 * is not root's) or what is in it (writableByOthers of the resolved path), or undefined.
 */
export function dirWritableByOthers(dir: string): string | undefined {
  for (let p = dir; p !== '/'; p = path.dirname(p)) {
    const st = lstatSync(p)
    if (st.isSymbolicLink() && st.uid !== 0) return `${p} is a link owned by uid ${st.uid}`
  }
  return writableByOthers(dir)
}
