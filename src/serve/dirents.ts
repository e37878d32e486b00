// FUSE's readdir answer: struct fuse_dirent { u64 ino; u64 off; u32 namelen; u32 type; char name[]; },
// each padded to 8 bytes (the kernel's fuse_dirent ABI, what libfuse's fuse_add_direntry writes). `off`
// is the cookie the kernel passes back to continue after that entry: here, the next entry's node number,
// so a listing resumes in O(1) from the packed table and needs no state per open directory.
import { constants } from 'node:fs'
import { endianness } from 'node:os'
import { NONE, type Table } from './table'

/** The cookie after the last entry. */
const END_COOKIE = 0xffffffff
const HEADER = 24
/** The kernel reads the header in the machine's byte order. */
const LE = endianness() === 'LE'

/** A u64 below 2^32, all 8 bytes of it: the buffer is reused, so the high half must be written too. */
function u64(out: Buffer, v: number, at: number): void {
  if (LE) {
    out.writeUInt32LE(v, at)
    out.writeUInt32LE(0, at + 4)
  } else {
    out.writeUInt32BE(0, at)
    out.writeUInt32BE(v, at + 4)
  }
}

function u32(out: Buffer, v: number, at: number): void {
  if (LE) out.writeUInt32LE(v, at)
  else out.writeUInt32BE(v, at)
}

/**
 * Entries of `dir` from `cookie` on (0: from the first), as many as fit in `size` bytes. Written into
 * `into` when given and large enough (the daemon's one scratch buffer: the kernel copies each answer
 * before the next is made, so listings allocate nothing), else into a new Buffer.
 */
export function encodeDirents(t: Table, dir: number, cookie: number, size: number, into?: Buffer): Buffer {
  let c: number
  if (cookie === 0) c = t.firstChild[dir]
  else if (cookie > 0 && cookie < t.count && t.parent[cookie] === dir) c = cookie
  else c = NONE // past the end, or a cookie that is not one of ours: nothing more
  const want = Math.max(0, Math.min(size, 1 << 20))
  const out = into !== undefined && into.length >= want ? into.subarray(0, want) : Buffer.alloc(want)
  let p = 0
  for (; c !== NONE; c = t.nextSibling[c]) {
    const length = t.nameLength[c]
    const entry = (HEADER + length + 7) & ~7
    if (p + entry > out.length) break
    const next = t.nextSibling[c]
    u64(out, c + 1, p) // the inode: node + 1
    u64(out, next === NONE ? END_COOKIE : next, p + 8)
    u32(out, length, p + 16)
    u32(out, (t.mode[c] & constants.S_IFMT) >>> 12, p + 20)
    t.names.copy(out, p + HEADER, t.nameStart[c], t.nameStart[c] + length)
    out.fill(0, p + HEADER + length, p + entry) // padding
    p += entry
  }
  return out.subarray(0, p)
}
