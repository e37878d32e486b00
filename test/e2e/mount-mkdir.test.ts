// mount --mkdir and -o X-mount.mkdir[=MODE] with real mounts: the mountpoint and its parents are
// created (mode as asked, whatever the umask), left after umount as util-linux leaves them, removed
// again when the mount fails; as root nothing is created where another user could redirect it. The
// same option through the mount.fuse calling form and busybox mount(8), which hands it to the helper
// (util-linux's mount creates the directory itself and never passes the option on).
import { spawnSync } from 'node:child_process'
import {
  chmodSync,
  chownSync,
  existsSync,
  lchownSync,
  mkdirSync,
  readdirSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import path from 'node:path'
import t, { type Test } from 'tap'
import { CLI, errorLines, run, runCli } from '../helpers/cli'
import { tinyImage } from '../helpers/images'
import { cleanupMount, daemonPids, isMounted, waitGone } from '../helpers/mount'
import { tmpDir } from '../helpers/tmp'

const root = process.getuid?.() === 0

/** A fresh base directory and run directory; every mountpoint handed out is unmounted in teardown. */
function place(t: Test): { base: string; env: Record<string, string>; at: (rel: string) => string } {
  const base = tmpDir(t, 'kheadersfs-mkdir-')
  chmodSync(base, 0o755)
  const runDir = path.join(base, '.run')
  const mnts: string[] = []
  t.teardown(() => {
    for (const m of mnts) cleanupMount(m, runDir)
  })
  return {
    base,
    env: { KHEADERSFS_RUN_DIR: runDir },
    at: (rel) => {
      const m = path.join(base, rel)
      mnts.push(m)
      return m
    },
  }
}

const mode = (p: string): number => statSync(p).mode & 0o7777

t.test('mount --mkdir', async (t) => {
  const image = await tinyImage(t)
  const other = await tinyImage(t, '1.2.3-other')

  t.test('creates the mountpoint and its parents (0755), serves, and umount leaves them', async (t) => {
    const p = place(t)
    const mnt = p.at('a/b/mnt')
    const r = await runCli(['mount', '--mkdir', '--image', image, mnt], { env: p.env })
    t.equal(r.code, 0, r.stderr)
    t.ok(isMounted(mnt), 'mounted')
    t.ok(statSync(path.join(mnt, 'kheaders.txz')).size > 0, 'served')
    t.same([mode(path.join(p.base, 'a')), mode(path.join(p.base, 'a/b'))], [0o755, 0o755], 'parents 0755')
    const [pid] = daemonPids(path.join(p.base, '.run'))
    const u = await run('umount', [mnt])
    t.equal(u.code, 0, u.stderr)
    t.ok(await waitGone(pid), 'the daemon exited')
    t.equal(mode(mnt), 0o755, 'the mountpoint stays after umount, 0755, as util-linux leaves it')
    const again = await runCli(['mount', '-m', '--image', image, mnt], { env: p.env })
    t.equal(again.code, 0, `-m on an existing directory: mounts (${again.stderr})`)
  })

  t.test('--mkdir=MODE and -o X-mount.mkdir=MODE: that mode, whatever the umask', async (t) => {
    const p = place(t)
    const a = p.at('m1/mnt')
    const b = p.at('m2/mnt')
    const sh = (args: string[]) =>
      run('sh', ['-c', 'umask 077; exec "$@"', 'sh', process.execPath, CLI, ...args], { env: p.env })
    const r1 = await sh(['mount', '--mkdir=0750', '--image', image, a])
    t.equal(r1.code, 0, r1.stderr)
    const r2 = await sh(['mount', '-o', 'ro,X-mount.mkdir=0711', '--image', image, b])
    t.equal(r2.code, 0, r2.stderr)
    t.same([mode(path.join(p.base, 'm1')), mode(path.join(p.base, 'm2'))], [0o750, 0o711])
    t.ok(isMounted(a) && isMounted(b))
  })

  t.test('a failed mount removes what it created, and only that', async (t) => {
    const p = place(t)
    mkdirSync(path.join(p.base, 'kept'))
    const mnt = p.at('kept/new/deeper/mnt')
    const r = await runCli(['mount', '--mkdir', '--image', other, mnt], { env: p.env })
    t.equal(r.code, 4, 'an image for another release: exit 4')
    t.match(errorLines(r.stderr)[0], /it is for kernel 1\.2\.3-other/)
    t.notOk(isMounted(mnt))
    t.same(readdirSync(path.join(p.base, 'kept')), [], 'kept/ is empty again: new/deeper/mnt removed')
    const bad = await runCli(['mount', '--mkdir=0999', '--image', image, p.at('x')], { env: p.env })
    t.equal(bad.code, 2, 'a bad mode: usage error')
    t.match(errorLines(bad.stderr)[0], /X-mount\.mkdir=0999": give an octal mode such as 0755/)
    t.notOk(existsSync(path.join(p.base, 'x')), 'nothing created')
  })

  t.test('the mount.fuse calling form and busybox mount(8) pass X-mount.mkdir to kheadersfs', async (t) => {
    const p = place(t)
    const direct = p.at('direct/mnt')
    const r = await runCli([image, direct, '-o', 'X-mount.mkdir'], { env: p.env })
    t.equal(r.code, 0, r.stderr)
    t.ok(isMounted(direct), 'kheadersfs IMAGE DIR -o X-mount.mkdir')
    const busybox = spawnSync('sh', ['-c', 'command -v busybox'], { encoding: 'utf8' }).stdout.trim()
    if (!busybox || !root) {
      t.comment('busybox mount: skipped, needs busybox and root')
      return
    }
    // busybox runs mount.fuse.kheadersfs from PATH with SOURCE DIR -o OPTS, the mount.fuse form.
    const bin = path.join(p.base, 'bin')
    mkdirSync(bin)
    writeFileSync(
      path.join(bin, 'mount.fuse.kheadersfs'),
      `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} "$@"\n`,
      { mode: 0o755 },
    )
    const mnt = p.at('bb/mnt')
    // Source "auto": busybox would set up a loop device for a file given as the source.
    const b = await run(
      busybox,
      ['mount', '-t', 'fuse.kheadersfs', '-o', `X-mount.mkdir,image=${image}`, 'auto', mnt],
      {
        env: { ...p.env, PATH: `${bin}:${process.env.PATH}` },
      },
    )
    t.equal(b.code, 0, b.stderr)
    t.ok(isMounted(mnt), 'busybox mount -t fuse.kheadersfs -o X-mount.mkdir')
    t.equal(mode(path.join(p.base, 'bb')), 0o755)
  })

  t.test('as root, nowhere another user could redirect it', { skip: !root && 'needs root' }, async (t) => {
    const p = place(t)
    const ww = path.join(p.base, 'ww')
    mkdirSync(ww)
    chmodSync(ww, 0o777)
    const theirs = path.join(p.base, 'theirs')
    mkdirSync(theirs)
    chownSync(theirs, 1000, 1000)
    const safe = path.join(p.base, 'safe')
    mkdirSync(safe)
    const link = path.join(p.base, 'link')
    symlinkSync(safe, link)
    lchownSync(link, 1000, 1000)
    const rootLink = path.join(p.base, 'rootlink')
    symlinkSync(safe, rootLink)
    const cases: Array<[string, RegExp]> = [
      [path.join(ww, 'a/mnt'), /anyone can write .*\/ww, so another user could choose where root creates it/],
      [path.join(theirs, 'mnt'), /\/theirs belongs to uid 1000, so another user could choose/],
      [path.join(link, 'mnt'), /\/link is a link owned by uid 1000, so another user could choose/],
    ]
    for (const [mnt, re] of cases) {
      const r = await runCli(['mount', '--mkdir', '--image', image, p.at(path.relative(p.base, mnt))], { env: p.env })
      t.equal(r.code, 9, `${mnt}: exit 9`)
      t.match(errorLines(r.stderr)[0], re)
      t.notOk(existsSync(mnt), `${mnt}: nothing created`)
    }
    t.same(readdirSync(ww), [])
    t.same(readdirSync(safe), [], 'nothing created through the link')
    p.at('safe/mnt') // where the next mount lands, for teardown
    const ok = await runCli(['mount', '--mkdir', '--image', image, p.at('rootlink/mnt')], { env: p.env })
    t.equal(ok.code, 0, `a link of root's own is followed (${ok.stderr})`)
    t.ok(existsSync(path.join(safe, 'mnt')))
  })
})
