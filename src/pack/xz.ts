// xz compression through lzma-native's multithreaded encoder. A fixed block size makes the output
// independent of the thread count (blocks are cut at the same offsets) and makes every block
// decodable on its own, which lets a reader seek without decoding the whole archive.
//
// lzma-native codes on libuv's thread pool, and a process cannot exit while such a job runs (libuv
// joins its pool at exit): an interrupted pack ends by its signal instead (src/cli.ts), which the
// kernel carries out at once. An encoder in a child process did the same for 118 MB more at its peak.
import lzma from 'lzma-native'
import { availableParallelism } from 'node:os'

export interface XzOptions {
  preset: number
  /** Uncompressed bytes per xz block. */
  blockSize: number
  /** Encoder threads; 0 = one per core. Does not change the bytes. */
  threads: number
}

/**
 * Uncompressed bytes per block by default. 1 MiB: a cold read decodes half what 2 MiB cost (the first
 * read of a header on a fresh mount), a cache of 8 MiB holds 8 blocks (a build's tiers plus one block
 * per tier of a walk: docs/design.md, "Block size and cache"), for 1.6% more archive than 2 MiB.
 */
export const DEFAULT_BLOCK_SIZE = 1 << 20

export const CHECK = { name: 'crc64', id: lzma.CHECK_CRC64 } as const

/** LZMA2 settings as the manifest records them (lzma-native's option names). */
export interface Lzma2Options {
  dictSize: number
  lc: number
  lp: number
  pb: number
  mode: number
  niceLen: number
  mf: number
  depth: number
}

/**
 * xz's preset `preset` (the dictionary sizes and match finders of xz(1)'s preset table) with two
 * changes for C text cut into independent blocks, both measured on Debian's 6.1 headers (docs/design.md):
 * - the dictionary is no larger than a block: a block can never refer further back, and `xz -d`
 *   (or any reader not capping it as src/xz/block.ts does) allocates the whole dictionary per block
 *   (9 MiB at -6 for a 1 MiB block, 2 MiB with this);
 * - lc=4, pb=0 (text has no 4-byte alignment to exploit) and nice length 273 (as xz -e): 0.5% and
 *   0.5% smaller, the second at about the same encoder time.
 * lzma-native applies a `preset` after the other fields, so every field is given explicitly.
 */
function lzma2Options(preset: number, blockSize: number): Lzma2Options {
  const level = Math.min(9, Math.max(1, preset))
  const presetDict = 2 ** [18, 20, 21, 22, 22, 23, 23, 24, 25, 26][level]
  const fast = level <= 3
  return {
    dictSize: Math.max(4096, Math.min(presetDict, blockSize)),
    lc: 4,
    lp: 0,
    pb: 0,
    mode: fast ? lzma.MODE_FAST : lzma.MODE_NORMAL,
    niceLen: fast && level <= 1 ? 128 : 273,
    mf: fast ? lzma.MF_HC4 : lzma.MF_BT4,
    depth: fast ? [0, 4, 8, 24][level] : 0,
  }
}

/**
 * Compress a whole buffer; `onInput` sees how many input bytes the encoder has taken. The input goes
 * in a round of blocks at a time, one block for each encoder thread (at least two): smaller writes
 * leave threads idle (one 32 MB write and writes of two 1 MiB blocks took the same time on 2 cores),
 * and between rounds the encoder reports its progress. `signal` rejects at once; the job running on
 * the thread pool finishes on its own (or dies with the process).
 */
export async function xzBuffer(
  input: Buffer,
  opts: XzOptions,
  onInput?: (bytes: number) => void,
  signal?: AbortSignal,
): Promise<Buffer> {
  signal?.throwIfAborted()
  const enc = lzma.createStream('streamEncoder', {
    filters: [{ id: 'LZMA_FILTER_LZMA2', options: lzma2Options(opts.preset, opts.blockSize) }],
    check: CHECK.id,
    threads: opts.threads,
    blockSize: opts.blockSize,
    bufsize: 1 << 20,
  })
  const chunks: Buffer[] = []
  let out = 0
  const done = new Promise<Buffer>((resolve, reject) => {
    enc.on('data', (c: Buffer) => {
      chunks.push(c)
      out += c.length
    })
    enc.once('end', () => resolve(Buffer.concat(chunks, out)))
    enc.once('error', reject)
  })
  let onAbort: (() => void) | undefined
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal!.reason as Error)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
  aborted.catch(() => undefined) // a rejection nobody waits for after the last round is not an error
  try {
    const round = opts.blockSize * Math.max(2, opts.threads || availableParallelism())
    for (let off = 0; off < input.length; off += round) {
      const written = new Promise<void>((resolve, reject) =>
        enc.write(input.subarray(off, off + round), (e) => (e ? reject(e) : resolve())),
      )
      await Promise.race([written, aborted])
      onInput?.(enc.totalIn())
    }
    enc.end()
    return await Promise.race([done, aborted])
  } finally {
    signal?.removeEventListener('abort', onAbort!)
  }
}
