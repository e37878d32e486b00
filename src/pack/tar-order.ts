// Name order as GNU tar --sort=name gives it: the order entries are selected in (select.ts, and
// from-kheaders.ts for the kernel's archive), each tier of build-order.ts, and the order the daemon
// lists the kheaders/ view in (serve/tree.ts).

/**
 * Directory by directory, names compared bytewise, so a directory's entries are contiguous and
 * follow it. Without splitting: the first character that differs decides, '/' before any other (a
 * name that ends there is a prefix of the other's, so the shorter sorts first), and a string that is
 * a prefix of the other sorts first. UTF-16 order is UTF-8 byte order below the surrogates; from there
 * on the bytes decide. The daemon sorts its view with this (~2 ms for 6,800 paths; splitting every
 * path at every comparison took ~25 ms).
 */
export function compareTarPaths(a: string, b: string): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i)
    const y = b.charCodeAt(i)
    if (x === y) continue
    if (x === SLASH) return -1
    if (y === SLASH) return 1
    if (x >= SURROGATES || y >= SURROGATES) return byComponents(a, b)
    return x - y
  }
  return a.length - b.length
}

const SLASH = 0x2f
const SURROGATES = 0xd800

/** compareTarPaths by the UTF-8 bytes of each path component. */
function byComponents(a: string, b: string): number {
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
