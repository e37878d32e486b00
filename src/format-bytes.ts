// Human-readable figures for summaries (decimal units, as ls -lh --si and xz --list use).
export function bytes(n: number): string {
  if (n < 1000) return `${n} B`
  const units = ['kB', 'MB', 'GB', 'TB']
  let v = n
  let u = -1
  do {
    v /= 1000
    u++
  } while (v >= 1000 && u < units.length - 1)
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[u]}`
}

export function count(n: number): string {
  return n.toLocaleString('en-US')
}
