// The kernel hooks on an emulated Debian trixie arm64 board (qemu-user), with Debian's own kernel
// packages and apt, as a board owner runs them. The board starts from the cached toolchain layer
// (Debian's arm64 headers installed: test/helpers/board.ts), so the test first removes the headers
// package, then:
// 1. apt-get install linux-headers-<release>-arm64 → the header_postinst.d hook packs
//    /lib/modules/<release>/kheaders.img; kheadersfs info reads it; kheadersfs mount /proc-ext finds
//    it by release (QEMU_UNAME) and serves it; umount. The hook's time and apt's are measured against
//    `node -e 0` on the same board.
// 2. The same package installed again: the image is up to date, not packed twice.
// 3. apt-get remove of the headers package → the dpkg trigger on /usr/src removes the image.
// 4. PACK=no in /etc/kheadersfs/kernel-hooks.conf, then KHEADERSFS_KERNEL_HOOKS=off for one run:
//    installing and reinstalling the headers packs nothing.
// 5. A full file system under /lib/modules/<release> (a 1 MiB tmpfs): the pack fails, apt still
//    exits 0 with one warning line, and nothing is left there (no image, no temp file).
// 6. An image placed by hand: the hooks neither replace it (headers reinstalled) nor remove it
//    (headers removed).
// 7. The hooks pack again; the kernel's postrm.d hook on "upgrade" keeps the image; apt-get purge
//    kheadersfs removes it and the records, and leaves the hand-placed image of another release.
import { spawnSync } from 'node:child_process'
import path from 'node:path'
import t from 'tap'
import { ARM64_TOOLCHAIN, Board, boardSkipReason, debFor, mountsUnder, type RunResult } from '../helpers/board'
import { ROOT } from '../helpers/cli'

const DAEMON = /kheadersfs|node/
/** A string as a literal inside a RegExp (a release holds "+" and "."). */
const re = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
const HAND_RELEASE = '9.9.9-hand'

