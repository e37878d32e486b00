// Security: nobody writes through the mount (root included, even after remounting it rw); the mount
// is nosuid,nodev whatever -o says; other users read but cannot unmount or signal it; as root, an
// image another user could have written is refused; the run directory is root's alone; the daemon's
// log never carries file contents.
import { execFileSync, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { gunzipSync } from 'node:zlib'
import t, { type Test } from 'tap'
import { sha256 } from '../../src/image/format'
import { running } from '../../src/procfs'
import { logPath, mountId } from '../../src/protocol/state'
import { errorLines, run, runCli } from '../helpers/cli'
import { debianTree, packedImage } from '../helpers/debian'
import { tinyImage } from '../helpers/images'
import { cleanupMount, daemonPids, isMounted, mountDirs, mountImage, type TestMount } from '../helpers/mount'
import { logErrors, procsMentioning } from '../helpers/observe'
import { HAVE_RAW_SYSCALLS, rawSyscalls } from '../helpers/raw-syscalls'
import { startWorker, sumResults } from '../helpers/readers'
import { imageParts } from '../helpers/reference-tree'
import { record } from '../helpers/stress'
import { tinyTree } from '../helpers/tiny-tree'
import { tmpDir } from '../helpers/tmp'

const tree = debianTree()
const NOBODY = 'nobody'

/** Every write-family call a process can make on `file` (existing) and in `dir`; run as `user` in its own process. */
const WRITES = String.raw`
const fs = require('fs'), path = require('path')
const [file, dir, emptyDir] = JSON.parse(process.argv[1])
const tries = {
  'open r+ and write': () => { const fd = fs.openSync(file, 'r+'); try { fs.writeSync(fd, 'x') } finally { fs.closeSync(fd) } },
  'open w (truncate)': () => fs.closeSync(fs.openSync(file, 'w')),
  'append': () => fs.appendFileSync(file, 'x'),
  'truncate': () => fs.truncateSync(file, 0),
  'create in dir': () => fs.closeSync(fs.openSync(path.join(dir, 'kheadersfs-new'), 'wx')),
  'unlink': () => fs.unlinkSync(file),
  'rename': () => fs.renameSync(file, path.join(dir, 'kheadersfs-renamed')),
  'link': () => fs.linkSync(file, path.join(dir, 'kheadersfs-hard')),
  'symlink': () => fs.symlinkSync('x', path.join(dir, 'kheadersfs-sym')),
  'mkdir': () => fs.mkdirSync(path.join(dir, 'kheadersfs-dir')),
  'rmdir': () => fs.rmdirSync(emptyDir),
  'chmod': () => fs.chmodSync(file, 0o4777),
  'chown': () => fs.chownSync(file, 65534, 65534),
  'utimes': () => fs.utimesSync(file, 1, 1),
}
const out = {}
for (const [name, fn] of Object.entries(tries)) {
  try { fn(); out[name] = 'succeeded' } catch (e) { out[name] = e.code || e.message }
}
console.log(JSON.stringify(out))`

/** A file to write to, the directory to create in, a directory to remove. */
type Target = [string, string, string]

/**
 * Try every write on `file`, in `dir`, and rmdir of a directory inside the mount (the mountpoint
 * itself is not: rmdir of it is the parent filesystem's EBUSY), as `user` (root when undefined):
 * op → errno (or "succeeded").
 */
async function attemptWrites([file, dir, rmdir]: Target, user?: string): Promise<Record<string, string>> {
  const argv = [process.execPath, '-e', WRITES, JSON.stringify([file, dir, rmdir])]
  const r = user === undefined ? await run(argv[0], argv.slice(1)) : await run('runuser', ['-u', user, '--', ...argv])
  if (r.code !== 0) throw new Error(`write attempts failed to run: ${r.stderr}`)
  const out = JSON.parse(r.stdout) as Record<string, string>
  if (HAVE_RAW_SYSCALLS) {
    const [set, remove] = rawSyscalls(
      [
        { op: 'setxattr', path: Buffer.from(file), name: 'user.kheadersfs', value: 'x' },
        { op: 'removexattr', path: Buffer.from(file), name: 'user.kheadersfs' },
      ],
      user,
    )
    out.setxattr = set.startsWith('ok') ? 'succeeded' : set.slice(4)
    out.removexattr = remove.startsWith('ok') ? 'succeeded' : remove.slice(4)
  }
  return out
}

/** What the mount serves, read fresh with O_DIRECT (past the page cache), plus the listings. */
function snapshot(mnt: string, viewFile: string): string {
  const read = (p: string): string => {
    const fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_DIRECT)
    try {
      const chunks: Buffer[] = []
      for (let pos = 0; ;) {
        const b = Buffer.alloc(1 << 20)
        const n = fs.readSync(fd, b, 0, b.length, pos)
        if (n === 0) break
        chunks.push(b.subarray(0, n))
        pos += n
      }
      return sha256(Buffer.concat(chunks))
    } finally {
      fs.closeSync(fd)
    }
  }
  const files = ['kheaders.txz', 'kheaders.tar.xz', 'config.gz', viewFile].map(
    (f) => `${f} ${read(path.join(mnt, f))} ${(fs.statSync(path.join(mnt, f)).mode & 0o7777).toString(8)}`,
  )
  return [
    ...files,
    fs.readdirSync(mnt).join(','),
    fs.readdirSync(path.join(mnt, path.dirname(viewFile))).join(','),
  ].join('\n')
}

