// kheadersfs umount: like rmmod kheaders. Refuses while a file is open ("in use"); --lazy detaches now
// and lets the daemon exit when the last reader closes. Cleans a stale mount of a dead daemon too.
import path from 'node:path'
import { parseCommand } from '../args'
import type { Command } from '../context'
import { MountBusyError, MountpointError, UsageError } from '../errors'
import { findMount, health, unmount } from '../mounts/mountinfo'
import { holders, running } from '../procfs'
import { cleanStale } from '../mounts/stale'
import { readState } from '../protocol/state'

/** How long to wait for the daemon to exit after its mount went (it notices within milliseconds). */
const EXIT_WAIT_MS = 5000

export const umount: Command = {
  usage: `Usage: kheadersfs umount [--lazy] MOUNTPOINT

Unmount and end the daemon, freeing its memory. Refuses while a file under MOUNTPOINT is open,
naming who holds it (exit 5), like rmmod refuses a module in use.
  --lazy   detach now; the daemon exits when the last open file is closed
A stale mount left by a killed daemon is cleaned up.`,

  async run(args, ctx) {
    const { values, positionals } = parseCommand('umount', args, { lazy: { type: 'boolean', short: 'l' } })
    if (positionals.length !== 1)
      throw new UsageError('kheadersfs umount: give exactly one MOUNTPOINT; see "kheadersfs umount --help"')
    const mountpoint = path.resolve(ctx.cwd, positionals[0])
    if (findMount(mountpoint) === undefined) {
      throw new MountpointError(
        `Cannot unload ${mountpoint}: no kheadersfs mount there; "kheadersfs status" lists them`,
      )
    }
    const state = readState(ctx.env, mountpoint)
    if ((await health(mountpoint)) === 'stale') {
      cleanStale(ctx.env, mountpoint)
      ctx.stdout.write(`kheadersfs: cleaned up the stale mount at ${mountpoint} (its daemon had died)\n`)
      return 0
    }
    const r = unmount(mountpoint, values.lazy === true)
    if (r === 'busy') {
      const who = holders(mountpoint)
      const list = who.map((h) => `${h.command} (pid ${h.pid}, ${h.files} open)`).join(', ')
      throw new MountBusyError(
        `Cannot unload ${mountpoint}: in use${list ? ` by ${list}` : ''}; close those files first, or use --lazy to detach now`,
      )
    }
    if (r !== 'ok') throw new MountpointError(`Cannot unload ${mountpoint}: ${r.error}`)
    if (values.lazy) {
      ctx.stdout.write(`kheadersfs: detached ${mountpoint}; the daemon exits when the last open file is closed\n`)
      return 0
    }
    if (state !== undefined && !(await exited(state.pid, EXIT_WAIT_MS))) {
      ctx.log.warn({ pid: state.pid }, 'the daemon is still running after its mount went')
    }
    return 0
  },
}

async function exited(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms
  while (running(pid)) {
    if (Date.now() > deadline) return false
    await new Promise((r) => setTimeout(r, 20))
  }
  return true
}
