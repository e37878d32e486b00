// What a command may touch of the outside world, injected so tests can run commands in-process.
import type { Level, Logger } from './log'

export interface Output {
  write(s: string): unknown
  isTTY?: boolean
}

export interface Context {
  stdout: Output
  stderr: Output
  env: NodeJS.ProcessEnv
  cwd: string
  log: Logger
  logLevel: Level
}

export type Command = {
  usage: string
  /** The exit code; commands that do no I/O worth waiting on (info, install-helpers) answer at once. */
  run(args: string[], ctx: Context): number | Promise<number>
}
