// Selected files → normalized tar (tar-stream) → xz (lzma-native). Normalized as gen_kheaders.sh does
// and stricter: names in --sort=name order, uid/gid 0 with no owner names, modes 0644/0755/0777, one
// fixed mtime. Records where each file's bytes sit in the uncompressed tar, so that the image can
// serve any file without decoding the archive in order.
import { constants } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import tarStream from 'tar-stream'
import { KernelTreeError, reason } from '../errors'
import type { FileRecord } from '../image/format'
import { MAX_FILE_BYTES, type SourceEntry } from './select'
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

/** How many file reads run ahead of the tar writer: hides disk latency without holding the tree in memory. */
const READ_AHEAD = 32

export async function buildArchive(
  entries: readonly SourceEntry[],
  opts: XzOptions & { epoch: number; onProgress?: (p: ArchiveProgress) => void; signal?: AbortSignal },
): Promise<Archive> {
  const pack = tarStream.pack()
  // tar-stream pushes each entry's header, data and padding in order, synchronously with respect to
  // the entry's callback, so the running count of pushed bytes locates every entry's data exactly.
  let pushed = 0
  const push = pack.push.bind(pack)
  pack.push = (chunk: unknown): boolean => {
    if (chunk !== null && chunk !== undefined) pushed += (chunk as Buffer).length
    return push(chunk)
  }
  const progress: ArchiveProgress = { filesDone: 0, filesTotal: entries.length, tarBytes: 0, xzBytes: 0 }
  const report = (): void => opts.onProgress?.(progress)
  // The uncompressed tar is held in memory (tens of MB) and compressed in one go (see xz.ts).
  const chunks: Buffer[] = []
  const tarDone = new Promise<Buffer>((resolve, reject) => {
    pack.on('data', (c: unknown) => chunks.push(c as Buffer))
    pack.on('end', () => resolve(Buffer.concat(chunks)))
    pack.on('error', reject)
  })

  const mtime = new Date(opts.epoch * 1000)
  const files: FileRecord[] = []
  let rawBytes = 0
  let strippedBytes = 0
  const reads = new Map<number, Promise<Buffer>>()
  const startRead = (i: number): void => {
    const e = entries[i]
    if (e === undefined || e.type !== 'file' || reads.has(i)) return
    const p = e.data ? Promise.resolve(e.data) : readSource(e)
    // A read ahead may fail before its turn; it is awaited (and its error raised) in order below.
    p.catch(() => undefined)
    reads.set(i, p)
  }
  try {
    for (let i = 0; i < Math.min(READ_AHEAD, entries.length); i++) startRead(i)
    for (let i = 0; i < entries.length; i++) {
      opts.signal?.throwIfAborted()
      startRead(i + READ_AHEAD)
      const e = entries[i]
      const header: Partial<tarStream.Header> & { name: string } = {
        name: e.type === 'directory' ? `${e.path}/` : e.path,
        type: e.type,
        mode: e.mode,
        uid: 0,
        gid: 0,
        uname: '',
        gname: '',
        mtime,
        size: 0,
      }
      let data: Buffer | undefined
      if (e.type === 'file') {
        const raw = await reads.get(i)!
        reads.delete(i)
        const content = e.strip ? stripComments(raw) : raw
        rawBytes += raw.length
        strippedBytes += content.length
        header.size = content.length
        data = content
      } else if (e.type === 'symlink') {
        header.linkname = e.linkname
      }
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
      progress.filesDone = i + 1
      progress.tarBytes = pushed
      report()
    }
    pack.finalize()
  } catch (err) {
    tarDone.catch(() => undefined) // destroying the pack rejects it; the cause is `err`
    pack.destroy(err as Error)
    throw err
  }
  const tar = await tarDone
  opts.signal?.throwIfAborted()
  const txz = await xzBuffer(tar, opts, (n) => {
    progress.xzBytes = n
    report()
  })
  return { txz, tarSize: pushed, files, rawBytes, strippedBytes }
}

function pad512(n: number): number {
  return (512 - (n % 512)) % 512
}

/**
 * Read a selected file. It was a regular file when selected; opening without following a final
 * symlink and without blocking (a FIFO swapped in meanwhile) keeps a changed tree from making pack
 * read outside it or hang.
 */
async function readSource(e: SourceEntry): Promise<Buffer> {
  let fh: FileHandle | undefined
  try {
    fh = await open(e.source!, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
    const st = await fh.stat()
    if (!st.isFile()) throw Object.assign(new Error('no longer a regular file'), { code: 'EINVAL' })
    if (st.size > MAX_FILE_BYTES) throw Object.assign(new Error(`grew to ${st.size} bytes while packing`), { code: 'EFBIG' })
    return await fh.readFile()
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'ELOOP' ? 'it became a symlink while packing' : reason(err)
    throw new KernelTreeError(`Cannot read ${e.source} (${e.path}): ${why}; make it readable or remove it from the tree`, err)
  } finally {
    await fh?.close()
  }
}
