// Per-mount state under the run directory (/run/kheadersfs for root): a JSON file the daemon writes
// once it serves, for `status` and `umount`, a plain pid file beside it (systemd's PIDFile= reads
// /run/kheadersfs/%i.pid: the file name is the systemd-escaped mountpoint, the unit's instance), and
// the daemon's log when it runs detached. Root-only: the directory is 0700 and the files 0600.
import { chmodSync, mkdirSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'

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
}

export function runDir(env: NodeJS.ProcessEnv): string {
  if (env.KHEADERSFS_RUN_DIR) return env.KHEADERSFS_RUN_DIR
  const uid = process.getuid?.() ?? 0
  if (uid === 0) return '/run/kheadersfs'
  return path.join(env.XDG_RUNTIME_DIR || os.tmpdir(), `kheadersfs-${uid}`)
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
    for (const [i, byte] of Buffer.from(part, 'utf8').entries()) {
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

export function logPath(env: NodeJS.ProcessEnv, mountpoint: string): string {
  return path.join(runDir(env), `${mountId(mountpoint)}.log`)
}

export function ensureRunDir(env: NodeJS.ProcessEnv): string {
  const dir = runDir(env)
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  // State names images and mountpoints, logs name paths: ours alone, also if someone made the
  // directory before us with other permissions.
  chmodSync(dir, 0o700)
  return dir
}

export function writeState(env: NodeJS.ProcessEnv, state: DaemonState): void {
  ensureRunDir(env)
  const file = statePath(env, state.mountpoint)
  const tmp = `${file}.${process.pid}`
  writeFileSync(tmp, JSON.stringify(state, null, 2) + '\n', { mode: 0o600 })
  renameSync(tmp, file)
  writeFileSync(tmp, `${state.pid}\n`, { mode: 0o600 })
  renameSync(tmp, pidPath(env, state.mountpoint))
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
  for (const file of [statePath(env, mountpoint), pidPath(env, mountpoint)]) {
    try {
      unlinkSync(file)
    } catch {
      // already gone
    }
  }
}
