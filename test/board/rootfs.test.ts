// The root file system tarball (packaging/tarball.sh) on an emulated arm64 root without dpkg, as a Yocto or
// Buildroot image holds it: busybox and its applets, glibc, node and its libraries, libfuse 2, fusermount
// (test/helpers/minimal-root.ts; merged /usr, so a top-level entry in the tarball would replace /sbin).
// busybox `tar -xzf` of the tarball into / → the links /bin /sbin /lib are still links → an image packed on
// this host at /lib/modules/<release>/kheaders.img → `kheadersfs mount /proc-ext` by release (QEMU_UNAME)
// → busybox `tar -xJf` of kheaders.txz, a known header in it → busybox umount → no daemon →
// busybox `mount -t kheadersfs auto` through the /usr/sbin helper → umount → removal by the FILES list
// leaves the root as it was.
import { copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { Board, boardSkipReason, mountsUnder } from '../helpers/board'
import { ROOT, runCli } from '../helpers/cli'
import { debianTree, packedImage, SKIP_NO_DEBIAN } from '../helpers/debian'
import { ABSENT, minimalRoot } from '../helpers/minimal-root'

const tree = debianTree()
const DAEMON = /kheadersfs|node/
const VERSION = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version
const TARBALL = path.join(ROOT, 'build', 'packages', `kheadersfs-${VERSION}-arm64.tar.gz`)
/** Mounted in every board (not part of the root's files), or made by this test on purpose. */
const SKIP_DIRS = new Set(['/proc', '/sys', '/dev', '/run', '/tmp', '/proc-ext'])

/** Every path in the board's root with its kind (d, l, f), mounts left out. */
function snapshot(root: string): string[] {
  const out: string[] = []
  const walk = (rel: string): void => {
    for (const name of readdirSync(path.join(root, rel)).sort()) {
      const p = path.posix.join(rel, name)
      if (SKIP_DIRS.has(p)) continue
      const st = lstatSync(path.join(root, p))
      out.push(`${st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : 'f'} ${p}`)
      if (st.isDirectory()) walk(p)
    }
  }
  walk('/')
  return out
}

t.test(
  'the rootfs tarball on a minimal arm64 root without dpkg',
  { skip: boardSkipReason('arm64', 'trixie') || (tree === undefined && SKIP_NO_DEBIAN) },
  async (t) => {
    if (!existsSync(TARBALL)) {
      t.fail(`no ${path.relative(ROOT, TARBALL)}: run packaging/build.sh arm64 first`)
      return
    }
    const image = await packedImage(tree!, 'headers')
    const info = await runCli(['info', '--json', image])
    t.equal(info.code, 0, `kheadersfs info: ${info.stderr}`)
    const release = (JSON.parse(info.stdout) as { release: string }).release
    const env = { QEMU_UNAME: release }

    const b = Board.onRoot(t, 'trixie', 'arm64', await minimalRoot(t))

    // What the root is: a Yocto/Buildroot-like image, nothing of Debian's package tools.
    const absent = await b.run(
      `for c in ${ABSENT.join(' ')}; do command -v $c; done; ls -d /var/lib/dpkg /usr/bin/perl* /usr/bin/python* 2>/dev/null; true`,
    )
    t.equal(absent.stdout.trim(), '', `no ${ABSENT.join(', ')} in the root`)
    const present = await b.run(
      'for l in /bin/sh /bin/tar /bin/umount; do readlink $l; done; for c in node fusermount; do command -v $c; done; ls /usr/lib/libfuse.so.2 /usr/lib/liblzma.so.5; for l in /sbin /bin /lib; do readlink $l; done',
    )
    t.equal(
      present.stdout.trim().split('\n').join(' '),
      '/usr/bin/busybox /usr/bin/busybox /usr/bin/busybox /usr/bin/node /usr/bin/fusermount /usr/lib/libfuse.so.2 /usr/lib/liblzma.so.5 usr/sbin usr/bin usr/lib',
      'busybox applets as links, node, fusermount, libfuse 2, liblzma; /sbin, /bin, /lib link into /usr',
    )

    // The image where `kheadersfs mount` looks for the running release, and the mountpoint.
    mkdirSync(b.path(`lib/modules/${release}`), { recursive: true })
    copyFileSync(image, b.path(`lib/modules/${release}/kheaders.img`))
    await b.must('mkdir -p /proc-ext')
    const before = snapshot(b.root)

    // Install: busybox tar into /.
    copyFileSync(TARBALL, b.path(`tmp/${path.basename(TARBALL)}`))
    const x = await b.run(`tar -xzf /tmp/${path.basename(TARBALL)} -C /`)
    t.equal(x.code, 0, `busybox tar -xzf ${path.basename(TARBALL)} -C /: ${x.stderr}`)
    const links = await b.run('for l in /sbin /bin /lib; do readlink $l; done; ls /sbin/mount.kheadersfs')
    t.equal(
      links.stdout.trim().split('\n').join(' '),
      'usr/sbin usr/bin usr/lib /sbin/mount.kheadersfs',
      'after the install /sbin, /bin, /lib are still links into /usr, and mount.kheadersfs is in /sbin through it',
    )
    const ver = await b.run('kheadersfs --version')
    t.match(ver.stdout, VERSION, `kheadersfs --version: ${ver.stdout.trim()}${ver.stderr}`)

    // The two figures: node's start and the mount, on this root.
    const node = await b.run('node -e 0')
    t.equal(node.code, 0, `node -e 0: ${node.stderr}`)
    t.comment(`minimal arm64 root: node -e 0 ${(node.ms / 1000).toFixed(1)} s`)
    const m = await b.run('kheadersfs mount /proc-ext', { env, timeoutMs: 300000 })
    t.comment(`minimal arm64 root: kheadersfs mount /proc-ext ${(m.ms / 1000).toFixed(1)} s`)
    t.equal(m.code, 0, `kheadersfs mount /proc-ext (release ${release}): ${m.stdout}${m.stderr}`)
    if (m.code === 0) {
      // -J: Debian's busybox is built without FEATURE_TAR_AUTODETECT (plain -xf says "invalid tar magic").
      const h = await b.run('mkdir -p /root/h && tar -xJf /proc-ext/kheaders.txz -C /root/h')
      t.equal(h.code, 0, `busybox tar -xJf /proc-ext/kheaders.txz: ${h.stderr}`)
      const kconfig = b.path('root/h/include/linux/kconfig.h')
      t.ok(existsSync(kconfig), 'include/linux/kconfig.h extracted')
      if (existsSync(kconfig))
        // pack strips comments, so the file is not the tree's byte for byte: its definitions are there.
        t.match(readFileSync(kconfig, 'utf8'), /#define IS_ENABLED\(option\)/, 'kconfig.h defines IS_ENABLED')
      await b.must('rm -rf /root/h')
      const um = await b.run('umount /proc-ext')
      t.equal(um.code, 0, `busybox umount /proc-ext: ${um.stderr}`)
      t.ok(await b.waitNone(DAEMON, 15000), `no daemon left: ${JSON.stringify(b.live(DAEMON))}`)
      t.same(mountsUnder(b.path('proc-ext')), [], '/proc-ext is no longer mounted')
    }

    // busybox mount runs mount.<type> from PATH: the helper in /usr/sbin.
    const bm = await b.run('mount -t kheadersfs auto /proc-ext && ls /proc-ext', { env, timeoutMs: 300000 })
    t.equal(bm.code, 0, `busybox mount -t kheadersfs auto /proc-ext: ${bm.stderr}`)
    t.match(bm.stdout, /kheaders\.txz/, 'the helper mount serves kheaders.txz')
    if (bm.code === 0) {
      t.equal((await b.run('umount /proc-ext')).code, 0, 'busybox umount of the helper mount')
      t.ok(await b.waitNone(DAEMON, 15000), `no daemon left: ${JSON.stringify(b.live(DAEMON))}`)
    }

    // Removal by the list: files and links, then the directories (children first) that are empty now.
    const rm = await b.run(
      'while read -r p; do case $p in */) rmdir "$p" 2>/dev/null || true ;; *) rm -f "$p" ;; esac; done </usr/lib/kheadersfs/FILES',
    )
    t.equal(rm.code, 0, `removal by /usr/lib/kheadersfs/FILES: ${rm.stderr}`)
    const after = snapshot(b.root)
    t.same(
      after.filter((p) => !before.includes(p)),
      [],
      'nothing of the tarball is left after the removal',
    )
    t.same(
      before.filter((p) => !after.includes(p)),
      [],
      'the removal took nothing that was there before',
    )
  },
)
