// The kheaders/ view: the archive's tree served straight from kheaders.tar.xz, nothing extracted.
// Checked against GNU tar's extraction of the same archive (every file, mode and link of the Debian
// module-build image), by a real module build from the view, and by the daemon's own counters
// (SIGUSR1): lookups decode nothing, readdir is one call, the cache bound holds.
import { execFileSync, spawnSync } from 'node:child_process'
import {
  closeSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t, { type Test } from 'tap'
import { parseImage } from '../../src/image/read'
import { errorLines, run, runCli } from '../helpers/cli'
import { BIGMOD, buildHello, debianTree, packedImage, SKIP_NO_DEBIAN } from '../helpers/debian'
import { errnoCode } from '../helpers/fs-errors'
import { tinyImage } from '../helpers/images'
import { childPids, mountImage, waitGone } from '../helpers/mount'
import { daemonStats } from '../helpers/observe'
import { prng } from '../helpers/prng'
import { tmpDir } from '../helpers/tmp'
import { digestDiff, treeDigest } from '../helpers/tree-digest'
import { walkTree } from '../helpers/walk'

const tree = debianTree()

/** The __versions section of a module: the CRCs of every symbol it uses (modversions). */
function versions(ko: string, dir: string): Buffer {
  const out = path.join(dir, `versions-${path.basename(path.dirname(ko))}`)
  execFileSync('objcopy', ['-O', 'binary', '--only-section=__versions', ko, out])
  return readFileSync(out)
}

t.test(
  'the kheaders/ view of the Debian module-build image',
  { skip: tree === undefined && SKIP_NO_DEBIAN },
  async (t) => {
    const image = await packedImage(tree!, 'module-build')
    const m = await mountImage(t, image)
    const view = path.join(m.mnt, 'kheaders')
    const extracted = tmpDir(t)
    execFileSync('tar', ['-xf', path.join(m.mnt, 'kheaders.txz'), '-C', extracted])

    t.test('lookups, stat and readdir answer from the index: a full walk decodes nothing', async (t) => {
      const before = await daemonStats(m)
      let entries = 0
      let links = 0
      walkTree(view, (rel) => {
        if (lstatSync(path.join(view, rel)).isSymbolicLink()) links++
        entries++
      })
      const after = await daemonStats(m)
      t.ok(entries > 5000, `${entries} entries walked`)
      t.equal(after.cache!.decodes, before.cache!.decodes, 'no block decoded by stat and readdir')
      // The binding lists directories with READDIRPLUS, each entry with what a lookup would answer, so
      // the kernel looks up only links (whose size JavaScript keeps); it answers the listings from the
      // table on its own thread.
      const answered = (s: typeof after, op: 'lookup' | 'readdir'): number => s.requests?.answered?.[op] ?? 0
      const lookups = (after.ops.lookup ?? 0) - (before.ops.lookup ?? 0)
      t.ok(links > 0, `${links} links among them`)
      // The links, and kheaders/ itself (the walk's start, in a root not listed yet).
      t.ok(lookups <= links + 1, `${lookups} lookups for ${entries} entries: the listings carried the rest`)
      const listings = (after.ops.readdir ?? 0) - (before.ops.readdir ?? 0)
      t.ok(listings > 100, `${listings} readdir requests`)
      t.equal(answered(after, 'readdir') - answered(before, 'readdir'), listings, 'all answered without JavaScript')
    })

    t.test("every file, directory and link equals GNU tar's extraction (content, mode, target)", async (t) => {
      const want = treeDigest(extracted)
      const before = await daemonStats(m)
      const got = treeDigest(view)
      const after = await daemonStats(m)
      // Reads of blocks the cache holds are answered by the binding itself: most of the reads above.
      const fromBinding = (after.requests?.answered?.read ?? 0) - (before.requests?.answered?.read ?? 0)
      const reads = (after.ops.read ?? 0) - (before.ops.read ?? 0)
      t.ok(fromBinding > reads / 2, `${fromBinding} of ${reads} reads answered without JavaScript`)
      // Kernels from 5.1 stopped sending OPEN at the mount's first (tar -xf above), answered ENOSYS.
      const [major, minor] = os.release().split('.').map(Number)
      if (major > 5 || (major === 5 && minor >= 1))
        t.equal((after.requests?.opens ?? -1) - (before.requests?.opens ?? 0), 0, 'not one OPEN for all those files')
      t.equal(got.size, want.size, `${want.size} entries in both`)
      t.same(digestDiff(want, got).slice(0, 10), [], 'no difference')
      t.ok(
        [...got.values()].some((d) => d.startsWith('l ')),
        'symlinks are served as symlinks',
      )
      t.equal(got.get('scripts/basic/fixdep')?.split(' ')[1], '755', 'scripts/basic/fixdep is executable')
    })

    t.test('everything is owned by root (BCC refuses kernel trees that are not: CVE-2024-2314)', async (t) => {
      const bad = spawnSync('find', [view, '(', '!', '-uid', '0', '-o', '!', '-gid', '0', ')', '-print'], {
        encoding: 'utf8',
      })
      t.equal(bad.status, 0)
      t.equal(bad.stdout, '', 'no entry owned by anyone but root')
    })

    t.test(
      'make -C MNT/kheaders M=hello modules: same vermagic and __versions as from the extracted tree',
      async (t) => {
        const w = tmpDir(t)
        mkdirSync(path.join(w, 'view'))
        mkdirSync(path.join(w, 'tar'))
        const fromView = await buildHello(view, path.join(w, 'view'), false)
        t.equal(fromView.code, 0, fromView.output.slice(-2000))
        const fromTar = await buildHello(extracted, path.join(w, 'tar'), false)
        t.equal(fromTar.code, 0, fromTar.output.slice(-2000))
        t.equal(fromView.vermagic, fromTar.vermagic)
        t.match(fromView.vermagic, new RegExp(`^${tree!.release.replace(/\./g, '\\.')} `))
        const v = versions(fromView.ko, w)
        t.ok(v.length > 0, 'the module has modversions')
        t.ok(v.equals(versions(fromTar.ko, w)), '__versions identical')
        t.notMatch(fromView.output, /Read-only file system|EROFS/, 'the build never tried to write into the view')
      },
    )

    t.test('readdir of a large directory comes in full pages; a missing name is looked up once', async (t) => {
      const big = path.join(view, 'include', 'linux')
      // The kernel keeps listings it read (FOPEN_CACHE_DIR, kernels from 5.1): forget the walk's.
      writeFileSync('/proc/sys/vm/drop_caches', '3')
      const before = await daemonStats(m)
      const names = readdirSync(big)
      const after = await daemonStats(m)
      t.ok(names.length > 1000, `${names.length} entries`)
      // READDIRPLUS entries: 152 bytes (the entry's attributes, then a dirent) + the name, padded to 8;
      // the kernel asks for 4 KiB at a time or more.
      const bytes = names.reduce((n, name) => n + ((152 + Buffer.byteLength(name) + 7) & ~7), 0)
      const calls = (after.ops.readdir ?? 0) - (before.ops.readdir ?? 0)
      // The kernel asks for at least a page at a time (more for a large getdents buffer): never a
      // request per entry, never a listing copied whole per handle.
      t.ok(
        calls >= 1 && calls <= Math.ceil(bytes / (4096 - 280)) + 1,
        `${calls} readdir requests for ${bytes} bytes of entries: full pages, resumed by cookie`,
      )
      const missing = path.join(big, 'no-such-header-kheadersfs.h')
      t.equal(
        errnoCode(() => statSync(missing)),
        'ENOENT',
      )
      const once = await daemonStats(m)
      t.equal((once.ops.lookup ?? 0) - (after.ops.lookup ?? 0), 1, 'the first stat of a missing name: one lookup')
      for (let i = 0; i < 20; i++)
        t.equal(
          errnoCode(() => statSync(missing)),
          'ENOENT',
        )
      const again = await daemonStats(m)
      t.equal(
        again.ops.lookup,
        once.ops.lookup,
        'repeated lookups of a missing name are answered by the kernel (negative cache)',
      )
    })

    t.test('errno: ENOENT, ENOTDIR, EISDIR, EINVAL, and EROFS for every write', async (t) => {
      const file = path.join(view, 'Makefile')
      const dir = path.join(view, 'include')
      t.equal(
        errnoCode(() => statSync(path.join(view, 'nope'))),
        'ENOENT',
      )
      t.equal(
        errnoCode(() => statSync(path.join(file, 'below'))),
        'ENOTDIR',
      )
      t.equal(
        errnoCode(() => readdirSync(file)),
        'ENOTDIR',
      )
      t.equal(
        errnoCode(() => statSync(path.join(dir, 'n'.repeat(255)))),
        'ENOENT',
        'a name of 255 bytes is allowed (and missing)',
      )
      t.equal(
        errnoCode(() => statSync(path.join(dir, 'n'.repeat(256)))),
        'ENAMETOOLONG',
        'a name over NAME_MAX bytes',
      )
      t.equal(
        errnoCode(() => statSync(path.join(view, 'nope', 'n'.repeat(256)))),
        'ENOENT',
        'decided at the first missing component',
      )
      t.equal(
        errnoCode(() => readFileSync(dir)),
        'EISDIR',
      )
      t.equal(
        errnoCode(() => readlinkSync(file)),
        'EINVAL',
        'readlink of a non-link',
      )
      const writes: Array<[string, () => unknown]> = [
        ['open for writing', () => closeSync(openSync(file, 'r+'))],
        ['create', () => closeSync(openSync(path.join(dir, 'new.h'), 'wx'))],
        ['truncate', () => fs.truncateSync(file, 0)],
        ['mkdir', () => mkdirSync(path.join(dir, 'newdir'))],
        ['rmdir', () => fs.rmdirSync(path.join(view, 'tools'))],
        ['unlink', () => fs.unlinkSync(file)],
        ['rename', () => fs.renameSync(file, path.join(view, 'Makefile2'))],
        ['symlink', () => fs.symlinkSync('x', path.join(dir, 'link'))],
        ['link', () => fs.linkSync(file, path.join(dir, 'hard'))],
        ['chmod', () => fs.chmodSync(file, 0o777)],
        ['chown', () => fs.chownSync(file, 1, 1)],
        ['utimes', () => fs.utimesSync(file, 1, 1)],
      ]
      for (const [name, fn] of writes) t.equal(errnoCode(fn), 'EROFS', name)
    })

    t.test(
      'setxattr: EROFS (setfattr)',
      {
        skip:
          spawnSync('setfattr', ['--version']).error !== undefined && 'setfattr is not installed (Debian package attr)',
      },
      async (t) => {
        const setx = spawnSync('setfattr', ['-n', 'user.x', '-v', '1', path.join(view, 'Makefile')], {
          encoding: 'utf8',
        })
        t.not(setx.status, 0, 'setfattr fails')
        t.match(setx.stderr, /Read-only file system/, 'setxattr')
      },
    )

    t.test('reads at any offset and length equal the extracted bytes, also across xz blocks', async (t) => {
      // The largest file whose bytes straddle a block boundary of the archive.
      const { manifest } = parseImage(readFileSync(image), image)
      const bs = manifest.payloads['kheaders.tar.xz'].blockSize
      const straddling = manifest.files.filter(
        (f) => f.type === 'file' && Math.floor(f.offset / bs) !== Math.floor((f.offset + f.size - 1) / bs),
      )
      t.ok(straddling.length > 0, `${straddling.length} files straddle a ${bs}-byte block boundary`)
      const f = straddling.sort((a, b) => b.size - a.size)[0]
      const rel = f.path
      const want = readFileSync(path.join(extracted, rel))
      const fd = openSync(path.join(view, rel), 'r')
      t.teardown(() => closeSync(fd))
      const boundary = (Math.floor(f.offset / bs) + 1) * bs - f.offset // in-file position of the block boundary
      const across = Buffer.alloc(8192)
      t.equal(readSync(fd, across, 0, 8192, boundary - 4096), Math.min(8192, want.length - boundary + 4096))
      t.ok(across.equals(want.subarray(boundary - 4096, boundary + 4096)), 'one read across the block boundary')
      // Seeded: a failing run can be repeated with KHEADERSFS_VIEW_SEED.
      const seed = Number(process.env.KHEADERSFS_VIEW_SEED ?? Date.now() % 1e9)
      t.comment(`random preads: seed ${seed} (KHEADERSFS_VIEW_SEED=${seed} repeats them)`)
      const rand = prng(seed)
      let bad = 0
      for (let i = 0; i < 200; i++) {
        const pos = Math.floor(rand() * (want.length + 100))
        const len = [1, 4096, 65536, 131072, 300000][i % 5]
        const buf = Buffer.alloc(len)
        const n = readSync(fd, buf, 0, len, pos)
        if (!buf.subarray(0, n).equals(want.subarray(pos, pos + len))) bad++
      }
      t.equal(bad, 0, `200 random preads of ${rel} match (seed ${seed})`)
    })
  },
)

/** `make -C TREE M=COPY modules` of test/fixtures/bigmod copied under `workdir`, and the .ko's vermagic. */
async function buildBigmod(
  tree: string,
  workdir: string,
): Promise<{ code: number | null; output: string; ko: string; vermagic: string }> {
  const dir = path.join(workdir, 'bigmod')
  cpSync(BIGMOD, dir, { recursive: true })
  const r = await run('make', ['-C', tree, `M=${dir}`, 'modules'])
  const ko = path.join(dir, 'bigmod.ko')
  const vermagic = r.code === 0 && existsSync(ko) ? (await run('modinfo', ['-F', 'vermagic', ko])).stdout.trim() : ''
  return { code: r.code, output: r.stdout + r.stderr, ko, vermagic }
}

t.test(
  'bigmod.ko (the larger module) builds from the view with -o cache_mb=4 and from the extracted archive',
  { skip: tree === undefined && SKIP_NO_DEBIAN },
  async (t) => {
    const image = await packedImage(tree!, 'module-build')
    const m = await mountImage(t, image, ['--force', '-o', 'cache_mb=4'])
    const w = tmpDir(t)
    const extracted = path.join(w, 'tree')
    mkdirSync(extracted)
    execFileSync('tar', ['-xf', path.join(m.mnt, 'kheaders.txz'), '-C', extracted])
    mkdirSync(path.join(w, 'view'))
    mkdirSync(path.join(w, 'tar'))
    const fromView = await buildBigmod(path.join(m.mnt, 'kheaders'), path.join(w, 'view'))
    t.equal(fromView.code, 0, 'make -C MNT/kheaders M=bigmod modules', { output: fromView.output.slice(-2000) })
    const fromTar = await buildBigmod(extracted, path.join(w, 'tar'))
    t.equal(fromTar.code, 0, 'make -C EXTRACTED M=bigmod modules', { output: fromTar.output.slice(-2000) })
    t.match(
      fromView.vermagic,
      new RegExp(`^${tree!.release.replace(/\./g, '\\.')} `),
      "vermagic of the image's release",
    )
    t.equal(fromView.vermagic, fromTar.vermagic, 'same vermagic from the view and from the extracted tree')
    t.ok(versions(fromView.ko, w).equals(versions(fromTar.ko, w)), '__versions identical (same symbols, same CRCs)')
    t.notMatch(fromView.output, /bigmod\.[ch]:\d+:\d+: warning:/, 'no compiler warning in bigmod.c')
    const s = await daemonStats(m)
    t.equal(s.cache!.boundBytes, 4 * 2 ** 20, 'cache_mb=4 taken')
    t.ok(
      s.cache!.bytes <= s.cache!.boundBytes,
      `cache holds ${s.cache!.bytes} bytes after the builds, within the 4 MiB bound`,
    )
  },
)

t.test(
  'a 4 MB cache bound still serves a full walk correctly, evicting as it goes',
  { skip: tree === undefined && SKIP_NO_DEBIAN },
  async (t) => {
    const image = await packedImage(tree!, 'module-build')
    const m = await mountImage(t, image, ['--force', '-o', 'cache_mb=4'])
    const extracted = tmpDir(t)
    execFileSync('tar', ['-xf', path.join(m.mnt, 'kheaders.txz'), '-C', extracted])
    t.same(
      digestDiff(treeDigest(extracted), treeDigest(path.join(m.mnt, 'kheaders'))).slice(0, 10),
      [],
      'every file equal',
    )
    const s = await daemonStats(m)
    t.equal(s.cache!.boundBytes, 4 * 2 ** 20)
    t.ok(s.cache!.bytes <= s.cache!.boundBytes, `cache holds ${s.cache!.bytes} bytes, within the bound`)
    t.ok(s.cache!.evictions > 0, `${s.cache!.evictions} evictions`)
  },
)

t.test('-o view=off: no kheaders/ directory', async (t) => {
  const image = await tinyImage(t)
  const m = await mountImage(t, image, ['-o', 'view=off'])
  t.same(readdirSync(m.mnt), ['config.gz', 'kheaders.tar.xz', 'kheaders.txz'])
  t.notOk(existsSync(path.join(m.mnt, 'kheaders')))
})

/** Put /lib/modules/<release> out of the way for a test and back in teardown. */
function reserveModulesDir(t: Test, release: string): string {
  const dir = path.join('/lib/modules', release)
  const saved = `${dir}.kheadersfs-test-saved-${process.pid}`
  const had = existsSync(dir)
  if (had) fs.renameSync(dir, saved)
  t.teardown(() => {
    fs.rmSync(dir, { recursive: true, force: true })
    if (had) fs.renameSync(saved, dir)
  })
  return dir
}

t.test('-o link_build', { skip: process.getuid?.() !== 0 && 'needs root to write /lib/modules' }, async (t) => {
  t.test(
    'links build and source to the view while mounted, removes them (and the dir it made) at unload',
    async (t) => {
      const release = '6.9.0-kheadersfs-linktest'
      const dir = reserveModulesDir(t, release)
      const image = await tinyImage(t, release)
      const m = await mountImage(t, image, ['--force', '-o', 'link_build'])
      for (const name of ['build', 'source'])
        t.equal(readlinkSync(path.join(dir, name)), path.join(m.mnt, 'kheaders'), `${name} → the view`)
      t.ok(statSync(path.join(dir, 'build', 'Makefile')).isFile(), 'the build link resolves')
      execFileSync('umount', [m.mnt])
      t.ok(await waitGone(m.pid))
      t.notOk(existsSync(dir), 'links and the directory it created are gone')
    },
  )

  t.test('never replaces an existing path, and says so', async (t) => {
    const release = '6.9.0-kheadersfs-linktest2'
    const dir = reserveModulesDir(t, release)
    mkdirSync(dir, { recursive: true })
    fs.symlinkSync('/usr/src/somewhere', path.join(dir, 'build'))
    const image = await tinyImage(t, release)
    const m = await mountImage(t, image, ['--force', '-o', 'link_build'])
    t.equal(readlinkSync(path.join(dir, 'build')), '/usr/src/somewhere', 'existing build link untouched')
    t.equal(readlinkSync(path.join(dir, 'source')), path.join(m.mnt, 'kheaders'), 'missing source link made')
    const log = readFileSync(
      path.join(
        m.runDir,
        readdirSync(m.runDir).find((f) => f.endsWith('.log'))!,
      ),
      'utf8',
    )
    t.match(
      log,
      /left \/lib\/modules\/6\.9\.0-kheadersfs-linktest2\/build alone: it exists and points at \/usr\/src\/somewhere/,
    )
    execFileSync('umount', [m.mnt])
    t.ok(await waitGone(m.pid))
    t.equal(readlinkSync(path.join(dir, 'build')), '/usr/src/somewhere', 'still untouched after unload')
    t.notOk(existsSync(path.join(dir, 'source')), 'our source link removed')
    t.ok(existsSync(dir), 'a directory we did not create stays')
  })

  t.test('after kill -9 the next umount removes the links', async (t) => {
    const release = '6.9.0-kheadersfs-linktest3'
    const dir = reserveModulesDir(t, release)
    const image = await tinyImage(t, release)
    const m = await mountImage(t, image, ['--force', '-o', 'link_build'])
    // Kill the daemon and the fusermount helper that would auto-unmount, leaving a stale mount.
    const kids = childPids(m.pid)
    for (const c of kids) process.kill(c, 'SIGKILL')
    process.kill(m.pid, 'SIGKILL')
    t.ok(await waitGone(m.pid))
    for (const c of kids) await waitGone(c)
    t.ok(lstatSync(path.join(dir, 'build')).isSymbolicLink(), 'the dead daemon left its link')
    const r = await runCli(['umount', m.mnt], { env: m.env })
    t.equal(r.code, 0, r.stderr)
    t.notOk(existsSync(dir), 'links and directory cleaned by umount')
  })

  t.test(
    'make -C /lib/modules/<release>/build M=hello modules works with nothing extracted',
    { skip: tree === undefined && SKIP_NO_DEBIAN },
    async (t) => {
      const dir = path.join('/lib/modules', tree!.release)
      // Debian's package owns /lib/modules/<release>/build: move it aside for this test, put it back after.
      const saved: string[] = []
      for (const name of ['build', 'source']) {
        const p = path.join(dir, name)
        if (!existsSync(p) && !isLink(p)) continue
        fs.renameSync(p, `${p}.kheadersfs-test-saved`)
        saved.push(p)
      }
      t.teardown(() => {
        for (const p of saved) {
          if (isLink(p)) fs.unlinkSync(p)
          fs.renameSync(`${p}.kheadersfs-test-saved`, p)
        }
      })
      const m = await mountImage(t, await packedImage(tree!, 'module-build'), ['--force', '-o', 'link_build'])
      const b = await buildHello(path.join(dir, 'build'), tmpDir(t), false)
      t.equal(b.code, 0, b.output.slice(-2000))
      t.match(b.vermagic, new RegExp(`^${tree!.release.replace(/\./g, '\\.')} `))
      execFileSync('umount', [m.mnt])
      t.ok(await waitGone(m.pid))
      t.notOk(isLink(path.join(dir, 'build')), 'link removed at unload')
    },
  )

  t.test('link_build with view=off is refused', async (t) => {
    const r = await runCli(['mount', '--image', await tinyImage(t), '-o', 'link_build,view=off', tmpDir(t)])
    t.equal(r.code, 2)
    t.match(
      errorLines(r.stderr)[0],
      /Cannot use mount option "link_build" with view=off: the links point at the kheaders\/ view/,
    )
  })
})

function isLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink()
  } catch {
    return false
  }
}
