// Mountpoints with hostile or odd names — a space, a tab, a newline, quotes, $(...) and `...`, a
// leading dash, a backslash, bytes that are not UTF-8, all of them at once — mount, serve, are listed
// by status, and stop cleanly by every stop path: `kheadersfs umount`, umount(8), SIGTERM to the
// daemon, and `kheadersfs umount --lazy` while a file is held open. Nothing passes the name through a
// shell: the $(touch CANARY) and `touch CANARY` in some names never run.
//
// Node passes argv and env as UTF-8 only, so every command that takes such a name is run by sh, which
// reads the exact bytes from a file ($p below); the test's own checks use Buffer paths, and compare
// /proc/self/mountinfo's mountpoints as bytes.
import { spawnSync } from 'node:child_process'
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t, { type Test } from 'tap'
import { readImage } from '../../src/image/read'
import { encodeOsPath } from '../../src/os-path'
import { running } from '../../src/procfs'
import type { MountStatus } from '../../src/mounts/status'
import { CLI, run, runCli, type Result } from '../helpers/cli'
import { tinyImage } from '../helpers/images'
import { childPids, waitGone } from '../helpers/mount'
import { record } from '../helpers/stress'
import { tmpDir } from '../helpers/tmp'

/** Made once, shared by every case (removed when the whole file ends). */
let imagePromise: Promise<string> | undefined
const image = (): Promise<string> => (imagePromise ??= tinyImage(t))

/** Created if any shell ever expands one of the names; must never exist. */
const CANARY = path.join(tmpDir(t, 'kheadersfs-canary-'), 'CANARY')

interface Name {
  label: string
  /** The name's bytes below the case's base directory (may span several components). */
  bytes: Buffer
  /** Name it to kheadersfs relative to the base directory, after "--", so the argument starts with "-". */
  relative?: boolean
}

const bytes = (...parts: Array<string | number[]>): Buffer =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p))))

// "$(touch /tmp/…/CANARY)" spans directories (the canary's path has slashes): the mountpoint is the
// deepest one, and the whole path holds the command a shell would run.
const NAMES: Name[] = [
  { label: 'space', bytes: bytes('a space') },
  { label: 'tab', bytes: bytes('a\ttab') },
  { label: 'newline', bytes: bytes('a\nnewline') },
  { label: 'quotes', bytes: bytes(`say "hi" it's`) },
  { label: '$(touch CANARY)', bytes: bytes(`$(touch ${CANARY})`) },
  { label: '`touch CANARY`', bytes: bytes(`\`touch ${CANARY}\``) },
  { label: '-o', bytes: bytes('-o'), relative: true },
  { label: '--help', bytes: bytes('--help'), relative: true },
  { label: 'backslash', bytes: bytes('back\\slash\\\\n') },
  { label: 'bytes ff fe', bytes: bytes('raw-', [0xff, 0xfe]) },
  { label: 'lone c3', bytes: bytes('lone-', [0xc3], '-byte') },
  {
    label: 'all at once',
    bytes: bytes('-mix \t"\'\\ ', [0xff, 0xfe], ' ', [0xc3], '\n$(touch ', CANARY, ') `touch ', CANARY, '`'),
    relative: true,
  },
]

type Stop = 'kheadersfs umount' | 'umount(8)' | 'SIGTERM to the daemon' | 'kheadersfs umount --lazy with a file open'
const STOPS: Stop[] = [
  'kheadersfs umount',
  'umount(8)',
  'SIGTERM to the daemon',
  'kheadersfs umount --lazy with a file open',
]

// ---- running commands with the exact bytes ----------------------------------------------------------

const ARG_DIR = tmpDir(t, 'kheadersfs-args-')
let argSeq = 0

/** `sh -c` arguments for `script`, which finds the exact bytes of file $KH_ARG_FILE in $p (trailing newlines too). */
function withP(script: string): string[] {
  return ['-c', `p=$(cat "$KH_ARG_FILE"; printf x); p=\${p%x}; ${script}`, 'sh']
}

function argFile(target: Buffer): string {
  const file = path.join(ARG_DIR, `arg-${argSeq++}`)
  writeFileSync(file, target)
  return file
}

/** `sh -c SCRIPT sh ARGS...` with $p holding `target`'s exact bytes. */
function shWithPath(
  script: string,
  target: Buffer,
  args: string[],
  env: Record<string, string>,
  cwd?: string,
): Promise<Result> {
  const file = argFile(target)
  return run('sh', [...withP(script), ...args], {
    env: { ...env, KH_ARG_FILE: file, KH_NODE: process.execPath, KH_CLI: CLI },
    cwd,
  })
}

