// The bytes of every selected file, READ_AHEAD reads at a time (hides disk latency), each through
// the confinement it was selected under (confine.ts). Each file goes through `strip` as it arrives,
// so stripping overlaps the reads still in flight.
import { readConfined } from './confine'
import type { SourceEntry } from './entries'

export interface FileContents {
  /** Entry i's bytes as they will be archived; undefined for directories and links. */
  contents: Array<Buffer | undefined>
  /** Bytes read (files only) and the same after `strip`. */
  rawBytes: number
  strippedBytes: number
}

const READ_AHEAD = 32

export async function readFiles(
  entries: readonly SourceEntry[],
  strip: (entry: SourceEntry, raw: Buffer) => Buffer,
  signal: AbortSignal | undefined,
  onFile: (rawBytes: number) => void,
): Promise<FileContents> {
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
      const raw = e.data ?? (await readConfined(e.source!, e.path, e.within))
      const content = strip(e, raw)
      rawBytes += raw.length
      strippedBytes += content.length
      contents[i] = content
      onFile(raw.length)
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
