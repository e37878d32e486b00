// Pack progress, three ways. On a terminal, one cli-progress bar over the whole pack: the percentage is
// the phases' byte progress weighted by how long each takes (xz most), so it moves through every phase
// and reaches 100 % at the end. Off a terminal (CI, build-system logs), plain lines: one as each phase
// starts and one every LINE_INTERVAL_MS from a timer, so a log has no long silence while xz works.
// With --json, NDJSON events on stdout for tools (docs/kheadersfs.1.md, "pack --json").
import { SingleBar } from 'cli-progress'
import type { Context } from './context'
import { logsAt } from './log'
import { bytes, count } from './format-bytes'
import type { PackPhase, PackResult, PhaseProgress, Selected } from './pack/pack'

export type ProgressMode = 'bar' | 'lines' | 'json' | 'none'

/** Plain-text lines off a terminal: at least this often while a phase runs. */
export const LINE_INTERVAL_MS = 5000
/** --json progress events: at most this often (phase starts and ends are always sent). */
const JSON_INTERVAL_MS = 1000

/** Share of the pack's time per phase, measured on Debian's 6.1 tree (xz -6 on 2 cores); sums to 1. */
const WEIGHT: Partial<Record<PackPhase, number>> = { read: 0.12, tar: 0.03, xz: 0.8, write: 0.05, deb: 0.05 }

const LABEL: Record<PackPhase, string> = {
  select: 'reading the tree',
  rebuild: 'rebuilding host programs',
  read: 'reading files',
  tar: 'writing the tar',
  xz: 'compressing (xz)',
  write: 'writing the image',
  deb: 'building the package',
}

export interface PackProgress {
  selected(s: Selected): void
  update(p: PhaseProgress): void
  done(r: PackResult): void
  failed(e: unknown): void
  stop(): void
}

export function progressMode(ctx: Context, json: boolean): ProgressMode {
  if (json) return 'json'
  // --log-level warn and quieter keep pack quiet on success.
  if (!logsAt(ctx.logLevel, 'info')) return 'none'
  return ctx.stderr.isTTY === true ? 'bar' : 'lines'
}

/** The whole pack's fraction done: finished phases' weights plus the running one's share. */
class Overall {
  private finished = 0
  current: PhaseProgress = { phase: 'select', done: 0, total: 0 }
  /** A new phase: true when `p` starts one (the previous one is then complete). */
  see(p: PhaseProgress): boolean {
    if (p.phase === this.current.phase) {
      this.current = p
      return false
    }
    this.finished += WEIGHT[this.current.phase] ?? 0
    this.current = p
    return true
  }
  fraction(): number {
    const c = this.current
    const share = c.total > 0 ? c.done / c.total : 0
    return Math.min(1, this.finished + (WEIGHT[c.phase] ?? 0) * share)
  }
}

export function packProgress(ctx: Context, mode: ProgressMode): PackProgress {
  if (mode === 'bar') return barProgress(ctx)
  if (mode === 'json') return jsonProgress(ctx)
  if (mode === 'lines') return lineProgress(ctx)
  return { selected: () => undefined, update: () => undefined, done: () => undefined, failed: () => undefined, stop }
}

function stop(): void {}

/** The summary of what is packed, as one line. */
function selectedLine(s: Selected): string {
  return `kheadersfs: packing ${s.kernel.release} (${s.kernel.arch}) from ${s.input.objtree}: ${count(s.files)} files, ${bytes(s.bytes)}\n`
}

function phaseText(p: PhaseProgress): string {
  return p.total > 0 ? `${LABEL[p.phase]} ${bytes(p.done)} of ${bytes(p.total)}` : LABEL[p.phase]
}

function barProgress(ctx: Context): PackProgress {
  const overall = new Overall()
  const bar = new SingleBar({
    format: 'packing [{bar}] {percentage}% | {phase} | {duration_formatted}',
    stream: ctx.stderr as NodeJS.WritableStream,
    hideCursor: true,
    clearOnComplete: true,
    fps: 10,
  })
  let started = false
  const show = (): void => {
    if (started) bar.update(Math.round(overall.fraction() * 1000), { phase: phaseText(overall.current) })
  }
  return {
    selected: (s) => {
      ctx.stderr.write(selectedLine(s))
      bar.start(1000, 0, { phase: LABEL.read })
      started = true
    },
    update: (p) => {
      overall.see(p)
      show()
    },
    done: () => undefined,
    failed: () => undefined,
    stop: () => {
      if (started) bar.stop()
      started = false
    },
  }
}

function elapsed(since: number): string {
  const s = Math.round((Date.now() - since) / 1000)
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`
}

function lineProgress(ctx: Context): PackProgress {
  const overall = new Overall()
  const since = Date.now()
  const line = (): void => {
    const pct = Math.floor(overall.fraction() * 100)
    ctx.stderr.write(
      `kheadersfs: pack: ${String(pct).padStart(3)}% ${phaseText(overall.current)} (${elapsed(since)})\n`,
    )
  }
  // A timer, not the updates: xz reports only after each block, and the read phase after each file.
  const timer = setInterval(line, LINE_INTERVAL_MS)
  timer.unref()
  return {
    selected: (s) => ctx.stderr.write(selectedLine(s)),
    update: (p) => {
      if (overall.see(p)) line()
    },
    done: () => undefined,
    failed: () => undefined,
    stop: () => clearInterval(timer),
  }
}

function jsonProgress(ctx: Context): PackProgress {
  const overall = new Overall()
  const since = Date.now()
  let phaseSince = since
  const emit = (event: object): void => {
    ctx.stdout.write(JSON.stringify({ ...event, time: new Date().toISOString() }) + '\n')
  }
  const progress = (): void => {
    const c = overall.current
    emit({ event: 'progress', phase: c.phase, done: c.done, total: c.total, percent: percent(overall) })
  }
  const endPhase = (): void => {
    const c = overall.current
    emit({ event: 'phase-end', phase: c.phase, total: c.total, ms: Date.now() - phaseSince })
  }
  const timer = setInterval(progress, JSON_INTERVAL_MS)
  timer.unref()
  let first = true
  return {
    selected: (s) =>
      emit({
        event: 'selected',
        release: s.kernel.release,
        arch: s.kernel.arch,
        target: s.target?.name,
        layout: s.input.layout,
        objtree: s.input.objtree,
        srctree: s.input.srctree,
        files: s.files,
        bytes: s.bytes,
        skipped: s.skipped,
        output: s.output,
      }),
    update: (p) => {
      const previous = overall.current
      if (overall.see(p) || first) {
        if (!first)
          emit({ event: 'phase-end', phase: previous.phase, total: previous.total, ms: Date.now() - phaseSince })
        first = false
        phaseSince = Date.now()
        emit({ event: 'phase', phase: p.phase, total: p.total, percent: percent(overall) })
      }
    },
    done: (r) => {
      endPhase()
      const m = r.manifest
      emit({
        event: 'done',
        output: r.output,
        bytes: r.outputBytes,
        image: { bytes: r.imageBytes, sha256: r.imageSha256 },
        release: m.release,
        arch: m.arch,
        profile: m.profile,
        files: m.counts.files,
        ms: Date.now() - since,
      })
    },
    failed: (e) => {
      const err = e as { message?: string; exitCode?: number }
      emit({ event: 'error', message: err?.message ?? String(e), exitCode: err?.exitCode ?? 1 })
    },
    stop: () => clearInterval(timer),
  }
}

function percent(o: Overall): number {
  return Math.round(o.fraction() * 1000) / 10
}
