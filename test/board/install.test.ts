// The .deb from packaging/build.sh on fresh Debian roots, one per architecture: trixie amd64 (native),
// trixie arm64 and armhf (qemu-user), bookworm amd64 (Debian's Node 18, the oldest supported), and
// bookworm armhf (qemu-user, 32-bit time_t: the ~deb12 package). Each root has no compiler, and must
// still have none after the install. On the two armhf roots the other armhf package is tried first and
// must be refused for its libfuse dependency, leaving nothing installed. Then the board flow with an
// image packed on this host: /lib/modules/<release>/kheaders.img → kheadersfs mount /proc-ext (the
// release comes from QEMU_UNAME under qemu, like `uname -r` on the real board) → read kheaders.txz and
// config.gz → kheadersfs status → external umount → no daemon left → apt-get purge leaves no file.
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import {
  Board,
  boardSkipReason,
  debFor,
  mountsUnder,
  type Arch,
  type PackageTarget,
  type Suite,
} from '../helpers/board'
import { ROOT, runCli } from '../helpers/cli'
import { debianTree, packedImage, SKIP_NO_DEBIAN } from '../helpers/debian'
import { tmpDir } from '../helpers/tmp'

interface Target {
  suite: Suite
  arch: Arch
  /** Also install man-db and systemd: man page rendering, systemd-analyze verify of the units. */
  extras: boolean
  /** The build.sh target whose package this system takes (default: arch). */
  pkg?: PackageTarget
  /** A package this system must refuse (apt cannot satisfy its libfuse dependency), and that library. */
  wrong?: { pkg: PackageTarget; lib: string }
}

const TARGETS: Target[] = [
  { suite: 'trixie', arch: 'amd64', extras: true },
  { suite: 'trixie', arch: 'arm64', extras: false },
  { suite: 'trixie', arch: 'armhf', extras: false, wrong: { pkg: 'armhf-time32', lib: 'libfuse2' } },
  { suite: 'bookworm', arch: 'amd64', extras: false },
  { suite: 'bookworm', arch: 'armhf', extras: false, pkg: 'armhf-time32', wrong: { pkg: 'armhf', lib: 'libfuse2t64' } },
]
const only = process.env.KHEADERSFS_BOARDS?.split(',') // e.g. "trixie-arm64,bookworm-amd64"
const tree = debianTree()
const DAEMON = /kheadersfs|node/

interface ImageInfo {
  release: string
  payloads: Record<string, { sha256: string }>
}

async function info(image: string): Promise<ImageInfo> {
  const r = await runCli(['info', '--json', image])
  if (r.code !== 0) throw new Error(`info failed: ${r.stderr}`)
  return JSON.parse(r.stdout) as ImageInfo
}

