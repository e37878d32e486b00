// kheadersfs as part of the system: install-helpers, `mount -t fuse.kheadersfs` and `-t kheadersfs`
// through the real mount(8) and Debian's mount.fuse, an fstab file (`mount -T`), plain `umount`
// unloading, and the systemd units checked by `systemd-analyze verify`. The real install touches
// /usr/local/bin, /sbin and /usr/local/lib/systemd/system; whatever was there is put back.
import { spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t, { type Test } from 'tap'
import { DEFAULT_DIRS, installPlan, MARK } from '../../src/commands/install-helpers'
import { sha256 } from '../../src/image/format'
import { parseImage } from '../../src/image/read'
import { errorLines, run, runCli } from '../helpers/cli'
import { tinyImage } from '../helpers/images'
import { daemonPids, isMounted, mountDirs, waitGone } from '../helpers/mount'
import { tmpDir } from '../helpers/tmp'

const root = process.getuid?.() === 0
const mountOptions = (mnt: string): string =>
  spawnSync('findmnt', ['-n', '-o', 'OPTIONS', '--mountpoint', mnt], { encoding: 'utf8' }).stdout.trim()

t.test('install-helpers stages the CLI, the mount helper and the units', async (t) => {
  const dest = tmpDir(t)
  const r = await runCli(['install-helpers', '--destdir', dest])
  t.equal(r.code, 0, r.stderr)
  const plan = installPlan(DEFAULT_DIRS)
  for (const f of plan) {
    const p = path.join(dest, f.path)
    t.ok(existsSync(p), `${f.path} installed`)
    t.equal(statSync(p).mode & 0o777, f.mode, `${f.path} mode ${f.mode.toString(8)}`)
    t.ok(readFileSync(p, 'utf8').includes(MARK), `${f.path} is marked as ours`)
  }
  const wrapper = path.join(dest, DEFAULT_DIRS.bindir, 'kheadersfs')
  const v = await run(wrapper, ['--version'])
  t.match(v.stdout, /^kheadersfs \d+\.\d+\.\d+/, 'the installed CLI runs')
  const unit = readFileSync(path.join(dest, DEFAULT_DIRS.unitdir, 'kheadersfs@.service'), 'utf8')
  t.match(unit, /^ExecStart=\/usr\/local\/bin\/kheadersfs mount %f$/m, 'the unit runs the installed CLI')
  t.notMatch(
    unit,
    /^(PrivateMounts|ProtectSystem|PrivateTmp|ProtectHome)=/m,
    'no directive that hides the mount from the host',
  )

  t.test("another program's file is never replaced, and uninstall keeps it", async (t) => {
    const foreign = path.join(dest, DEFAULT_DIRS.helperdir, 'mount.kheadersfs')
    writeFileSync(foreign, '#!/bin/sh\n# someone else\n')
    rmSync(wrapper)
    const r = await runCli(['install-helpers', '--destdir', dest])
    t.equal(r.code, 8, 'exit 8 (I/O)')
    t.match(
      errorLines(r.stderr)[0],
      /Cannot install .*mount\.kheadersfs: a file not installed by kheadersfs is there; remove it first or pass --helperdir/,
    )
    t.notOk(existsSync(wrapper), 'nothing was written')
    const u = await runCli(['install-helpers', '--destdir', dest, '--uninstall'])
    t.equal(u.code, 0, u.stderr)
    t.match(u.stdout, /kept .*mount\.kheadersfs: not installed by kheadersfs/)
    t.equal(readFileSync(foreign, 'utf8'), '#!/bin/sh\n# someone else\n')
    t.notOk(existsSync(path.join(dest, DEFAULT_DIRS.unitdir, 'kheadersfs@.service')), 'our unit removed')
  })

  t.test('bad arguments', async (t) => {
    const r = await runCli(['install-helpers', '--bindir', 'relative/bin'])
    t.equal(r.code, 2)
    t.match(errorLines(r.stderr)[0], /Cannot use --bindir "relative\/bin": give an absolute path/)
  })
})

/** Move the system's own files out of the way for the test and put them back in teardown. */
function reserve(t: Test, files: string[]): void {
  const saved: Array<[string, string]> = []
  for (const f of files) {
    if (!existsSync(f)) continue
    const keep = `${f}.kheadersfs-test-saved-${process.pid}`
    renameSync(f, keep)
    saved.push([f, keep])
  }
  t.teardown(() => {
    for (const f of files) rmSync(f, { force: true })
    for (const [f, keep] of saved) renameSync(keep, f)
  })
}

t.test(
  'mount(8), fstab and systemd with the helpers installed',
  { skip: !root && 'needs root to install into /sbin and mount' },
  async (t) => {
    const plan = installPlan(DEFAULT_DIRS)
    reserve(
      t,
      plan.map((f) => f.path),
    )
    const inst = await runCli(['install-helpers'])
    t.equal(inst.code, 0, inst.stderr)
    const image = await tinyImage(t, '6.9.0-tiny')
    const want = parseImage(readFileSync(image), image)

    /** Mount with `mountArgs`, check the files and the forced options, `umount`, check the daemon is gone. */
    const roundTrip = async (
      t: Test,
      name: string,
      mountArgs: (mnt: string) => string[],
      env: Record<string, string> = {},
    ): Promise<void> => {
      const d = mountDirs(t)
      const r = await run('mount', mountArgs(d.mnt), { env: { ...d.env, ...env } })
      t.equal(r.code, 0, `${name}: mount exits 0 (${r.stderr.trim()})`)
      t.equal(
        sha256(readFileSync(path.join(d.mnt, 'kheaders.txz'))),
        want.manifest.payloads['kheaders.tar.xz'].sha256,
        `${name}: kheaders.txz served`,
      )
      t.ok(readFileSync(path.join(d.mnt, 'config.gz')).equals(want.config), `${name}: config.gz served`)
      const opts = mountOptions(d.mnt).split(',')
      for (const o of ['ro', 'nosuid', 'nodev']) t.ok(opts.includes(o), `${name}: mounted ${o} (${opts.join(',')})`)
      const [pid] = daemonPids(d.runDir)
      t.ok(pid > 0, `${name}: a daemon serves it`)
      const u = await run('umount', [d.mnt])
      t.equal(u.code, 0, `${name}: umount exits 0 (${u.stderr.trim()})`)
      t.ok(await waitGone(pid), `${name}: the daemon exited after umount`)
      t.notOk(isMounted(d.mnt), `${name}: nothing left mounted`)
    }

    t.test('mount -t fuse.kheadersfs IMAGE DIR -o ro,dev,suid,force', (t) =>
      roundTrip(t, 'fuse.kheadersfs', (mnt) => ['-t', 'fuse.kheadersfs', image, mnt, '-o', 'ro,dev,suid,force']),
    )
    t.test('mount -t fuse.kheadersfs auto DIR finds the image through $KHEADERSFS_IMAGE', (t) =>
      roundTrip(t, 'auto', (mnt) => ['-t', 'fuse.kheadersfs', 'auto', mnt, '-o', 'ro,allow_other,force'], {
        KHEADERSFS_IMAGE: image,
      }),
    )
    t.test('mount -t kheadersfs (the /sbin/mount.kheadersfs helper)', (t) =>
      roundTrip(t, 'kheadersfs', (mnt) => ['-t', 'kheadersfs', image, mnt, '-o', 'force,nofail']),
    )
    t.test('an fstab line: "IMAGE DIR fuse.kheadersfs ro,nofail,force 0 0" and mount -T FILE DIR', (t) => {
      const fstab = path.join(tmpDir(t), 'fstab')
      return roundTrip(t, 'fstab', (mnt) => {
        writeFileSync(
          fstab,
          `# test fstab\n${image.replace(/ /g, '\\040')} ${mnt.replace(/ /g, '\\040')} fuse.kheadersfs ro,nofail,force 0 0\n`,
        )
        return ['-T', fstab, mnt]
      })
    })
    t.test('an fstab line with the "auto" source and image= option', (t) => {
      const fstab = path.join(tmpDir(t), 'fstab')
      return roundTrip(t, 'fstab auto', (mnt) => {
        writeFileSync(fstab, `auto ${mnt} fuse.kheadersfs ro,nofail,image=${image},force 0 0\n`)
        return ['-T', fstab, mnt]
      })
    })

    t.test('refusals through mount(8): one line, non-zero, nothing mounted', async (t) => {
      for (const [name, args, re] of [
        [
          'unknown option',
          (mnt: string) => ['-t', 'fuse.kheadersfs', image, mnt, '-o', 'bogus'],
          /Cannot use mount option "bogus": not a kheadersfs or generic mount option/,
        ],
        [
          'image given twice',
          (mnt: string) => ['-t', 'fuse.kheadersfs', image, mnt, '-o', `image=${image}`],
          /the image is given twice/,
        ],
        [
          'missing image',
          (mnt: string) => ['-t', 'kheadersfs', '/nonexistent.img', mnt],
          /Cannot read image \/nonexistent\.img: no such file/,
        ],
      ] as const) {
        const d = mountDirs(t)
        const r = await run('mount', args(d.mnt), { env: d.env })
        t.not(r.code, 0, `${name}: non-zero exit`)
        t.match(errorLines(r.stderr).join('\n'), re, name)
        t.notOk(isMounted(d.mnt), `${name}: nothing mounted`)
        t.same(daemonPids(d.runDir), [], `${name}: no daemon`)
      }
      const d = mountDirs(t)
      const fake = await run('mount', ['-f', '-t', 'kheadersfs', image, d.mnt, '-o', 'force'], { env: d.env })
      t.equal(fake.code, 0, 'mount -f (fake) succeeds')
      t.notOk(isMounted(d.mnt), 'mount -f mounts nothing')
    })

    t.test(
      'systemd-analyze verify accepts the installed units',
      { skip: !existsSync('/usr/bin/systemd-analyze') && 'systemd-analyze is not installed' },
      async (t) => {
        // Verify copies: the template under an instance name, the mount unit under its own name.
        const dir = tmpDir(t)
        const unitdir = DEFAULT_DIRS.unitdir
        copyFileSync(path.join(unitdir, 'kheadersfs@.service'), path.join(dir, 'kheadersfs@.service'))
        copyFileSync(path.join(unitdir, 'proc\\x2dext.mount'), path.join(dir, 'proc\\x2dext.mount'))
        for (const unit of ['kheadersfs@proc\\x2dext.service', 'proc\\x2dext.mount']) {
          const r = await run('systemd-analyze', ['verify', '--man=no', path.join(dir, unit)], { cwd: dir })
          t.equal(r.code, 0, `${unit}: ${r.stderr.trim() || 'clean'}`)
          t.equal(r.stderr.trim(), '', `${unit}: no warnings`)
        }
        // The oracle can fail: a unit naming a missing program is rejected.
        writeFileSync(path.join(dir, 'broken@.service'), '[Service]\nExecStart=/nonexistent/kheadersfs mount %f\n')
        const bad = await run('systemd-analyze', ['verify', '--man=no', path.join(dir, 'broken@x.service')], {
          cwd: dir,
        })
        t.not(bad.code, 0, 'a broken unit fails verification')
      },
    )
  },
)
