// A minimal arm64 root like a Yocto or Buildroot image's: busybox with its applets as links, glibc,
// node with the libraries it links, libfuse 2, liblzma and fusermount, and nothing else (no dpkg, apt, perl or
// python). Made from the trixie arm64 board: the packages are installed there once (a cached layer,
// see layerRoot), then the ELF closure of the programs (DT_NEEDED, resolved in the multiarch library
// dirs) is copied into a fresh directory, flat into /usr/lib as an embedded image lays it out, with
// /bin, /sbin and /lib as links into /usr (merged /usr: the layout where a tarball's top-level
// directories would replace the links, see packaging/build.sh). Cached as
// roots/trixie-arm64-minimal-<hash of its contents>.d, made once under a lock.
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import {
  chmodSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import path from 'node:path'
import { baseRoot, CACHE, layerRoot, makeOnce, must, type Layer } from './board'

interface T {
  teardown(fn: () => unknown): void
  comment(...args: unknown[]): void
}

/** What the minimal root's files are taken from (a layer over the trixie arm64 base). */
const MINIMAL_SOURCE: Layer = { name: 'minimal-src', packages: ['nodejs', 'libfuse2t64', 'fuse3', 'busybox'] }

/** The programs of the image; their libraries and libfuse's follow from DT_NEEDED. */
const PROGRAMS = ['/usr/bin/node', '/usr/bin/busybox', '/usr/bin/fusermount3']
const LIB_DIRS = ['/lib/aarch64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/lib', '/usr/lib']
/**
 * Libraries loaded by name rather than through a program's DT_NEEDED: the addon's libfuse.so.2 and
 * liblzma.so.5 (Yocto and Buildroot images have liblzma whenever xz, kmod or systemd is in them).
 */
const EXTRA_LIBS = ['libfuse.so.2', 'liblzma.so.5']
/** The CA bundle Debian's node reads at every start (it warns without it); an image has one too. */
const DATA = ['/etc/ssl/certs/ca-certificates.crt']
/** What a Yocto/Buildroot image lacks; Debian's busybox has dpkg and dpkg-deb applets, removed. */
export const ABSENT = ['dpkg', 'dpkg-deb', 'apt', 'apt-get', 'perl', 'python', 'python3']

type Entry = { dest: string; src: string; mode: number } | { dest: string; link: string }

/**
 * Path `p` inside `root` with every symlink resolved as the root would see it (absolute links are
 * relative to `root`); undefined when it does not exist.
 */
function resolveIn(root: string, p: string): string | undefined {
  let parts = p.split('/').filter(Boolean)
  let cur = '/'
  for (let hops = 0; parts.length > 0;) {
    const c = parts.shift()!
    if (c === '.') continue
    if (c === '..') {
      cur = path.posix.dirname(cur)
      continue
    }
    const next = path.posix.join(cur, c)
    const st = lstatSync(path.join(root, next), { throwIfNoEntry: false })
    if (st === undefined) return undefined
    if (!st.isSymbolicLink()) {
      cur = next
      continue
    }
    if (++hops > 40) throw new Error(`${p}: too many symlinks in ${root}`)
    const target = readlinkSync(path.join(root, next))
    if (target.startsWith('/')) cur = '/'
    parts = [...target.split('/').filter(Boolean), ...parts]
  }
  return cur
}

function readelf(args: string[], file: string): string {
  const r = spawnSync('readelf', ['-W', ...args, file], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`readelf ${args.join(' ')} ${file}: ${r.stderr}`)
  return r.stdout
}

/** The files of the minimal root, read from `view` (the source root, mounted). */
function plan(view: string): Entry[] {
  const entries: Entry[] = []
  const libs = new Map<string, string>() // soname → resolved path in view
  const queue: string[] = []
  const need = (name: string): void => {
    if (libs.has(name)) return
    const found = LIB_DIRS.map((d) => resolveIn(view, path.posix.join(d, name))).find((p) => p !== undefined)
    if (found === undefined) throw new Error(`minimal root: ${name} not found in ${LIB_DIRS.join(' ')} of ${view}`)
    libs.set(name, found)
    queue.push(found)
  }
  let interp: string | undefined
  for (const prog of PROGRAMS) {
    const real = resolveIn(view, prog)
    if (real === undefined) throw new Error(`minimal root: no ${prog} in ${view}`)
    entries.push({ dest: prog, src: real, mode: statSync(path.join(view, real)).mode & 0o7777 })
    queue.push(real)
    interp ??= /program interpreter: ([^\]]+)\]/.exec(readelf(['-l'], path.join(view, real)))?.[1]
  }
  EXTRA_LIBS.forEach(need)
  while (queue.length > 0) {
    const f = queue.shift()!
    for (const m of readelf(['-d'], path.join(view, f)).matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g))
      need(m[1])
  }
  if (interp === undefined) throw new Error('minimal root: the programs name no ELF interpreter')
  const interpReal = resolveIn(view, interp)
  if (interpReal === undefined) throw new Error(`minimal root: no ${interp} in ${view}`)
  entries.push({ dest: path.posix.join('/usr/lib', path.posix.basename(interp)), src: interpReal, mode: 0o755 })
  for (const [name, real] of [...libs].sort())
    if (name !== path.posix.basename(interp)) entries.push({ dest: `/usr/lib/${name}`, src: real, mode: 0o644 })
  // Data node loads at start: Debian's node keeps some of its builtin modules as files (cjs-module-lexer,
  // undici, acorn, ...), named in libnode by its NODE_SHARED_BUILTIN_*_PATH build defines.
  const data = new Set(DATA.filter((d) => resolveIn(view, d) !== undefined))
  for (const [name, real] of libs)
    if (name.startsWith('libnode.'))
      for (const m of readFileSync(path.join(view, real), 'latin1').matchAll(/NODE_SHARED_BUILTIN_\w+_PATH=([^"]+)"/g))
        data.add(m[1])
  for (const d of [...data].sort()) {
    const real = resolveIn(view, d)
    if (real === undefined) throw new Error(`minimal root: node's ${d} is not in ${view}`)
    entries.push({ dest: d, src: real, mode: 0o644 })
  }
  // libfuse 2 runs `fusermount`: fuse3 provides it as a link to fusermount3.
  entries.push({ dest: '/usr/bin/fusermount', link: 'fusermount3' })
  for (const d of ['bin', 'sbin', 'lib']) entries.push({ dest: `/${d}`, link: `usr/${d}` })
  return entries
}

/** Hash of the plan and every file's bytes: the cache key. */
function contentKey(view: string, entries: Entry[]): string {
  const h = createHash('sha256').update('minimal-root v2\n')
  for (const e of entries) {
    h.update(`${e.dest}\0`)
    if ('link' in e) h.update(`link ${e.link}\0`)
    else h.update(`${e.mode}\0`).update(readFileSync(path.join(view, e.src)))
  }
  return h.digest('hex').slice(0, 16)
}

/** Write the root into `dir`: skeleton, the planned files, busybox's applet links. */
function materialize(view: string, entries: Entry[], dir: string): void {
  for (const d of ['usr/bin', 'usr/sbin', 'usr/lib', 'etc', 'proc', 'sys', 'dev', 'run', 'tmp', 'root', 'var/tmp'])
    mkdirSync(path.join(dir, d), { recursive: true })
  chmodSync(path.join(dir, 'tmp'), 0o1777)
  chmodSync(path.join(dir, 'root'), 0o700)
  writeFileSync(path.join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n')
  writeFileSync(path.join(dir, 'etc/group'), 'root:x:0:\n')
  for (const e of entries) {
    const dest = path.join(dir, e.dest)
    mkdirSync(path.dirname(dest), { recursive: true })
    if ('link' in e) symlinkSync(e.link, dest)
    else {
      copyFileSync(path.join(view, e.src), dest)
      chmodSync(dest, e.mode)
    }
  }
  // Under qemu (binfmt), as an image's post-install step would do it on the target.
  must('chroot', [dir, '/usr/bin/busybox', '--install', '-s'])
  for (const name of ABSENT)
    for (const d of ['usr/bin', 'usr/sbin']) {
      const f = path.join(dir, d, name)
      if (lstatSync(f, { throwIfNoEntry: false })?.isSymbolicLink()) rmSync(f)
    }
}

/**
 * The minimal root's directory (read-only use: mount it as a board's lower layer with Board.onRoot).
 * The first call installs the source layer on the trixie arm64 board (minutes under qemu).
 */
export async function minimalRoot(t: T): Promise<string> {
  const base = await baseRoot('trixie', 'arm64', (s) => t.comment(s))
  const layer = await layerRoot(t, 'trixie', 'arm64', MINIMAL_SOURCE)
  const view = mkdtempSync('/var/tmp/kheadersfs-minimal-src-')
  // lowerdir only: a read-only overlay of the layer over the base.
  must('mount', ['-t', 'overlay', 'kheadersfs-minimal-src', '-o', `lowerdir=${layer}:${base}`, view])
  try {
    const entries = plan(view)
    const dir = path.join(CACHE, 'roots', `trixie-arm64-minimal-${contentKey(view, entries)}.d`)
    return await makeOnce(
      dir,
      () => existsSync(dir),
      async () => {
        const tmp = `${dir}.tmp-${process.pid}`
        rmSync(tmp, { recursive: true, force: true })
        mkdirSync(tmp)
        try {
          materialize(view, entries, tmp)
          renameSync(tmp, dir)
        } finally {
          rmSync(tmp, { recursive: true, force: true })
        }
        t.comment(`minimal root ${path.basename(dir)}: ${entries.length} entries from ${path.basename(layer)}`)
      },
    )
  } finally {
    must('umount', [view])
    rmSync(view, { recursive: true, force: true })
  }
}
