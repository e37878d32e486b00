// What pack may read: files that lie, physically, inside the directories the kernel's own layout
// names (the object tree, the source tree a split tree points at, the kbuild directory Debian's
// scripts/tools links name) or inside --sysroot. Checked when a link is met (select.ts) and again on
// the descriptor each file is read through, so that a tree changed while packing (a directory
// swapped for a link) cannot make pack read, and archive, a file from elsewhere.
import { closeSync, constants, fstatSync, openSync, readlinkSync } from 'node:fs'
import { open } from 'node:fs/promises'
import path from 'node:path'
import { KernelTreeError, reason } from '../errors'
import { readWhole } from '../read-whole'

export class Confinement {
  private readonly roots: string[]

  /** `roots`: real paths (realpath'd directories). */
  constructor(roots: Iterable<string>) {
    this.roots = [...new Set(roots)]
  }

  add(root: string): void {
    if (!this.roots.includes(root)) this.roots.push(root)
  }

  contains(real: string): boolean {
    return this.roots.some((r) => real === r || real.startsWith(r === '/' ? r : r + path.sep))
  }

  describe(): string {
    return this.roots.join(', ')
  }

  list(): readonly string[] {
    return this.roots
  }
}

/** Larger than any file a kernel build tree needs (objtool ~3 MB, Module.symvers ~2 MB). */
export const MAX_FILE_BYTES = 64 * 2 ** 20

function refuse(file: string, rel: string, why: string, cause?: unknown): never {
  throw new KernelTreeError(`Cannot read ${file} (${rel}): ${why}; make it readable or remove it from the tree`, cause)
}

/** After open: a regular file, of a sane size, really inside `within` (its descriptor's own path). */
function checkOpened(fd: number, file: string, rel: string, within: Confinement | undefined): number {
  const st = fstatSync(fd)
  if (!st.isFile()) refuse(file, rel, 'no longer a regular file')
  if (st.size > MAX_FILE_BYTES) refuse(file, rel, `grew to ${st.size} bytes while packing`)
  if (within !== undefined) {
    const real = readlinkSync(`/proc/self/fd/${fd}`)
    if (!within.contains(real))
      refuse(file, rel, `it now leads to ${real}, outside the kernel tree (${within.describe()})`)
  }
  return st.size
}

const FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK

/**
 * Read a selected file: no final symlink followed, no blocking on a FIFO swapped in meanwhile, and
 * nothing read that lies outside `within`.
 */
export async function readConfined(file: string, rel: string, within: Confinement | undefined): Promise<Buffer> {
  const fh = await open(file, FLAGS).catch((e: NodeJS.ErrnoException) =>
    refuse(file, rel, e.code === 'ELOOP' ? 'it became a symlink while packing' : reason(e), e),
  )
  try {
    checkOpened(fh.fd, file, rel, within)
    return await fh.readFile()
  } finally {
    await fh.close()
  }
}

/** readConfined, synchronously (the host-program rebuild's scratch copy). */
export function readConfinedSync(file: string, rel: string, within: Confinement | undefined): Buffer {
  let fd: number
  try {
    fd = openSync(file, FLAGS)
  } catch (e) {
    refuse(
      file,
      rel,
      (e as NodeJS.ErrnoException).code === 'ELOOP' ? 'it became a symlink while packing' : reason(e),
      e,
    )
  }
  try {
    return readWhole(fd, checkOpened(fd, file, rel, within))
  } finally {
    closeSync(fd)
  }
}
