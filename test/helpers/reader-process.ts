// A reader process of the reliability suite, started by startWorker (test/helpers/readers.ts):
//   node dist/test/helpers/reader-process.js flat|view|hammer|slow '<json args>'
// It loads a mount through the kernel and checks every byte it gets, then prints one JSON result
// line last (hammer and slow print protocol lines before it) and exits 0 when nothing was wrong.
import { createHash } from 'node:crypto'
import { constants, readFileSync } from 'node:fs'
import { open, readdir, readlink, stat, type FileHandle } from 'node:fs/promises'
import path from 'node:path'
import { sha256 } from '../../src/image/format'
import { prng } from './prng'
import { emptyResult, type ReaderResult } from './readers'

function wrong(r: ReaderResult, what: string): void {
  r.wrong++
  if (r.wrongDetail.length < 20) r.wrongDetail.push(what)
}

function failed(r: ReaderResult, e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message
  r.errors[code] = (r.errors[code] ?? 0) + 1
  return code
}

const O_DIRECT = constants.O_DIRECT ?? 0
const CHUNKS = [4096, 65536, 131072, 2 ** 20]
const LENGTHS = [1, 4096, 65536, 131072, 2 ** 20 + 3]

/** Read a whole file through `fh` in chunks of `chunk`, hashing as it goes. */
async function readAll(fh: FileHandle, chunk: number): Promise<{ hash: string; size: number }> {
  const h = createHash('sha256')
  const buf = Buffer.alloc(chunk)
  let size = 0
  for (;;) {
    const { bytesRead } = await fh.read(buf, 0, chunk, size)
    if (bytesRead === 0) break
    h.update(buf.subarray(0, bytesRead))
    size += bytesRead
  }
  return { hash: h.digest('hex'), size }
}

/**
 * One positioned read at `pos`, checked against `want`. Returns false for a short read, which is
 * wrong unless `allowShort` (then only its bytes must be right).
 */
async function checkedPread(
  r: ReaderResult,
  fh: FileHandle,
  want: Buffer,
  pos: number,
  len: number,
  what: string,
  allowShort = false,
): Promise<boolean> {
  const buf = Buffer.alloc(len)
  const { bytesRead } = await fh.read(buf, 0, len, pos)
  r.preads++
  r.bytes += bytesRead
  const expect = want.subarray(Math.min(pos, want.length), Math.min(pos + len, want.length))
  const prefixOk = bytesRead <= expect.length && buf.subarray(0, bytesRead).equals(expect.subarray(0, bytesRead))
  if (prefixOk && bytesRead === expect.length) return true
  if (prefixOk && allowShort) {
    r.short++
    return false
  }
  wrong(
    r,
    `${what}: pread(${pos}, ${len}) gave ${bytesRead} bytes${prefixOk ? ' (right ones)' : ' that differ'}, not the expected ${expect.length}`,
  )
  return false
}

/**
 * flat: `concurrency` loops, each `rounds` × (one whole read checked by sha256, `preads` random
 * positioned reads checked byte for byte, one stat). Loop i uses O_DIRECT when `direct` says so.
 */
async function flatReader(a: {
  file: string
  ref: string
  rounds: number
  concurrency: number
  preads: number
  direct: 'on' | 'off' | 'mixed'
  seed: number
}): Promise<ReaderResult> {
  const r = emptyResult()
  const want = readFileSync(a.ref)
  const wantHash = sha256(want)
  const loop = async (i: number): Promise<void> => {
    const rand = prng(a.seed * 1000 + i)
    const direct = a.direct === 'on' || (a.direct === 'mixed' && i % 2 === 0)
    for (let round = 0; round < a.rounds; round++) {
      try {
        const fh = await open(a.file, constants.O_RDONLY | (direct ? O_DIRECT : 0))
        try {
          const got = await readAll(fh, CHUNKS[Math.floor(rand() * CHUNKS.length)])
          r.fullReads++
          if (direct) r.direct++
          r.bytes += got.size
          if (got.hash !== wantHash || got.size !== want.length)
            wrong(r, `${a.file}: whole read of ${got.size} bytes, sha256 ${got.hash}`)
          for (let k = 0; k < a.preads; k++) {
            const near = rand() < 0.2
            const pos = near
              ? Math.max(0, want.length - 2 + Math.floor(rand() * 4))
              : Math.floor(rand() * (want.length + 4096))
            await checkedPread(r, fh, want, pos, LENGTHS[Math.floor(rand() * LENGTHS.length)], a.file)
          }
        } finally {
          await fh.close()
        }
        const st = await stat(a.file)
        r.stats++
        if (st.size !== want.length || (st.mode & 0o7777) !== 0o444 || !st.isFile())
          wrong(r, `${a.file}: stat says size ${st.size} mode ${st.mode.toString(8)}`)
      } catch (e) {
        failed(r, e)
      }
    }
  }
  await Promise.all(Array.from({ length: a.concurrency }, (_, i) => loop(i)))
  return r
}

