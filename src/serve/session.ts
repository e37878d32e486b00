// Noticing that the mount is gone. fuse-native never tells JavaScript about an external umount, so
// the daemon watches for itself: a `findmnt --poll=umount` child wakes it the moment the mount
// table loses the mountpoint, and the FUSE session is over once libfuse has closed its /dev/fuse
// descriptor (it does when its loop returns). A lazily detached mount with open files keeps the
// session, so the daemon keeps serving those readers until the last one closes.
import { spawn, type ChildProcess } from 'node:child_process'
import { readdirSync, readlinkSync } from 'node:fs'

function fuseFds(): number[] {
  const fds: number[] = []
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === '/dev/fuse') fds.push(Number(fd))
    } catch {
      // closed meanwhile (readdir's own descriptor)
    }
  }
  return fds
}

export interface SessionWatch {
  /** Call once mounted: from now on, the end of the session calls `onEnd` once. */
  arm(onEnd: () => void): void
  /** Check now (e.g. right after a lazy detach). */
  check(): void
  stop(): void
}

/**
 * Start watching `mountpoint`. Must be called BEFORE mounting: libfuse opens /dev/fuse without
 * close-on-exec, and a child started later would hold the session open (a killed daemon's mount then
 * hangs instead of going away).
 */
export function watchSession(mountpoint: string): SessionWatch {
  let onEnd: (() => void) | undefined
  let finder: ChildProcess | undefined
  let fast: NodeJS.Timeout | undefined
  let slow: NodeJS.Timeout | undefined
  let ended = false

  const check = (): void => {
    if (ended || onEnd === undefined) return
    if (fuseFds().length === 0) {
      ended = true
      stop()
      onEnd()
    }
  }
  const startFinder = (): void => {
    try {
      finder = spawn(
        'findmnt',
        ['--poll=umount', '--first-only', '--noheadings', '--output', 'TARGET', '--mountpoint', mountpoint],
        {
          stdio: 'ignore',
        },
      )
    } catch {
      finder = undefined // no findmnt: the slow poll still catches the end
      return
    }
    finder.on('error', () => undefined)
    finder.on('exit', () => {
      finder = undefined
      if (ended) return
      // Unmounted: the session ends now, or when the last reader of a lazy detach closes.
      check()
      if (!ended && fast === undefined) fast = setInterval(check, 100)
    })
    finder.unref()
  }
  const stop = (): void => {
    if (fast) clearInterval(fast)
    if (slow) clearInterval(slow)
    finder?.kill()
    finder = undefined
  }
  startFinder()
  return {
    arm(cb) {
      onEnd = cb
      // Fallback if findmnt is missing or died: the end is still noticed within two seconds.
      slow = setInterval(check, 2000)
    },
    check,
    stop,
  }
}
