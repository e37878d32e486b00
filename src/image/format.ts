// Every on-disk constant of the image format, and the manifest's shape. docs/image-format.md is the
// human-readable version of this file; change both together.
//
// An image is a POSIX ustar archive (readable by any tar) whose members are, in this order:
//   manifest.json     what the image holds (below)
//   config.gz         the kernel .config, gzip -9, no name, mtime 0
//   kheaders.tar.xz   the header archive: normalized tar in build order (layout.order), xz with
//                     fixed-size blocks
//   SHA256SUMS        `sha256sum` lines for the three members above (covers the manifest too)
// Each member is one 512-byte ustar header (type '0', mode 0444, uid/gid 0, no owner names, mtime =
// manifest.epoch), its data, zero padding to 512; then two zero blocks and nothing else.

import { createHash } from 'node:crypto'

export const FORMAT_ID = 'kheadersfs-image'
/** Readers refuse another major version; minor versions only add fields. */
export const FORMAT_MAJOR = 1
const FORMAT_MINOR = 2
export const FORMAT_VERSION = `${FORMAT_MAJOR}.${FORMAT_MINOR}`

export const MEMBER = {
  manifest: 'manifest.json',
  config: 'config.gz',
  headers: 'kheaders.tar.xz',
  sums: 'SHA256SUMS',
} as const
export const MEMBER_ORDER = [MEMBER.manifest, MEMBER.config, MEMBER.headers, MEMBER.sums] as const

export const BLOCK = 512
export const MEMBER_MODE = 0o444

/** Upper bounds that reject absurd claims before any allocation. */
export const LIMITS = {
  manifestBytes: 64 * 2 ** 20,
  imageBytes: 4 * 2 ** 30,
  uncompressedBytes: 16 * 2 ** 30,
  files: 1_000_000,
} as const

/** Directories deep a path may be (kernel trees are about 10): bounds every walk of a tree. */
export const MAX_DEPTH = 64
/** Bytes of one path component (NAME_MAX) and of a whole path or link target (PATH_MAX - 1). */
export const NAME_MAX = 255
const PATH_MAX = 4095

/**
 * A kernel release as `uname -r` prints it and /lib/modules names it: a digit first (VERSION.PATCHLEVEL),
 * then letters, digits and . _ + ~ -, at most 64 bytes (the utsname field). No "/", and never "." or "..".
 */
export const RELEASE = /^[0-9][A-Za-z0-9._+~-]{0,63}$/

export const PROFILES = ['module-build', 'headers'] as const
export type Profile = (typeof PROFILES)[number]

export type FileType = 'file' | 'directory' | 'symlink'

/** One entry of kheaders.tar.xz. `offset` is where its data starts in the uncompressed tar. */
export interface FileRecord {
  path: string
  type: FileType
  offset: number
  size: number
  /** Permission bits (0644, 0755, 0777). */
  mode: number
  link?: string
}

export interface PayloadInfo {
  size: number
  sha256: string
  /** Size after decompression. */
  uncompressedSize: number
}

export interface HeadersPayloadInfo extends PayloadInfo {
  /** xz block size in uncompressed bytes: every block but the last holds exactly this much. */
  blockSize: number
  preset: number
  check: 'crc64'
}

export interface Manifest {
  format: typeof FORMAT_ID
  version: string
  generator: string
  release: string
  arch: string
  profile: Profile
  /** ISO 8601 form of `epoch`. */
  created: string
  /** Seconds since 1970: the mtime of every archive entry and image member. */
  epoch: number
  payloads: {
    'config.gz': PayloadInfo
    'kheaders.tar.xz': HeadersPayloadInfo
  }
  counts: { files: number; directories: number; symlinks: number }
  /** Bytes of the archived files as read from the tree, and after comment stripping. */
  bytes: { raw: number; stripped: number }
  /** The machine the kernel is for, and every program in the archive with it (format 1.1+). */
  target?: TargetInfo
  /** Host programs rebuilt for the target, when the tree was cross-built (format 1.1+). */
  hostPrograms?: HostProgramsInfo
  /** What the files were packed from when not a kernel build tree (format 1.1+). */
  source?: { kind: 'kheaders-archive'; sha256: string }
  /** The rule that ordered the archive's entries (format 1.2+; absent: name order). */
  layout?: { order: string }
  /** The archive's table of contents, in archive order. */
  files: FileRecord[]
}

export interface TargetInfo {
  /** ELF e_machine, class and byte order, and a readable name: "AArch64 (64-bit little-endian)". */
  machine: number
  bits: 32 | 64
  endian: 'little' | 'big'
  name: string
  /** vmlinux (the kernel's own ELF header) or config (SRCARCH + .config). */
  from: 'vmlinux' | 'config'
}

