// Emulated Debian boards for tests: a fresh Debian root (trixie arm64/armhf and bookworm armhf under
// qemu-user, trixie or bookworm amd64 natively) that a test installs packages into and runs commands
// in with chroot.
//
// Caches, all under /var/cache/kheadersfs ($KHEADERSFS_CACHE; never in the repository), so a second run
// downloads nothing:
// - roots/<suite>-<arch>.tar: `mmdebstrap --variant=minbase --include=ca-certificates`, made once (under
//   a flock lock, written to a temp name and renamed) and extracted once to roots/<suite>-<arch>.d.
//   (A directory at roots/<suite>-<arch>.tar, left by an earlier manual run, is used as the extracted copy.)
// - apt/<suite>-<arch>: the .debs apt fetched, hard-linked into the board's ROOT/var/cache/apt/archives
//   before every apt-get run and back after, so each is fetched once.
// - apt-lists/<suite>-<arch>: the last good /var/lib/apt/lists, copied in before `apt-get update` so the
//   update only revalidates ("Hit") unless the mirror changed.
// A board's root is an overlay over the extracted base (upper layer in a temp dir): instant, where
// extracting the tar takes seconds (see test/board/README.md for the figures).
//
// Teardown (close(), registered with t.teardown): kill the processes whose /proc/PID/root is this
// board's root (only this board can have started them: the root is a fresh temp dir), unmount
// everything under the root recursively (lazily if something is stuck), check that no mount is left,
// then remove the temp dir.
import { spawn, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import path from 'node:path'
import { readElfId } from '../../src/pack/elf'

export const CACHE = process.env.KHEADERSFS_CACHE ?? '/var/cache/kheadersfs'
const MIRROR = 'http://deb.debian.org/debian'

export type Suite = 'trixie' | 'bookworm'
export type Arch = 'amd64' | 'arm64' | 'armhf'

export interface RunResult {
  code: number | null
  stdout: string
  stderr: string
  /** Wall time in milliseconds. */
  ms: number
}

export interface RunOptions {
  env?: Record<string, string>
  input?: string
  /** Kill the command (SIGKILL) after this many ms; code is then null. */
  timeoutMs?: number
}

interface T {
  teardown(fn: () => unknown): void
  comment(...args: unknown[]): void
}

const BINFMT: Record<Arch, string | undefined> = { amd64: undefined, arm64: 'qemu-aarch64', armhf: 'qemu-arm' }

/** Why boards of this arch cannot run here, or false when they can. */
export function boardSkipReason(arch: Arch, suite: Suite = 'trixie'): string | false {
  if (process.getuid?.() !== 0) return 'board tests need root (chroot, mount)'
  if (process.arch !== 'x64') return `board tests assume an x86-64 host, this is ${process.arch}`
  const fmt = BINFMT[arch]
  if (fmt !== undefined) {
    const f = `/proc/sys/fs/binfmt_misc/${fmt}`
    if (!existsSync(f))
      return `no binfmt_misc entry ${f} (apt-get install qemu-user-static; update-binfmts --enable ${fmt})`
    if (!/^enabled/m.test(readFileSync(f, 'utf8'))) return `binfmt ${fmt} is disabled (update-binfmts --enable ${fmt})`
  }
  const haveRoot =
    existsSync(path.join(CACHE, 'roots', `${suite}-${arch}.tar`)) ||
    existsSync(path.join(CACHE, 'roots', `${suite}-${arch}.d`))
  if (!haveRoot && spawnSync('sh', ['-c', 'command -v mmdebstrap']).status !== 0)
    return 'no cached base root and no mmdebstrap to make one (apt-get install mmdebstrap)'
  return false
}

function sh(
  script: string,
  opts: { input?: string; timeoutMs?: number; env?: Record<string, string> } = {},
): Promise<RunResult> {
  return spawnCapture(
    '/bin/sh',
    ['-c', script],
    { ...process.env, ...opts.env } as Record<string, string>,
    opts.input,
    opts.timeoutMs,
  )
}

function spawnCapture(
  cmd: string,
  args: string[],
  env: Record<string, string>,
  input?: string,
  timeoutMs?: number,
): Promise<RunResult> {
  const t0 = Date.now()
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env })
    let stdout = ''
    let stderr = ''
    let timer: NodeJS.Timeout | undefined
    if (timeoutMs !== undefined) timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    child.on('error', reject)
    child.on('close', (code) => {
      if (timer) clearTimeout(timer)
      resolve({ code, stdout, stderr, ms: Date.now() - t0 })
    })
    child.stdin.on('error', () => undefined)
    child.stdin.end(input ?? '')
  })
}