/** The CLI with `args` and then `target`'s exact bytes as its last argument. */
function cliWithPath(args: string[], target: Buffer, env: Record<string, string>, cwd?: string): Promise<Result> {
  return shWithPath('exec "$KH_NODE" "$KH_CLI" "$@" "$p"', target, args, env, cwd)
}

// ---- the mount table, as bytes ------------------------------------------------------------------

function split(b: Buffer, sep: number): Buffer[] {
  const out: Buffer[] = []
  let start = 0
  for (let i = b.indexOf(sep); i >= 0; i = b.indexOf(sep, start)) {
    out.push(b.subarray(start, i))
    start = i + 1
  }
  out.push(b.subarray(start))
  return out
}

/** mountinfo writes space, tab, newline and backslash as \ooo; every other byte is the path's own. */
function unescapeMountinfo(b: Buffer): Buffer {
  const out: number[] = []
  for (let i = 0; i < b.length; i++) {
    const oct = b.toString('latin1', i + 1, i + 4)
    if (b[i] === 0x5c && /^[0-7]{3}$/.test(oct)) {
      out.push(parseInt(oct, 8))
      i += 3
    } else out.push(b[i])
  }
  return Buffer.from(out)
}

/** Every mount as [mountpoint bytes, fstype]. */
function mountTable(): Array<[Buffer, string]> {
  const out: Array<[Buffer, string]> = []
  for (const line of split(readFileSync('/proc/self/mountinfo'), 0x0a)) {
    const f = split(line, 0x20)
    const dash = f.findIndex((x, i) => i >= 6 && x.length === 1 && x[0] === 0x2d)
    if (f.length < 5 || dash < 0) continue
    out.push([unescapeMountinfo(f[4]), f[dash + 1].toString('latin1')])
  }
  return out
}

const mountedAt = (target: Buffer): boolean => mountTable().some(([mp]) => mp.equals(target))

/** kheadersfs mounts whose path starts with `base` (every one the case may have made, right or wrong). */
function kheadersfsUnder(base: Buffer): Buffer[] {
  return mountTable()
    .filter(([mp, type]) => type === 'fuse.kheadersfs' && mp.subarray(0, base.length).equals(base))
    .map(([mp]) => mp)
}

const show = (b: Buffer): string => JSON.stringify(b.toString('latin1'))

/**
 * The mount namespaces processes are in now. One made while a mount exists (systemd-nspawn, a service
 * with PrivateTmp=, unshare -m) holds a copy of it, hidden under its root when it chroots: where /
 * is private, as here, umount in our namespace then leaves the session open and the daemon rightly
 * serves on ("detached" in status) until that namespace ends. Not kheadersfs's doing: such a case
 * is tried again. The kernel reuses a freed namespace's inode number at once, so each is named by its
 * inode and the start time of its oldest process.
 */
function mountNamespaces(): Set<string> {
  const oldest = new Map<string, number>()
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue
    try {
      const ns = readlinkSync(`/proc/${p}/ns/mnt`)
      const st = readFileSync(`/proc/${p}/stat`, 'utf8')
      const started = Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[19]) // field 22, starttime
      oldest.set(ns, Math.min(oldest.get(ns) ?? Infinity, started))
    } catch {
      // gone
    }
  }
  return new Set([...oldest].map(([ns, started]) => `${ns}@${started}`))
}

/** Like waitGone, calling `meanwhile` every half second for as long as `pid` runs. */
async function waitExit(pid: number, ms: number, meanwhile: () => void): Promise<boolean> {
  const deadline = Date.now() + ms
  for (let i = 1; running(pid); i++) {
    if (Date.now() > deadline) return false
    if (i % 25 === 0) meanwhile()
    await new Promise((r) => setTimeout(r, 20))
  }
  return true
}

interface Check {
  ok: boolean
  what: string
  extra?: unknown
}

// ---- one case -------------------------------------------------------------------------------------

function stateFiles(runDir: string): string[] {
  try {
    return readdirSync(runDir).filter((f) => f.endsWith('.json') || f.endsWith('.pid'))
  } catch {
    return []
  }
}

async function status(env: Record<string, string>, target: Buffer): Promise<MountStatus | undefined> {
  const r = await runCli(['status', '--json'], { env })
  if (r.code !== 0) return undefined
  return (JSON.parse(r.stdout) as MountStatus[]).find((row) => encodeOsPath(row.mountpoint).equals(target))
}

function readAll(fd: number): Buffer {
  const chunks: Buffer[] = []
  for (let pos = 0; ;) {
    const b = Buffer.alloc(1 << 16)
    const n = readSync(fd, b, 0, b.length, pos)
    if (n === 0) return Buffer.concat(chunks)
    chunks.push(b.subarray(0, n))
    pos += n
  }
}