async function image(t: Test): Promise<string> {
  return tree !== undefined ? packedImage(tree) : tinyImage(t)
}

function mountinfo(mnt: string): { perMount: string[]; superOpts: string[] } {
  const line = fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .find((l) => l.split(' ')[4] === mnt)
  if (line === undefined) return { perMount: [], superOpts: [] }
  const f = line.split(' ')
  const sep = f.indexOf('-')
  return { perMount: f[5].split(','), superOpts: f[sep + 3].split(',') }
}

t.test('nobody can write through the mount, root included; the bytes stay the same', async (t) => {
  const img = await image(t)
  const m = await mountImage(t, img)
  const viewFile = 'kheaders/Makefile'
  const before = snapshot(m.mnt, viewFile)
  const targets: Array<[string, Target]> = [
    ['flat file', [path.join(m.mnt, 'kheaders.txz'), m.mnt, path.join(m.mnt, 'kheaders')]],
    ['config.gz', [path.join(m.mnt, 'config.gz'), m.mnt, path.join(m.mnt, 'kheaders')]],
    ['view file', [path.join(m.mnt, viewFile), path.join(m.mnt, 'kheaders'), path.join(m.mnt, 'kheaders/scripts')]],
    [
      'view header',
      [
        path.join(m.mnt, 'kheaders/include/linux/types.h'),
        path.join(m.mnt, 'kheaders/include/linux'),
        path.join(m.mnt, 'kheaders/include/linux'),
      ],
    ],
  ]
  const bad: string[] = []
  let tried = 0
  const check = (who: string, what: string, res: Record<string, string>, allowed: string[]): void => {
    for (const [op, code] of Object.entries(res)) {
      tried++
      if (!allowed.includes(code)) bad.push(`${who} ${op} on ${what}: ${code}`)
    }
  }
  for (const [what, target] of targets) {
    check('root', what, await attemptWrites(target), ['EROFS'])
    check('nobody', what, await attemptWrites(target, NOBODY), ['EROFS', 'EACCES', 'EPERM'])
  }
  // Root can lift the kernel's read-only flag (mount -i skips mount.fuse): the daemon still refuses
  // every write itself (EROFS), so nothing changes either.
  const remount = spawnSync('mount', ['-i', '-o', 'remount,rw', m.mnt], { encoding: 'utf8' })
  const rw = mountinfo(m.mnt).perMount.includes('rw')
  if (remount.status === 0 && rw)
    for (const [what, target] of targets) check('root after remount,rw', what, await attemptWrites(target), ['EROFS'])
  const after = snapshot(m.mnt, viewFile)
  const p = imageParts(img)
  const expect = [sha256(p.headers), sha256(p.headers), sha256(p.config)]
  const served = after
    .split('\n')
    .slice(0, 3)
    .map((l) => l.split(' ')[1])
  record({
    area: 'Security',
    name: 'write-family calls (open for write, append, truncate, create, unlink, rename, link, symlink, mkdir, rmdir, chmod, chown, utimes, setxattr, removexattr) on flat and view files, as root, as nobody, and as root after mount -o remount,rw',
    tried,
    passed: tried - bad.length,
    detail: `${targets.length} targets; remount,rw ${remount.status === 0 && rw ? 'done: the daemon answered EROFS itself' : `refused (${remount.stderr.trim()})`}; bytes and listings unchanged: ${before === after}`,
  })
  t.same(bad, [], 'every write failed (root: EROFS; nobody: EROFS/EACCES/EPERM)')
  t.equal(after, before, 'bytes, modes and listings unchanged (read with O_DIRECT)')
  t.same(served, expect, 'still the image payloads')
})

