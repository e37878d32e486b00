// A booted Debian with a real systemd (PID 1 in its own PID namespace) for testing the units for real:
// `systemd-nspawn -b` on an overlay over the cached bookworm root plus a cached layer with systemd,
// fuse3, libfuse2 and nodejs (../../shared/ARCHITECTURE.md §11). The kheadersfs .deb is installed into
// the overlay before boot (dpkg -i: its dependencies are in the layer), and files (an image) are copied
// in. Commands run inside with nsenter. What nspawn does not enforce here (cgroup v1 hybrid, read-only):
// MemoryMax, TasksMax, DevicePolicy/DeviceAllow, IPAddressDeny; seccomp, capabilities and namespaces
// are enforced.
//
// close() powers the machine off (or kills its PID 1, which ends its PID namespace, and nspawn),
// removes the cgroups nspawn made (payload, supervisor; only when empty), unmounts and removes the dirs.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs'
import path from 'node:path'
import { baseRoot, layerRoot, mountsUnder, must, overlayRoot, type Layer, type RunResult } from './board'

/** What a booted Debian needs to run kheadersfs's units: systemd, FUSE, Node. */
export const SYSTEMD_LAYER: Layer = {
  name: 'systemd',
  packages: ['systemd', 'systemd-sysv', 'dbus', 'fuse3', 'libfuse2', 'nodejs', 'procps', 'xz-utils', 'kmod'],
}

interface T {
  teardown(fn: () => unknown): void
  comment(...args: unknown[]): void
}

/** Why a container cannot boot here, or false. */
export function nspawnSkipReason(): string | false {
  if (process.getuid?.() !== 0) return 'systemd-nspawn needs root'
  if (spawnSync('sh', ['-c', 'command -v systemd-nspawn && command -v nsenter']).status !== 0)
    return 'no systemd-nspawn (apt-get install systemd-container)'
  if (!existsSync('/dev/fuse')) return 'no /dev/fuse'
  return false
}

export class Container {
  private leader = 0
  private closed = false

  private constructor(
    readonly name: string,
    readonly work: string,
    readonly root: string,
    private readonly nspawn: ChildProcess,
  ) {}

  /** Boot a fresh container with `deb` installed and `files` copied in (host path → path inside). */
  static async boot(t: T, deb: string, files: Array<[string, string]> = []): Promise<Container> {
    const base = await baseRoot('bookworm', 'amd64', (s) => t.comment(s))
    const layer = await layerRoot(t, 'bookworm', 'amd64', SYSTEMD_LAYER)
    const work = mkdtempSync('/var/tmp/kheadersfs-nspawn-')
    const root = overlayRoot(`${layer}:${base}`, work, 'kheadersfs-nspawn')
    const cleanupEarly = (): void => {
      spawnSync('umount', ['-R', '-l', root])
      rmSync(work, { recursive: true, force: true })
    }
    try {
      copyFileSync(deb, path.join(root, 'tmp', path.basename(deb)))
      must('chroot', [root, 'dpkg', '-i', `/tmp/${path.basename(deb)}`])
      for (const [from, to] of files) {
        mkdirSync(path.dirname(path.join(root, to)), { recursive: true })
        copyFileSync(from, path.join(root, to))
      }
    } catch (e) {
      cleanupEarly()
      throw e
    }
    const name = `kheadersfs-${process.pid}`
    const nspawn = spawn(
      'systemd-nspawn',
      ['-D', root, '-M', name, '-b', '--register=no', '--keep-unit', '--bind=/dev/fuse', '--console=read-only'],
      { stdio: ['ignore', 'ignore', 'ignore'], detached: true },
    )
    const c = new Container(name, work, root, nspawn)
    t.teardown(() => c.close())
    // The container's PID 1: a child of nspawn that runs systemd in a PID namespace of its own (nspawn
    // forks an intermediate child first, which must not be taken for it).
    const ownPidNs = readlinkSync('/proc/self/ns/pid')
    const deadline = Date.now() + 30_000
    while (c.leader === 0 && Date.now() < deadline) {
      const kids = spawnSync('pgrep', ['-P', String(nspawn.pid)], { encoding: 'utf8' })
        .stdout.trim()
        .split('\n')
      for (const k of kids.filter(Boolean)) {
        try {
          const comm = readFileSync(`/proc/${k}/comm`, 'utf8').trim()
          if (comm === 'systemd' && readlinkSync(`/proc/${k}/ns/pid`) !== ownPidNs) c.leader = Number(k)
        } catch {
          // gone meanwhile
        }
      }
      if (c.leader === 0) await new Promise((r) => setTimeout(r, 100))
    }
    // systemctl answers once systemd has made its socket: ask again until then.
    let up = await c.exec('systemctl is-system-running --wait', 120_000)
    for (let i = 0; i < 100 && !/running|degraded/.test(up.stdout); i++) {
      await new Promise((r) => setTimeout(r, 200))
      up = await c.exec('systemctl is-system-running --wait', 120_000)
    }
    if (!/running|degraded/.test(up.stdout)) throw new Error(`the container did not boot: ${up.stdout} ${up.stderr}`)
    t.comment(`container ${name}: booted (${up.stdout.trim()})`)
    return c
  }

