// Name order as GNU tar --sort=name gives it: the order entries are selected in (select.ts, and
// from-kheaders.ts for the kernel's archive), and build-order.ts's tie-break.

/**
 * Directory by directory, names compared bytewise, so a directory's entries are contiguous and
 * follow it.
 */
export function compareTarPaths(a: string, b: string): number {
  const pa = a.split('/')
  const pb = b.split('/')
  const n = Math.min(pa.length, pb.length)
  for (let i = 0; i < n; i++) {
    if (pa[i] !== pb[i]) return Buffer.compare(Buffer.from(pa[i]), Buffer.from(pb[i]))
  }
  return pa.length - pb.length
}

/** `entries` in name order, as a new array. */
export function inTarOrder<T extends { path: string }>(entries: Iterable<T>): T[] {
  return [...entries].sort((a, b) => compareTarPaths(a.path, b.path))
}