t.test('mounted ro,nosuid,nodev even when -o rw,dev,suid,exec is passed (CLI and mount(8) form)', async (t) => {
  const img = await image(t)
  const forms: Array<[string, (mnt: string, env: Record<string, string>) => Promise<number | null>]> = [
    [
      'kheadersfs mount -o dev,suid',
      async (mnt, env) => (await runCli(['mount', '--image', img, '--force', '-o', 'dev,suid', mnt], { env })).code,
    ],
    [
      'kheadersfs IMAGE MNT -o rw,dev,suid,exec,force (mount.fuse form)',
      async (mnt, env) => (await runCli([img, mnt, '-o', 'rw,dev,suid,exec,force'], { env })).code,
    ],
  ]
  const bad: string[] = []
  const seen: string[] = []
  for (const [name, mount] of forms) {
    const { mnt, env } = mountDirs(t)
    const code = await mount(mnt, env)
    const mi = mountinfo(mnt)
    seen.push(`${mi.perMount.join(',')} / ${mi.superOpts.join(',')}`)
    const missing = ['ro', 'nosuid', 'nodev'].filter((o) => !mi.perMount.includes(o))
    if (code !== 0 || missing.length || !mi.superOpts.includes('ro'))
      bad.push(`${name}: exit ${code}, per-mount ${mi.perMount.join(',')}, super ${mi.superOpts.join(',')}`)
    const findmnt = execFileSync('findmnt', ['-n', '-o', 'OPTIONS', mnt], { encoding: 'utf8' })
    if (!/(^|,)nosuid(,|$)/.test(findmnt) || !/(^|,)nodev(,|$)/.test(findmnt))
      bad.push(`${name}: findmnt says ${findmnt}`)
    // And nothing in the tree could use them anyway: no setuid/setgid bit, no device node.
    const special = spawnSync(
      'find',
      [mnt, '(', '-perm', '/6000', '-o', '-type', 'b', '-o', '-type', 'c', ')', '-print'],
      { encoding: 'utf8' },
    )
    if (special.stdout !== '' || special.status !== 0)
      bad.push(`${name}: special files ${special.stdout.slice(0, 200)}`)
  }
  record({
    area: 'Security',
    name: 'mount options forced to ro,nosuid,nodev whatever -o says (-o dev,suid; mount(8) form with rw,dev,suid,exec)',
    tried: forms.length,
    passed: forms.length - bad.length,
    detail: `mountinfo: ${seen.join('; ')}; no setuid/setgid/device entry`,
  })
  t.same(bad, [], 'ro,nosuid,nodev in mountinfo and findmnt; no setuid/setgid/device entry')
})