t.test(
  'kernel hooks on a trixie arm64 board: Debian headers installed → image packed; removed → image removed',
  { skip: boardSkipReason('arm64', 'trixie') },
  async (t) => {
    const deb = debFor(ROOT, 'arm64')
    if (deb === undefined) return t.fail('no build/packages/kheadersfs_*_arm64.deb: run packaging/build.sh arm64 first')
    const b = await Board.create(t, 'trixie', 'arm64', { layer: ARM64_TOOLCHAIN })
    const inst = await b.installDeb(deb, { update: false })
    t.comment(`apt-get install ./${path.basename(deb)}: ${(inst.ms / 1000).toFixed(1)} s`)
    for (const f of [
      'etc/kernel/header_postinst.d/kheadersfs',
      'etc/kernel/postinst.d/kheadersfs',
      'etc/kernel/postrm.d/kheadersfs',
      'etc/kheadersfs/kernel-hooks.conf',
    ])
      t.match((await b.must(`dpkg-query -W -f='\${Conffiles}' kheadersfs`)).stdout, `/${f} `, `conffile /${f}`)

    const uts = await b.must('cat /usr/src/linux-headers-*-arm64/include/generated/utsrelease.h')
    const release = /UTS_RELEASE "([^"]+)"/.exec(uts.stdout)?.[1]
    if (release === undefined) throw new Error(`no UTS_RELEASE in ${uts.stdout}`)
    const pkg = `linux-headers-${release}`
    const image = `/lib/modules/${release}/kheaders.img`
    const has = async (p: string): Promise<boolean> => (await b.run(`test -e ${p}`)).code === 0
    const sha = async (p: string): Promise<string> => (await b.must(`sha256sum ${p}`)).stdout.split(' ')[0]
    const apt = async (args: string, env: Record<string, string> = {}): Promise<RunResult> => {
      const r = await b.apt(`${args} -y -q`, { env, timeoutMs: 3600_000 })
      t.equal(r.code, 0, `apt-get ${args} exits 0: ${r.stdout.slice(-1500)}${r.stderr.slice(-1500)}`)
      return r
    }
    // run-parts --report puts the hook's name before its first line of output: match anywhere.
    const hookLines = (r: RunResult): string[] =>
      `${r.stdout}\n${r.stderr}`.split('\n').flatMap((l) => /kheadersfs: .*/.exec(l) ?? [])

    // node's own start on this board, the yardstick for the times below (median of three).
    const nodeMs: number[] = []
    for (let i = 0; i < 3; i++) nodeMs.push((await b.must('node -e 0')).ms)
    const node0 = nodeMs.sort((x, y) => x - y)[1]

    await apt(`remove linux-headers-arm64 ${pkg}`)
    t.notOk(await has(image), 'no image before the headers are installed')

    // 1. Headers installed → image packed, found by release, mounted.
    const installed = await apt(`install ${pkg}`)
    const packed = hookLines(installed).find((l) => l.includes(`packed ${image}`))
    t.ok(packed, `the hook says it packed ${image}: ${hookLines(installed).join(' | ')}`)
    const hookSecs = Number(/ in ([\d.]+) s$/.exec(packed ?? '')?.[1] ?? NaN)
    t.ok(await has(image), `${image} is there`)
    const info = JSON.parse((await b.must(`kheadersfs info --json ${image}`)).stdout) as {
      release: string
      profile: string
    }
    t.same([info.release, info.profile], [release, 'module-build'], 'kheadersfs info: the release, module-build')
    await b.must('mkdir -p /proc-ext')
    const env = { QEMU_UNAME: release }
    const m = await b.run('kheadersfs mount /proc-ext', { env, timeoutMs: 600_000 })
    t.equal(m.code, 0, `kheadersfs mount /proc-ext finds the image by release: ${m.stderr}`)
    if (m.code === 0) {
      t.match((await b.must('tar -tJf /proc-ext/kheaders.txz')).stdout, /^include\/linux\/module\.h$/m, 'tar -tJf')
      t.match((await b.must('zcat /proc-ext/config.gz')).stdout, /^CONFIG_ARM64=y$/m, 'zcat config.gz')
      t.equal((await b.run('kheadersfs umount /proc-ext', { env })).code, 0, 'kheadersfs umount')
      t.ok(await b.waitNone(DAEMON, 20000), 'no daemon left after umount')
      t.same(mountsUnder(b.path('proc-ext')), [], '/proc-ext is unmounted')
    }
    const size = Number((await b.must(`stat -c %s ${image}`)).stdout)
    const treeKiB = (await b.must(`du -sk --apparent-size /usr/src/${pkg} /usr/src/linux-headers-*-common`)).stdout
    t.comment(
      `times on the board: node -e 0 ${node0} ms; apt-get install ${pkg} ${(installed.ms / 1000).toFixed(1)} s ` +
        `(${(installed.ms / node0).toFixed(0)}× node -e 0), of which the hook's pack ${hookSecs} s ` +
        `(${((hookSecs * 1000) / node0).toFixed(0)}× node -e 0); mount ${(m.ms / 1000).toFixed(1)} s ` +
        `(${(m.ms / node0).toFixed(0)}× node -e 0); image ${size} bytes; headers trees (KiB): ${treeKiB.replace(/\n/g, ' ')}`,
    )

    // 2. Installed again: the image is up to date.
    const before = await sha(image)
    const again = await apt(`install --reinstall ${pkg}`)
    t.ok(
      hookLines(again).some((l) => l.includes('is up to date')),
      `reinstalled: not packed twice: ${hookLines(again).join(' | ')}`,
    )
    t.equal(await sha(image), before, 'the image is unchanged')

    // 3. Headers removed → image removed (dpkg trigger on /usr/src).
    const removed = await apt(`remove ${pkg}`)
    t.ok(
      hookLines(removed).some((l) => l.includes(`removed ${image}`)),
      `the trigger removed it: ${hookLines(removed).join(' | ')}`,
    )
    t.notOk(await has(image), 'apt-get remove of the headers removed the image')
    t.notOk(await has(`/var/lib/kheadersfs/kernel-hooks/${release}`), 'and its record')

    // 4. Off switches: the settings file, then the environment for one run.
    await b.must("sed -i 's/^PACK=yes$/PACK=no/' /etc/kheadersfs/kernel-hooks.conf")
    const off = await apt(`install ${pkg}`)
    t.ok(
      hookLines(off).some((l) => /not packing: PACK=no/.test(l)),
      `PACK=no: ${hookLines(off).join(' | ')}`,
    )
    t.notOk(await has(image), 'PACK=no: no image')
    await b.must("sed -i 's/^PACK=no$/PACK=yes/' /etc/kheadersfs/kernel-hooks.conf")
    const envOff = await apt(`install --reinstall ${pkg}`, { KHEADERSFS_KERNEL_HOOKS: 'off' })
    t.ok(
      hookLines(envOff).some((l) => /not packing: KHEADERSFS_KERNEL_HOOKS=off/.test(l)),
      `KHEADERSFS_KERNEL_HOOKS=off: ${hookLines(envOff).join(' | ')}`,
    )
    t.notOk(await has(image), 'KHEADERSFS_KERNEL_HOOKS=off: no image')

    // 5. A full file system: the pack fails, apt goes on.
    const dir = b.path(`lib/modules/${release}`)
    const tiny = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'kheadersfs-test-full', dir])
    t.equal(tiny.status, 0, 'a 1 MiB tmpfs over the modules directory')
    try {
      const full = await apt(`install --reinstall ${pkg}`)
      const warnings = full.stderr.split('\n').flatMap((l) => /kheadersfs: warning:.*/.exec(l) ?? [])
      t.equal(warnings.length, 1, `one warning line: ${full.stderr.slice(-1500)}`)
      t.match(
        warnings[0],
        new RegExp(
          `^kheadersfs: warning: cannot pack the image for ${re(release)}: Cannot write ${re(image)}: no space left`,
        ),
      )
      // The headers package's own build and source links are there; nothing of kheadersfs's.
      const left = (await b.must(`ls -A /lib/modules/${release}`)).stdout.split('\n').filter(Boolean)
      t.same(
        left.filter((f) => /kheaders/.test(f)),
        [],
        `nothing left: no image, no temp file (${left.join(' ')})`,
      )
    } finally {
      spawnSync('umount', [dir])
    }
    t.notOk(await has(image), 'no image after the failed pack')

    // 6. An image placed by hand.
    const hand = await b.must('head -c 4096 /dev/urandom > /root/hand.img && sha256sum /root/hand.img')
    const handSha = hand.stdout.split(' ')[0]
    await b.must(`cp /root/hand.img ${image}`)
    const kept = await apt(`install --reinstall ${pkg}`)
    t.ok(
      hookLines(kept).some((l) => l.includes(`kept ${image}: not packed by the kernel hooks`)),
      `not replaced: ${hookLines(kept).join(' | ')}`,
    )
    await apt(`remove ${pkg}`)
    t.equal(await sha(image), handSha, 'the hand-placed image is still there after the headers went')
    await b.must(`rm ${image}`)

    // 7. Packed again; the kernel's postrm.d on "upgrade" keeps it; purging kheadersfs removes it.
    await b.must(`mkdir -p /lib/modules/${HAND_RELEASE} && cp /root/hand.img /lib/modules/${HAND_RELEASE}/kheaders.img`)
    const repacked = await apt(`install ${pkg}`)
    t.ok(await has(image), `packed again: ${hookLines(repacked).join(' | ')}`)
    const up = await b.run(
      `DEB_MAINT_PARAMS='upgrade 1' /etc/kernel/postrm.d/kheadersfs ${release} /boot/vmlinuz-${release}`,
    )
    t.same([up.code, await has(image)], [0, true], 'postrm.d on "upgrade": the image stays')
    await apt('purge kheadersfs')
    t.notOk(await has(image), 'purge removed the image the hooks packed')
    t.notOk(await has('/var/lib/kheadersfs'), 'and the records')
    t.notOk(await has('/etc/kernel/header_postinst.d/kheadersfs'), 'and the conffiles')
    t.equal(await sha(`/lib/modules/${HAND_RELEASE}/kheaders.img`), handSha, 'the hand-placed image stays')
  },
)
