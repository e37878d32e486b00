// Real FUSE mounts for tests, always undone in teardown (also when the test fails): unmount, kill
// the daemon we started (by pid) if it is still there, remove the directories.
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { spawnSync } from 'node:child_process'
import { running } from '../../src/procfs'
import { runCli, type Result } from './cli'

interface T {
  teardown(fn: () => unknown): void
}

export interface TestMount {
  mnt: string
  /** Environment that points kheadersfs at this test's own run directory. */
  env: Record<string, string>
  runDir: string
  pid: number
  result: Result
}

/** A fresh empty mountpoint and run directory, cleaned up (unmounted first) in teardown. */
export function mountDirs(t: T): { mnt: string; runDir: string; env: Record<string, string> } {
  const base = mkdtempSync(path.join(os.tmpdir(), 'kheadersfs-mnt-'))
  chmodSync(base, 0o755) // other users (runuser -u nobody) must reach the mountpoint
  const mnt = path.join(base, 'mnt')
  const runDir = path.join(base, 'run')
  mkdirSync(mnt)
  t.teardown(() => {
    cleanupMount(mnt, runDir)
    rmSync(base, { recursive: true, force: true })
  })
  return { mnt, runDir, env: { KHEADERSFS_RUN_DIR: runDir } }
}

/** Unmount whatever is at `mnt` and kill daemons whose state lives in `runDir`. */
export function cleanupMount(mnt: string, runDir: string): void {
  for (const pid of daemonPids(runDir)) {
    for (const child of childPids(pid)) kill(child)
    kill(pid)
  }
  for (let i = 0; i < 5 && isMounted(mnt); i++) spawnSync('fusermount', ['-uz', mnt])
  if (isMounted(mnt)) spawnSync('umount', ['-l', mnt])
}

export function daemonPids(runDir: string): number[] {
  const out: number[] = []
  try {
    for (const f of readdirSync(runDir)) {
      if (!f.endsWith('.json')) continue
      try {
        out.push((JSON.parse(readFileSync(path.join(runDir, f), 'utf8')) as { pid: number }).pid)
      } catch {
        // partial file
      }
    }
  } catch {
    // no run dir
  }
  return out
}

/** Children of `pid` forked from any of its threads (libfuse forks its fusermount helper too). */
export function childPids(pid: number): number[] {
  const out: number[] = []
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue
    try {
      const st = readFileSync(`/proc/${p}/stat`, 'utf8')
      if (Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(p))
    } catch {
      // gone
    }
  }
  return out
}

function kill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL')
  } catch {
    // already gone
  }
}

/**
 * kill -9 of the daemon and of its children (libfuse's fusermount auto_unmount helper, the findmnt
 * watcher), so nothing removes the mount: a real stale mount. With `children: false` only the daemon
 * dies and libfuse's helper unmounts. Returns the children's command names.
 */
export async function killDaemon(pid: number, children = true): Promise<string[]> {
  const kids = children ? childPids(pid) : []
  const names = kids.map((c) => {
    try {
      return readFileSync(`/proc/${c}/comm`, 'utf8').trim()
    } catch {
      return '?'
    }
  })
  for (const c of kids) kill(c)
  kill(pid)
  await waitGone(pid)
  for (const c of kids) await waitGone(c)
  return names
}

export function isMounted(mnt: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4] === mnt.replace(/ /g, '\\040'))
}

export async function waitGone(pid: number, ms = 10000): Promise<boolean> {
  const deadline = Date.now() + ms
  while (running(pid)) {
    if (Date.now() > deadline) return false
    await new Promise((r) => setTimeout(r, 10))
  }
  return true
}

/** Mount `image` with the CLI (daemonized) at a fresh mountpoint; teardown undoes everything. */
export async function mountImage(t: T, image: string, extra: string[] = ['--force']): Promise<TestMount> {
  const { mnt, runDir, env } = mountDirs(t)
  const result = await runCli(['mount', '--image', image, ...extra, mnt], { env })
  if (result.code !== 0) throw new Error(`mount failed (${result.code}): ${result.stderr}`)
  const pid = daemonPids(runDir)[0]
  return { mnt, env, runDir, pid, result }
}