t.test('other users read every file but cannot unmount or stop a root mount', async (t) => {
  const img = await image(t)
  const m = await mountImage(t, img)
  const p = imageParts(img)
  // Expected bytes where nobody can read them.
  const pub = fs.mkdtempSync(path.join(os.tmpdir(), 'kheadersfs-pub-'))
  t.teardown(() => fs.rmSync(pub, { recursive: true, force: true }))
  fs.chmodSync(pub, 0o755)
  fs.writeFileSync(path.join(pub, 'txz'), p.headers, { mode: 0o644 })
  fs.writeFileSync(path.join(pub, 'config'), p.config, { mode: 0o644 })
  const readers = [
    startWorker(
      'flat',
      {
        file: path.join(m.mnt, 'kheaders.txz'),
        ref: path.join(pub, 'txz'),
        rounds: 2,
        concurrency: 2,
        preads: 10,
        direct: 'mixed',
        seed: 1,
      },
      { user: NOBODY },
    ),
    startWorker(
      'flat',
      {
        file: path.join(m.mnt, 'config.gz'),
        ref: path.join(pub, 'config'),
        rounds: 2,
        concurrency: 2,
        preads: 10,
        direct: 'mixed',
        seed: 2,
      },
      { user: NOBODY },
    ),
  ]
  const results = await Promise.all(readers.map((w) => w.result))
  const sum = sumResults(results)
  // The whole view, as nobody: every file readable, sha256 equal to root's view of it.
  const view = path.join(m.mnt, 'kheaders')
  const asNobody = spawnSync(
    'runuser',
    ['-u', NOBODY, '--', 'sh', '-c', 'cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum', 'sh', view],
    { encoding: 'utf8', maxBuffer: 64 * 2 ** 20 },
  )
  const asRoot = spawnSync(
    'sh',
    ['-c', 'cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum', 'sh', view],
    { encoding: 'utf8', maxBuffer: 64 * 2 ** 20 },
  )
  const viewFiles = asRoot.stdout.split('\n').filter(Boolean).length
  const modes = spawnSync('find', [m.mnt, '-maxdepth', '1', '-type', 'f', '-printf', '%m '], {
    encoding: 'utf8',
  }).stdout.trim()
  const attempts: Array<[string, string[]]> = [
    ['fusermount -u', ['fusermount', '-u', m.mnt]],
    ['fusermount -uz', ['fusermount', '-uz', m.mnt]],
    ['umount', ['umount', m.mnt]],
    ['umount -l', ['umount', '-l', m.mnt]],
    ['kheadersfs umount', [process.execPath, path.join(__dirname, '..', '..', 'src', 'cli.js'), 'umount', m.mnt]],
    [
      'kheadersfs umount --lazy',
      [process.execPath, path.join(__dirname, '..', '..', 'src', 'cli.js'), 'umount', '--lazy', m.mnt],
    ],
    ['kill -TERM daemon', ['kill', '-TERM', String(m.pid)]],
    ['kill -KILL daemon', ['kill', '-KILL', String(m.pid)]],
  ]
  const refused: string[] = []
  const bad: string[] = []
  for (const [name, argv] of attempts) {
    const r = spawnSync('runuser', ['-u', NOBODY, '--', ...argv], {
      encoding: 'utf8',
      env: { ...process.env, XDG_RUNTIME_DIR: pub },
    })
    if (r.status !== 0 && isMounted(m.mnt) && running(m.pid)) refused.push(`${name} → ${r.status}`)
    else bad.push(`${name} as nobody: exit ${r.status}, mounted ${isMounted(m.mnt)}, daemon alive ${running(m.pid)}`)
  }
  const stillServed = fs.readFileSync(path.join(m.mnt, 'config.gz')).equals(p.config)
  const readOk =
    sum.wrong === 0 &&
    Object.keys(sum.errors).length === 0 &&
    results.every((r) => r.code === 0) &&
    asNobody.status === 0 &&
    asNobody.stdout === asRoot.stdout
  record({
    area: 'Security',
    name: 'nobody reads the flat files and the whole view; nobody cannot unmount (fusermount -u/-uz, umount, umount -l, kheadersfs umount) or signal the daemon',
    tried: 1 + attempts.length,
    passed: (readOk ? 1 : 0) + refused.length,
    detail: `${sum.fullReads} whole reads and ${sum.preads} preads as nobody, ${viewFiles} view files hashed as nobody; flat modes ${modes}; refused: ${refused.join(', ')}`,
  })
  t.ok(
    readOk,
    `nobody reads the right bytes (${JSON.stringify(sum.errors)} ${sum.wrongDetail.slice(0, 3).join(', ')} ${asNobody.stderr.slice(0, 300)})`,
  )
  t.ok(viewFiles > 0)
  t.equal(modes, '444 444 444', 'flat files 0444')
  t.same(bad, [], 'every unmount or signal attempt by nobody refused; still mounted and served')
  t.ok(stillServed)
})

