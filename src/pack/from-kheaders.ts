// The kernel's own headers archive as pack input: /sys/kernel/kheaders.tar.xz (CONFIG_IKHEADERS),
// /proc/kheaders.txz (5.2–5.4), or a kheaders.ko that embeds it (Android GKI ships one). On such a
// device there is no build tree, only this archive and /proc/config.gz; packing it into an image
// makes it usable without extraction (the kheaders/ view, -o link_build for bpftrace and BCC).
// The archive's file list is kept exactly; its headers are already comment-stripped by the kernel.
import { readFileSync } from 'node:fs'
import path from 'node:path'
import tarStream from 'tar-stream'
import { KernelTreeError, UsageError, reason } from '../errors'
import { sha256 } from '../image/format'
import { parseXzIndex } from '../xz/xz-index'
import { readConfig } from './config'
import { dataEntry, dirEntry, fileMode, linkEntry, type SourceEntry } from './entries'
import { buildEpoch, kernelRelease, utsRelease, type Kernel, type KernelFiles } from './kernel'
import { inTarOrder } from './tar-order'

export interface KheadersArchive {
  /** The file packed from (a .tar.xz, or a module embedding one). */
  file: string
  kernel: Kernel
  /** Its entries, in name order. */
  entries: SourceEntry[]
  /** sha256 of the input file, recorded in the manifest. */
  sha256: string
}

const MAX_TAR_BYTES = 1 << 30
const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])

export async function readKheadersArchive(
  file: string,
  opts: { config?: string; release?: string; env: NodeJS.ProcessEnv },
): Promise<KheadersArchive> {
  const data = readArchiveFile(file)
  const config = readGivenConfig(opts.config)
  const entries = await tarEntries(await unxz(findXzStream(data, file), file), file)
  const files = filesOf(entries)
  if (!entries.some((e) => e.path.startsWith('include/linux/'))) {
    throw new KernelTreeError(
      `Cannot use ${file}: it holds no include/linux/ headers; pass --from-kheaders the kernel's kheaders archive`,
    )
  }
  const release = kernelRelease(
    opts.release,
    () => utsRelease(files),
    () =>
      new KernelTreeError(
        `Cannot find the kernel release in ${file}: no include/generated/utsrelease.h; pass --release R`,
      ),
  )
  const kernel: Kernel = {
    release,
    arch: archOf(entries, file),
    config,
    configPath: opts.config,
    ...buildEpoch(files, opts.env),
  }
  return { file, kernel, entries: inTarOrder(entries), sha256: sha256(data) }
}

function readArchiveFile(file: string): Buffer {
  try {
    return readFileSync(file)
  } catch (e) {
    throw new KernelTreeError(
      `Cannot read ${file}: ${reason(e)}; pass --from-kheaders the kernel's archive (/sys/kernel/kheaders.tar.xz, after "modprobe kheaders")`,
      e,
    )
  }
}

/** The archive has no .config, so --config must name one. */
function readGivenConfig(file: string | undefined): Buffer {
  if (file === undefined) {
    throw new UsageError(
      `kheadersfs pack: --from-kheaders needs --config too (the kernel's archive has no .config): e.g. --config /proc/config.gz`,
    )
  }
  return readConfig(file)
}

/** The archive's files as the kernel's own (utsrelease.h, compile.h). */
function filesOf(entries: readonly SourceEntry[]): KernelFiles {
  const byPath = new Map(entries.map((e) => [e.path, e]))
  return (rel) => byPath.get(rel)?.data?.toString('latin1')
}

