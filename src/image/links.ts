// Where a symbolic link of the header archive leads, judged inside the archive alone: its target is
// followed one name at a time from the link's directory, through the archive's other links, as the
// kernel would follow it in an extracted tree or in the kheaders/ view. A link that is absolute, that
// climbs above the archive's root (`..` at the top, or through a link to a parent), or that loops, could
// make a reader of the tree (root's module build) open a file from elsewhere: pack refuses to keep one,
// and an image that holds one is refused at load.

/** Links followed in one resolution at most, as the kernel's MAXSYMLINKS. */
export const MAX_LINK_HOPS = 40

export type LinkVerdict = { inside: true; path: string } | { inside: false; why: string }

/**
 * Resolve link `from`'s `target` among the archive's links (`links`: archive path → target). On
 * success the archive path it names ('' for the root), which need not exist: a dangling link inside
 * the archive reads nothing from outside.
 */
export function resolveInArchive(from: string, target: string, links: ReadonlyMap<string, string>): LinkVerdict {
  if (target.startsWith('/')) return { inside: false, why: 'an absolute path leads out of the archive' }
  const parts = from.split('/').slice(0, -1)
  let todo = target.split('/')
  let hops = 0
  let via = ''
  while (todo.length > 0) {
    const name = todo.shift()!
    if (name === '' || name === '.') continue
    if (name === '..') {
      if (parts.length === 0)
        return { inside: false, why: `it climbs above the archive's root${via ? ` (through ${via})` : ''}` }
      parts.pop()
      continue
    }
    parts.push(name)
    const at = parts.join('/')
    const next = links.get(at)
    if (next === undefined) continue
    if (++hops > MAX_LINK_HOPS) return { inside: false, why: `it loops: more than ${MAX_LINK_HOPS} links in a row` }
    if (next.startsWith('/')) return { inside: false, why: `it goes through ${at}, a link to the absolute ${next}` }
    via = at
    parts.pop()
    todo = [...next.split('/'), ...todo]
  }
  return { inside: true, path: parts.join('/') }
}