t.test('as root, an image another user could have written is refused unless --allow-untrusted-image', async (t) => {
  const base = await tinyImage(t)
  const dir = tmpDir(t)
  fs.chmodSync(dir, 0o755)
  const variant = (name: string, uid: number, gid: number, mode: number): string => {
    const p = path.join(dir, `${name}.img`)
    fs.copyFileSync(base, p)
    fs.chownSync(p, uid, gid)
    fs.chmodSync(p, mode)
    return p
  }
  const untrusted: Array<[string, string, RegExp]> = [
    ['owned by nobody (0644)', variant('nobody', 65534, 65534, 0o644), /owned by uid 65534, not root/],
    ['mode 0666 (root:root)', variant('world', 0, 0, 0o666), /anyone can write it \(mode 666\)/],
    ['mode 0664, group nogroup', variant('group', 0, 65534, 0o664), /group 65534 can write it \(mode 664\)/],
  ]
  const link = path.join(dir, 'link.img')
  fs.symlinkSync(untrusted[0][1], link)
  untrusted.push(['root-owned symlink to the image owned by nobody', link, /owned by uid 65534, not root/])
  const bad: string[] = []
  let tried = 0
  const refusedCleanly = async (what: string, args: (mnt: string) => string[], reason: RegExp): Promise<void> => {
    tried++
    const { mnt, runDir, env } = mountDirs(t)
    const r = await runCli(args(mnt), { env })
    const lines = errorLines(r.stderr)
    const left = procsMentioning(mnt)
    const state = fs.existsSync(runDir) ? fs.readdirSync(runDir).filter((f) => !f.endsWith('.log')) : []
    const ok = r.code === 4 && lines.length === 1 && /--allow-untrusted-image/.test(lines[0]) && reason.test(lines[0])
    if (!ok || isMounted(mnt) || left.length || daemonPids(runDir).length || state.length) {
      bad.push(
        `${what}: exit ${r.code}, stderr ${JSON.stringify(lines)}, mounted ${isMounted(mnt)}, processes ${left.length}, state ${state.join(',')}`,
      )
    }
  }
  const mountsFine = async (what: string, args: (mnt: string) => string[]): Promise<void> => {
    tried++
    const { mnt, env } = mountDirs(t)
    const r = await runCli(args(mnt), { env })
    const served = r.code === 0 && fs.readFileSync(path.join(mnt, 'config.gz'))[0] === 0x1f
    const u = await runCli(['umount', mnt], { env })
    if (!served || u.code !== 0) bad.push(`${what}: mount exit ${r.code} ${r.stderr.trim()}, umount ${u.code}`)
  }
  for (const [what, img, reason] of untrusted) {
    await refusedCleanly(`${what}`, (mnt) => ['mount', '--image', img, mnt], reason)
    await refusedCleanly(`${what}, --force`, (mnt) => ['mount', '--image', img, '--force', mnt], reason)
    await refusedCleanly(`${what}, mount(8) form -o force`, (mnt) => [img, mnt, '-o', 'force'], reason)
    await mountsFine(`${what}, --allow-untrusted-image`, (mnt) => [
      'mount',
      '--image',
      img,
      '--allow-untrusted-image',
      mnt,
    ])
    await mountsFine(`${what}, -o allow_untrusted_image`, (mnt) => [
      'mount',
      '--image',
      img,
      '-o',
      'allow_untrusted_image',
      mnt,
    ])
  }
  await mountsFine('root:root 0644 (control)', (mnt) => ['mount', '--image', variant('ok', 0, 0, 0o644), mnt])
  await mountsFine('root:root 0664 (group root may write: trusted)', (mnt) => [
    'mount',
    '--image',
    variant('rootgroup', 0, 0, 0o664),
    mnt,
  ])
  record({
    area: 'Security',
    name: 'image trust as root: owned by nobody, mode 0666, group-writable by another group, symlink to an untrusted image → refused (also with --force and in the mount(8) form); --allow-untrusted-image and -o allow_untrusted_image mount them',
    tried,
    passed: tried - bad.length,
    detail: `${untrusted.length} untrusted images × (plain, --force, mount(8) form: exit 4, one line naming the reason and --allow-untrusted-image, no mount, no daemon, no state; both overrides mount) + 2 trusted controls${bad.length ? `; failing: ${bad.join('; ')}` : ''}`,
  })
  t.same(bad, [], 'untrusted images refused cleanly, overrides and trusted controls mount')
})

