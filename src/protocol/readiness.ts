// The readiness pipe between `kheadersfs mount` and its daemon: the daemon inherits it as fd 3 and
// writes one JSON line when its files are readable, or why it could not start (libfuse's
// README.daemonize, squashfuse's notify_mount_ready).

export const READY_FD = 3

/** The one line on the pipe. */
export type ReadyMessage = { ready: true; pid: number } | { ready: false; message: string; exitCode: number }

export function formatReady(msg: ReadyMessage): string {
  return JSON.stringify(msg) + '\n'
}

/** The message in `line` (without its newline), or undefined when it is not one. */
export function parseReady(line: string): ReadyMessage | undefined {
  try {
    const m = JSON.parse(line) as Partial<ReadyMessage> | null
    if (m?.ready === true && typeof m.pid === 'number') return m as ReadyMessage
    if (m?.ready === false && typeof m.message === 'string' && typeof m.exitCode === 'number') return m as ReadyMessage
  } catch {
    // not JSON
  }
  return undefined
}