const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`

/**
 * The extracted base root for suite/arch, made on first use: mmdebstrap → roots/<name>.tar (temp name,
 * renamed), then extracted to roots/<name>.d (temp name, renamed). Both under `flock roots/<name>.lock`,
 * so two runs never build one root twice; a run that waits finds the finished root.
 */
export async function baseRoot(suite: Suite, arch: Arch, log: (s: string) => void = () => undefined): Promise<string> {
  const roots = path.join(CACHE, 'roots')
  mkdirSync(roots, { recursive: true })
  const name = `${suite}-${arch}`
  const tar = path.join(roots, `${name}.tar`)
  const dir = path.join(roots, `${name}.d`)
  if (existsSync(tar) && statSync(tar).isDirectory()) return tar // an extracted root left by a manual run
  if (existsSync(path.join(dir, 'etc', 'os-release'))) return dir
  const tmpTar = `${tar}.tmp-${process.pid}`
  const tmpDir = `${dir}.tmp-${process.pid}`
  const script = [
    'set -e',
    `if [ ! -e ${q(tar)} ]; then`,
    `  rm -f ${q(tmpTar)}`,
    `  mmdebstrap --arch=${arch} --variant=minbase --include=ca-certificates --format=tar ${suite} ${q(tmpTar)} ${MIRROR} > ${q(path.join(roots, `mm-${name}.log`))} 2>&1`,
    `  mv ${q(tmpTar)} ${q(tar)}`,
    'fi',
    `if [ -d ${q(tar)} ]; then exit 0; fi`,
    `if [ ! -e ${q(dir)}/etc/os-release ]; then`,
    `  rm -rf ${q(tmpDir)} ${q(dir)}; mkdir ${q(tmpDir)}`,
    `  tar -xf ${q(tar)} -C ${q(tmpDir)} --numeric-owner --xattrs --xattrs-include='*'`,
    `  mv ${q(tmpDir)} ${q(dir)}`,
    'fi',
  ].join('\n')
  log(`base root ${name}: making or waiting for it (lock ${name}.lock)`)
  const r = await sh(`exec flock ${q(path.join(roots, `${name}.lock`))} sh -c ${q(script)}`)
  if (r.code !== 0) {
    rmSync(tmpTar, { force: true })
    rmSync(tmpDir, { recursive: true, force: true })
    throw new Error(`base root ${name} failed (${r.code}): ${r.stderr}\n(see ${path.join(roots, `mm-${name}.log`)})`)
  }
  log(`base root ${name}: ready after ${(r.ms / 1000).toFixed(1)} s`)
  return existsSync(tar) && statSync(tar).isDirectory() ? tar : dir
}

/** Run `cmd`, throwing with its stderr when it fails. */
export function must(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`)
}

/**
 * A fresh root: an overlay over `lower` (colon-separated lower dirs) with its upper layer in `work`
 * (work/upper, work/ovlwork); returns work/root.
 */
export function overlayRoot(lower: string, work: string, source: string): string {
  for (const d of ['upper', 'ovlwork', 'root']) mkdirSync(path.join(work, d))
  const root = path.join(work, 'root')
  must('mount', [
    '-t',
    'overlay',
    source,
    '-o',
    `lowerdir=${lower},upperdir=${work}/upper,workdir=${work}/ovlwork`,
    root,
  ])
  return root
}

