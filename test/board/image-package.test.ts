// An image package as a kernel vendor ships it, on an emulated Debian trixie arm64 board: the arm64
// kernel cross-built on this host (test/fixtures/cross-kernel.sh) → `kheadersfs pack --kernel TREE
// --deb` here → on the board, apt installs kheadersfs's arm64 .deb, then the image package →
// `kheadersfs mount /proc-ext` with no path finds /usr/lib/kheadersfs/<release>.img by the release
// (QEMU_UNAME) → the served kheaders.txz and config.gz are the image's (sha256) → umount, no daemon
// left → `apt-get purge` of the image package removes the image, and mount then says it has none.
// The mount time is printed beside `node -e 0` on the same board (no timing asserts).
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { parseImage } from '../../src/image/read'
import { ARM64_TOOLCHAIN, Board, boardSkipReason, debFor, mountsUnder } from '../helpers/board'
import { ROOT, runCli } from '../helpers/cli'
import { crossKernel } from '../helpers/cross-kernel'
import { tmpDir } from '../helpers/tmp'

const DAEMON = /kheadersfs|node/

t.test(
  'arm64 board: an image package of a cross-built kernel, installed with apt, mounted by release, purged',
  { skip: boardSkipReason('arm64', 'trixie') },
  async (t) => {
    const kheadersfsDeb = debFor(ROOT, 'arm64')
    if (kheadersfsDeb === undefined)
      return t.fail('no build/packages/kheadersfs_*_arm64.deb: run bash packaging/build.sh arm64 first')

    // On this host: the image package of the cross-built kernel.
    const tree = crossKernel('arm64')
    const release = /UTS_RELEASE "([^"]+)"/.exec(
      readFileSync(path.join(tree, 'include/generated/utsrelease.h'), 'utf8'),
    )![1]
    const out = tmpDir(t)
    let t0 = Date.now()
    const p = await runCli(['pack', '--kernel', tree, '--deb', '-o', out], {
      env: { KHEADERSFS_LOG_LEVEL: 'error', DEBFULLNAME: '', DEBEMAIL: '' },
    })
    t.equal(p.code, 0, `pack --deb of the cross-built tree: ${p.stderr.slice(-3000)}`)
    if (p.code !== 0) return
    const deb = p.stdout.trim().split('\n').at(-1)!
    const pkg = `kheadersfs-image-${release}`
    t.comment(`pack --deb on the host: ${((Date.now() - t0) / 1000).toFixed(1)} s, ${path.basename(deb)}`)
    t.equal(
      execFileSync('dpkg-deb', ['--field', deb, 'Architecture']).toString().trim(),
      'arm64',
      'arm64 from the kernel',
    )
    const image = execFileSync(
      'sh',
      ['-c', `dpkg-deb --fsys-tarfile "$1" | tar -xOf - "./usr/lib/kheadersfs/$2.img"`, 'sh', deb, release],
      {
        maxBuffer: 1 << 30,
      },
    )
    const manifest = parseImage(image, 'the packaged image').manifest
    t.equal(manifest.release, release)
    t.comment(`sizes: image ${image.length} bytes, image package ${readFileSync(deb).length} bytes`)

    // On the board: kheadersfs, then the image package, both with apt.
    const b = await Board.create(t, 'trixie', 'arm64', { layer: ARM64_TOOLCHAIN })
    t0 = Date.now()
    await b.installDeb(kheadersfsDeb, { update: false })
    t.comment(`apt-get install ./${path.basename(kheadersfsDeb)}: ${((Date.now() - t0) / 1000).toFixed(1)} s`)
    const inst = await b.installDeb(deb, { update: false })
    t.comment(`apt-get install ./${path.basename(deb)}: ${(inst.ms / 1000).toFixed(1)} s`)
    t.match((await b.must(`dpkg-query -W -f='\${Status}' ${pkg}`)).stdout, 'install ok installed')
    t.match((await b.must(`dpkg -L ${pkg}`)).stdout, `/usr/lib/kheadersfs/${release}.img`, 'dpkg owns the image')
    t.notOk(
      (await b.run(`test -e /lib/modules/${release}/kheaders.img`)).code === 0,
      'no image in /lib/modules/<release>: the package is the only source',
    )

    // Mount by release, with no path: the image package's image is found.
    const env = { QEMU_UNAME: release }
    await b.must('mkdir -p /proc-ext')
    const m = await b.run('kheadersfs mount /proc-ext', { env, timeoutMs: 600_000 })
    t.equal(m.code, 0, `kheadersfs mount /proc-ext: ${m.stdout}${m.stderr}`)
    if (m.code !== 0) return
    const sums = await b.must('sha256sum /proc-ext/kheaders.txz /proc-ext/config.gz')
    const [txz, cfg] = sums.stdout
      .trim()
      .split('\n')
      .map((l) => l.split(/\s+/)[0])
    t.equal(txz, manifest.payloads['kheaders.tar.xz'].sha256, "kheaders.txz is the packaged image's archive")
    t.equal(cfg, manifest.payloads['config.gz'].sha256, "config.gz is the packaged image's")
    const st = await b.run('kheadersfs status', { env })
    t.match(st.stdout, `/usr/lib/kheadersfs/${release}.img`, 'status names the packaged image')
    const um = await b.run('kheadersfs umount /proc-ext', { env })
    t.equal(um.code, 0, `kheadersfs umount: ${um.stderr}`)
    t.ok(await b.waitNone(DAEMON, 20000), `no daemon left: ${JSON.stringify(b.live(DAEMON))}`)
    t.same(mountsUnder(b.path('proc-ext')), [], '/proc-ext is unmounted')

    // The mount time against node's own start on the same board (median of 3 each).
    const median = (xs: number[]): number => [...xs].sort((a, c) => a - c)[1]
    const mounts = [m.ms]
    for (let i = 0; i < 2; i++) {
      const again = await b.must('kheadersfs mount /proc-ext', { env, timeoutMs: 600_000 })
      mounts.push(again.ms)
      await b.must('kheadersfs umount /proc-ext', { env })
      await b.waitNone(DAEMON, 20000)
    }
    const nodes: number[] = []
    for (let i = 0; i < 3; i++) nodes.push((await b.must('node -e 0')).ms)
    t.comment(
      `mount from the image package: ${mounts.map((ms) => (ms / 1000).toFixed(2)).join(', ')} s (median ` +
        `${(median(mounts) / 1000).toFixed(2)} s); node -e 0: ${nodes.map((ms) => (ms / 1000).toFixed(2)).join(', ')} s ` +
        `(median ${(median(nodes) / 1000).toFixed(2)} s) on the trixie arm64 board (qemu-user)`,
    )

    // Purge: the image goes with the package, and mount by release has nothing to find.
    const purge = await b.apt(`purge -y -q ${pkg}`)
    t.equal(purge.code, 0, `apt-get purge ${pkg}: ${purge.stderr}`)
    t.equal((await b.run(`test -e /usr/lib/kheadersfs/${release}.img`)).code, 1, 'purge removed the image')
    t.equal((await b.run(`test -e /usr/share/doc/${pkg}`)).code, 1, 'and its doc directory')
    t.equal((await b.run("dpkg-query -W -f='${Status}' kheadersfs")).stdout, 'install ok installed', 'kheadersfs stays')
    const gone = await b.run('kheadersfs mount /proc-ext', { env, timeoutMs: 600_000 })
    t.equal(gone.code, 3, `mount after purge: exit 3 (no image): ${gone.stderr}`)
    t.match(gone.stderr, `Cannot find a kheadersfs image for ${release}`)
  },
)
