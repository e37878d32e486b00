// The normalized tar of the entries, in the order given: uid/gid 0 with no owner names, the entries'
// normalized modes, one fixed mtime (gen_kheaders.sh does the same, less strictly). Records where
// each file's bytes sit in the uncompressed tar, so that the image can serve any file without
// decoding the archive in order.
import tarStream from 'tar-stream'
import type { FileRecord } from '../image/format'
import type { SourceEntry } from './entries'

/**
 * The normalized tar of `items`, in their order, and where each file's bytes sit in it. tar-stream
 * pushes each entry's header, data and padding in order, synchronously with respect to the entry's
 * callback, so the running count of pushed bytes locates every entry's data exactly.
 */
export async function writeTar(
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
    for (const [i, { entry, data }] of items.entries()) {
      // tar-stream calls back synchronously: without a turn of the event loop now and then, a
      // signal would wait for the whole tar.
      if (i % 64 === 63) await new Promise(setImmediate)
      signal?.throwIfAborted()
      const header = tarHeader(entry, data?.length ?? 0, mtime)
      await new Promise<void>((resolve, reject) => {
        const cb = (err?: Error | null): void => (err ? reject(err) : resolve())
        if (data === undefined) pack.entry(header, cb)
        else pack.entry(header, data, cb)
      })
      files.push(fileRecord(entry, data?.length ?? 0, pushed))
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

function tarHeader(e: SourceEntry, size: number, mtime: Date): Partial<tarStream.Header> & { name: string } {
  const header: Partial<tarStream.Header> & { name: string } = {
    name: e.type === 'directory' ? `${e.path}/` : e.path,
    type: e.type,
    mode: e.mode,
    uid: 0,
    gid: 0,
    uname: '',
    gname: '',
    mtime,
    size,
  }
  if (e.type === 'symlink') header.linkname = e.linkname
  return header
}

/** Where the entry's `size` bytes sit, given the tar's length just after them and their padding. */
function fileRecord(e: SourceEntry, size: number, end: number): FileRecord {
  return {
    path: e.path,
    type: e.type,
    offset: end - pad512(size) - size,
    size,
    mode: e.mode,
    ...(e.linkname !== undefined ? { link: e.linkname } : {}),
  }
}

/** An entry's share of the tar as ustar lays it out: its header and its data padded to whole records. */
export function entryBytes(data: Buffer | undefined): number {
  const n = data?.length ?? 0
  return 512 + n + pad512(n)
}

function pad512(n: number): number {
  return (512 - (n % 512)) % 512
}