/**
 * Mount at `name`, check it, stop it by `stop`, check nothing is left. Returns the checks (the caller
 * asserts them) and the mount namespaces that appeared meanwhile.
 */
async function runCase(t: Test, name: Name, stop: Stop, config: Buffer): Promise<{ checks: Check[]; newNs: string[] }> {
  const nsBefore = mountNamespaces()
  // New namespaces, looked for while the daemon has not exited (one that pins the mount is there then).
  const newNs = new Set<string>()
  const noteNamespaces = (): void => {
    for (const n of mountNamespaces()) if (!nsBefore.has(n)) newNs.add(n)
  }
  const checks: Check[] = []
  const done = (): { checks: Check[]; newNs: string[] } => {
    noteNamespaces()
    return { checks, newNs: [...newNs] }
  }
  const img = await image()
  const work = mkdtempSync(path.join(os.tmpdir(), 'kheadersfs-names-'))
  chmodSync(work, 0o755) // other users (allow_other) reach the mountpoint
  const runDir = path.join(work, 'run')
  const env = { KHEADERSFS_RUN_DIR: runDir }
  const base = Buffer.from(work + '/')
  const target = Buffer.concat([base, name.bytes])
  mkdirSync(target, { recursive: true, mode: 0o755 })
  const label = `${name.label} / ${stop}`
  const held: { fd?: number; pid?: number; kids: number[] } = { kids: [] }

  let cleaned = false
  const cleanup = (): void => {
    if (cleaned) return
    cleaned = true
    if (held.fd !== undefined) closeSync(held.fd)
    held.fd = undefined
    for (const mp of kheadersfsUnder(base)) {
      const file = argFile(mp)
      spawnSync('sh', withP('umount -l "$p"'), { env: { ...process.env, KH_ARG_FILE: file } })
    }
    // Only what this case started: its daemon (by the pid it wrote) and that daemon's children.
    for (const pid of [...held.kids, ...(held.pid === undefined ? [] : [held.pid, ...childPids(held.pid)])]) {
      if (running(pid)) {
        try {
          process.kill(pid, 'SIGKILL')
        } catch {
          // gone meanwhile
        }
      }
    }
    try {
      rmSync(work, { recursive: true, force: true })
    } catch {
      // a mount we could not undo: reported by the checks
    }
  }
  t.teardown(cleanup) // also when a check throws

  const check = (ok: boolean, what: string, extra?: unknown): void => {
    checks.push({ ok, what: `${label}: ${what}`, extra })
  }

  try {
    const m = await cliWithPath(
      ['mount', '--image', img, '--force', ...(name.relative ? ['--'] : [])],
      name.relative ? name.bytes : target,
      env,
      name.relative ? work : undefined,
    )
    check(m.code === 0, 'mount exits 0', m.stderr)
    const under = kheadersfsUnder(base)
    check(under.length === 1 && under[0].equals(target), 'mounted at exactly those bytes, nowhere else', {
      want: show(target),
      mounts: under.map(show),
    })

    const states = stateFiles(runDir)
    const json = states.filter((f) => f.endsWith('.json'))
    const pidFile = states.filter((f) => f.endsWith('.pid'))
    const state =
      json.length === 1
        ? (JSON.parse(readFileSync(path.join(runDir, json[0]), 'utf8')) as { pid: number; mountpoint: string })
        : undefined
    const pid = pidFile.length === 1 ? Number(readFileSync(path.join(runDir, pidFile[0]), 'utf8')) : undefined
    held.pid = state?.pid ?? pid
    check(
      state !== undefined && state.pid === pid && encodeOsPath(state.mountpoint).equals(target),
      'one state file and pid file, naming this daemon and these bytes',
      states,
    )
    // The state's file name is the unit instance name systemd would give this path (127: no systemd-escape).
    const escaped = await shWithPath('exec systemd-escape --path -- "$p"', target, [], {})
    check(
      escaped.code === 127 || (escaped.code === 0 && json[0] === `${escaped.stdout.trim()}.json`),
      'state file named as systemd-escape --path names the mountpoint',
      { json, escaped: escaped.stdout.trim() },
    )
    if (held.pid === undefined) return done()
    held.kids = childPids(held.pid)

    const configPath = Buffer.concat([target, Buffer.from('/config.gz')])
    let served: Buffer | undefined
    try {
      served = readFileSync(configPath)
    } catch (e) {
      served = undefined
      check(false, 'config.gz readable through the mount', (e as Error).message)
    }
    if (served !== undefined) check(served.equals(config), "config.gz through the mount is the image's")
    const row = await status(env, target)
    check(row?.state === 'live' && row.pid === held.pid, 'status --json lists it, live, with its pid', row)

    switch (stop) {
      case 'kheadersfs umount': {
        const u = await cliWithPath(
          ['umount', ...(name.relative ? ['--'] : [])],
          name.relative ? name.bytes : target,
          env,
          name.relative ? work : undefined,
        )
        check(u.code === 0, 'kheadersfs umount exits 0', u.stderr)
        break
      }
      case 'umount(8)': {
        const u = await shWithPath('exec umount "$p"', target, [], {})
        check(u.code === 0, 'umount exits 0', u.stderr)
        break
      }
      case 'SIGTERM to the daemon':
        process.kill(held.pid, 'SIGTERM')
        break
      case 'kheadersfs umount --lazy with a file open': {
        held.fd = openSync(configPath, 'r')
        const u = await cliWithPath(
          ['umount', '--lazy', ...(name.relative ? ['--'] : [])],
          name.relative ? name.bytes : target,
          env,
          name.relative ? work : undefined,
        )
        check(u.code === 0, 'kheadersfs umount --lazy exits 0', u.stderr)
        check(!mountedAt(target), 'detached at once')
        await new Promise((r) => setTimeout(r, 200))
        check(running(held.pid), 'the daemon still serves the open file')
        const detached = await status(env, target)
        check(detached?.state === 'detached' && detached.pid === held.pid, 'status lists it as detached', detached)
        check(readAll(held.fd).equals(config), 'the open file still reads the whole config.gz')
        closeSync(held.fd)
        held.fd = undefined
        break
      }
    }

    check(await waitExit(held.pid, 10000, noteNamespaces), 'the daemon exits')
    const kids: number[] = []
    for (const k of held.kids) if (!(await waitGone(k, 5000))) kids.push(k)
    check(kids.length === 0, "the daemon's helpers exit too", kids)
    check(!mountedAt(target) && kheadersfsUnder(base).length === 0, 'nothing mounted any more', {
      mounts: kheadersfsUnder(base).map(show),
    })
    check(stateFiles(runDir).length === 0, 'no .json or .pid left in the run directory', stateFiles(runDir))
  } finally {
    check(!existsSync(CANARY), 'CANARY never created')
    cleanup()
  }
  return done()
}

