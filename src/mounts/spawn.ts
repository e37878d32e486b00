// The parent side of `kheadersfs mount`: start the daemon detached with a readiness pipe as its fd 3
// and wait for one line on it (libfuse's README.daemonize, squashfuse's notify_mount_ready). Returns
// only when the files are readable; otherwise relays the daemon's error and exit code.
import { spawn } from 'node:child_process'
import { closeSync, writeSync } from 'node:fs'
import { DaemonFailed, type KheadersError } from '../errors'
import { isJournal, recordLine } from '../log'
import { argvForChild } from '../os-path'
import { parseReady, READY_FD } from '../protocol/readiness'
import { ensureRunDir, openPrivateAppend } from '../protocol/state'

/**
 * True when our stderr is systemd's journal (a service started us). The daemon then logs there, so
 * `journalctl -u UNIT` shows it, with sd-daemon priority prefixes (log.ts).
 */
export function stderrIsJournal(env: NodeJS.ProcessEnv): boolean {
  return isJournal(2, env)
}

/**
 * The daemon's log file, as its fd 4 (`--log-fd`): its records go there, one JSON object per line and
 * nothing else. Its stderr is a pipe to us instead, so whatever else writes to fd 2 before ready
 * (libfuse, fusermount, Node) reaches the file as records too, never as bare text.
 */
export const LOG_FD = 4

/**
 * V8 flags for the daemon: a small young generation lowers its idle RSS; gc() for the reclaimer
 * without a second context (docs/design.md, "Memory"). Node's warnings become log records (daemon.ts).
 */
const DAEMON_NODE_FLAGS = ['--max-semi-space-size=1', '--expose-gc', '--no-warnings']

/**
 * glibc raises its mmap threshold after the first freed large block, after which the xz decoders'
 * 64 KiB output chunks and the decoded blocks fragment the heap. A fixed threshold at the chunk size
 * keeps them in their own mappings, returned to the system when freed (docs/design.md, "Memory").
 */
const DAEMON_ENV = { MALLOC_MMAP_THRESHOLD_: '65536' }

/** `logFile` null: the daemon keeps our stderr (the journal). */
export async function startDetached(
  argv: string[],
  opts: { logFile: string | null; env: NodeJS.ProcessEnv; onStep?: (text: string) => void },
): Promise<{ pid: number }> {
  ensureRunDir(opts.env)
  const logFd = opts.logFile === null ? 2 : openPrivateAppend(opts.logFile)
  // Paths that are not UTF-8 travel hex-encoded (Node would mangle them in argv: os-path.ts).
  // argv[0] is the script; the positions the child decodes count from its first argument.
  const child_ = argvForChild(argv.slice(1))
  const child = spawn(process.execPath, [...DAEMON_NODE_FLAGS, argv[0], ...child_.args], {
    detached: true, // own session: survives the terminal and the caller
    // Under the journal the daemon keeps our stderr; else its log is fd 4 and its stderr comes to us.
    stdio: logFd === 2 ? ['ignore', 2, 2, 'pipe'] : ['ignore', 'ignore', 'pipe', 'pipe', logFd],
    env: { ...DAEMON_ENV, ...opts.env, ...child_.env },
    cwd: '/', // never keep the caller's directory busy
  })
  const stray = logFd === 2 ? undefined : wrapStderr(child.stderr!, logFd, child.pid)
  const pipe = child.stdio[READY_FD] as NodeJS.ReadableStream
  return new Promise((resolve, reject) => {
    let buf = ''
    let settled = false
    let failure: KheadersError | undefined
    const settle = (fn: () => void, drain = true): void => {
      if (settled) return
      settled = true
      // After ready nothing reads the daemon's stderr (it logs to its file, and turns its own
      // warnings and crashes into records there); after a failure, the last of it is taken first.
      void (stray?.close(drain) ?? Promise.resolve()).then(fn)
    }
    pipe.on('data', (d: Buffer) => {
      buf += d.toString()
      for (let nl = buf.indexOf('\n'); nl >= 0 && !settled; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        onLine(line)
      }
    })
    const onLine = (line: string): void => {
      const msg = parseReady(line)
      if (msg !== undefined && 'step' in msg) return opts.onStep?.(msg.step)
      if (msg === undefined)
        return settle(() =>
          reject(
            new DaemonFailed(
              `The kheadersfs daemon sent a garbled readiness line; see ${opts.logFile ?? 'the journal'}`,
            ),
          ),
        )
      if (msg.ready) {
        settle(() => {
          child.unref()
          ;(pipe as unknown as { destroy(): void }).destroy()
          resolve({ pid: msg.pid })
        }, false)
      } else {
        // Settled by the exit handler: return only once the failed daemon is gone.
        failure = new DaemonFailed(msg.message, msg) // exits with the daemon's exit code
        setTimeout(() => child.kill('SIGKILL'), 5000).unref()
      }
    }
    pipe.on('error', () => undefined)
    child.on('error', (e) => settle(() => reject(new DaemonFailed(`Cannot start the kheadersfs daemon: ${e.message}`))))
    child.on('exit', (code, signal) =>
      settle(() =>
        reject(
          failure ??
            new DaemonFailed(
              `The kheadersfs daemon exited (${signal ?? `code ${code}`}) before the mount was ready; see ${opts.logFile ?? 'the journal'}`,
            ),
        ),
      ),
    )
  })
}

/**
 * The daemon's stderr, line by line, as warning records in its log file: what libfuse, fusermount or
 * Node print there stays readable by jq. close(true) first takes what is still in the pipe (a bounded
 * wait: a fusermount may hold it open).
 */
function wrapStderr(
  stderr: NodeJS.ReadableStream,
  logFd: number,
  pid: number | undefined,
): { close(drain: boolean): Promise<void> } {
  let rest = ''
  const put = (line: string): void => {
    try {
      writeSync(logFd, recordLine('warn', { pid, component: 'stderr' }, line))
    } catch {
      // a log line never fails the mount
    }
  }
  stderr.on('data', (d: Buffer) => {
    const lines = (rest + d.toString()).split('\n')
    rest = lines.pop()!
    for (const l of lines) if (l !== '') put(l)
  })
  stderr.on('error', () => undefined)
  const ended = new Promise<void>((r) => stderr.on('end', () => r()))
  return {
    close: async (drain) => {
      if (drain) await Promise.race([ended, new Promise((r) => setTimeout(r, 200).unref())])
      if (rest !== '') put(rest)
      rest = ''
      ;(stderr as unknown as { destroy(): void }).destroy()
      closeSync(logFd)
    },
  }
}
