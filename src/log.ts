// One root logger per process, a child per component. Records are JSON lines in pino's format
// ({"level":30,"time":…,"pid":…,"name":"kheadersfs",…,"msg":"…"}), written synchronously so the last
// lines before a crash reach the file. On a terminal, CLI commands print the same records as short
// human lines instead; into systemd's journal (a service's stderr), as human lines with sd-daemon(3)
// priority prefixes ("<3>…"), so journald files each under its level and `journalctl -p err` finds
// the errors.
//
// Our own few lines rather than pino: requiring pino loads ~25 modules (thread-stream, sonic-boom,
// worker_threads, …) for features we do not use, which cost both processes of a mount their start-up
// time and the daemon heap for as long as it runs (docs/design.md, "Daemon memory and start-up").
import { fstatSync, mkdirSync, openSync, writeSync } from 'node:fs'
import path from 'node:path'

export const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type Level = (typeof LEVELS)[number]

const VALUE: Record<Level, number> = {
  fatal: 60,
  error: 50,
  warn: 40,
  info: 30,
  debug: 20,
  trace: 10,
  silent: Infinity,
}

/** Whether a logger at `level` writes records at `at` (e.g. the progress lines at info). */
export function logsAt(level: Level, at: Exclude<Level, 'silent'>): boolean {
  return VALUE[at] >= VALUE[level]
}

export interface LogFn {
  (fields: object, msg?: string): void
  (msg: string): void
}

/** What the code logs through (a pino logger fits it too, as the unit tests use). */
export interface Logger {
  fatal: LogFn
  error: LogFn
  warn: LogFn
  info: LogFn
  debug: LogFn
  trace: LogFn
  child(bindings: Record<string, unknown>, options?: { level?: Level }): Logger
}

export interface LogOptions {
  level: Level
  /** A file path (created with its directory) or a file descriptor (2 = stderr). */
  destination: string | number
  /** Human-readable lines instead of JSON (for a terminal). */
  pretty?: boolean
  name?: string
  /** Where JOURNAL_STREAM is read: a descriptor that is the journal gets prefixed lines (default process.env). */
  env?: NodeJS.ProcessEnv
}

const LABEL: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warning', 50: 'error', 60: 'fatal' }
const OMIT = new Set(['level', 'time', 'pid', 'name', 'msg', 'hostname'])

/** One record → "kheadersfs: warning: message (key=value, ...)". */
function prettyLine(json: string): string {
  const r = JSON.parse(json) as Record<string, unknown>
  const level = LABEL[r.level as number] ?? 'log'
  return `kheadersfs: ${level === 'info' ? '' : `${level}: `}${body(r, (v) => v)}\n`
}

/** sd-daemon(3) priorities: crit, err, warning, info, debug (journald reads them off each line). */
const PRIORITY: Record<number, number> = { 10: 7, 20: 7, 30: 6, 40: 4, 50: 3, 60: 2 }

/**
 * One record → "<4>message (key=value, ...)" for the journal: one line whatever the values hold
 * (a newline would start an entry of its own, without the prefix). journald adds the time and pid.
 */
export function journalLine(json: string): string {
  const r = JSON.parse(json) as Record<string, unknown>
  const oneLine = (s: string): string => (/[\n\r]/.test(s) ? JSON.stringify(s) : s)
  return `<${PRIORITY[r.level as number] ?? 6}>${body(r, oneLine)}\n`
}

/** "message (key=value, ...)": the fields other than pino's own; strings through `str`. */
function body(r: Record<string, unknown>, str: (s: string) => string): string {
  const fields = Object.entries(r)
    .filter(([k]) => !OMIT.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' ? str(v) : JSON.stringify(v)}`)
  return `${typeof r.msg === 'string' ? str(r.msg) : ''}${fields.length ? ` (${fields.join(', ')})` : ''}`
}

/**
 * True when `fd` is systemd's journal: a service's stdout and stderr are its stream, and systemd sets
 * JOURNAL_STREAM to that stream's "device:inode" (systemd.exec(5)). Comparing them, not just seeing the
 * variable, matters: a child inherits the variable with its stderr sent elsewhere.
 */
export function isJournal(fd: number, env: NodeJS.ProcessEnv): boolean {
  const stream = env.JOURNAL_STREAM
  if (!stream) return false
  try {
    const st = fstatSync(fd, { bigint: true })
    return stream === `${st.dev}:${st.ino}`
  } catch {
    return false
  }
}

/** `out` with every line prefixed by `<3>` (err) when `fd` is the journal: the CLI's error line. */
export function errorsToJournal<T extends { write(s: string): unknown }>(
  out: T,
  fd: number,
  env: NodeJS.ProcessEnv,
): { write(s: string): unknown } {
  if (!isJournal(fd, env)) return out
  return { write: (s: string) => out.write(s.replace(/^(?=.)/gm, '<3>')) }
}

/** Errors as pino's serializer writes them ({type, message, stack, own fields}); BigInts as strings. */
function plain(_key: string, v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString()
  if (v instanceof Error)
    return Object.assign({ type: v.constructor?.name ?? v.name, message: v.message, stack: v.stack }, v)
  return v
}

function stringify(record: object): string {
  try {
    return JSON.stringify(record, plain)
  } catch {
    // A cycle: write each object once.
    const seen = new WeakSet<object>()
    return JSON.stringify(record, (k, v: unknown) => {
      const p = plain(k, v)
      if (typeof p !== 'object' || p === null) return p
      if (seen.has(p)) return '[Circular]'
      seen.add(p)
      return p
    })
  }
}

/** The whole line, retrying while a non-blocking pipe is full. A log line never takes the process down. */
function writeAll(fd: number, line: string): void {
  let b = Buffer.from(line)
  while (b.length > 0) {
    try {
      b = b.subarray(writeSync(fd, b))
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') return
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10)
    }
  }
}

function logger(write: (line: string) => void, level: Level, bindings: Record<string, unknown>): Logger {
  const threshold = VALUE[level]
  const at =
    (value: number): LogFn =>
    (a: object | string, msg?: string) => {
      if (value < threshold) return
      const fields = typeof a === 'string' ? { msg: a } : { ...a, msg }
      write(stringify({ level: value, time: Date.now(), ...bindings, ...fields }) + '\n')
    }
  return {
    fatal: at(60),
    error: at(50),
    warn: at(40),
    info: at(30),
    debug: at(20),
    trace: at(10),
    child: (more, options) => logger(write, options?.level ?? level, { ...bindings, ...more }),
  }
}

/** One JSON record line as the loggers write it, for text another writer left (a daemon's stray stderr). */
export function recordLine(level: Exclude<Level, 'silent'>, fields: Record<string, unknown>, msg: string): string {
  return stringify({ level: VALUE[level], time: Date.now(), name: 'kheadersfs', ...fields, msg }) + '\n'
}

export function createLogger(opts: LogOptions): Logger {
  let fd: number
  if (typeof opts.destination === 'number') fd = opts.destination
  else {
    mkdirSync(path.dirname(opts.destination), { recursive: true })
    fd = openSync(opts.destination, 'a')
  }
  const format =
    typeof opts.destination === 'number' && isJournal(fd, opts.env ?? process.env)
      ? journalLine
      : opts.pretty
        ? prettyLine
        : undefined
  const write = format ? (line: string) => writeAll(fd, format(line)) : (line: string) => writeAll(fd, line)
  return logger(write, opts.level, { pid: process.pid, name: opts.name ?? 'kheadersfs' })
}
