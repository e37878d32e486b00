// Selected files → normalized tar (tar-stream) → xz (lzma-native). Normalized as gen_kheaders.sh does
// and stricter: uid/gid 0 with no owner names, modes 0644/0755/0777, one fixed mtime; entries in build
// order (build-order.ts) rather than gen_kheaders.sh's --sort=name, which tar -xf does not see.
// Records where each file's bytes sit in the uncompressed tar, so that the image can serve any file
// without decoding the archive in order.
import tarStream from 'tar-stream'
import type { FileRecord } from '../image/format'
import { buildOrder } from './build-order'
import { readConfined } from './confine'
import type { SourceEntry } from './select'
import { stripComments } from './strip-comments'
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

/** How many file reads run at once: hides disk latency. */
const READ_AHEAD = 32

export async function buildArchive(
  entries: readonly SourceEntry[],
  opts: XzOptions & { epoch: number; arch: string; onProgress?: (p: ArchiveProgress) => void; signal?: AbortSignal },
): Promise<Archive> {
  const progress: ArchiveProgress = { filesDone: 0, filesTotal: entries.length, tarBytes: 0, xzBytes: 0 }
  const report = (): void => opts.onProgress?.(progress)
  // Every file is read (and stripped) before the tar is written: the order depends on the contents.
  const { contents, rawBytes, strippedBytes } = await readAll(entries, opts.signal, () => {
    progress.filesDone++
    report()
  })
  const order = buildOrder(entries, opts.arch, (i) => contents[i])
  const { tar, files } = await writeTar(
    order.map((i) => ({ entry: entries[i], data: contents[i] })),
    new Date(opts.epoch * 1000),
    opts.signal,
    (n) => {
      progress.tarBytes = n
      report()
    },
  )
  opts.signal?.throwIfAborted()
  const txz = await xzBuffer(tar, opts, (n) => {
    progress.xzBytes = n
    report()
  })
  return { txz, tarSize: tar.length, files, rawBytes, strippedBytes }
}

/** Read every file of `entries` (READ_AHEAD at a time), comments stripped where asked. */
async function readAll(
  entries: readonly SourceEntry[],
  signal: AbortSignal | undefined,
  onFile: () => void,
): Promise<{ contents: Array<Buffer | undefined>; rawBytes: number; strippedBytes: number }> {
  const contents = new Array<Buffer | undefined>(entries.length)
  let rawBytes = 0
  let strippedBytes = 0
  let next = 0
  let failed = false
  const worker = async (): Promise<void> => {
    while (next < entries.length && !failed) {
      signal?.throwIfAborted()
      const i = next++
      const e = entries[i]
      if (e.type !== 'file') continue
      const raw = e.data ?? (await readSource(e))
      const content = e.strip ? stripComments(raw) : raw
      rawBytes += raw.length
      strippedBytes += content.length
      contents[i] = content
      onFile()
    }
  }
  // The first failure is raised; the other workers stop at their next file.
  const workers = Array.from({ length: Math.min(READ_AHEAD, entries.length) }, () =>
    worker().catch((e: unknown) => {
      failed = true
      throw e
    }),
  )
  const results = await Promise.allSettled(workers)
  const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (rejected) throw rejected.reason
  return { contents, rawBytes, strippedBytes }
}

/**
 * The normalized tar of `items`, in their order, and where each file's bytes sit in it. tar-stream
 * pushes each entry's header, data and padding in order, synchronously with respect to the entry's
 * callback, so the running count of pushed bytes locates every entry's data exactly.
 */
async function writeTar(
  items: ReadonlyArray<{ entry: SourceEntry; data?: Buffer }>,
  mtime: Date,
  signal: AbortSignal | undefined,
  onBytes: (n: number) => void,
): Promise<{ tar: Buffer; files: FileRecord[] }> {
  const pack = tarStream.pack()
  let pushed = 0
  const push = pack.push.bind(pack)
  pack.push = (chunk: unknown): boolean => {
    if (chunk !== null && chunk !== undefined) pushed += (chunk as Buffer).length
    return push(chunk)
  }
  // The uncompressed tar is held in memory (tens of MB) and compressed in one go (see xz.ts).
  const chunks: Buffer[] = []
  const tarDone = new Promise<Buffer>((resolve, reject) => {
    pack.on('data', (c: unknown) => chunks.push(c as Buffer))
    pack.on('end', () => resolve(Buffer.concat(chunks)))
    pack.on('error', reject)
  })
  const files: FileRecord[] = []
  try {
    for (const { entry: e, data } of items) {
      signal?.throwIfAborted()
      const header: Partial<tarStream.Header> & { name: string } = {
        name: e.type === 'directory' ? `${e.path}/` : e.path,
        type: e.type,
        mode: e.mode,
        uid: 0,
        gid: 0,
        uname: '',
        gname: '',
        mtime,
        size: data?.length ?? 0,
      }
      if (e.type === 'symlink') header.linkname = e.linkname
      await new Promise<void>((resolve, reject) => {
        const cb = (err?: Error | null): void => (err ? reject(err) : resolve())
        if (data === undefined) pack.entry(header, cb)
        else pack.entry(header, data, cb)
      })
      const size = data?.length ?? 0
      files.push({
        path: e.path,
        type: e.type,
        offset: pushed - pad512(size) - size,
        size,
        mode: e.mode,
        ...(e.linkname !== undefined ? { link: e.linkname } : {}),
      })
      onBytes(pushed)
    }
    pack.finalize()
  } catch (err) {
    tarDone.catch(() => undefined) // destroying the pack rejects it; the cause is `err`
    pack.destroy(err as Error)
    throw err
  }
  return { tar: await tarDone, files }
}

function pad512(n: number): number {
  return (512 - (n % 512)) % 512
}

/** Read a selected file, confined to the kernel tree (confine.ts). */
function readSource(e: SourceEntry): Promise<Buffer> {
  return readConfined(e.source!, e.path, e.within)
}
