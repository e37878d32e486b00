// Per-mount state under the run directory (/run/kheadersfs for root): a JSON file the daemon writes
// once it serves, for `status` and `umount`, a plain pid file beside it (systemd's PIDFile= reads
// /run/kheadersfs/%i.pid: the file name is the systemd-escaped mountpoint, the unit's instance), and
// the daemon's log when it runs detached. Root-only: the directory is 0700 and the files 0600.
import {
  chmodSync,
  chownSync,
  closeSync,
  constants,
  fchmodSync,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  unlinkSync,
} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { IoError } from '../errors'
import { writeFileAtomic } from '../fs-atomic'
import { encodeOsPath } from '../os-path'

export interface DaemonState {
  pid: number
  mountpoint: string
  image: string
  release: string
  profile: string
  imageBytes: number
  /** ms since the epoch. */
  started: number
  logFile: string | null
  version: string
  /** Build links made by -o link_build (removed at unload, or by the next mount/umount if killed). */
  links?: { links: string[]; createdDir?: string; view: string }
  /**
   * The systemd service the daemon runs in, if any: it also gets <unit>.pid, the unit's PIDFile=
   * (/run/kheadersfs/%n.pid). systemd removes a service's PIDFile whenever the service stops or fails,
   * so a pid file of its own keeps a failed start from removing another unit's daemon's pid file.
   */
  unit?: string
}

/**
 * /run/kheadersfs for root; for another user their own runtime directory ($XDG_RUNTIME_DIR, made by
 * systemd-logind, 0700), else kheadersfs-<uid> in the temporary directory (checked in ensureRunDir).
 */
export function runDir(env: NodeJS.ProcessEnv): string {
  if (env.KHEADERSFS_RUN_DIR) return env.KHEADERSFS_RUN_DIR
  const uid = process.getuid?.() ?? 0
  if (uid === 0) return '/run/kheadersfs'
  if (env.XDG_RUNTIME_DIR && path.isAbsolute(env.XDG_RUNTIME_DIR)) return path.join(env.XDG_RUNTIME_DIR, 'kheadersfs')
  return path.join(os.tmpdir(), `kheadersfs-${uid}`)
}

/**
 * A file name for a mountpoint, exactly as `systemd-escape --path` makes a unit instance name:
 * /proc-ext → proc\x2dext, /a b/c → a\x20b-c. UTF-8 bytes are escaped one by one.
 */
export function mountId(mountpoint: string): string {
  const parts = mountpoint.split('/').filter((p) => p !== '')
  if (parts.length === 0) return '-'
  const escape = (part: string): string => {
    let out = ''
    for (const [i, byte] of encodeOsPath(part).entries()) {
      const c = String.fromCharCode(byte)
      out += /[A-Za-z0-9_.:]/.test(c) && !(i === 0 && c === '.') ? c : '\\x' + byte.toString(16).padStart(2, '0')
    }
    return out
  }
  return parts.map(escape).join('-')
}

export function statePath(env: NodeJS.ProcessEnv, mountpoint: string): string {
  return path.join(runDir(env), `${mountId(mountpoint)}.json`)
}

export function pidPath(env: NodeJS.ProcessEnv, mountpoint: string): string {
  return path.join(runDir(env), `${mountId(mountpoint)}.pid`)
}

/** The pid file of a systemd service (unit names hold no "/"). */
function unitPidPath(env: NodeJS.ProcessEnv, unit: string): string {
  return path.join(runDir(env), `${unit}.pid`)
}

export function logPath(env: NodeJS.ProcessEnv, mountpoint: string): string {
  return path.join(runDir(env), `${mountId(mountpoint)}.log`)
}

export function ensureRunDir(env: NodeJS.ProcessEnv): string {
  const dir = runDir(env)
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  // State names images and mountpoints, logs name paths: ours alone, also if someone made the
  // directory before us, with other permissions or as another user (who could chmod it back).
  const st = lstatSync(dir)
  if (!st.isDirectory())
    throw new IoError(`Cannot use run directory ${dir}: it is not a directory (a link?); remove it`)
  const uid = process.getuid?.() ?? 0
  // Someone else's directory (made there first, in a shared /tmp) could hold their links and files:
  // never ours to use. Root's own may have been made with other permissions: put them right.
  if (st.uid !== uid) {
    throw new IoError(
      `Cannot use run directory ${dir}: it belongs to uid ${st.uid}, not to you (uid ${uid}); remove it, or set XDG_RUNTIME_DIR or KHEADERSFS_RUN_DIR to a directory of your own`,
    )
  }
  const gid = process.getgid?.() ?? 0
  if (st.gid !== gid) chownSync(dir, uid, gid)
  chmodSync(dir, 0o700)
  return dir
}

/**
 * Open `file` (in the run directory) for appending, as a regular file of ours with mode 0600. An
 * entry someone else left there before the directory was ours (a link, a FIFO, another user's
 * file, a hard link) is replaced, never followed or written into.
 */
export function openPrivateAppend(file: string): number {
  const uid = process.getuid?.() ?? 0
  const flags =
    constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK
  try {
    const fd = openSync(file, flags, 0o600)
    const st = fstatSync(fd)
    if (st.isFile() && st.uid === uid && st.nlink === 1) {
      fchmodSync(fd, 0o600)
      return fd
    }
    closeSync(fd)
  } catch {
    // a link (ELOOP), a FIFO with no reader (ENXIO), ...: replaced below
  }
  rmSync(file, { force: true })
  return openSync(file, flags | constants.O_EXCL, 0o600)
}

export function writeState(env: NodeJS.ProcessEnv, state: DaemonState): void {
  ensureRunDir(env)
  // Through a fresh temp file and a rename, never through what was there; no fsync: /run is memory.
  writeFileAtomic(statePath(env, state.mountpoint), JSON.stringify(state, null, 2) + '\n', { mode: 0o600 })
  writeFileAtomic(pidPath(env, state.mountpoint), `${state.pid}\n`, { mode: 0o600 })
  if (state.unit !== undefined) writeFileAtomic(unitPidPath(env, state.unit), `${state.pid}\n`, { mode: 0o600 })
}

export function readState(env: NodeJS.ProcessEnv, mountpoint: string): DaemonState | undefined {
  try {
    const s = JSON.parse(readFileSync(statePath(env, mountpoint), 'utf8')) as DaemonState
    return s.mountpoint === mountpoint ? s : undefined
  } catch {
    return undefined
  }
}

export function listStates(env: NodeJS.ProcessEnv): DaemonState[] {
  let names: string[]
  try {
    names = readdirSync(runDir(env))
  } catch {
    return []
  }
  const out: DaemonState[] = []
  for (const n of names.filter((n) => n.endsWith('.json'))) {
    try {
      out.push(JSON.parse(readFileSync(path.join(runDir(env), n), 'utf8')) as DaemonState)
    } catch {
      // being written or corrupt: not a state we can use
    }
  }
  return out
}

/** Remove the state file, but only if it still describes `pid` (a new daemon may own it now). */
export function removeState(env: NodeJS.ProcessEnv, mountpoint: string, pid?: number): void {
  const s = readState(env, mountpoint)
  if (pid !== undefined && s !== undefined && s.pid !== pid) return
  const files = [statePath(env, mountpoint), pidPath(env, mountpoint)]
  if (s?.unit !== undefined && !s.unit.includes('/')) files.push(unitPidPath(env, s.unit))
  for (const file of files) {
    try {
      unlinkSync(file)
    } catch {
      // already gone
    }
  }
}
