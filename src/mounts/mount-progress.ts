// What `kheadersfs mount` says while a mount takes longer than a moment: on an emulated arm64 board
// the daemon's start alone takes seconds and the whole mount 13–23 s, in silence before. After
// `afterMs` without ready it prints the step the daemon is in, then each next step as it starts, and
// the time it took once mounted: plain lines on stderr, on a terminal or not (with the journal's
// info prefix under systemd). A fast mount prints nothing, and nothing is printed below
// --log-level info.

/** How long a mount may take before it says what it is doing. */
export const STEPS_AFTER_MS = 1000

export interface MountProgress {
  /** The daemon started `text` ("loading IMAGE (5.3 MB)", "mounting at /proc-ext"). */
  step(text: string): void
  /** Mounted: the elapsed time, if anything was shown. */
  done(mountpoint: string): void
  /** Failed: stop quietly (the error line follows). */
  stop(): void
}

export function mountProgress(
  out: { write(s: string): unknown },
  opts: { enabled: boolean; afterMs: number; journal: boolean },
): MountProgress {
  const t0 = Date.now()
  const prefix = opts.journal ? '<6>' : ''
  let current = 'starting the daemon'
  let shown = false
  const say = (text: string): void => void out.write(`${prefix}kheadersfs: ${text}...\n`)
  const timer = opts.enabled
    ? setTimeout(() => {
        shown = true
        say(current)
      }, opts.afterMs)
    : undefined
  timer?.unref()
  return {
    step: (text) => {
      current = text
      if (shown) say(text)
    },
    done: (mountpoint) => {
      clearTimeout(timer)
      if (shown)
        out.write(`${prefix}kheadersfs: mounted at ${mountpoint} in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`)
    },
    stop: () => clearTimeout(timer),
  }
}