t.test(
  'the run directory is 0700 and its files 0600, also when it existed before with other permissions',
  async (t) => {
    const img = await tinyImage(t)
    const bad: string[] = []
    const cases: string[] = []
    const mode = (p: string): string => (fs.lstatSync(p).mode & 0o7777).toString(8)
    const check = async (
      name: string,
      prepare: (runDir: string, mnt: string) => void,
      extra: (runDir: string, mnt: string) => string[] = () => [],
    ): Promise<void> => {
      cases.push(name)
      const { mnt } = mountDirs(t)
      const runDir = path.join(tmpDir(t, 'kheadersfs-rundir-'), 'a', 'run')
      fs.chmodSync(path.dirname(path.dirname(runDir)), 0o755)
      t.teardown(() => cleanupMount(mnt, runDir))
      prepare(runDir, mnt)
      const env = { KHEADERSFS_RUN_DIR: runDir }
      const r = await runCli(['mount', '--image', img, mnt], { env })
      const files = fs.existsSync(runDir) ? fs.readdirSync(runDir) : []
      const problems = [
        r.code !== 0 && `mount exited ${r.code}: ${r.stderr}`,
        fs.existsSync(runDir) && mode(runDir) !== '700' && `run dir mode ${mode(runDir)}`,
        ...files.map((f) => {
          const st = fs.lstatSync(path.join(runDir, f))
          return (
            (!st.isFile() || (st.mode & 0o7777) !== 0o600 || st.uid !== 0) &&
            `${f}: ${st.isSymbolicLink() ? 'symlink' : 'mode ' + mode(path.join(runDir, f))} uid ${st.uid}`
          )
        }),
        files.filter((f) => /\.(json|pid|log)$/.test(f)).length !== 3 && `files: ${files.join(',')}`,
        ...extra(runDir, mnt),
      ].filter(Boolean) as string[]
      await runCli(['umount', mnt], { env })
      if (problems.length) bad.push(`${name}: ${problems.join('; ')}`)
    }
    await check('a fresh path (parents missing too)', () => undefined)
    await check('pre-created 0777', (runDir) => {
      fs.mkdirSync(runDir, { recursive: true })
      fs.chmodSync(runDir, 0o777)
    })
    await check('pre-created 0777 with a log file another user left (0666, owned by nobody)', (runDir, mnt) => {
      fs.mkdirSync(runDir, { recursive: true })
      fs.chmodSync(runDir, 0o777)
      const log = logPath({ KHEADERSFS_RUN_DIR: runDir }, mnt)
      fs.writeFileSync(log, '')
      fs.chownSync(log, 65534, 65534)
      fs.chmodSync(log, 0o666)
    })
    const victim = path.join(tmpDir(t), 'victim')
    await check(
      'pre-created 0777 with a symlink another user planted at the log name',
      (runDir, mnt) => {
        fs.mkdirSync(runDir, { recursive: true })
        fs.chmodSync(runDir, 0o777)
        fs.writeFileSync(victim, 'untouched\n')
        const r = spawnSync(
          'runuser',
          ['-u', NOBODY, '--', 'ln', '-s', victim, path.join(runDir, `${mountId(mnt)}.log`)],
          { encoding: 'utf8' },
        )
        if (r.status !== 0) throw new Error(`cannot plant the link: ${r.stderr}`)
      },
      () =>
        [
          fs.readFileSync(victim, 'utf8') !== 'untouched\n' &&
            `the daemon wrote its log through the planted symlink into ${victim}`,
        ].filter(Boolean) as string[],
    )
    record({
      area: 'Security',
      name: 'run directory 0700 and files 0600 (fresh path; pre-created 0777; a pre-existing 0666 log; a planted symlink at the log name)',
      tried: cases.length,
      passed: cases.length - new Set(bad.map((b) => b.split(':')[0])).size,
      detail: bad.length ? bad.join('; ') : cases.join('; '),
    })
    t.same(
      bad,
      [],
      'run dir 0700, every file in it a regular root file of mode 0600, nothing written through a planted link',
    )
  },
)

