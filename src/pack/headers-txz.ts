// kheaders.tar.xz, the headers payload: the selected files read (comments stripped as they arrive),
// put in build order (build-order.ts, rather than gen_kheaders.sh's --sort=name, which tar -xf does
// not see), written as a normalized tar and compressed in independent xz blocks.
import type { FileRecord } from '../image/format'
import { buildOrder } from './build-order'
import type { SourceEntry } from './entries'
import { readFiles } from './read-files'
import { stripComments } from './strip-comments'
import { writeTar } from './tar'
import { xzBuffer, type XzOptions } from './xz'

export interface ArchiveProgress {
  filesDone: number
  filesTotal: number
  tarBytes: number
  xzBytes: number
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
  const progress: ArchiveProgress = { filesDone: 0, filesTotal: entries.length, tarBytes: 0, xzBytes: 0 }
  const report = (now: Partial<ArchiveProgress>): void => opts.onProgress?.(Object.assign(progress, now))
  // Every file is read before the tar is written: the order depends on the contents.
  const read = await readFiles(entries, stripHeader, opts.signal, () => report({ filesDone: progress.filesDone + 1 }))
  const order = buildOrder(entries, opts.arch, (i) => read.contents[i])
  const { tar, files } = await writeTar(
    order.map((i) => ({ entry: entries[i], data: read.contents[i] })),
    new Date(opts.epoch * 1000),
    opts.signal,
    (n) => report({ tarBytes: n }),
  )
  opts.signal?.throwIfAborted()
  const txz = await xzBuffer(tar, opts, (n) => report({ xzBytes: n }))
  return { txz, tarSize: tar.length, files, rawBytes: read.rawBytes, strippedBytes: read.strippedBytes }
}

/** A header's comments go; every other file is archived as it is. */
function stripHeader(entry: SourceEntry, raw: Buffer): Buffer {
  return entry.strip ? stripComments(raw) : raw
}