// ---- the matrix: every name × every stop path -----------------------------------------------------

/** Tries of one case when each failed try saw a new mount namespace appear (see mountNamespaces). */
const TRIES = 3
/** Cases at once: each has its own directories, and a case mostly waits for processes to start. */
const PARALLEL = 3

/** fn over `items`, `n` at a time, results in the items' order. */
async function pool<T, R>(items: T[], n: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = []
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i])
    }
  }
  await Promise.all(Array.from({ length: n }, worker))
  return out
}

for (const stop of STOPS) {
  t.test(`odd mountpoint names, stopped by ${stop}`, async (t) => {
    const config = readImage(await image()).config
    const retried: string[] = []
    const results = await pool(NAMES, PARALLEL, async (name) => {
      let r = await runCase(t, name, stop, config)
      for (let i = 1; i < TRIES && r.checks.some((c) => !c.ok) && r.newNs.length > 0; i++) {
        const bad = r.checks.filter((c) => !c.ok).map((c) => c.what)
        t.comment(
          `${name.label} / ${stop}: failed (${bad.join('; ')}) while mount namespace(s) ${r.newNs.join(', ')} ` +
            'appeared, which may hold a copy of the mount: trying again',
        )
        retried.push(name.label)
        r = await runCase(t, name, stop, config)
      }
      return r.checks
    })
    const failed: string[] = []
    results.forEach((checks, i) => {
      for (const c of checks) t.ok(c.ok, c.what, c.extra === undefined ? {} : { found: c.extra })
      if (checks.some((c) => !c.ok)) failed.push(NAMES[i].label)
    })
    const canary = existsSync(CANARY)
    record({
      area: 'Mountpoint names',
      name: `odd mountpoint names × stop path: ${stop}`,
      tried: NAMES.length,
      passed: canary ? 0 : NAMES.length - failed.length,
      detail:
        `names: ${NAMES.map((n) => n.label).join(', ')}; mounted at the exact bytes, config.gz served, ` +
        `listed by status, unmounted, daemon exited, no state left; canary ${canary ? 'CREATED' : 'untouched'}` +
        (retried.length ? `; tried again after another mount namespace appeared: ${retried.join(', ')}` : '') +
        (failed.length ? `; failed: ${failed.join(', ')}` : ''),
    })
    t.same(failed, [], `every name mounts, serves and stops by ${stop}`)
    t.notOk(canary, 'CANARY never created')
  })
}
