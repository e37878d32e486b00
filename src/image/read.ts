// Image bytes → Image. Strict: every header checksum, the member order, the zero padding, SHA256SUMS,
// the manifest and each payload's size and sha256 must hold, so a truncated, bit-flipped or foreign
// file is refused with a message that says what is wrong. Payloads are zero-copy views of the bytes.
import { closeSync, constants, fstatSync, openSync, type Stats } from 'node:fs'
import { ImageFormatError, ImageNotFoundError, IoError, KheadersError, reason, UntrustedImageError } from '../errors'
import { count } from '../format-bytes'
import { readWhole } from '../read-whole'
import { checkBlock } from '../xz/block'
import { parseXzIndex, type XzIndex } from '../xz/xz-index'
import { BLOCK, LIMITS, MEMBER, MEMBER_ORDER, sha256, type Manifest } from './format'
import { parseManifest } from './manifest'

export interface Image {
  manifest: Manifest
  /** config.gz bytes. */
  config: Buffer
  /** kheaders.tar.xz bytes. */
  headers: Buffer
  /** Size of the image file. */
  bytes: number
  /** The block table of kheaders.tar.xz, read from its xz index (not decoded). */
  xzIndex: XzIndex
}

export interface Member {
  name: string
  /** Offset of the member's data in the image. */
  offset: number
  data: Buffer
}

const FIX = 'repack it with "kheadersfs pack" or copy it again'

/** One check of an image, as `kheadersfs verify` reports it. */
export interface Check {
  name: string
  ok: boolean
  detail: string
}

export interface ReadOptions {
  /**
   * Refuse a file that another user could have written (not owned by root, or writable by group or
   * others): when root loads an image, every module build on the machine trusts its headers.
   */
  trustedOnly?: boolean
  /**
   * Told each check as it passes (container, sha256, manifest) and the one that fails (file,
   * container, sha256, manifest, xz) before the error is thrown: verify's report of an image that
   * does not load.
   */
  onCheck?: (check: Check) => void
}

export function readImage(file: string, opts: ReadOptions = {}): Image {
  let buf: Buffer
  try {
    buf = readBytes(file, opts)
  } catch (e) {
    opts.onCheck?.({ name: 'file', ok: false, detail: KheadersError.is(e) ? afterName(e.message, file) : reason(e) })
    throw e
  }
  return parseImage(buf, file, opts)
}

/** "Cannot read image F: no such file; pass …" → "no such file; pass …" (the report names the file once). */
function afterName(message: string, file: string): string {
  const at = message.indexOf(`${file}: `)
  return at < 0 ? message : message.slice(at + file.length + 2)
}

function readBytes(file: string, opts: ReadOptions): Buffer {
  let buf: Buffer
  let fd: number | undefined
  try {
    // Check and read through one descriptor, so the file cannot be swapped in between. O_NONBLOCK:
    // a FIFO planted as the image is refused below instead of blocking the open.
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK)
    const st = fstatSync(fd)
    if (!st.isFile())
      throw new ImageFormatError(`Cannot read image ${file}: not a regular file; pass the path of a kheadersfs image`)
    if (opts.trustedOnly) checkTrusted(file, st)
    if (st.size > LIMITS.imageBytes)
      throw new ImageFormatError(`Cannot read image ${file}: ${st.size} bytes is too large for an image; ${FIX}`)
    // Synchronous: the daemon has nothing else to do before the image is in (FileHandle.readFile went
    // through the thread pool in 512 KiB steps).
    buf = readWhole(fd, st.size)
  } catch (e) {
    if (KheadersError.is(e)) throw e
    const code = (e as NodeJS.ErrnoException).code
    if (code === 'ENOENT')
      throw new ImageNotFoundError(
        `Cannot read image ${file}: no such file; pass the path of an image made by "kheadersfs pack"`,
      )
    if (code === 'EISDIR')
      throw new ImageFormatError(`Cannot read image ${file}: not a regular file; pass the path of a kheadersfs image`)
    throw new IoError(`Cannot read image ${file}: ${reason(e)}`, e)
  } finally {
    if (fd !== undefined) closeSync(fd)
  }
  return buf
}

function checkTrusted(file: string, st: Stats): void {
  const why =
    st.uid !== 0
      ? `it is owned by uid ${st.uid}, not root`
      : st.mode & 0o002
        ? `anyone can write it (mode ${(st.mode & 0o7777).toString(8)})`
        : st.mode & 0o020 && st.gid !== 0
          ? `group ${st.gid} can write it (mode ${(st.mode & 0o7777).toString(8)})`
          : undefined
  if (why === undefined) return
  throw new UntrustedImageError(
    `Cannot load image ${file}: ${why}, and every module build would trust its headers; make it root's and not writable by others (chown root:root, chmod go-w), or pass --allow-untrusted-image`,
  )
}