/** Walk `root` asynchronously: rel path → "d" | "f" | "l <target>". */
async function walk(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  const go = async (rel: string): Promise<void> => {
    const entries = await readdir(path.join(root, rel), { withFileTypes: true })
    for (const e of entries) {
      const r = rel === '' ? e.name : `${rel}/${e.name}`
      if (e.isSymbolicLink()) out[r] = `l ${await readlink(path.join(root, r))}`
      else if (e.isDirectory()) {
        out[r] = 'd'
        await go(r)
      } else out[r] = 'f'
    }
  }
  await go('')
  return out
}

/**
 * view: `concurrency` loops, each `passes` × (walk the tree, compare every name, type and link target
 * with `expected`, then read every file from a different starting point and compare its sha256;
 * a fraction `directFraction` of the files is read again with O_DIRECT, which always reaches the
 * daemon, whatever the page cache holds).
 */
async function viewReader(a: {
  root: string
  expected: string
  passes: number
  concurrency: number
  directFraction: number
  seed: number
}): Promise<ReaderResult> {
  const r = emptyResult()
  const expected = JSON.parse(readFileSync(a.expected, 'utf8')) as Record<string, string>
  const files = Object.keys(expected).filter((k) => expected[k].startsWith('f '))
  const loop = async (i: number): Promise<void> => {
    const rand = prng(a.seed * 1000 + i)
    for (let p = 0; p < a.passes; p++) {
      try {
        const seen = await walk(a.root)
        r.stats += Object.keys(seen).length
        for (const [k, v] of Object.entries(expected)) {
          const kind = v.startsWith('f ') ? 'f' : v
          if (seen[k] !== kind) wrong(r, `${k}: walk saw ${seen[k]}, expected ${kind}`)
        }
        for (const k of Object.keys(seen)) if (!(k in expected)) wrong(r, `${k}: not in the archive`)
      } catch (e) {
        failed(r, e)
      }
      const start = Math.floor(rand() * files.length)
      for (let n = 0; n < files.length; n++) {
        const rel = files[(start + n) % files.length]
        const want = expected[rel].slice(2)
        for (const direct of rand() < a.directFraction ? [false, true] : [false]) {
          try {
            const fh = await open(path.join(a.root, rel), constants.O_RDONLY | (direct ? O_DIRECT : 0))
            try {
              const got = await readAll(fh, 131072)
              r.fullReads++
              r.bytes += got.size
              if (direct) r.direct++
              if (got.hash !== want) wrong(r, `${rel}: sha256 ${got.hash}${direct ? ' (O_DIRECT)' : ''}`)
            } finally {
              await fh.close()
            }
          } catch (e) {
            failed(r, e)
          }
        }
      }
    }
  }
  await Promise.all(Array.from({ length: a.concurrency }, (_, i) => loop(i)))
  return r
}

/**
 * hammer: `concurrency` loops of random positioned reads of `files` (each with the path of its
 * expected bytes), O_DIRECT so every read reaches the daemon. Even loops keep their descriptors open,
 * odd loops reopen for every read. A loop stops at its first error, or when stdin closes. Prints
 * "ready" once every loop has done `warmup` reads. With `allowShort`, a short read with the right
 * bytes is counted apart (a killed daemon), not as wrong.
 */