/** SRCARCH: the one arch/<arch>/include/ in the archive. */
function archOf(entries: readonly SourceEntry[], file: string): string {
  const arches = [
    ...new Set(entries.map((e) => /^arch\/([^/]+)\/include\//.exec(e.path)?.[1]).filter((a) => a !== undefined)),
  ]
  if (arches.length !== 1) {
    throw new KernelTreeError(
      `Cannot find the architecture of ${file}: ${arches.length === 0 ? 'no arch/<arch>/include/' : `several (${arches.join(', ')})`} in it`,
    )
  }
  return arches[0]
}

/**
 * The xz stream in `data`: the whole file for a .tar.xz, or the one embedded in a kheaders.ko. A
 * stream ends with a footer whose CRC32 and index must check out, which no stray "YZ" does.
 */
export function findXzStream(data: Buffer, file: string): Buffer {
  for (let start = data.indexOf(XZ_MAGIC); start >= 0; start = data.indexOf(XZ_MAGIC, start + 1)) {
    for (let end = data.indexOf('YZ', start + 12); end >= 0; end = data.indexOf('YZ', end + 1)) {
      const len = end + 2 - start
      if (len % 4 !== 0) continue
      try {
        parseXzIndex(data.subarray(start, end + 2))
        return data.subarray(start, end + 2)
      } catch {
        // not this footer: a "YZ" inside compressed data
      }
    }
  }
  throw new KernelTreeError(
    `Cannot use ${file}: no .xz stream in it; pass --from-kheaders the kernel's kheaders.tar.xz (or kheaders.ko)`,
  )
}

async function unxz(xz: Buffer, file: string): Promise<Buffer> {
  const lzma = require('lzma-native') as typeof import('lzma-native')
  const dec = lzma.createDecompressor()
  const chunks: Buffer[] = []
  let total = 0
  return new Promise((resolve, reject) => {
    dec.on('data', (c: Buffer) => {
      chunks.push(c)
      total += c.length
      // A kernel's headers are tens of MB; a decompression bomb must not exhaust a small board.
      if (total > MAX_TAR_BYTES)
        dec.destroy(new Error(`it unpacks to more than ${MAX_TAR_BYTES >> 20} MiB, far more than any kernel's headers`))
    })
    dec.on('end', () => resolve(Buffer.concat(chunks)))
    dec.on('error', (e: Error) =>
      reject(new KernelTreeError(`Cannot decompress ${file}: ${e.message}; the archive is damaged`, e)),
    )
    dec.end(xz)
  })
}

/** The tar's entries as pack entries, names without the "./" gen_kheaders.sh's `tar -C dir .` gives them. */
async function tarEntries(tar: Buffer, file: string): Promise<SourceEntry[]> {
  const extract = tarStream.extract()
  const entries: SourceEntry[] = []
  const seen = new Set<string>()
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (h, stream, next) => {
      const chunks: Buffer[] = []
      stream.on('data', (c: unknown) => chunks.push(c as Buffer))
      stream.on('end', () => {
        const name = h.name.replace(/^(\.\/)+/, '').replace(/\/+$/, '')
        if (name === '' || name === '.') return next()
        if (name.split('/').some((c) => c === '..' || c === '') || path.posix.isAbsolute(name)) {
          return next(
            new KernelTreeError(`Cannot use ${file}: it names ${JSON.stringify(h.name)}, outside the archive's root`),
          )
        }
        if (seen.has(name)) return next(new KernelTreeError(`Cannot use ${file}: it lists ${name} twice`))
        seen.add(name)
        if (h.type === 'file') entries.push(dataEntry(name, Buffer.concat(chunks), fileMode(h.mode ?? 0o644)))
        else if (h.type === 'directory') entries.push(dirEntry(name))
        else if (h.type === 'symlink') entries.push(linkEntry(name, h.linkname ?? ''))
        else
          return next(
            new KernelTreeError(`Cannot use ${file}: ${name} is a ${h.type}, which a headers archive never holds`),
          )
        next()
      })
      stream.resume()
    })
    extract.on('finish', resolve)
    extract.on('error', (e: Error) =>
      reject(
        KernelTreeError.prototype.isPrototypeOf(e)
          ? e
          : new KernelTreeError(`Cannot read the tar in ${file}: ${e.message}`, e),
      ),
    )
  })
  extract.end(tar)
  await done
  return entries
}