export function parseImage(buf: Buffer, name: string, opts: Pick<ReadOptions, 'onCheck'> = {}): Image {
  // The check under way: the one a failure is reported under.
  let check = 'container'
  // The detail is made only for a listener: count() loads ICU's locale data, ~7 MB of the daemon's RSS.
  const passed = (detail: () => string, next: string): void => {
    opts.onCheck?.({ name: check, ok: true, detail: detail() })
    check = next
  }
  const fail = (why: string, cause?: unknown): never => {
    opts.onCheck?.({ name: check, ok: false, detail: why })
    // A reason that already names its fix ("...; upgrade kheadersfs") needs no second one.
    throw new ImageFormatError(`Cannot use image ${name}: ${why}${why.includes('; ') ? '' : `; ${FIX}`}`, cause)
  }
  const members = readContainer(buf, fail)
  passed(() => 'ustar members in order, header checksums, zero padding', 'sha256')
  const byName = new Map(members.map((m) => [m.name, m.data]))
  const sums = parseSums(byName.get(MEMBER.sums)!, fail)
  for (const n of [MEMBER.manifest, MEMBER.config, MEMBER.headers]) {
    if (sums.get(n) !== sha256(byName.get(n)!)) fail(`${n} does not match its SHA256SUMS line (corrupted)`)
  }
  passed(() => 'SHA256SUMS matches manifest.json, config.gz, kheaders.tar.xz', 'manifest')
  let manifest: Manifest
  try {
    manifest = parseManifest(byName.get(MEMBER.manifest)!)
  } catch (e) {
    return fail((e as Error).message, e)
  }
  const config = byName.get(MEMBER.config)!
  const headers = byName.get(MEMBER.headers)!
  for (const [n, data] of [
    [MEMBER.config, config],
    [MEMBER.headers, headers],
  ] as const) {
    const info = manifest.payloads[n]
    if (info.size !== data.length) fail(`${n} is ${data.length} bytes but the manifest says ${info.size}`)
    if (info.sha256 !== sums.get(n)) fail(`${n} does not match the sha256 in the manifest`)
  }
  passed(
    () =>
      `format ${manifest.version}, release ${manifest.release}, ${manifest.arch}, ${manifest.profile}, ${count(manifest.files.length)} entries; sizes and sha256s agree with SHA256SUMS`,
    'xz',
  )
  let xzIndex: XzIndex
  try {
    xzIndex = parseXzIndex(headers)
  } catch (e) {
    return fail(`${MEMBER.headers} is not a usable .xz file (${(e as Error).message})`, e)
  }
  // The view trusts the manifest's offsets inside the tar the index describes: they must agree.
  const info = manifest.payloads['kheaders.tar.xz']
  if (xzIndex.uncompressedSize !== info.uncompressedSize) {
    fail(`${MEMBER.headers} holds ${xzIndex.uncompressedSize} bytes of tar, the manifest says ${info.uncompressedSize}`)
  }
  const uneven = xzIndex.blocks.findIndex(
    (b, i) => i < xzIndex.blocks.length - 1 && b.uncompressedSize !== info.blockSize,
  )
  if (uneven >= 0)
    fail(
      `${MEMBER.headers} block ${uneven} holds ${xzIndex.blocks[uneven].uncompressedSize} bytes, not the manifest's block size ${info.blockSize}`,
    )
  // Every block's header, sizes and filters now (a few µs each); only its LZMA2 data waits for a read,
  // whose check the decode verifies.
  for (const block of xzIndex.blocks) {
    try {
      checkBlock(headers, block)
    } catch (e) {
      return fail(`${MEMBER.headers} is not a usable .xz file (${(e as Error).message})`, e)
    }
  }
  return { manifest, config, headers, bytes: buf.length, xzIndex }
}