  /** Run `cmd` with sh inside the container (all its namespaces), in a clean environment. */
  exec(cmd: string, timeoutMs = 60_000): Promise<RunResult> {
    const t0 = Date.now()
    return new Promise((resolve, reject) => {
      const child = spawn(
        'nsenter',
        [
          '-t',
          String(this.leader),
          '-m',
          '-u',
          '-i',
          '-n',
          '-p',
          '-C',
          '-r',
          '-w',
          'env',
          '-i',
          'PATH=/usr/sbin:/usr/bin:/sbin:/bin',
          'LANG=C.UTF-8',
          'sh',
          '-c',
          cmd,
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      )
      let stdout = ''
      let stderr = ''
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
      child.on('error', reject)
      child.on('close', (code) => {
        clearTimeout(timer)
        resolve({ code, stdout, stderr, ms: Date.now() - t0 })
      })
    })
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    const exited = new Promise<void>((r) => {
      if (this.nspawn.exitCode !== null || this.nspawn.signalCode !== null) r()
      else this.nspawn.once('exit', () => r())
    })
    if (this.leader !== 0) void this.exec('systemctl poweroff', 10_000)
    const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 30_000).unref())
    if ((await Promise.race([exited, timeout])) === 'timeout') {
      // SIGKILL of the container's PID 1 ends its whole PID namespace.
      for (const pid of [this.leader, this.nspawn.pid!].filter((p) => p > 0)) {
        try {
          process.kill(pid, 'SIGKILL')
        } catch {
          // gone
        }
      }
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))])
    }
    // The cgroups nspawn made beside this process's own (payload for the container, supervisor for
    // itself), once empty.
    // Their last processes may still be exiting: try for a few seconds.
    const own = /^0::(.*)$/m.exec(readFileSync('/proc/self/cgroup', 'utf8'))?.[1] ?? '/'
    const dirs = ['/sys/fs/cgroup/unified', '/sys/fs/cgroup/systemd', '/sys/fs/cgroup'].flatMap((h) =>
      ['payload', 'supervisor'].map((sub) => path.join(h, own, sub)),
    )
    for (let i = 0; i < 50; i++) {
      const left = dirs.filter((d) => existsSync(path.join(d, 'cgroup.procs')))
      if (left.length === 0) break
      for (const dir of left) spawnSync('find', [dir, '-depth', '-type', 'd', '-exec', 'rmdir', '{}', ';'])
      await new Promise((r) => setTimeout(r, 100))
    }
    for (const mp of mountsUnder(this.root)) spawnSync('umount', ['-l', mp])
    if (mountsUnder(this.work).length === 0) rmSync(this.work, { recursive: true, force: true })
  }
}
