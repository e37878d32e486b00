// Paths are bytes to the kernel, strings to JavaScript. A mountpoint or image path may hold bytes
// that are not UTF-8 (an old Latin-1 name, a hostile one); Node would turn them into U+FFFD in argv,
// in /proc/self/mountinfo and in every fs call, and act on another path than the user named. So each
// byte that is not part of valid UTF-8 is kept as a lone surrogate U+DC80..U+DCFF (Python's
// "surrogateescape"): the string round-trips to the exact bytes, compares and joins like any other,
// and JSON.stringify writes it as "\udcXX", so the state files keep it too.
import { isUtf8 } from 'node:buffer'
import { readFileSync } from 'node:fs'

const LONE = /[\udc80-\udcff]/

/** Decode bytes as UTF-8, keeping each invalid byte as U+DC00 + byte. */
export function decodeOsPath(bytes: Uint8Array): string {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (isUtf8(b)) return b.toString('utf8')
  let out = ''
  for (let i = 0; i < b.length;) {
    const n = utf8Length(b, i)
    if (n === 0) {
      out += String.fromCharCode(0xdc00 + b[i])
      i++
    } else {
      out += b.toString('utf8', i, i + n)
      i += n
    }
  }
  return out
}

/** Length of the valid UTF-8 sequence at `i` (1-4), or 0 when the byte there does not start one. */
function utf8Length(b: Buffer, i: number): number {
  const c = b[i]
  if (c < 0x80) return 1
  const n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0
  if (n === 0 || i + n > b.length) return 0
  return isUtf8(b.subarray(i, i + n)) ? n : 0
}

/** The bytes a decodeOsPath string stands for. */
export function encodeOsPath(s: string): Buffer {
  if (!LONE.test(s)) return Buffer.from(s, 'utf8')
  const parts: Buffer[] = []
  let run = ''
  for (const ch of s) {
    const c = ch.charCodeAt(0)
    if (ch.length === 1 && c >= 0xdc80 && c <= 0xdcff) {
      if (run) parts.push(Buffer.from(run, 'utf8'))
      run = ''
      parts.push(Buffer.from([c - 0xdc00]))
    } else run += ch
  }
  if (run) parts.push(Buffer.from(run, 'utf8'))
  return Buffer.concat(parts)
}

/** What to hand fs calls: the string itself when it is plain UTF-8, else its bytes. */
export function fsPath(s: string): string | Buffer {
  return LONE.test(s) ? encodeOsPath(s) : s
}

/** True when `s` holds bytes that are not UTF-8 (and so cannot pass through argv or env as is). */
function hasRawBytes(s: string): boolean {
  return LONE.test(s)
}

/**
 * Node encodes every argument of a child process as UTF-8, so raw bytes cannot pass through argv:
 * such arguments travel hex-encoded instead, and this environment variable lists their positions
 * (`kheadersfs mount` → its daemon).
 */
export const HEX_ARGS_ENV = 'KHEADERSFS_HEX_ARGS'

/** Arguments for a child kheadersfs, with those holding raw bytes hex-encoded, and the env that says so. */
export function argvForChild(args: string[]): { args: string[]; env: Record<string, string> } {
  const hex: number[] = []
  const out = args.map((a, i) => {
    if (!hasRawBytes(a)) return a
    hex.push(i)
    return encodeOsPath(a).toString('hex')
  })
  return { args: out, env: hex.length ? { [HEX_ARGS_ENV]: hex.join(',') } : {} }
}

/**
 * The command's arguments (process.argv.slice(2)) with their exact bytes: from /proc/self/cmdline,
 * whose last entries are the script's arguments. Falls back to process.argv where /proc is missing.
 */
export function rawArgv(env: NodeJS.ProcessEnv = process.env): string[] {
  const args = cmdlineArgs()
  for (const i of (env[HEX_ARGS_ENV] ?? '').split(',').filter(Boolean).map(Number)) {
    if (Number.isInteger(i) && i >= 0 && i < args.length && /^(?:[0-9a-f]{2})+$/.test(args[i]))
      args[i] = decodeOsPath(Buffer.from(args[i], 'hex'))
  }
  return args
}

function cmdlineArgs(): string[] {
  const want = process.argv.length - 2
  try {
    const raw = readFileSync('/proc/self/cmdline')
    const fields: Buffer[] = []
    let start = 0
    for (let i = 0; i < raw.length; i++) {
      if (raw[i] !== 0) continue
      fields.push(raw.subarray(start, i))
      start = i + 1
    }
    if (start < raw.length) fields.push(raw.subarray(start))
    if (fields.length < want + 2) return process.argv.slice(2)
    return fields.slice(fields.length - want).map(decodeOsPath)
  } catch {
    return process.argv.slice(2)
  }
}