/** Walk the ustar container; the layout is fixed by format.ts, so anything else is an error. */
export function readContainer(buf: Buffer, fail: (why: string) => never): Member[] {
  const foreign = notAnImage(buf)
  if (foreign !== undefined) fail(`not a kheadersfs image (${foreign}); give an image written by "kheadersfs pack"`)
  const members: Member[] = []
  let off = 0
  for (;;) {
    if (off + BLOCK > buf.length)
      fail(`truncated at byte ${buf.length} (expected ${MEMBER_ORDER.length} members and an end marker)`)
    const h = buf.subarray(off, off + BLOCK)
    if (isZero(h)) break
    const expected = MEMBER_ORDER[members.length]
    const stored = octal(h, 148, 8)
    if (stored !== checksum(h)) fail(`tar header at byte ${off} has a bad checksum (corrupted)`)
    if (h.toString('latin1', 257, 262) !== 'ustar') fail(`tar header at byte ${off} is not ustar (corrupted)`)
    const memberName = cstr(h, 0, 100)
    if (cstr(h, 345, 155) !== '') fail(`member at byte ${off} has a path prefix (corrupted)`)
    if (h[156] !== 0x30 && h[156] !== 0) fail(`member ${memberName} is not a regular file`)
    if (expected === undefined) fail(`unexpected member ${JSON.stringify(memberName)} after ${MEMBER.sums}`)
    if (memberName !== expected) {
      fail(
        members.some((m) => m.name === memberName)
          ? `duplicate member ${memberName}`
          : `member ${members.length + 1} is ${JSON.stringify(memberName)}, expected ${expected}`,
      )
    }
    const size = octal(h, 124, 12)
    if (size === undefined) fail(`member ${memberName} has a bad size field`)
    const start = off + BLOCK
    const end = start + size
    if (end > buf.length) fail(`truncated: ${memberName} needs ${size} bytes, only ${buf.length - start} present`)
    const padEnd = start + Math.ceil(size / BLOCK) * BLOCK
    if (padEnd > buf.length) fail(`truncated at byte ${buf.length}, in the padding after ${memberName}`)
    if (!isZero(buf.subarray(end, padEnd))) fail(`padding after ${memberName} is not zero`)
    members.push({ name: memberName, offset: start, data: buf.subarray(start, end) })
    off = padEnd
  }
  if (members.length < MEMBER_ORDER.length) fail(`missing member ${MEMBER_ORDER[members.length]}`)
  if (buf.length < off + 2 * BLOCK) fail('truncated end-of-archive marker')
  if (!isZero(buf.subarray(off)) || buf.length % BLOCK !== 0) fail('data after the end-of-archive marker')
  return members
}

/**
 * Why `buf` is not an image at all, or undefined if it starts as one does (it may still be truncated
 * or damaged: the container checks then say how). An image starts with the ustar header of
 * manifest.json; a single flipped bit leaves either that name or the ustar magic, and a header whose
 * checksum fails, so damage is never mistaken for a foreign file.
 */
function notAnImage(buf: Buffer): string | undefined {
  if (buf.length === 0) return 'the file is empty'
  const head = buf.subarray(0, BLOCK)
  const first = Buffer.from(`${MEMBER.manifest}\0`, 'latin1')
  const n = Math.min(head.length, first.length)
  if (head.subarray(0, n).equals(first.subarray(0, n))) return undefined
  const ustar = head.length === BLOCK && head.toString('latin1', 257, 262) === 'ustar'
  if (ustar && octal(head, 148, 8) !== checksum(head)) return undefined
  if (ustar)
    return `it is a tar archive whose first member is ${JSON.stringify(cstr(head, 0, 100))}, not ${MEMBER.manifest}`
  return `it looks like ${kindOf(head)}`
}

/** A guess at what a file is, from its first bytes (file(1)'s commonest answers). */
function kindOf(head: Buffer): string {
  const starts = (hex: string): boolean => head.subarray(0, hex.length / 2).equals(Buffer.from(hex, 'hex'))
  if (starts('1f8b')) return 'gzip data'
  if (starts('fd377a585a00')) return 'xz data'
  if (starts('28b52ffd')) return 'zstd data'
  if (starts('425a68')) return 'bzip2 data'
  if (starts('7f454c46')) return 'an ELF program or library'
  if (starts('213c617263683e0a')) return 'an ar archive, such as a .deb package'
  if (starts('504b0304')) return 'a zip archive'
  if (starts('68737173')) return 'a squashfs image'
  if (isZero(head)) return 'zero bytes where its first tar header should be'
  if (!/[\0-\x08\x0b\x0c\x0e-\x1f\x7f]/.test(head.toString('latin1'))) return 'text'
  return 'data of another kind'
}

function parseSums(data: Buffer, fail: (why: string) => never): Map<string, string> {
  const sums = new Map<string, string>()
  const lines = data.toString('latin1').split('\n')
  if (lines.pop() !== '') fail(`${MEMBER.sums} does not end with a newline`)
  for (const line of lines) {
    const m = /^([0-9a-f]{64}) {2}(\S+)$/.exec(line)
    if (!m || sums.has(m[2])) fail(`${MEMBER.sums} has a bad line ${JSON.stringify(line.slice(0, 80))}`)
    sums.set(m[2], m[1])
  }
  const want = [MEMBER.manifest, MEMBER.config, MEMBER.headers]
  if (sums.size !== want.length || want.some((n) => !sums.has(n)))
    fail(`${MEMBER.sums} does not list exactly ${want.join(', ')}`)
  return sums
}

function isZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false
  return true
}

function cstr(b: Buffer, off: number, len: number): string {
  const end = b.indexOf(0, off)
  return b.toString('utf8', off, end === -1 || end > off + len ? off + len : end)
}

function octal(b: Buffer, off: number, len: number): number | undefined {
  const s = b
    .toString('latin1', off, off + len)
    .replace(/[\0 ]+$/, '')
    .replace(/^ +/, '')
  if (!/^[0-7]{1,12}$/.test(s)) return undefined
  return parseInt(s, 8)
}

/** The ustar checksum: byte sum of the header with the checksum field read as spaces. */
function checksum(h: Buffer): number {
  let sum = 0
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]
  return sum
}