export interface HostProgramsInfo {
  /** The compiler that rebuilt them (`gcc --version`, first line) and its CROSS_COMPILE prefix. */
  compiler: string
  prefix: string
  /** Archive paths of the rebuilt programs. */
  rebuilt: string[]
  /** Build-host programs left out: not used by module builds, not rebuilt. */
  dropped: string[]
}

/**
 * On disk, `files` is a list of rows to keep the manifest small (thousands of entries):
 *   [path, type, offset, size, mode]        type "f" file, "d" directory
 *   [path, "l", offset, 0, mode, target]    symlink
 */
export type FileRow = [string, 'f' | 'd', number, number, number] | [string, 'l', number, number, number, string]

const TYPE_CODE = { file: 'f', directory: 'd', symlink: 'l' } as const
const CODE_TYPE = { f: 'file', d: 'directory', l: 'symlink' } as const

export function toRow(f: FileRecord): FileRow {
  if (f.type === 'symlink') return [f.path, 'l', f.offset, f.size, f.mode, f.link ?? '']
  return [f.path, TYPE_CODE[f.type], f.offset, f.size, f.mode]
}

export function fromRow(row: unknown, i: number): FileRecord {
  // Thousands of rows at every mount: no per-row closures, split arrays or destructuring, so that
  // the daemon's load allocates (and collects) little besides the records.
  if (!Array.isArray(row) || row.length < 5 || row.length > 6)
    badRow(i, 'is not a [path, type, offset, size, mode] row')
  const p: unknown = row[0]
  const code: unknown = row[1]
  if (typeof p !== 'string') badRow(i, `has an unsafe path ${JSON.stringify(p)}`)
  const unsafe = pathProblem(p)
  if (unsafe !== undefined) badRow(i, `has an unsafe path ${JSON.stringify(p.slice(0, 200))}: ${unsafe}`)
  if (code !== 'f' && code !== 'd' && code !== 'l') badRow(i, `has an unknown type ${JSON.stringify(code)}`)
  for (let k = 2; k < 5; k++) {
    if (!Number.isSafeInteger(row[k]) || row[k] < 0)
      badRow(i, `has a bad ${ROW_NUMBERS[k - 2]} ${JSON.stringify(row[k])}`)
  }
  const offset = row[2] as number
  const size = row[3] as number
  const mode = row[4] as number
  if (mode > 0o7777) badRow(i, `has a bad mode ${mode}`)
  // A read-only tree of headers needs nothing more: no setuid, setgid or sticky bit, no write for others.
  if (code !== 'l' && (mode & 0o7022) !== 0)
    badRow(i, `gives ${p} mode ${mode.toString(8)} (setuid, setgid, sticky or writable by others)`)
  const link: unknown = row[5]
  if (code === 'l' ? typeof link !== 'string' || link === '' : link !== undefined) badRow(i, 'has a bad link target')
  if (code === 'l' && (Buffer.byteLength(link as string) > PATH_MAX || CONTROL.test(link as string)))
    badRow(i, `has a bad link target ${JSON.stringify((link as string).slice(0, 200))}`)
  const rec: FileRecord = { path: p, type: CODE_TYPE[code as 'f'], offset, size, mode }
  if (code === 'l') rec.link = link as string
  return rec
}

const ROW_NUMBERS = ['offset', 'size', 'mode'] as const

function badRow(i: number, why: string): never {
  throw new Error(`files[${i}] ${why}`)
}

/** C0 and C1 control characters (terminal escapes), and unpaired surrogates (bytes that were not UTF-8). */
const CONTROL = /[\x00-\x1f\x7f-\x9f]|\p{Cs}/u

/**
 * Why `p` cannot be a path of the archive, or undefined: relative, components neither empty nor "."
 * nor "..", each at most NAME_MAX bytes, no control character (NUL included) and no unpaired surrogate
 * (not UTF-8), at most MAX_DEPTH deep and PATH_MAX bytes.
 */
export function pathProblem(p: string): string | undefined {
  if (CONTROL.test(p)) return 'a control character or bytes that are not UTF-8'
  if (Buffer.byteLength(p) > PATH_MAX) return `longer than ${PATH_MAX} bytes`
  let depth = 0
  for (let start = 0; ;) {
    const slash = p.indexOf('/', start)
    const end = slash < 0 ? p.length : slash
    const n = end - start
    if (n === 0 || (p.charCodeAt(start) === 0x2e && (n === 1 || (n === 2 && p.charCodeAt(start + 1) === 0x2e))))
      return 'an empty, "." or ".." component'
    if (n > NAME_MAX / 3 && Buffer.byteLength(p.slice(start, end)) > NAME_MAX) return `a name over ${NAME_MAX} bytes`
    if (++depth > MAX_DEPTH) return `more than ${MAX_DEPTH} directories deep`
    if (slash < 0) return undefined
    start = slash + 1
  }
}

/** The digest of SHA256SUMS and the manifest: lowercase hex sha256. */
export function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex')
}
