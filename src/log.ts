// One pino root logger per process, a child per component. The daemon logs JSON lines synchronously
// so the last lines before a crash reach the file (pino docs/asynchronous.md). On a terminal, CLI
// commands print the same records as short human lines instead.
import pino from 'pino'

export type Logger = pino.Logger
export const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type Level = (typeof LEVELS)[number]

export interface LogOptions {
  level: Level
  /** A file path (created with its directory) or a file descriptor (2 = stderr). */
  destination: string | number
  /** Human-readable lines instead of JSON (for a terminal). */
  pretty?: boolean
  name?: string
}

const LABEL: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warning', 50: 'error', 60: 'fatal' }
const OMIT = new Set(['level', 'time', 'pid', 'name', 'msg', 'hostname'])

/** One record → "kheadersfs: warning: message (key=value, ...)". */
export function prettyLine(json: string): string {
  const r = JSON.parse(json) as Record<string, unknown>
  const fields = Object.entries(r)
    .filter(([k]) => !OMIT.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
  const level = LABEL[r.level as number] ?? 'log'
  return `kheadersfs: ${level === 'info' ? '' : `${level}: `}${r.msg ?? ''}${fields.length ? ` (${fields.join(', ')})` : ''}\n`
}

export function createLogger(opts: LogOptions): Logger {
  const dest = pino.destination({ dest: opts.destination, sync: true, mkdir: typeof opts.destination === 'string' })
  const options = { name: opts.name ?? 'kheadersfs', level: opts.level, base: { pid: process.pid } }
  if (!opts.pretty) return pino(options, dest)
  return pino(options, { write: (line: string) => dest.write(prettyLine(line)) })
}
