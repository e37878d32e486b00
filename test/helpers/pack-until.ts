// Signal a running `kheadersfs pack` as soon as its --json events say it entered a phase, and time
// how long it takes to exit from then (test/e2e/pack-signals.test.ts, the cross-kernel rebuild).
import { spawn } from 'node:child_process'
import { CLI, shellStatus } from './cli'

/** The one timing bound: pack is gone within a second of the signal (a bound with margin). */
export const BOUND_MS = 1000

export interface Interrupted {
  /** As a shell reports it: 130 for a pack ended by SIGINT (by exit code or by the signal). */
  code: number | null
  signal: NodeJS.Signals | null
  ms: number
  stderr: string
  events: Array<{ event: string; phase?: string }>
}

/** Run pack with --json, send `sig` as soon as phase `phase` starts, and time the exit from the kill. */
export function packUntil(args: string[], phase: string, sig: NodeJS.Signals): Promise<Interrupted> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'pack', '--json', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let stderr = ''
    let sent: bigint | undefined
    const events: Interrupted['events'] = []
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      const lines = out.split('\n')
      out = lines.pop()!
      for (const l of lines) {
        const e = JSON.parse(l) as Interrupted['events'][number]
        events.push(e)
        if (sent === undefined && e.event === 'phase' && e.phase === phase) {
          sent = process.hrtime.bigint()
          child.kill(sig)
        }
      }
    })
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    child.on('error', reject)
    child.on('exit', (code, signal) => {
      const ms = sent === undefined ? NaN : Number(process.hrtime.bigint() - sent) / 1e6
      // stdout/stderr may still hold the last lines: wait for them.
      child.on('close', () => resolve({ code: shellStatus(code, signal), signal, ms, stderr, events }))
    })
  })
}