for (const target of TARGETS) {
  const name = `${target.suite}-${target.arch}`
  if (only && !only.includes(name)) continue
  const skip = boardSkipReason(target.arch, target.suite) || (tree === undefined && SKIP_NO_DEBIAN)
  t.test(`install on ${name}`, { skip }, async (t) => {
    const pkg = target.pkg ?? target.arch
    const deb = debFor(ROOT, pkg)
    const wrongDeb = target.wrong && debFor(ROOT, target.wrong.pkg)
    if (deb === undefined || (target.wrong && wrongDeb === undefined)) {
      t.fail(`no package for ${pkg}${target.wrong ? ` or ${target.wrong.pkg}` : ''}: run packaging/build.sh first`)
      return
    }
    const step = (label: string, ms: number): void => {
      t.comment(`${name}: ${label} ${(ms / 1000).toFixed(1)} s`)
    }
    // The image: Debian's amd64 headers of this host, headers profile. Under qemu the board's release
    // is QEMU_UNAME, set to the image's; an amd64 root runs natively and sees this host's `uname -r`,
    // so its image is packed with that release recorded.
    const emulated = target.arch !== 'amd64'
    let image: string
    if (emulated) {
      image = await packedImage(tree!, 'headers')
    } else {
      image = path.join(tmpDir(t), 'host-release.img')
      const p = await runCli(
        ['pack', '--kernel', tree!.objtree, '--profile', 'headers', '--release', os.release(), '-o', image],
        { env: { KHEADERSFS_LOG_LEVEL: 'warn' } },
      )
      t.equal(p.code, 0, `pack --release ${os.release()}: ${p.stderr}`)
    }
    const img = await info(image)
    const release = img.release
    const env: Record<string, string> = emulated ? { QEMU_UNAME: release } : {}

    let t0 = Date.now()
    const b = await Board.create(t, target.suite, target.arch)
    step('fresh root', Date.now() - t0)
    const up = await b.aptUpdate()
    step('apt-get update', up.ms)

    if (target.wrong && wrongDeb) {
      // The armhf package of the other time_t ABI: apt must stop at its libfuse dependency before
      // unpacking anything (a time32 addon on a time64 libfuse, or the reverse, would misread stat).
      const before = await b.must("dpkg-query -W -f '${Package} ${Version} ${Status}\\n'")
      copyFileSync(wrongDeb, b.path(`tmp/${path.basename(wrongDeb)}`))
      const bad = await b.apt(`install -y -q /tmp/${path.basename(wrongDeb)}`)
      t.not(bad.code, 0, `apt-get install ./${path.basename(wrongDeb)} fails on ${name}`)
      t.match(
        bad.stdout + bad.stderr,
        new RegExp(`Depends: ${target.wrong.lib}\\b.*(not installable|not going to be installed)`),
        `it names the missing ${target.wrong.lib}`,
      )
      t.comment(
        `${name}: ${path.basename(wrongDeb)} refused: ${(bad.stdout + bad.stderr).match(/kheadersfs : Depends.*/)?.[0]}`,
      )
      const after = await b.must("dpkg-query -W -f '${Package} ${Version} ${Status}\\n'")
      t.equal(after.stdout, before.stdout, 'nothing was installed or removed')
      t.notOk(existsSync(b.path('usr/lib/kheadersfs')), 'no /usr/lib/kheadersfs')
    }

    const inst = await b.installDeb(deb)
    step(`apt-get install ./${path.basename(deb)}`, inst.ms)
    // What a board pays for any node program: the reference for the install and mount times (the
    // first run after the install, then a second one with the files in the page cache).
    for (const run of ['first', 'second']) {
      const node0 = await b.run('node -e 0', { env })
      t.equal(node0.code, 0, `node -e 0: ${node0.stderr}`)
      step(`node -e 0 (${run})`, node0.ms)
    }
    if (target.arch === 'armhf') {
      // Debian's armhf is ARMv7 (Thumb-2, VFPv3): on an ARMv6 CPU (Raspberry Pi Zero/1, qemu's arm1176)
      // its node does not start, so no armhf .deb can serve those boards. Measured: SIGILL on bookworm,
      // SIGSEGV in trixie's dynamic loader; either is a death by signal before any JavaScript runs.
      const v6 = await b.run('QEMU_CPU=arm1176 node -e "console.log(1)"; echo "exit $?"', { env })
      t.match(v6.stdout, /^exit (132|139)$/m, `node on an ARMv6 CPU (QEMU_CPU=arm1176) dies by SIGILL/SIGSEGV`)
      t.notMatch(v6.stdout, /^1$/m, 'no JavaScript ran')
      t.comment(`${name}: QEMU_CPU=arm1176 node: ${v6.stdout.trim()}`)
    }
    const noCc = await b.run(
      'for c in gcc cc make python3 g++ c++; do command -v $c; done; dpkg-query -W -f \'${Package} ${Status}\\n\' gcc make python3 2>/dev/null | grep " installed$"; true',
    )
    t.equal(noCc.stdout.trim(), '', 'no compiler, make or python3 in the root after installing the package')

    const dpkgL = await b.must('dpkg -L kheadersfs')
    const files = dpkgL.stdout.split('\n').filter((l) => l.startsWith('/'))
    for (const f of ['/usr/bin/kheadersfs', '/usr/lib/kheadersfs/app']) t.ok(files.includes(f), `dpkg -L lists ${f}`)
    t.ok(
      files.some((f) => /^(\/usr)?\/sbin\/mount\.kheadersfs$/.test(f)),
      'dpkg -L lists mount.kheadersfs',
    )
    t.ok(
      files.some((f) => /^\/usr\/lib\/systemd\/system\/kheadersfs@\.service$/.test(f)),
      'dpkg -L lists the systemd unit',
    )
    t.ok(
      files.some((f) => /\/man\/man1\/kheadersfs\.1(\.gz)?$/.test(f)),
      'dpkg -L lists the man page',
    )
    t.ok(
      files.some((f) => f.endsWith('.node')),
      'the native addons are in the package',
    )

    const node = await b.run("node --version; dpkg-query -W -f '${Version}' kheadersfs")
    t.comment(`${name}: node ${node.stdout.split('\n')[0]}, kheadersfs ${node.stdout.split('\n')[1]}`)
    const ver = await b.run('kheadersfs --version')
    t.equal(ver.code, 0, `kheadersfs --version runs: ${ver.stderr}`)
    const pkgVersion = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string })
      .version
    t.match(ver.stdout, pkgVersion, `--version says ${pkgVersion}: ${ver.stdout.trim()}`)
    // The native addons load on this arch (kheadersfs mount needs both).
    const addons = await b.run(
      "cd /usr/lib/kheadersfs/app && node -e \"require('./dist/src/native/binding.js').loadBinding(); require('lzma-native'); console.log('ok')\"",
    )
    t.equal(addons.stdout.trim(), 'ok', `the FUSE binding and lzma-native load: ${addons.stderr.slice(-1500)}`)

    if (target.extras) {
      t0 = Date.now()
      await b.aptInstall(['man-db', 'systemd'])
      step('apt-get install man-db systemd', Date.now() - t0)
      const man = await b.run('man -P cat kheadersfs', { env: { MANWIDTH: '80' } })
      t.equal(man.code, 0, `man -P cat kheadersfs: ${man.stderr}`)
      t.match(man.stdout, /kheadersfs/, 'the man page renders')
      t.match(man.stdout, /mount/, 'the man page describes mount')
      t.notMatch(man.stderr, /warning|error/i, 'man renders without warnings')
      const units = files.filter((f) => f.startsWith('/usr/lib/systemd/system/'))
      // A template unit is verified through an instance.
      const args = units.map((u) => (u.endsWith('@.service') ? u.replace('@.service', '@proc\\x2dext.service') : u))
      const va = await b.run(`systemd-analyze verify ${args.map((a) => `'${a}'`).join(' ')}`)
      t.equal(va.code, 0, `systemd-analyze verify ${args.join(' ')}: ${va.stderr}`)
      t.equal(va.stderr.trim(), '', 'systemd-analyze verify prints nothing')
    }

    // tar -J needs xz(1): Debian's minbase has none (kheadersfs itself does not need it).
    if ((await b.run('command -v xz')).code !== 0) {
      t.comment(`${name}: no xz in the root: installing xz-utils for tar -tJf`)
      await b.aptInstall(['xz-utils'])
    }
    // The image where modprobe-like lookup finds it on the board.
    mkdirSync(b.path(`lib/modules/${release}`), { recursive: true })
    copyFileSync(image, b.path(`lib/modules/${release}/kheaders.img`))
    await b.must('mkdir -p /proc-ext')
    const uname = await b.run('uname -r', { env })
    t.equal(uname.stdout.trim(), release, `the board's uname -r is the image's release ${release}`)
    const m = await b.run('kheadersfs mount /proc-ext', { env, timeoutMs: 300000 })
    step('kheadersfs mount /proc-ext', m.ms)
    t.equal(m.code, 0, `kheadersfs mount /proc-ext: ${m.stdout}${m.stderr}`)
    if (m.code === 0) {
      const sums = await b.run('sha256sum /proc-ext/kheaders.txz /proc-ext/config.gz')
      t.equal(sums.code, 0, `sha256sum of the served files ${sums.stderr}`)
      const got = Object.fromEntries(
        sums.stdout
          .trim()
          .split('\n')
          .map((l) => l.split(/\s+/).reverse() as [string, string]),
      )
      t.equal(
        got['/proc-ext/kheaders.txz'],
        img.payloads['kheaders.tar.xz'].sha256,
        "kheaders.txz read on the board = the host image's archive",
      )
      t.equal(
        got['/proc-ext/config.gz'],
        img.payloads['config.gz'].sha256,
        "config.gz read on the board = the host image's config",
      )
      t0 = Date.now()
      const list = await b.run('tar -tJf /proc-ext/kheaders.txz')
      step('tar -tJf /proc-ext/kheaders.txz', Date.now() - t0)
      t.equal(list.code, 0, `tar -tJf: ${list.stderr}`)
      t.match(list.stdout, /include\/linux\/kconfig\.h/, 'the archive lists include/linux/kconfig.h')
      const cfg = await b.run('zcat /proc-ext/config.gz | grep -c "^CONFIG_"')
      t.ok(Number(cfg.stdout.trim()) > 1000, `zcat config.gz: ${cfg.stdout.trim()} CONFIG_ lines`)
      const st = await b.run('kheadersfs status', { env })
      t.equal(st.code, 0, `kheadersfs status: ${st.stderr}`)
      t.match(st.stdout, /\/proc-ext/, `status lists /proc-ext:\n${st.stdout}`)
      t.match(st.stdout, release, 'status shows the release')
      const um = await b.run('umount /proc-ext')
      t.equal(um.code, 0, `external umount /proc-ext: ${um.stderr}`)
      t0 = Date.now()
      t.ok(await b.waitNone(DAEMON, 15000), `no kheadersfs daemon left in the root: ${JSON.stringify(b.live(DAEMON))}`)
      step('daemon exit after umount', Date.now() - t0)
      t.same(mountsUnder(b.path('proc-ext')), [], '/proc-ext is no longer mounted')
    }

    // Purge removes every file of the package.
    const purge = await b.apt('purge -y -q kheadersfs')
    t.equal(purge.code, 0, `apt-get purge: ${purge.stderr}`)
    const left = await b.run(
      `for f in ${files.map((f) => `'${f}'`).join(' ')}; do if { [ -e "$f" ] || [ -L "$f" ]; } && [ ! -d "$f" ]; then echo "$f"; fi; done; [ -e /usr/lib/kheadersfs ] && echo /usr/lib/kheadersfs; true`,
    )
    t.equal(left.stdout.trim(), '', 'no file of the package is left after purge')
    const gone = await b.run("dpkg-query -W -f '${Status}' kheadersfs")
    t.notMatch(gone.stdout, /installed/, `dpkg no longer knows kheadersfs: ${gone.stdout}`)
  })
}
