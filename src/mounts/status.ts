// What is mounted, as data: the mount table (/proc/self/mountinfo) merged with the daemons' state
// files, one row per kheadersfs mount, for `kheadersfs status` to format.
import { freedByExit, holders, memoryOf, running } from '../procfs'
import { health, kheadersMounts } from './mountinfo'
import { listStates, type DaemonState } from '../protocol/state'

export interface MountStatus {
  mountpoint: string
  state: 'live' | 'stale' | 'detached'
  pid: number | null
  image: string | null
  release: string | null
  profile: string | null
  imageBytes: number | null
  /** What umount frees: the daemon's anonymous memory, resident or swapped (RssAnon + VmSwap). */
  memoryBytes: number | null
  /** The rest beside it, from /proc/PID/status: VmRSS, RssAnon, RssFile, RssShmem, VmSwap. */
  rssBytes: number | null
  anonBytes: number | null
  fileBytes: number | null
  shmemBytes: number | null
  swapBytes: number | null
  openFiles: number
  uptimeSeconds: number | null
}

/**
 * One row per kheadersfs mount: live; stale (its daemon died, or the mount does not answer: "kheadersfs
 * umount" or the next mount cleans it); or detached (lazily unmounted, so no mount entry, while its
 * daemon still serves the files open under it).
 */
export async function collectStatus(env: NodeJS.ProcessEnv): Promise<MountStatus[]> {
  const states = listStates(env)
  const out: MountStatus[] = []
  const seen = new Set<string>()
  for (const m of kheadersMounts()) {
    if (seen.has(m.mountpoint)) continue
    seen.add(m.mountpoint)
    const s = states.find((st) => st.mountpoint === m.mountpoint)
    const alive = s !== undefined && running(s.pid)
    const stale = (await health(m.mountpoint)) === 'stale' || (s !== undefined && !alive)
    out.push(row(m.mountpoint, stale ? 'stale' : 'live', s, alive))
  }
  // Lazily detached mounts still serving their last readers: no mount entry, a running daemon.
  for (const s of states) {
    if (!seen.has(s.mountpoint) && running(s.pid)) out.push(row(s.mountpoint, 'detached', s, true))
  }
  return out
}

function row(mountpoint: string, state: MountStatus['state'], s: DaemonState | undefined, alive: boolean): MountStatus {
  const mem = alive && s ? memoryOf(s.pid) : undefined
  return {
    mountpoint,
    state,
    pid: s?.pid ?? null,
    image: s?.image ?? null,
    release: s?.release ?? null,
    profile: s?.profile ?? null,
    imageBytes: s?.imageBytes ?? null,
    memoryBytes: mem ? freedByExit(mem) : null,
    rssBytes: mem?.rss ?? null,
    anonBytes: mem?.anon ?? null,
    fileBytes: mem?.file ?? null,
    shmemBytes: mem?.shmem ?? null,
    swapBytes: mem?.swap ?? null,
    openFiles: state === 'live' ? holders(mountpoint).reduce((n, h) => n + h.files, 0) : 0,
    uptimeSeconds: alive && s ? Math.round((Date.now() - s.started) / 1000) : null,
  }
}
