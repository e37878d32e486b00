// Hostile input: thousands of random filesystem operations through the kernel, on random paths
// (existing files, directories and links of the mount, missing names, paths below files, names
// longer than 255 bytes, odd bytes, dot forms), offsets (0, near EOF, past EOF, 2^40, 2^53-1, 2^63-1,
// negative) and lengths (0 … > max_read). The oracle is the same tree made without kheadersfs (the
// payloads plus GNU tar's extraction) bind-mounted read-only: every operation must give the same
// result or the same errno on both. Seeded: KHEADERSFS_FUZZ_SEED=N repeats a run.
//
// Node's fs cannot pass a negative offset (it means "current position" or is refused before any
// syscall), nor call setxattr and friends: those go through perl's syscall() (rawSyscalls).
import { execFileSync } from 'node:child_process'
import fs, { constants } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { sha256 } from '../../src/image/format'
import { running } from '../../src/procfs'
import { debianTree, packedImage } from '../helpers/debian'
import { tinyImage } from '../helpers/images'
import { mountImage } from '../helpers/mount'
import { logErrors } from '../helpers/observe'
import { prng } from '../helpers/prng'
import { HAVE_RAW_SYSCALLS, rawSyscalls, type RawOp } from '../helpers/raw-syscalls'
import { imageParts, referenceTree } from '../helpers/reference-tree'
import { record, scale, size } from '../helpers/stress'
import { tmpDir } from '../helpers/tmp'
import { walkTree } from '../helpers/walk'

const tree = debianTree()

type P = Buffer
interface Op {
  op: string
  kind: string
  rel: P
  run(root: string): string
  raw?: RawOp
}

const abs = (root: string, rel: P): P =>
  rel.length === 0 ? Buffer.from(root) : Buffer.concat([Buffer.from(root + '/'), rel])

/** What a call did, comparable across two filesystems: its value, or its errno. */
function outcome(fn: () => string): string {
  try {
    return `ok ${fn()}`
  } catch (e) {
    const err = e as NodeJS.ErrnoException
    return `err ${err.code ?? err.message}`
  }
}

function describe(st: fs.Stats): string {
  const type = st.isFile() ? 'f' : st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : '?'
  // Directory sizes and link counts are the filesystem's own business; the rest must match.
  return `${type} ${(st.mode & 0o7777).toString(8)} ${type === 'd' ? '-' : st.size} ${st.uid}:${st.gid}`
}

function withFd<T>(p: P, flags: number, fn: (fd: number) => T): T {
  const fd = fs.openSync(p, flags)
  try {
    return fn(fd)
  } finally {
    fs.closeSync(fd)
  }
}

