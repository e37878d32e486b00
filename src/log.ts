// One pino root logger per process, a child per component. The daemon logs synchronously so the last
// lines before a crash reach the file (pino docs/asynchronous.md); CLI commands log to stderr.
import pino from 'pino'

export type Logger = pino.Logger
export const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type Level = (typeof LEVELS)[number]

export interface LogOptions {
  level: Level
  /** A file path (created with its directory) or a file descriptor (2 = stderr). */
  destination: string | number
  name?: string
}

export function createLogger(opts: LogOptions): Logger {
  const dest = pino.destination({ dest: opts.destination, sync: true, mkdir: typeof opts.destination === 'string' })
  return pino({ name: opts.name ?? 'kheadersfs', level: opts.level, base: { pid: process.pid } }, dest)
}

/** A logger that drops everything (commands run in-process by tests, `--log-level silent`). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' })
}
