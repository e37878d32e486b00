// The served tree's node table, packed for a daemon that keeps it for as long as it runs: one slot
// per path in typed arrays, every name once as UTF-8 in one Buffer, children as linked lists, and an
// open-addressing hash of (parent, name) for lookups. No JavaScript object or string per path, so it
// costs the heap nothing and the collector no work: measured on a module-build image (6,784 paths),
// ~0.4 MB outside the heap, where a Map of names per directory cost 1.2 MB of RSS and one Map of
// objects keyed by full paths 1.6 MB of heap (docs/design.md, "Daemon memory and start-up").
import { constants } from 'node:fs'

const { S_IFMT, S_IFDIR } = constants

export const ROOT = 0
/** No node (no child, no sibling, not found). */
export const NONE = -1

export interface Table {
  readonly count: number
  /** S_IFMT type and permission bits; node 0 is the root. */
  readonly mode: Uint32Array
  readonly size: Float64Array
  /** Where a view file's bytes start in the uncompressed archive. */
  readonly offset: Float64Array
  readonly parent: Int32Array
  readonly nameStart: Uint32Array
  readonly nameLength: Uint32Array
  readonly firstChild: Int32Array
  readonly nextSibling: Int32Array
  readonly names: Buffer
  /** Hash slots: node + 1, 0 for empty; a power of two long, at least twice the node count. */
  readonly slots: Int32Array
  readonly targets: Map<number, string>
  /** Flat files' bytes. */
  readonly data: Map<number, Buffer>
}

export const isDir = (t: Pick<Table, 'mode'>, id: number): boolean => (t.mode[id] & S_IFMT) === S_IFDIR

/** FNV-1a of the name's bytes, seeded with the parent. */
function hash(parent: number, bytes: Uint8Array, start: number, end: number): number {
  let h = (0x811c9dc5 ^ Math.imul(parent + 1, 0x9e3779b1)) >>> 0
  for (let i = start; i < end; i++) h = Math.imul(h ^ bytes[i], 0x01000193)
  return h >>> 0
}

/** The child of `dir` named by bytes [start, end) of `bytes`, or NONE. */
export function child(t: Table, dir: number, bytes: Uint8Array, start: number, end: number): number {
  const mask = t.slots.length - 1
  const n = end - start
  for (let i = hash(dir, bytes, start, end) & mask; ; i = (i + 1) & mask) {
    const id = t.slots[i] - 1
    if (id === NONE) return NONE
    if (t.parent[id] !== dir || t.nameLength[id] !== n) continue
    const at = t.nameStart[id]
    let k = 0
    while (k < n && t.names[at + k] === bytes[start + k]) k++
    if (k === n) return id
  }
}

export function name(t: Table, id: number): string {
  return t.names.toString('utf8', t.nameStart[id], t.nameStart[id] + t.nameLength[id])
}

/** Names of a directory's entries, in the order they were added. */
export function entries(t: Table, dir: number): string[] {
  const out: string[] = []
  for (let c = t.firstChild[dir]; c !== NONE; c = t.nextSibling[c]) out.push(name(t, c))
  return out
}

/** Collects nodes in growable arrays; table() packs them once. */
export class TableBuilder {
  private readonly mode: number[] = []
  private readonly size: number[] = []
  private readonly offset: number[] = []
  private readonly parent: number[] = []
  private readonly nameStart: number[] = []
  private readonly nameLength: number[] = []
  private readonly firstChild: number[] = []
  private readonly lastChild: number[] = []
  private readonly nextSibling: number[] = []
  private names = Buffer.allocUnsafe(64 * 1024)
  private namesEnd = 0
  readonly targets = new Map<number, string>()
  readonly data = new Map<number, Buffer>()

  get count(): number {
    return this.mode.length
  }

  isDir(id: number): boolean {
    return (this.mode[id] & S_IFMT) === S_IFDIR
  }

  /** A new node, the last entry of `parent` (NONE for the root). */
  add(parent: number, name: string, mode: number, size = 0, offset = 0): number {
    const id = this.mode.length
    const length = Buffer.byteLength(name)
    while (this.namesEnd + length > this.names.length) {
      const bigger = Buffer.allocUnsafe(this.names.length * 2)
      this.names.copy(bigger, 0, 0, this.namesEnd)
      this.names = bigger
    }
    this.names.write(name, this.namesEnd, 'utf8')
    this.nameStart.push(this.namesEnd)
    this.nameLength.push(length)
    this.namesEnd += length
    this.mode.push(mode)
    this.size.push(size)
    this.offset.push(offset)
    this.parent.push(parent)
    this.firstChild.push(NONE)
    this.lastChild.push(NONE)
    this.nextSibling.push(NONE)
    if (parent !== NONE) {
      const last = this.lastChild[parent]
      if (last === NONE) this.firstChild[parent] = id
      else this.nextSibling[last] = id
      this.lastChild[parent] = id
    }
    return id
  }

  setMode(id: number, mode: number): void {
    this.mode[id] = mode
  }

  table(): Table {
    const n = this.mode.length
    const names = Buffer.from(this.names.subarray(0, this.namesEnd)) // exactly the used bytes
    const t: Table = {
      count: n,
      mode: Uint32Array.from(this.mode),
      size: Float64Array.from(this.size),
      offset: Float64Array.from(this.offset),
      parent: Int32Array.from(this.parent),
      nameStart: Uint32Array.from(this.nameStart),
      nameLength: Uint32Array.from(this.nameLength),
      firstChild: Int32Array.from(this.firstChild),
      nextSibling: Int32Array.from(this.nextSibling),
      names,
      slots: new Int32Array(2 ** Math.max(4, Math.ceil(Math.log2(2 * n)))),
      targets: this.targets,
      data: this.data,
    }
    const mask = t.slots.length - 1
    for (let id = 1; id < n; id++) {
      const at = t.nameStart[id]
      let i = hash(t.parent[id], names, at, at + t.nameLength[id]) & mask
      while (t.slots[i] !== 0) i = (i + 1) & mask
      t.slots[i] = id + 1
    }
    return t
  }
}
