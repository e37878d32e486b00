// kheaders.tar.xz, the headers payload: the selected files read (comments stripped as they arrive),
// put in build order (build-order.ts, rather than gen_kheaders.sh's --sort=name, which tar -xf does
// not see), written as a normalized tar and compressed in independent xz blocks.
import type { FileRecord } from '../image/format'
import { buildOrder } from './build-order'
import type { SourceEntry } from './entries'
import { readFiles } from './read-files'
import { stripComments } from './strip-comments'
import { entryBytes, writeTar } from './tar'
import { xzBuffer, type XzOptions } from './xz'

/** The archive's three steps, each measured in bytes: read from the tree, written to the tar, compressed. */
export type ArchivePhase = 'read' | 'tar' | 'xz'

/** Progress of one step: `done` of `total` bytes; a step's first report has done 0, its last done = total. */
export interface ArchiveProgress {
  phase: ArchivePhase
  done: number
  total: number
}

export interface Archive {
  txz: Buffer
  tarSize: number
  files: FileRecord[]
  /** Bytes read from the tree (files only) and the same after comment stripping. */
  rawBytes: number
  strippedBytes: number
}

export async function buildHeadersTxz(
  entries: readonly SourceEntry[],
  opts: XzOptions & { epoch: number; arch: string; onProgress?: (p: ArchiveProgress) => void; signal?: AbortSignal },
): Promise<Archive> {
  const report = (phase: ArchivePhase, done: number, total: number): void =>
    opts.onProgress?.({ phase, done: Math.min(done, total), total })
  // Every file is read before the tar is written: the order depends on the contents.
  const toRead = entries.reduce((n, e) => n + (e.type === 'file' ? e.size : 0), 0)
  let readBytes = 0
  report('read', 0, toRead)
  const read = await readFiles(entries, stripHeader, opts.signal, (n) => report('read', (readBytes += n), toRead))
  report('read', toRead, toRead)
  const order = buildOrder(entries, opts.arch, (i) => read.contents[i])
  const items = order.map((i) => ({ entry: entries[i], data: read.contents[i] }))
  const tarTotal = tarSize(items)
  report('tar', 0, tarTotal)
  const { tar, files } = await writeTar(items, new Date(opts.epoch * 1000), opts.signal, (n) =>
    report('tar', n, tarTotal),
  )
  report('tar', tarTotal, tarTotal)
  report('xz', 0, tar.length)
  const txz = await xzBuffer(tar, opts, (n) => report('xz', n, tar.length), opts.signal)
  report('xz', tar.length, tar.length)
  return { txz, tarSize: tar.length, files, rawBytes: read.rawBytes, strippedBytes: read.strippedBytes }
}

/** The tar's size as ustar lays it out (a header and padded data per entry, two zero blocks at the end). */
function tarSize(items: ReadonlyArray<{ data?: Buffer }>): number {
  return items.reduce((n, { data }) => n + entryBytes(data), 1024)
}

/** A header's comments go; every other file is archived as it is. */
function stripHeader(entry: SourceEntry, raw: Buffer): Buffer {
  return entry.strip ? stripComments(raw) : raw
}
