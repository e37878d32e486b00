// Shared by the reliability suite (test/stress/): how big to make each case, and where to record
// its figures. `npm test` runs the suite at CI scale; `npm run stress` at full scale, and turns the
// recorded figures into docs/reliability.md (test/helpers/stress-report.ts).
import { appendFileSync } from 'node:fs'

export type Scale = 'ci' | 'full'

export function scale(): Scale {
  return process.env.KHEADERSFS_STRESS === 'full' ? 'full' : 'ci'
}

/** The full-scale count (what the issue asks for), or a bounded one in CI. */
export function size(full: number, ci: number): number {
  return scale() === 'full' ? full : ci
}

export interface Figure {
  /**
   * Section of docs/reliability.md: "Load", "Bounded daemon", "Faults", "Hostile input", "Mountpoint
   * names", "Security", "systemd unit".
   */
  area: string
  /** What was tried, as a reader of the report would say it. */
  name: string
  tried: number
  passed: number
  /** Measured numbers worth reporting (RSS start/end, ms, ...), one short line. */
  detail?: string
}

/**
 * Record one case's figures (when KHEADERSFS_FIGURES names a file). Call it with what actually
 * happened: a case that failed records passed < tried, and the test asserts separately.
 */
export function record(f: Figure): void {
  const file = process.env.KHEADERSFS_FIGURES
  if (!file) return
  appendFileSync(file, JSON.stringify({ ...f, scale: scale() }) + '\n')
}
