// The kernel's own headers archive as pack input: /sys/kernel/kheaders.tar.xz (CONFIG_IKHEADERS),
// /proc/kheaders.txz (5.2–5.4), or a kheaders.ko that embeds it (Android GKI ships one). On such a
// device there is no build tree, only this archive and /proc/config.gz; packing it into an image
// makes it usable without extraction (the kheaders/ view, -o link_build for bpftrace and BCC).
// The archive's file list is kept exactly; its headers are already comment-stripped by the kernel.
import { readFileSync } from 'node:fs'
import path from 'node:path'
import tarStream from 'tar-stream'
import { checkRelease, UTS_RELEASE } from '../image/release'
import { KernelTreeError, UsageError, reason } from '../errors'
import { sha256 } from '../image/format'
import { parseXzIndex } from '../xz/xz-index'
import { buildEpoch, type KernelTree } from './kernel-tree'
import { compareTarPaths, type SourceEntry } from './select'

export interface KheadersInput {
  tree: KernelTree
  entries: SourceEntry[]
  /** sha256 of the input file, recorded in the manifest. */
  sha256: string
}

const MAX_TAR_BYTES = 1 << 30
const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])

export async function readKheadersArchive(
  file: string,
  opts: { config?: string; release?: string; env: NodeJS.ProcessEnv; readConfig: (file: string) => Buffer },
): Promise<KheadersInput> {
  let data: Buffer
  try {
    data = readFileSync(file)
  } catch (e) {
    throw new KernelTreeError(
      `Cannot read ${file}: ${reason(e)}; pass --from-kheaders the kernel's archive (/sys/kernel/kheaders.tar.xz, after "modprobe kheaders")`,
      e,
    )
  }
  if (opts.config === undefined) {
    throw new UsageError(
      `kheadersfs pack: --from-kheaders needs --config too (the kernel's archive has no .config): e.g. --config /proc/config.gz`,
    )
  }
  const config = opts.readConfig(opts.config)
  const xz = findXzStream(data, file)
  const tar = await unxz(xz, file)
  const entries = await tarEntries(tar, file)
  const byPath = new Map(entries.map((e) => [e.path, e]))
  const text = (p: string): string | undefined => byPath.get(p)?.data?.toString('latin1')
  if (![...byPath.keys()].some((p) => p.startsWith('include/linux/'))) {
    throw new KernelTreeError(
      `Cannot use ${file}: it holds no include/linux/ headers; pass --from-kheaders the kernel's kheaders archive`,
    )
  }
  const release = opts.release ?? UTS_RELEASE.exec(text('include/generated/utsrelease.h') ?? '')?.[1]
  if (release === undefined)
    throw new KernelTreeError(
      `Cannot find the kernel release in ${file}: no include/generated/utsrelease.h; pass --release R`,
    )
  checkRelease(release)
  const arches = [
    ...new Set(
      [...byPath.keys()]
        .map((p) => /^arch\/([^/]+)\/include\//.exec(p)?.[1])
        .filter((a): a is string => a !== undefined),
    ),
  ]
  if (arches.length !== 1) {
    throw new KernelTreeError(
      `Cannot find the architecture of ${file}: ${arches.length === 0 ? 'no arch/<arch>/include/' : `several (${arches.join(', ')})`} in it`,
    )
  }
  const epoch = buildEpoch(text, opts.env)
  const tree: KernelTree = {
    objtree: file,
    srctree: file,
    layout: 'kheaders-archive',
    release,
    arch: arches[0],
    config,
    configPath: opts.config,
    ...epoch,
    sysroot: undefined,
  }
  return { tree, entries: entries.sort((a, b) => compareTarPaths(a.path, b.path)), sha256: sha256(data) }
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
        const exec = ((h.mode ?? 0o644) & 0o111) !== 0
        if (h.type === 'file') {
          const data = Buffer.concat(chunks)
          entries.push({ path: name, type: 'file', mode: exec ? 0o755 : 0o644, data, size: data.length, strip: false })
        } else if (h.type === 'directory')
          entries.push({ path: name, type: 'directory', mode: 0o755, size: 0, strip: false })
        else if (h.type === 'symlink')
          entries.push({ path: name, type: 'symlink', mode: 0o777, linkname: h.linkname ?? '', size: 0, strip: false })
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