/** Mount points (from /proc/self/mountinfo) at or under `dir`, deepest first. */
export function mountsUnder(dir: string): string[] {
  const unescape = (s: string): string =>
    s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))
  const out: string[] = []
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ')
    if (f.length < 5) continue
    const mp = unescape(f[4])
    if (mp === dir || mp.startsWith(dir + '/')) out.push(mp)
  }
  return out.sort((a, b) => b.length - a.length)
}

export interface BoardProcess {
  pid: number
  state: string
  cmdline: string
}

const live = new Set<Board>()
let signalsHooked = false

/** When the test process is killed (tap's timeout sends SIGTERM), tear down every board synchronously. */
function hookSignals(): void {
  if (signalsHooked) return
  signalsHooked = true
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.once(sig, () => {
      for (const b of live) b.closeSync()
      process.kill(process.pid, sig)
    })
  }
}

export class Board {
  readonly suite: Suite
  readonly arch: Arch
  /** Temp directory holding the overlay layers and the root. */
  readonly work: string
  /** The board's root file system (host path). */
  readonly root: string
  /** The shared archive cache of this suite/arch. */
  readonly archives: string
  private updated = false
  private closed = false

  private constructor(suite: Suite, arch: Arch, work: string) {
    this.suite = suite
    this.arch = arch
    this.work = work
    this.root = path.join(work, 'root')
    this.archives = path.join(CACHE, 'apt', `${suite}-${arch}`)
  }

  /**
   * A fresh board; close() is registered with t.teardown, so it goes also when the test fails.
   * `layer`: start from the base with these packages already installed (a cached overlay layer,
   * see layerRoot), for tests whose subject is not installing them.
   */
  static async create(t: T, suite: Suite, arch: Arch, opts: { layer?: Layer } = {}): Promise<Board> {
    const base = await baseRoot(suite, arch, (s) => t.comment(s))
    const lower = opts.layer === undefined ? base : `${await layerRoot(t, suite, arch, opts.layer)}:${base}`
    const t0 = Date.now()
    const b = Board.mounted(t, suite, arch, lower)
    const root = b.root
    // The board's own archives dir (so its apt lock is its own), filled from and returned to the shared
    // cache by hard links around every apt-get run (see apt()).
    mkdirSync(path.join(b.work, 'archives', 'partial'), { recursive: true })
    mkdirSync(b.archives, { recursive: true })
    mkdirSync(path.join(root, 'var/cache/apt/archives'), { recursive: true })
    must('mount', ['--bind', path.join(b.work, 'archives'), path.join(root, 'var/cache/apt/archives')])
    // Name resolution, no service starts from maintainer scripts, apt keeps what it downloads (the
    // shared cache).
    copyFileSync('/etc/resolv.conf', path.join(root, 'etc/resolv.conf'))
    writeFileSync(path.join(root, 'usr/sbin/policy-rc.d'), '#!/bin/sh\nexit 101\n', { mode: 0o755 })
    writeFileSync(
      path.join(root, 'etc/apt/apt.conf.d/90kheadersfs-board'),
      'APT::Keep-Downloaded-Packages "true";\nBinary::apt::APT::Keep-Downloaded-Packages "true";\nAcquire::Retries "5";\nAcquire::Languages "none";\nDPkg::Use-Pty "false";\n',
    )
    rmSync(path.join(root, 'etc/apt/apt.conf.d/docker-clean'), { force: true })
    t.comment(`board ${suite}/${arch}: root ${root} ready in ${Date.now() - t0} ms (overlay over ${lower})`)
    return b
  }

  /**
   * A board on a root that is not a Debian base (no apt: aptUpdate/apt/installDeb fail there), such as
   * the minimal root of test/helpers/minimal-root.ts; `suite` names where it came from.
   */
  static onRoot(t: T, suite: Suite, arch: Arch, lower: string): Board {
    const t0 = Date.now()
    const b = Board.mounted(t, suite, arch, lower)
    t.comment(`board on ${lower}: root ${b.root} ready in ${Date.now() - t0} ms`)
    return b
  }