t.test('random FUSE operations through the kernel give what a read-only copy of the same tree gives', async (t) => {
  const seed = Number(process.env.KHEADERSFS_FUZZ_SEED ?? Date.now() % 1e9)
  const rand = prng(seed)
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rand() * a.length)]
  const image = tree !== undefined ? await packedImage(tree) : await tinyImage(t)
  const m = await mountImage(t, image)
  const dir = tmpDir(t)
  const refDir = referenceTree(imageParts(image), path.join(dir, 'ref'))
  const refMnt = path.join(dir, 'refmnt')
  fs.mkdirSync(refMnt)
  execFileSync('mount', ['--bind', refDir, refMnt])
  t.teardown(() => execFileSync('umount', ['-l', refMnt]))
  execFileSync('mount', ['-o', 'remount,bind,ro', refMnt])
  t.match(
    execFileSync('findmnt', ['-n', '-o', 'OPTIONS', refMnt], { encoding: 'utf8' }),
    /^ro[,\n]/,
    'the oracle is read-only',
  )

  // Pools of paths, from the reference tree.
  const files: string[] = []
  const dirs: string[] = ['kheaders']
  const links: string[] = []
  const sizes = new Map<string, number>()
  walkTree(path.join(refDir, 'kheaders'), (rel, e) => {
    const r = `kheaders/${rel}`
    if (e.isSymbolicLink()) {
      // Write attempts follow links: only links that stay inside the tree are used.
      const target = path.resolve(path.dirname(path.join(refDir, r)), fs.readlinkSync(path.join(refDir, r)))
      if (target.startsWith(refDir + '/')) links.push(r)
    } else if (e.isDirectory()) dirs.push(r)
    else {
      files.push(r)
      sizes.set(r, fs.statSync(path.join(refDir, r)).size)
    }
  })
  const flat = ['kheaders.txz', 'kheaders.tar.xz', 'config.gz']
  for (const f of flat) sizes.set(f, fs.statSync(path.join(refDir, f)).size)
  const odd = ['\x01', '\n', ' ', '\\', '*', '%s', '\x7f', '\xe9', '\u2603']
  const oddBytes = [
    Buffer.from([0xff]),
    Buffer.from([0xc3, 0x28]),
    Buffer.from([0xc0, 0xaf]),
    Buffer.from([0xed, 0xa0, 0x80]),
    Buffer.from('é'.normalize('NFD')),
  ]

  /** A random path, and what kind it is (for the report). */
  const randomPath = (forWrite: boolean): [string, P] => {
    const b = (s: string): P => Buffer.from(s)
    const x = rand()
    if (x < 0.22) return ['file', b(pick(files))]
    if (x < 0.34) return ['flat', b(pick(flat))]
    if (x < 0.44) return ['dir', b(pick(dirs))]
    if (x < 0.48 && links.length) return ['link', b(pick(links))]
    if (x < 0.5) return ['link-below', b(`${links.length ? pick(links) : pick(files)}/x`)]
    if (x < 0.6)
      return [
        'missing',
        b(`${pick(dirs)}/${pick(['nope', 'Makefile.bak', 'a', '.hidden', 'linux'])}${Math.floor(rand() * 100)}`),
      ]
    if (x < 0.68) return ['below-file', b(`${pick([...files, ...flat])}/${pick(['x', 'x/y', '.', '..'])}`)]
    if (x < 0.72) return ['trailing-slash', b(`${pick([...files, ...flat, ...dirs])}/`)]
    if (x < 0.76) {
      const d = pick(dirs)
      return [
        'dot-forms',
        b(
          pick([
            `${d}/.`,
            `${d}/..`,
            `${d}//${pick(files).split('/').pop()}`,
            `./${d}`,
            `${d}/./../${d.split('/').pop()}`,
          ]),
        ),
      ]
    }
    if (x < 0.82) {
      const n = pick([255, 256, 300, 1023, 1025, 5000])
      return [`name-${n}`, b(`${pick(dirs)}/${'n'.repeat(n)}`)]
    }
    if (x < 0.84) return ['path-5000', b(`${pick(dirs)}/${'a/'.repeat(2500)}x`)]
    if (x < 0.9) return ['odd-chars', b(`${pick(dirs)}/${pick(odd)}${pick(['', 'Makefile', 'x'])}`)]
    if (x < 0.95)
      return ['odd-bytes', Buffer.concat([b(`${pick(dirs)}/`), pick(oddBytes), b(pick(['', 'Makefile', '.h']))])]
    return forWrite ? ['file', b(pick(files))] : ['root', b('')]
  }

  const offsets = (rel: P): Array<number | bigint> => {
    const n = sizes.get(rel.toString()) ?? 100
    return [
      0,
      1,
      Math.floor(rand() * n),
      n - 1,
      n,
      n + 1,
      n + 4096,
      2 ** 31,
      2 ** 32 + 5,
      2 ** 40,
      Number.MAX_SAFE_INTEGER,
      2n ** 62n,
      2n ** 63n - 1n,
    ].filter((o) => typeof o === 'bigint' || o >= 0)
  }
  const LENGTHS = [0, 1, 4095, 4096, 131072, 131073, 2 ** 20, 2 ** 20 + 7]
  const OPEN_FLAGS: Array<[string, number]> = [
    ['O_RDONLY', constants.O_RDONLY],
    ['O_RDONLY|O_DIRECTORY', constants.O_RDONLY | constants.O_DIRECTORY],
    ['O_RDONLY|O_NOFOLLOW', constants.O_RDONLY | constants.O_NOFOLLOW],
    ['O_WRONLY', constants.O_WRONLY],
    ['O_RDWR', constants.O_RDWR],
    ['O_WRONLY|O_APPEND', constants.O_WRONLY | constants.O_APPEND],
    ['O_WRONLY|O_CREAT', constants.O_WRONLY | constants.O_CREAT],
    ['O_WRONLY|O_CREAT|O_EXCL', constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL],
    ['O_RDWR|O_TRUNC', constants.O_RDWR | constants.O_TRUNC],
    ['O_RDONLY|O_CREAT', constants.O_RDONLY | constants.O_CREAT],
  ]

  /** One random operation. */
  const makeOp = (): Op => {
    const x = rand()
    const read = (op: string, run: (p: P, rel: P) => string): Op => {
      const [kind, rel] = randomPath(false)
      return { op, kind, rel, run: (root) => outcome(() => run(abs(root, rel), rel)) }
    }
    const write = (op: string, run: (p: P, root: string) => unknown): Op => {
      const [kind, rel] = randomPath(true)
      return { op, kind, rel, run: (root) => outcome(() => String(run(abs(root, rel), root))) }
    }
    if (x < 0.1) return read('stat', (p) => describe(fs.statSync(p)))
    if (x < 0.17) return read('lstat', (p) => describe(fs.lstatSync(p)))
    if (x < 0.25) {
      const [name, flags] = pick(OPEN_FLAGS)
      const [kind, rel] = randomPath(name.startsWith('O_RDONLY') && !name.includes('CREAT') ? false : true)
      return {
        op: `open ${name}`,
        kind,
        rel,
        run: (root) => outcome(() => withFd(abs(root, rel), flags, (fd) => describe(fs.fstatSync(fd)))),
      }
    }
    if (x < 0.4) {
      const [kind, rel] = randomPath(false)
      const off = pick(offsets(rel))
      const len = pick(LENGTHS)
      return {
        op: `pread(${off}, ${len})`,
        kind,
        rel,
        run: (root) =>
          outcome(() =>
            withFd(abs(root, rel), constants.O_RDONLY, (fd) => {
              const buf = Buffer.alloc(len)
              const n = fs.readSync(fd, buf, 0, len, off)
              return `${n} ${sha256(buf.subarray(0, n))}`
            }),
          ),
      }
    }
    if (x < 0.45)
      return read('readFile', (p) => {
        const b = fs.readFileSync(p)
        return `${b.length} ${sha256(b)}`
      })
    if (x < 0.53) return read('readdir', (p) => sha256(Buffer.from(fs.readdirSync(p).sort().join('\0'))))
    if (x < 0.58) return read('readlink', (p) => fs.readlinkSync(p).toString())
    if (x < 0.63) {
      const mode = pick([
        constants.F_OK,
        constants.R_OK,
        constants.W_OK,
        constants.X_OK,
        constants.R_OK | constants.W_OK,
      ])
      return read(`access ${mode}`, (p) => {
        fs.accessSync(p, mode)
        return ''
      })
    }
    if (x < 0.66) {
      // Reads with O_DIRECT, which always reach the daemon (the kernel's cache answered the others).
      // Only of files: FUSE refuses O_DIRECT on a directory at open (EINVAL), which ext4 allows.
      let [kind, rel] = randomPath(false)
      while (['dir', 'root', 'dot-forms', 'trailing-slash'].includes(kind)) [kind, rel] = randomPath(false)
      const off = pick(offsets(rel).filter((o) => typeof o === 'number'))
      const len = pick(LENGTHS)
      return {
        op: `pread O_DIRECT(${off}, ${len})`,
        kind,
        rel,
        run: (root) =>
          outcome(() => {
            // ext4 refuses unaligned O_DIRECT (EINVAL) where FUSE does not: the oracle reads normally.
            const direct = root !== refMnt ? constants.O_DIRECT : 0
            return withFd(abs(root, rel), constants.O_RDONLY | direct, (fd) => {
              const buf = Buffer.alloc(len)
              const n = fs.readSync(fd, buf, 0, len, off)
              return `${n} ${sha256(buf.subarray(0, n))}`
            })
          }),
      }
    }
    // Write attempts: every one must fail, with the same errno as on the read-only copy.
    if (x < 0.68) return write('writeFile', (p) => fs.writeFileSync(p, 'x'))
    if (x < 0.7) return write('appendFile', (p) => fs.appendFileSync(p, 'x'))
    if (x < 0.72) return write('mkdir', (p) => fs.mkdirSync(p))
    if (x < 0.74) return write('rmdir', (p) => fs.rmdirSync(p))
    if (x < 0.76) return write('unlink', (p) => fs.unlinkSync(p))
    if (x < 0.78) {
      const [, to] = randomPath(true)
      return write(`rename to ${to.toString().slice(0, 60)}`, (p, root) => fs.renameSync(p, abs(root, to)))
    }
    if (x < 0.8) {
      const [, to] = randomPath(true)
      return write(`link to ${to.toString().slice(0, 60)}`, (p, root) => fs.linkSync(p, abs(root, to)))
    }
    if (x < 0.82) return write('symlink', (p) => fs.symlinkSync('target', p))
    if (x < 0.84) {
      const len = pick([0, 1, 2 ** 40])
      return write(`truncate ${len}`, (p) => fs.truncateSync(p, len))
    }
    if (x < 0.85)
      return write('ftruncate of a read-only fd', (p) => withFd(p, constants.O_RDONLY, (fd) => fs.ftruncateSync(fd, 0)))
    if (x < 0.87) return write('chmod', (p) => fs.chmodSync(p, pick([0o777, 0o4755, 0o644])))
    if (x < 0.89) return write('chown', (p) => fs.chownSync(p, 1, 1))
    if (x < 0.9) return write('lchown', (p) => fs.lchownSync(p, 0, 0))
    if (x < 0.92) return write('utimes', (p) => fs.utimesSync(p, 1, 1))
    if (x < 0.93) return write('lutimes', (p) => fs.lutimesSync(p, 1, 1))
    if (x < 0.94) return write('copyFile onto', (p) => fs.copyFileSync('/etc/hostname', p))
    // Raw syscalls (perl): xattrs and negative offsets.
    const [kind, rel] = randomPath(x < 0.97)
    const raw: RawOp =
      x < 0.955
        ? {
            op: 'setxattr',
            path: rel,
            name: pick(['user.x', 'trusted.x', 'security.x', 'system.posix_acl_access']),
            value: 'v',
          }
        : x < 0.96
          ? { op: 'lsetxattr', path: rel, name: 'user.x', value: 'v' }
          : x < 0.97
            ? { op: 'removexattr', path: rel, name: 'user.x' }
            : x < 0.98
              ? { op: 'getxattr', path: rel, name: pick(['user.x', 'security.capability', 'system.posix_acl_access']) }
              : x < 0.985
                ? { op: 'listxattr', path: rel }
                : { op: 'pread', path: rel, offset: pick([-1, -4096, -(2 ** 40), -(2 ** 53)]), length: pick([1, 4096]) }
    return { op: `${raw.op}${raw.offset !== undefined ? `(${raw.offset})` : ''}`, kind, rel, run: () => '', raw }
  }

  const count = size(10000, 2000)
  const ops = Array.from({ length: count }, makeOp)
  const byOp: Record<string, number> = {}
  const mismatches = new Map<string, { n: number; example: string }>()
  const tolerated: Record<string, number> = {}
  const compare = (o: Op, got: string, want: string): boolean => {
    const name = o.op
      .replace(/\(.*$/, '')
      .replace(/ to .*$/, '')
      .replace(/ \d+$/, '')
    byOp[name] = (byOp[name] ?? 0) + 1
    if (got === want) return true
    // Documented difference: FUSE without xattr handlers says "not supported" where ext4 says "none".
    if (
      (o.raw?.op === 'getxattr' && got === 'err EOPNOTSUPP' && want === 'err ENODATA') ||
      (o.raw?.op === 'listxattr' && got === 'err EOPNOTSUPP' && want === 'ok 0')
    ) {
      tolerated[`${o.raw.op}: EOPNOTSUPP for ${want}`] = (tolerated[`${o.raw.op}: EOPNOTSUPP for ${want}`] ?? 0) + 1
      return true
    }
    const key = `${name} [${o.kind}]: kheadersfs ${got.slice(0, 80)} / oracle ${want.slice(0, 80)}`
    const e = mismatches.get(key) ?? {
      n: 0,
      example: `${o.op} ${JSON.stringify(o.rel.toString('latin1').slice(0, 120))}`,
    }
    e.n++
    mismatches.set(key, e)
    return false
  }
  const t0 = Date.now()
  let passed = 0
  const rawOps: Op[] = []
  for (const o of ops) {
    if (o.raw) {
      rawOps.push(o)
      continue
    }
    if (compare(o, o.run(m.mnt), o.run(refMnt))) passed++
  }
  if (HAVE_RAW_SYSCALLS) {
    const on = (root: string): string[] => rawSyscalls(rawOps.map((o) => ({ ...o.raw!, path: abs(root, o.rel) })))
    const got = on(m.mnt)
    const want = on(refMnt)
    rawOps.forEach((o, i) => {
      if (compare(o, got[i], want[i])) passed++
    })
  }
  const tried = HAVE_RAW_SYSCALLS ? count : count - rawOps.length
  const seconds = (Date.now() - t0) / 1000
  const daemonAlive = running(m.pid)
  const errors = logErrors(m.runDir)
  const list = [...mismatches.entries()]
    .sort((a, b) => b[1].n - a[1].n)
    .map(([k, v]) => `${v.n}× ${k} (e.g. ${v.example})`)
  record({
    area: 'Hostile input',
    name: `${count} random operations through the kernel (${Object.keys(byOp).length} kinds: open/read/pread/stat/lstat/readdir/readlink/access, 14 write kinds, xattrs, negative offsets) on the ${tree !== undefined ? 'Debian module-build' : 'tiny'} image vs a read-only copy`,
    tried,
    passed,
    detail: `seed ${seed}, ${seconds.toFixed(1)} s; ${count - passed} mismatches${list.length ? ` (${list.slice(0, 3).join('; ')})` : ''}; tolerated ${JSON.stringify(tolerated)}; daemon alive: ${daemonAlive}; ${errors.length} error log lines`,
  })
  t.comment(
    `seed ${seed} (KHEADERSFS_FUZZ_SEED=${seed} repeats this run), scale ${scale()}, ops ${JSON.stringify(byOp)}`,
  )
  if (list.length) t.comment(`mismatches (count× op [path kind]: kheadersfs / oracle):\n${list.join('\n')}`)
  t.same(list.slice(0, 20), [], `every operation matched the oracle (seed ${seed})`)
  t.equal(passed, tried, `${passed} of ${tried} operations matched`)
  t.ok(daemonAlive, 'the daemon is still alive')
  t.same(errors, [], 'no error-level line in the daemon log')
  t.ok(
    fs.readFileSync(path.join(m.mnt, 'config.gz')).equals(fs.readFileSync(path.join(refDir, 'config.gz'))),
    'still serving the same bytes',
  )
})
