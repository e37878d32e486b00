// xz compression through lzma-native's multithreaded encoder. A fixed block size makes the output
// independent of the thread count (blocks are cut at the same offsets) and makes every block
// decodable on its own, which lets a reader seek without decoding the whole archive.
//
// The encoder runs in a child process (this module, run as a script): lzma-native codes on libuv's
// thread pool, one job for as long as the input lasts, and a process cannot exit before that job
// ends (libuv joins its pool at exit). Ctrl-C waited for the whole compression, 28 s on a board; a
// child is killed at once.
import { fork, type ChildProcess } from 'node:child_process'
import lzma from 'lzma-native'
import { availableParallelism } from 'node:os'

export interface XzOptions {
  preset: number
  /** Uncompressed bytes per xz block. */
  blockSize: number
  /** Encoder threads; 0 = one per core. Does not change the bytes. */
  threads: number
}

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
 *   (9 MiB at -6 for a 2 MiB block, 3 MiB with this);
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

/** Encoder processes started ahead of need (preforkEncoders), waiting for their input. */
const idle: ChildProcess[] = []

function forkEncoder(): ChildProcess {
  return fork(__filename, [], { stdio: ['pipe', 'pipe', 'pipe', 'ipc'], execArgv: [] })
}

/**
 * Start `n` encoder processes now, while this process is small: fork copies the parent's page tables,
 * which took 0.4 s once pack held the tree in memory (on a loaded 2-core machine), and a signal
 * waits for that. Returns what kills the ones not used.
 */
export function preforkEncoders(n: number): () => void {
  for (let i = 0; i < n; i++) idle.push(forkEncoder())
  return () => {
    for (const c of idle.splice(0)) c.kill('SIGKILL')
  }
}

/**
 * Compress a whole buffer in a child process; `onInput` sees how many input bytes the encoder has
 * taken (after each block), and `signal` kills the child at once.
 */
export function xzBuffer(
  input: Buffer,
  opts: XzOptions,
  onInput?: (bytes: number) => void,
  signal?: AbortSignal,
): Promise<Buffer> {
  signal?.throwIfAborted()
  const child = idle.shift() ?? forkEncoder()
  return new Promise<Buffer>((resolve, reject) => {
    const out: Buffer[] = []
    let err = ''
    const abort = (): void => {
      child.kill('SIGKILL')
      reject(signal?.reason as Error)
    }
    signal?.addEventListener('abort', abort, { once: true })
    child.stdout!.on('data', (c: Buffer) => out.push(c))
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()))
    child.on('message', (m: { in?: number }) => {
      if (typeof m.in === 'number') onInput?.(m.in)
    })
    child.on('error', reject)
    child.on('close', (code, sig) => {
      signal?.removeEventListener('abort', abort)
      if (code === 0) resolve(Buffer.concat(out))
      else reject(new Error(`xz encoder exited with ${sig ?? `status ${code}`}: ${err.trim()}`))
    })
    child.send({ opts, size: input.length })
    // EPIPE when the child died first: its exit status says why.
    child.stdin!.on('error', () => undefined)
    child.stdin!.end(input)
  })
}

/**
 * The child: the options from the parent, the input from stdin, handed to the encoder a block per
 * thread at a time, each write waiting for the last so that the encoder reports its progress after each; the .xz
 * to stdout. The bytes are those of one write, and so is the time: 2 MB and 4 MB writes of Debian's
 * 36 MB tar were measured as fast as one write on 2 cores (the stream's own write buffering would
 * join them into one).
 */
async function encodeStdin(): Promise<void> {
  const job = new Promise<{ opts: XzOptions; size: number }>((resolve) => process.once('message', resolve))
  const chunks: Buffer[] = []
  for await (const c of process.stdin) chunks.push(c as Buffer)
  const input = Buffer.concat(chunks)
  const { opts, size } = await job
  if (input.length !== size) throw new Error(`read ${input.length} of ${size} input bytes`)
  const enc = lzma.createStream('streamEncoder', {
    filters: [{ id: 'LZMA_FILTER_LZMA2', options: lzma2Options(opts.preset, opts.blockSize) }],
    check: CHECK.id,
    threads: opts.threads,
    blockSize: opts.blockSize,
    bufsize: 1 << 20,
  })
  const done = new Promise<void>((resolve, reject) => {
    enc.once('end', resolve)
    enc.once('error', reject)
  })
  enc.pipe(process.stdout)
  // One write per round of blocks, one block for each encoder thread (at least two): smaller writes
  // leave threads idle, larger ones report progress less often.
  const slice = opts.blockSize * Math.max(2, opts.threads || availableParallelism())
  for (let off = 0; off < input.length; off += slice) {
    await new Promise<void>((resolve, reject) =>
      enc.write(input.subarray(off, off + slice), (e) => (e ? reject(e) : resolve())),
    )
    process.send?.({ in: enc.totalIn() })
  }
  enc.end()
  await done
  await new Promise<void>((resolve) => process.stdout.write('', () => resolve()))
}

if (require.main === module) {
  // The parent gone (killed, or done with an encoder it started ahead), nothing is left to do.
  process.on('disconnect', () => process.exit(1))
  encodeStdin().then(
    () => process.exit(0),
    (e: unknown) => {
      process.stderr.write(`${(e as Error)?.message ?? String(e)}\n`)
      process.exit(1)
    },
  )
}