  /**
   * The mounts every board has: an overlay over `lower` in a fresh temp dir, /proc, /sys and /dev (gives
   * /dev/fuse) from the host, a private /run and /tmp, /etc/mtab as on a booted system. close() is
   * registered with t.teardown, so it goes also when the test fails.
   */
  private static mounted(t: T, suite: Suite, arch: Arch, lower: string): Board {
    const work = mkdtempSync(`/var/tmp/kheadersfs-board-${suite}-${arch}-`)
    const b = new Board(suite, arch, work)
    live.add(b)
    hookSignals()
    t.teardown(() => b.close())
    const root = overlayRoot(lower, work, 'kheadersfs-board')
    // rbind + rslave: unmounting the board's copies must never propagate to the host's mounts.
    for (const d of ['proc', 'sys', 'dev']) {
      mkdirSync(path.join(root, d), { recursive: true })
      must('mount', ['--rbind', `/${d}`, path.join(root, d)])
      must('mount', ['--make-rslave', path.join(root, d)])
    }
    // A private /run and /tmp like a booted system (FUSE and daemons may keep state in /run).
    for (const d of ['run', 'tmp']) {
      mkdirSync(path.join(root, d), { recursive: true })
      must('mount', ['-t', 'tmpfs', '-o', 'mode=1777', `kheadersfs-board-${d}`, path.join(root, d)])
    }
    mkdirSync(path.join(root, 'etc'), { recursive: true })
    if (!existsSync(path.join(root, 'etc/mtab'))) symlinkSync('../proc/self/mounts', path.join(root, 'etc/mtab'))
    return b
  }

  /** Environment of every command: a clean login-like one (nothing of the test runner's leaks in). */
  private env(extra: Record<string, string> = {}): Record<string, string> {
    return {
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      HOME: '/root',
      LANG: 'C.UTF-8',
      TERM: 'dumb',
      DEBIAN_FRONTEND: 'noninteractive',
      // A board root is never booted: no initramfs for the linux-image that Debian's linux-headers-*
      // depend on (mkinitramfs under qemu takes many minutes). The kernel's postinst hooks honour it.
      INITRD: 'No',
      ...extra,
    }
  }

