// Loads kheadersfs's native addon (kheadersfs_fuse.c and xz_decode.c, built by node-gyp beside this
// file's source) and types what it exports. The daemon mounts through serve/fuse.ts and decodes blocks
// through xz/block.ts; the CLI only unmounts through it.
import path from 'node:path'
import { FuseUnavailableError, reason } from '../errors'
import { fuseInstallHint } from './fuse-packages'

/**
 * One request: `id` names it in the reply, `ino` is the node (the parent, for lookup), `nameLength`
 * the bytes of a lookup's name in the session's name buffer, `uid` the caller's user.
 */
export type Dispatch = (
  op: number,
  id: number,
  ino: number,
  off: number,
  size: number,
  nameLength: number,
  uid: number,
) => void

export type Session = { readonly __session: unique symbol }

export interface Binding {
  SLOTS: number
  mount(
    mountpoint: Buffer,
    options: string,
    mtime: number,
    timeout: number,
    dispatch: Dispatch,
    onEnd: (result: number) => void,
  ): { session: Session; name: Buffer }
  unmount(mountpoint: Buffer, lazy: boolean): { errno: number; message: string }
  replyErr(s: Session, id: number, errno: number): void
  replyEntry(s: Session, id: number, ino: number, mode: number, size: number): void
  replyAttr(s: Session, id: number, ino: number, mode: number, size: number): void
  replyBuf(s: Session, id: number, data: Buffer): void
  replyReadlink(s: Session, id: number, target: Buffer): void
  replyStatfs(s: Session, id: number, blocks: number, files: number, namemax: number): void
  /** Answer lookups, getattr and readdir from these arrays of a whole node table (serve/table.ts) from now on. */
  serveTable(
    s: Session,
    mode: Uint32Array,
    size: Float64Array,
    parent: Int32Array,
    nameStart: Uint32Array,
    nameLength: Uint32Array,
    names: Uint8Array,
    slots: Int32Array,
    firstChild: Int32Array,
    nextSibling: Int32Array,
  ): void
  /**
   * Answer reads of view files (nodes from `firstView` on) from published blocks from now on: `offset`
   * per node of the table, `start` each block's first byte in the tar and then its end, `touched` one
   * per block, set at each read answered so.
   */
  serveBlocks(s: Session, offset: Float64Array, firstView: number, start: Float64Array, touched: Uint32Array): void
  /** Reads may be answered from `data`, block `block`'s bytes, until it is retracted. */
  publishBlock(s: Session, block: number, data: Buffer): void
  retractBlock(s: Session, block: number): void
  stats(s: Session): SessionStats
  threads(): number
  /** xz_decode.c: raw LZMA2 `data` decoded into `out` on the thread pool; `check` 1 (CRC32) or 4 (CRC64) sums it. */
  decodeLzma2(data: Buffer, dictSize: number, out: Buffer, check: number, done: (r: Lzma2Result) => void): void
  liblzmaVersion: string
}

export interface Lzma2Result {
  /** Why the data did not decode (corrupt, truncated, more bytes than `out` holds). */
  error?: string
  /** Bytes of data read up to LZMA2's end marker, and bytes written to `out`. */
  consumed: number
  produced: number
  /** The requested check of the `produced` bytes as .xz stores it (little endian), else empty. */
  check: Buffer
}

export interface SessionStats {
  /** Requests answered later (a read waiting for its block) now, and at most so far. */
  inFlight: number
  peak: number
  /** Times every slot was taken and the reading thread left requests in the kernel for a while. */
  waited: number
  slots: number
  /** Requests the binding answered itself (from the table and published blocks), never dispatched. */
  answered: { lookup: number; getattr: number; read: number; readdir: number }
  /** OPEN and OPENDIR requests received: on kernels from 5.1 one of each, answered ENOSYS, and no more. */
  opens: number
}

/** Where node-gyp builds the binding, from dist/src/native (a checkout, the npm package, the .deb's app). */
const ADDON = path.join(__dirname, '..', '..', '..', 'src', 'native', 'build', 'Release', 'kheadersfs_fuse.node')

let loaded: Binding | undefined

export function loadBinding(): Binding {
  if (loaded !== undefined) return loaded
  try {
    loaded = require(ADDON) as Binding
    return loaded
  } catch (e) {
    // liblzma.so.5 is on every Debian/Ubuntu system (dpkg needs it); a minimal Yocto/Buildroot image may lack it.
    const hint = /libfuse\.so/.test(reason(e))
      ? fuseInstallHint({ library: true, fusermount: true })
      : /liblzma\.so/.test(reason(e))
        ? "install liblzma (xz's library: liblzma5 on Debian, xz-libs on Fedora, xz in Yocto and Buildroot)"
        : 'rebuild it (npm rebuild kheadersfs, or "bash .ci/setup" in a checkout)'
    throw new FuseUnavailableError(`Cannot load FUSE support: ${reason(e)}; ${hint}`, e)
  }
}
