// The readiness pipe between `kheadersfs mount` and its daemon: the daemon inherits it as fd 3 and
// writes one JSON line when its files are readable, or why it could not start (libfuse's
// README.daemonize, squashfuse's notify_mount_ready). Before that line, one per step it starts
// ({"step": "..."}), so that a slow mount can say what it is doing.

export const READY_FD = 3

/** The last line on the pipe. */
export type ReadyMessage = { ready: true; pid: number } | { ready: false; message: string; exitCode: number }

/** A line before it: what the daemon starts doing, in words for the user ("loading IMAGE (5.3 MB)"). */
export interface StepMessage {
  step: string
}

export function formatReady(msg: ReadyMessage | StepMessage): string {
  return JSON.stringify(msg) + '\n'
}

/** The message in `line` (without its newline), or undefined when it is not one. */
export function parseReady(line: string): ReadyMessage | StepMessage | undefined {
  try {
    const m = JSON.parse(line) as (Partial<ReadyMessage> & Partial<StepMessage>) | null
    if (typeof m?.step === 'string' && m.ready === undefined) return { step: m.step }
    if (m?.ready === true && typeof m.pid === 'number') return m as ReadyMessage
    if (m?.ready === false && typeof m.message === 'string' && typeof m.exitCode === 'number') return m as ReadyMessage
  } catch {
    // not JSON
  }
  return undefined
}