  /** `chroot ROOT /bin/sh -c cmd`. */
  run(cmd: string, opts: RunOptions = {}): Promise<RunResult> {
    if (this.closed) throw new Error('board is closed')
    // `env -i`: tap's process tracking adds NODE_OPTIONS (--import of a file under this checkout) to
    // every child's environment, which the board's node cannot load; the board gets only its own env.
    const vars = Object.entries(this.env(opts.env)).map(([k, v]) => `${k}=${v}`)
    const chroot = ['env', '-i', ...vars, 'chroot', this.root, '/bin/sh', '-c', cmd]
    return spawnCapture(
      '/usr/bin/env',
      chroot.slice(1),
      { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
      opts.input,
      opts.timeoutMs,
    )
  }

  /** run(), throwing with the output when the exit code is not 0. */
  async must(cmd: string, opts: RunOptions = {}): Promise<RunResult> {
    const r = await this.run(cmd, opts)
    if (r.code !== 0)
      throw new Error(
        `board ${this.suite}/${this.arch}: \`${cmd}\` exited ${r.code}\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`,
      )
    return r
  }

  /** Host path of a path inside the root. */
  path(p: string): string {
    return path.join(this.root, p)
  }

  /**
   * `apt-get update` once per root, with retries (the mirror sometimes fails one index mid-sync).
   * Lists of the last good update are copied in first, so an unchanged mirror answers "Hit".
   */
  async aptUpdate(): Promise<RunResult> {
    if (this.updated) return { code: 0, stdout: '', stderr: '', ms: 0 }
    const lists = path.join(CACHE, 'apt-lists', `${this.suite}-${this.arch}`)
    const inRoot = this.path('var/lib/apt/lists')
    // With the lists, apt's binary caches (valid while the lists are unchanged: under qemu, building
    // them from the 56 MB Packages file takes minutes).
    if (existsSync(lists)) {
      spawnSync('cp', [
        '-a',
        '--',
        ...readdirSync(lists)
          .filter((f) => f !== 'lock' && f !== 'partial' && !f.endsWith('.bin'))
          .map((f) => path.join(lists, f)),
        inRoot + '/',
      ])
      for (const bin of ['pkgcache.bin', 'srcpkgcache.bin'])
        if (existsSync(path.join(lists, bin)))
          spawnSync('cp', ['-a', path.join(lists, bin), this.path(`var/cache/apt/${bin}`)])
    }
    let r: RunResult | undefined
    const t0 = Date.now()
    for (let i = 1; i <= 4; i++) {
      r = await this.run('apt-get update -q -o APT::Update::Error-Mode=any')
      if (r.code === 0 && !/^(W|E): /m.test(r.stderr)) break
      if (i < 4) await new Promise((res) => setTimeout(res, 5000 * i))
    }
    if (r!.code !== 0) throw new Error(`apt-get update failed 4 times:\n${r!.stdout}\n${r!.stderr}`)
    this.updated = true
    // Save the lists for the next board of this suite/arch (temp copy, then swap, under the lock).
    const tmp = `${lists}.tmp-${process.pid}`
    rmSync(tmp, { recursive: true, force: true })
    mkdirSync(tmp, { recursive: true })
    spawnSync('cp', ['-a', inRoot + '/.', tmp + '/'])
    for (const bin of ['pkgcache.bin', 'srcpkgcache.bin'])
      if (existsSync(this.path(`var/cache/apt/${bin}`)))
        spawnSync('cp', ['-a', this.path(`var/cache/apt/${bin}`), path.join(tmp, bin)])
    rmSync(path.join(tmp, 'lock'), { force: true })
    rmSync(path.join(tmp, 'partial'), { recursive: true, force: true })
    spawnSync('flock', [lists + '.lock', 'sh', '-c', 'rm -rf "$1" && mv "$2" "$1"', 'sh', lists, tmp])
    rmSync(tmp, { recursive: true, force: true })
    return { ...r!, ms: Date.now() - t0 }
  }

  /**
   * `apt-get ARGS` in the root, its archives filled from the shared cache first (hard links) and what it
   * downloaded linked back after: boards of one suite/arch share downloads without sharing apt's lock.
   */
  async apt(args: string, opts: RunOptions = {}): Promise<RunResult> {
    const mine = path.join(this.work, 'archives')
    spawnSync('sh', ['-c', 'cp -l -n -- "$1"/*.deb "$2"/ 2>/dev/null; true', 'sh', this.archives, mine])
    const r = await this.run(`apt-get ${args}`, opts)
    spawnSync('sh', ['-c', 'cp -l -n -- "$2"/*.deb "$1"/ 2>/dev/null; true', 'sh', this.archives, mine])
    return r
  }

  /** `apt-get install -y PKGS...` (after aptUpdate); throws when it fails. */
  async aptInstall(pkgs: string[], opts: { noRecommends?: boolean } = {}): Promise<RunResult> {
    await this.aptUpdate()
    const r = await this.apt(
      `install -y -q ${opts.noRecommends ? '--no-install-recommends ' : ''}${pkgs.map(q).join(' ')}`,
    )
    if (r.code !== 0)
      throw new Error(
        `board ${this.suite}/${this.arch}: apt-get install ${pkgs.join(' ')} exited ${r.code}\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`,
      )
    return r
  }

  /**
   * Copy a .deb into the root and `apt-get install -y ./file.deb`, as a user installs a downloaded
   * package. `update: false` when the board's lists (from a layer) already resolve its dependencies.
   */
  async installDeb(deb: string, opts: { update?: boolean } = {}): Promise<RunResult> {
    if (opts.update !== false) await this.aptUpdate()
    const name = path.basename(deb)
    copyFileSync(deb, this.path(`tmp/${name}`))
    const r = await this.apt(`install -y -q /tmp/${q(name)}`)
    if (r.code !== 0)
      throw new Error(
        `board ${this.suite}/${this.arch}: apt-get install /tmp/${name} exited ${r.code}\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`,
      )
    return r
  }

  /** Processes whose root directory is this board's root. */
  processes(): BoardProcess[] {
    const out: BoardProcess[] = []
    for (const p of readdirSync('/proc')) {
      if (!/^\d+$/.test(p)) continue
      try {
        if (readlinkSync(`/proc/${p}/root`) !== this.root) continue
        const st = readFileSync(`/proc/${p}/stat`, 'utf8')
        const state = st.slice(st.lastIndexOf(')') + 2).split(' ')[0]
        const cmdline = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').join(' ').trim()
        out.push({ pid: Number(p), state, cmdline })
      } catch {
        // gone meanwhile
      }
    }
    return out
  }

  /** Live (not zombie) processes in the root whose command line matches `re`. */
  live(re: RegExp): BoardProcess[] {
    return this.processes().filter((p) => p.state !== 'Z' && p.state !== 'X' && re.test(p.cmdline))
  }

  /** Wait until no live process in the root matches `re`; false on timeout. Zombies count as gone. */
  async waitNone(re: RegExp, timeoutMs = 15000): Promise<boolean> {
    const end = Date.now() + timeoutMs
    for (;;) {
      if (this.live(re).length === 0) return true
      if (Date.now() > end) return false
      await new Promise((res) => setTimeout(res, 100))
    }
  }

  /** close() for signal handlers: SIGKILL what runs in the root, lazy unmount, remove. */
  closeSync(): void {
    if (this.closed) return
    this.closed = true
    live.delete(this)
    for (const p of this.processes()) {
      try {
        process.kill(p.pid, 'SIGKILL')
      } catch {
        // gone
      }
    }
    spawnSync('sleep', ['1'])
    if (mountsUnder(this.root).length > 0 && spawnSync('umount', ['-R', this.root]).status !== 0)
      spawnSync('umount', ['-R', '-l', this.root])
    if (mountsUnder(this.work).length === 0) rmSync(this.work, { recursive: true, force: true })
  }

  /** Kill what still runs in the root, unmount everything under it, remove the temp dir. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    live.delete(this)
    // 1. Processes: SIGTERM (a kheadersfs daemon unmounts on it), then SIGKILL.
    for (const sig of ['SIGTERM', 'SIGKILL'] as const) {
      const ps = this.processes().filter((p) => p.state !== 'Z')
      if (ps.length === 0) break
      for (const p of ps) {
        try {
          process.kill(p.pid, sig)
        } catch {
          // gone
        }
      }
      const end = Date.now() + 3000
      while (Date.now() < end && this.processes().some((p) => p.state !== 'Z'))
        await new Promise((res) => setTimeout(res, 100))
    }
    // 2. Mounts: FUSE mounts first (lazily if stuck: a dead daemon leaves ENOTCONN), then the rest.
    for (const mp of mountsUnder(this.root)) {
      const fstype = spawnSync('findmnt', ['-n', '-o', 'FSTYPE', '--mountpoint', mp], {
        encoding: 'utf8',
      }).stdout.trim()
      if (fstype.startsWith('fuse')) {
        if (spawnSync('umount', [mp]).status !== 0) spawnSync('umount', ['-l', mp])
      }
    }
    if (mountsUnder(this.root).length > 0 && spawnSync('umount', ['-R', this.root]).status !== 0)
      spawnSync('umount', ['-R', '-l', this.root])
    const left = mountsUnder(this.work)
    if (left.length > 0)
      throw new Error(`board ${this.root}: mounts left after umount -R, temp dir kept: ${left.join(', ')}`)
    rmSync(this.work, { recursive: true, force: true })
  }
}

/** Packages to have installed in a board from the start, cached as an overlay layer. */
export interface Layer {
  name: string
  packages: string[]
}

/** The arm64 board's build tools and Debian's arm64 headers, plus what the kheadersfs package depends on. */
export const ARM64_TOOLCHAIN: Layer = {
  name: 'toolchain',
  packages: ['make', 'gcc', 'kmod', 'xz-utils', 'linux-headers-arm64', 'nodejs', 'libfuse2t64', 'fuse3'],
}

/**
 * The cached layer `roots/<suite>-<arch>+<name>-<hash>.layer`: the upper directory of a board on the
 * base after `apt-get update` and `apt-get install --no-install-recommends PACKAGES`, used as an extra
 * lower layer (overlayfs honours the whiteouts in it). Made once under a lock; a second run mounts it
 * at once instead of minutes of dpkg under qemu (a toolchain with linux-headers: ~10 min on arm64).
 */
export async function layerRoot(t: T, suite: Suite, arch: Arch, layer: Layer): Promise<string> {
  const hash = createHash('sha256').update(JSON.stringify(layer.packages)).digest('hex').slice(0, 12)
  const dir = path.join(CACHE, 'roots', `${suite}-${arch}+${layer.name}-${hash}.layer`)
  const t0 = Date.now()
  return makeOnce(
    dir,
    () => existsSync(path.join(dir, '.complete')),
    async () => {
      t.comment(`layer ${path.basename(dir)}: installing ${layer.packages.join(' ')} (once)`)
      const b = await Board.create(
        { teardown: () => undefined, comment: (...a: unknown[]) => t.comment(...a) },
        suite,
        arch,
      )
      try {
        await b.aptInstall(layer.packages, { noRecommends: true })
        const tmp = `${dir}.tmp-${process.pid}`
        rmSync(tmp, { recursive: true, force: true })
        const cp = spawnSync('cp', ['-a', path.join(b.work, 'upper'), tmp], { encoding: 'utf8' })
        if (cp.status !== 0) throw new Error(`copy of the layer failed: ${cp.stderr}`)
        writeFileSync(path.join(tmp, '.complete'), `${layer.packages.join(' ')}\n`)
        rmSync(dir, { recursive: true, force: true })
        spawnSync('mv', [tmp, dir])
      } finally {
        await b.close()
      }
      t.comment(`layer ${path.basename(dir)}: made in ${((Date.now() - t0) / 1000).toFixed(0)} s`)
    },
  )
}

/**
 * Run `make` once across test processes: under the lock directory `<dir>.making` (mkdir is atomic),
 * unless `done()` already holds (checked again after the lock is taken). Returns `dir`. A stale lock (its
 * maker died) is taken over after 2 h.
 */
export async function makeOnce(dir: string, done: () => boolean, make: () => Promise<void>): Promise<string> {
  if (done()) return dir
  mkdirSync(path.dirname(dir), { recursive: true })
  const lockDir = `${dir}.making`
  for (;;) {
    if (done()) return dir
    try {
      mkdirSync(lockDir)
      break
    } catch {
      if (Date.now() - statSync(lockDir).mtimeMs > 2 * 3600_000) rmSync(lockDir, { recursive: true, force: true })
      await new Promise((res) => setTimeout(res, 5000))
    }
  }
  try {
    if (!done()) await make()
    return dir
  } finally {
    rmSync(lockDir, { recursive: true, force: true })
  }
}

/** packaging/build.sh's targets: the Debian architectures, and armhf for 32-bit time_t systems (Debian 12). */
export type PackageTarget = Arch | 'armhf-time32'

/**
 * The kheadersfs .deb of a build.sh target, or undefined: kheadersfs_<ver>_<arch>.deb, for armhf-time32
 * kheadersfs_<ver>~deb12_armhf.deb. Matched by the whole version, so the two armhf files are never
 * taken for each other ("~deb12_armhf.deb" also ends in "_armhf.deb", and sorts after it).
 */
export function debFor(repoRoot: string, target: PackageTarget): string | undefined {
  const dir = path.join(repoRoot, 'build', 'packages')
  if (!existsSync(dir)) return undefined
  const [arch, suffix] = target === 'armhf-time32' ? ['armhf', '~deb12'] : [target, '']
  const name = new RegExp(`^kheadersfs_[^_~]+${suffix}_${arch}\\.deb$`)
  const debs = readdirSync(dir)
    .filter((f) => name.test(f))
    .sort()
  return debs.length ? path.join(dir, debs.at(-1)!) : undefined
}

/** ELF e_machine of a file (183 = AArch64, 40 = ARM, 62 = x86-64); throws when it is not ELF. */
export function elfMachine(file: string): number {
  const id = readElfId(file)
  if (id === undefined) throw new Error(`${file}: not ELF`)
  return id.machine
}