t.test('the daemon log never echoes file contents, even at -o log_level=trace', async (t) => {
  const marker = `KHFSMARKER${randomBytes(12).toString('hex')}`
  const cfgMarker = `KHFSCONFIG${randomBytes(12).toString('hex')}`
  const dir = tmpDir(t)
  const src = tinyTree(path.join(dir, 'tree'), {
    extra: {
      'include/linux/khfs_marker.h': `#ifndef KHFS_MARKER_H\n#define KHFS_MARKER_H\n#define KHFS_MARKER "${marker}"\nstatic const char khfs_marker[] = "${marker}${marker}";\n#endif\n`,
      '.config': `# tiny\nCONFIG_X86=y\nCONFIG_MODULES=y\nCONFIG_KHFS_SECRET="${cfgMarker}"\n`,
    },
  })
  const img = path.join(dir, 'marker.img')
  const pack = await runCli(['pack', '--kernel', src, '--release', os.release(), '-o', img], {
    env: { KHEADERSFS_LOG_LEVEL: 'warn' },
  })
  t.equal(pack.code, 0, pack.stderr)
  const p = imageParts(img)
  t.match(gunzipSync(p.config).toString(), cfgMarker, 'the config holds its marker')
  const m: TestMount = await mountImage(t, img, ['-o', 'log_level=trace'])
  const file = path.join(m.mnt, 'kheaders/include/linux/khfs_marker.h')
  const content = fs.readFileSync(file, 'utf8')
  t.match(content, marker, 'the view serves the marker')
  // Everything that reads contents, and everything that fails, at the most verbose level.
  for (const f of [
    'kheaders.txz',
    'kheaders.tar.xz',
    'config.gz',
    'kheaders/include/linux/khfs_marker.h',
    'kheaders/.config',
  ]) {
    fs.readFileSync(path.join(m.mnt, f))
    const fd = fs.openSync(path.join(m.mnt, f), fs.constants.O_RDONLY | fs.constants.O_DIRECT)
    fs.readSync(fd, Buffer.alloc(65536), 0, 65536, 0)
    fs.closeSync(fd)
  }
  for (const fn of [
    () => fs.writeFileSync(file, marker),
    () => fs.readlinkSync(file),
    () => fs.statSync(`${file}/x`),
    () => fs.readdirSync(file),
    () => fs.truncateSync(file, 0),
  ]) {
    try {
      fn()
    } catch {
      // expected
    }
  }
  process.kill(m.pid, 'SIGUSR1')
  const u = await runCli(['umount', m.mnt], { env: m.env })
  t.equal(u.code, 0, u.stderr)
  const log = fs.readFileSync(logPath(m.env, m.mnt), 'utf8')
  const lines = log.split('\n').filter(Boolean)
  const b64 = (s: string): string[] =>
    [0, 1, 2].map((k) =>
      Buffer.from('xx'.slice(0, k) + s)
        .toString('base64')
        .slice(4, -4),
    )
  const config = gunzipSync(p.config).toString()
  const needles: Array<[string, string]> = [
    ['header marker', marker],
    ['header marker (hex)', Buffer.from(marker).toString('hex')],
    ...b64(marker).map((s, i): [string, string] => [`header marker (base64 ${i})`, s]),
    ['config marker', cfgMarker],
    ['a config line', 'CONFIG_MODULES=y'],
    ['config.gz bytes (hex)', p.config.subarray(10, 42).toString('hex')],
    ['config.gz bytes (base64)', p.config.subarray(12, 42).toString('base64')],
    ['kheaders.txz bytes (hex)', p.headers.subarray(100, 132).toString('hex')],
    ['kheaders.txz bytes (base64)', p.headers.subarray(102, 132).toString('base64')],
    ['a Buffer dump', '"type":"Buffer"'],
    ['a Buffer dump', '<Buffer '],
  ]
  const found = needles.filter(([, s]) => log.includes(s)).map(([n]) => n)
  record({
    area: 'Security',
    name: 'daemon log at -o log_level=trace never carries file contents (unique markers in a header and in .config; payload bytes as text, hex, base64)',
    tried: needles.length,
    passed: needles.length - found.length,
    detail: `${lines.length} log lines (${log.length} bytes) after reading every flat file and the marker header (also O_DIRECT) and failing writes; found: ${found.length ? found.join(', ') : 'none'}`,
  })
  t.ok(config.includes(cfgMarker))
  t.ok(
    lines.some((l) => l.includes('"msg":"stats"')),
    'the log was written at this level (stats line present)',
  )
  t.same(found, [], 'no content in the log')
  t.same(logErrors(m.runDir), [], 'and no error')
})
