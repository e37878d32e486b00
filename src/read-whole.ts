// Reading a whole file from a descriptor that was already checked (fstat, owner, where it lies), so
// that what is read is what was checked.
import { readSync } from 'node:fs'

/**
 * The file at `fd` into one Buffer of `size` bytes, read synchronously (no thread pool, no
 * fs/promises). A file that shrank meanwhile comes back short, for the caller's checks to catch.
 */
export function readWhole(fd: number, size: number): Buffer {
  const buf = Buffer.allocUnsafeSlow(size)
  let n = 0
  while (n < size) {
    const r = readSync(fd, buf, n, size - n, n)
    if (r === 0) break
    n += r
  }
  return n === size ? buf : buf.subarray(0, n)
}