async function hammerReader(a: {
  files: Array<{ path: string; ref: string }>
  concurrency: number
  warmup: number
  direct: boolean
  seed: number
  allowShort?: boolean
}): Promise<ReaderResult> {
  const r = emptyResult()
  const wants = a.files.map((f) => readFileSync(f.ref))
  let stop = false
  process.stdin.on('data', () => undefined)
  process.stdin.on('end', () => (stop = true))
  process.stdin.on('error', () => (stop = true))
  let warm = 0
  const flags = constants.O_RDONLY | (a.direct ? O_DIRECT : 0)
  const loop = async (i: number): Promise<void> => {
    const rand = prng(a.seed * 1000 + i)
    const keep = i % 2 === 0
    const fds = new Map<number, FileHandle>()
    let done = 0
    try {
      while (!stop) {
        const k = Math.floor(rand() * a.files.length)
        const want = wants[k]
        const pos = Math.floor(rand() * want.length)
        const len = LENGTHS[Math.floor(rand() * LENGTHS.length)]
        try {
          let fh = fds.get(k)
          if (fh === undefined) {
            fh = await open(a.files[k].path, flags)
            if (keep) fds.set(k, fh)
          }
          try {
            await checkedPread(r, fh, want, pos, len, a.files[k].path, a.allowShort)
            if (a.direct) r.direct++
          } finally {
            if (!keep) await fh.close()
          }
        } catch (e) {
          failed(r, e)
          return
        }
        if (++done === a.warmup && ++warm === a.concurrency) process.stdout.write('ready\n')
      }
    } finally {
      for (const fh of fds.values()) await fh.close().catch(() => undefined)
    }
  }
  await Promise.all(Array.from({ length: a.concurrency }, (_, i) => loop(i)))
  process.stdin.destroy()
  return r
}

/**
 * slow: open `file`, say "open", then read `chunk` bytes at a time, sequentially, each time stdin
 * sends a line with a number of chunks (or "rest"), saying "at POS" after each batch. Every byte is
 * checked against `ref`; at EOF it closes and prints the result.
 */
async function slowReader(a: { file: string; ref: string; chunk: number; direct: boolean }): Promise<ReaderResult> {
  const r = emptyResult()
  const want = readFileSync(a.ref)
  const fh = await open(a.file, constants.O_RDONLY | (a.direct ? O_DIRECT : 0))
  process.stdout.write('open\n')
  let pos = 0
  let buffered = ''
  const commands: string[] = []
  let wake: (() => void) | undefined
  let ended = false
  process.stdin.on('data', (d: Buffer) => {
    buffered += d.toString()
    for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
      commands.push(buffered.slice(0, nl))
      buffered = buffered.slice(nl + 1)
    }
    wake?.()
  })
  process.stdin.on('end', () => {
    ended = true
    wake?.()
  })
  try {
    for (;;) {
      while (commands.length === 0 && !ended) await new Promise<void>((res) => (wake = res))
      const c = commands.shift()
      if (c === undefined) break
      let n = c === 'rest' ? Infinity : Number(c)
      let eof = false
      while (n-- > 0) {
        const buf = Buffer.alloc(a.chunk)
        let got: number
        try {
          got = (await fh.read(buf, 0, a.chunk, pos)).bytesRead
        } catch (e) {
          failed(r, e)
          eof = true
          break
        }
        r.preads++
        if (a.direct) r.direct++
        r.bytes += got
        if (!buf.subarray(0, got).equals(want.subarray(pos, pos + a.chunk)))
          wrong(r, `${a.file}: ${got} bytes at ${pos} differ`)
        pos += got
        if (got === 0) {
          eof = true
          break
        }
      }
      process.stdout.write(`at ${pos}\n`)
      if (eof) break
    }
    r.fullReads = pos === want.length ? 1 : 0
    if (pos !== want.length && Object.keys(r.errors).length === 0)
      wrong(r, `${a.file}: ended at ${pos} of ${want.length}`)
  } finally {
    await fh.close()
  }
  process.stdin.destroy()
  return r
}

async function workerMain(mode: string, json: string): Promise<void> {
  // The parent wrote these arguments from each reader's own parameter type (readers.ts).
  const a: unknown = JSON.parse(json)
  const programs: Record<string, (a: unknown) => Promise<ReaderResult>> = {
    flat: (a) => flatReader(a as Parameters<typeof flatReader>[0]),
    view: (a) => viewReader(a as Parameters<typeof viewReader>[0]),
    hammer: (a) => hammerReader(a as Parameters<typeof hammerReader>[0]),
    slow: (a) => slowReader(a as Parameters<typeof slowReader>[0]),
  }
  const program = programs[mode]
  if (program === undefined) throw new Error(`unknown reader mode ${mode}`)
  const r = await program(a)
  process.stdout.write(JSON.stringify(r) + '\n')
  process.exitCode = r.wrong === 0 ? 0 : 1
}

if (require.main === module) {
  workerMain(process.argv[2], process.argv[3]).catch((e: unknown) => {
    process.stderr.write(`${(e as Error).stack ?? String(e)}\n`)
    process.exit(2)
  })
}
