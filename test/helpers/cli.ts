// Run the built CLI as a user would and capture {code, stdout, stderr} (corepack's runCli pattern).
import { spawn, type SpawnOptions } from 'node:child_process'
import { constants } from 'node:os'
import path from 'node:path'

export const ROOT = path.resolve(__dirname, '..', '..', '..')
export const CLI = path.join(ROOT, 'dist', 'src', 'cli.js')

export interface Result {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

export function runCli(args: string[], opts: SpawnOptions & { input?: string } = {}): Promise<Result> {
  return run(process.execPath, [CLI, ...args], opts)
}

export function run(cmd: string, args: string[], opts: SpawnOptions & { input?: string } = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], ...opts, env: { ...process.env, ...opts.env } })
    let stdout = ''
    let stderr = ''
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
    child.on('error', reject)
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }))
    // A child that exits before reading its stdin makes this write fail with EPIPE: its exit status
    // and output are what matter, so the error must not mask them.
    child.stdin!.on('error', () => undefined)
    child.stdin!.end(opts.input ?? '')
  })
}

/**
 * Lines a user sees on stderr, without pino's JSON log lines and without progress: pack's lines off a
 * terminal (progress.ts) and the steps a mount says when it is slow (mounts/mount-progress.ts: a
 * loaded machine may take a second).
 */
export function errorLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l !== '' && !l.startsWith('{') && !PROGRESS.test(l))
}

const PROGRESS = /^kheadersfs: (?:.*\.\.\.|mounted at .* in \d+\.\d s|packing .*|pack: +\d+% .*)$/

/**
 * The status a shell reports (\$?): the exit code, or 128 + the signal's number for a process ended
 * by a signal (an interrupted pack ends by its own signal: src/cli.ts).
 */
export function shellStatus(code: number | null, signal: NodeJS.Signals | null): number | null {
  return code ?? (signal === null ? null : 128 + constants.signals[signal])
}
