// The real board flow on an emulated Debian trixie arm64 board (qemu-user): install the arm64 .deb
// into a root with no compiler, then gcc, make and Debian's linux-headers-arm64; pack ON THE BOARD;
// mount with the board's release (QEMU_UNAME); build test/fixtures/hello with the board's gcc from the
// extracted archive and from the view /proc-ext/kheaders → an AArch64 hello.ko whose vermagic is the
// release; umount → no daemon. Then pack the board's tree on this x86 host with --sysroot, compare
// with the board-packed image, mount that one on the board and build hello.ko from it.
// Emulation is slow: every step's time is printed, and the mount and module build times (from the
// mount vs from an extracted tree) go to /var/cache/kheadersfs/board-figures.json. No timing asserts.
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { Board, boardSkipReason, CACHE, debFor, elfMachine, mountsUnder } from '../helpers/board'
import { ROOT, runCli } from '../helpers/cli'
import { HELLO } from '../helpers/debian'
import { tmpDir } from '../helpers/tmp'

const DAEMON = /kheadersfs|node/
const EM_AARCH64 = 183

t.test('arm64 board: install, pack on the board, mount, build hello.ko; pack on the host with --sysroot', { skip: boardSkipReason('arm64', 'trixie') }, async (t) => {
  const deb = debFor(ROOT, 'arm64')
  if (deb === undefined) {
    t.fail('no build/packages/kheadersfs_*_arm64.deb: run packaging/build.sh first')
    return
  }
  const figures: Record<string, number | string> = { date: new Date().toISOString(), board: 'trixie-arm64 (qemu-user)', deb: path.basename(deb) }
  const timed = async <R extends { ms: number }>(key: string, label: string, p: Promise<R>): Promise<R> => {
    const r = await p
    figures[key] = r.ms
    t.comment(`step ${label}: ${(r.ms / 1000).toFixed(1)} s`)
    return r
  }
  const since = (t0: number): { ms: number } => ({ ms: Date.now() - t0 })

  let t0 = Date.now()
  const b = await Board.create(t, 'trixie', 'arm64')
  await timed('freshRootMs', 'fresh root', Promise.resolve(since(t0)))
  t.equal((await b.run('uname -m')).stdout.trim(), 'aarch64', 'the root runs as aarch64')
  await timed('aptUpdateMs', 'apt-get update', b.aptUpdate())
  await timed('installDebMs', `apt-get install ./${path.basename(deb)}`, b.installDeb(deb))
  const noCc = await b.run('for c in gcc cc make python3; do command -v $c; done; true')
  t.equal(noCc.stdout.trim(), '', 'no compiler, make or python3 in the root after installing kheadersfs')
  const ver = await b.run('kheadersfs --version')
  t.equal(ver.code, 0, `kheadersfs --version: ${ver.stderr}`)

  t0 = Date.now()
  await b.aptInstall(['make', 'gcc', 'linux-headers-arm64', 'kmod', 'xz-utils'], { noRecommends: true })
  await timed('aptInstallToolchainMs', 'apt-get install make gcc linux-headers-arm64 kmod xz-utils', Promise.resolve(since(t0)))
  const uts = await b.must('cat /usr/src/linux-headers-*-arm64/include/generated/utsrelease.h')
  const release = /UTS_RELEASE "([^"]+)"/.exec(uts.stdout)?.[1]
  if (release === undefined) throw new Error(`no UTS_RELEASE in ${uts.stdout}`)
  figures.release = release
  t.comment(`board release ${release}`)
  const env = { QEMU_UNAME: release }
  const treeOnBoard = `/usr/src/linux-headers-${release}`

  // Pack on the board (module-build profile is the default).
  const pack = await timed('packOnBoardMs', 'kheadersfs pack on the board', b.run(`mkdir -p /lib/modules/${release} && kheadersfs pack --kernel ${treeOnBoard} -o /lib/modules/${release}/kheaders.img`, { timeoutMs: 3600_000 }))
  t.equal(pack.code, 0, `pack on the board: ${pack.stdout}${pack.stderr.slice(-3000)}`)
  const boardInfo = await b.run(`kheadersfs info --json /lib/modules/${release}/kheaders.img`)
  t.equal(boardInfo.code, 0, `info on the board: ${boardInfo.stderr}`)

  await b.must('mkdir -p /proc-ext /root/headers')
  cpSync(HELLO, b.path('root/hello'), { recursive: true })
  cpSync(HELLO, b.path('root/hello-view'), { recursive: true })

  const checkKo = async (ko: string, what: string): Promise<void> => {
    t.ok(existsSync(b.path(ko)), `${what}: ${ko} built`)
    if (!existsSync(b.path(ko))) return
    t.equal(elfMachine(b.path(ko)), EM_AARCH64, `${what}: hello.ko is AArch64 (e_machine 183)`)
    const vm = await b.run(`modinfo -F vermagic ${ko}`)
    t.ok(vm.stdout.startsWith(release + ' '), `${what}: vermagic "${vm.stdout.trim()}" starts with ${release}`)
  }

  const m = await timed('mountMs', 'kheadersfs mount /proc-ext', b.run('kheadersfs mount /proc-ext', { env, timeoutMs: 600_000 }))
  t.equal(m.code, 0, `mount on the board: ${m.stdout}${m.stderr}`)
  let boardList = ''
  let boardConfig = ''
  if (m.code === 0) {
    boardList = (await b.must('tar -tJf /proc-ext/kheaders.txz | sort')).stdout
    boardConfig = (await b.must('zcat /proc-ext/config.gz | sha256sum')).stdout
    const x = await timed('tarExtractMs', 'tar -xf /proc-ext/kheaders.txz -C /root/headers', b.run('tar -xf /proc-ext/kheaders.txz -C /root/headers'))
    t.equal(x.code, 0, `tar -xf: ${x.stderr}`)
    const mk = await timed('buildFromExtractedMs', 'make -C /root/headers M=/root/hello modules', b.run('make -C /root/headers M=/root/hello modules', { timeoutMs: 3600_000 }))
    t.equal(mk.code, 0, `build from the extracted tree:\n${mk.stdout.slice(-2000)}${mk.stderr.slice(-3000)}`)
    await checkKo('/root/hello/hello.ko', 'extracted tree')
    const mv = await timed('buildFromMountMs', 'make -C /proc-ext/kheaders M=/root/hello-view modules', b.run('make -C /proc-ext/kheaders M=/root/hello-view modules', { timeoutMs: 3600_000 }))
    t.equal(mv.code, 0, `build from the view:\n${mv.stdout.slice(-2000)}${mv.stderr.slice(-3000)}`)
    await checkKo('/root/hello-view/hello.ko', 'view /proc-ext/kheaders')
    const st = await b.run('kheadersfs status', { env })
    t.match(st.stdout, /\/proc-ext/, `kheadersfs status lists /proc-ext: ${st.stdout}${st.stderr}`)
    const um = await b.run('umount /proc-ext')
    t.equal(um.code, 0, `external umount: ${um.stderr}`)
    t0 = Date.now()
    t.ok(await b.waitNone(DAEMON, 20000), `no daemon left after umount: ${JSON.stringify(b.live(DAEMON))}`)
    await timed('daemonExitMs', 'daemon exit after umount', Promise.resolve(since(t0)))
    t.same(mountsUnder(b.path('proc-ext')), [], '/proc-ext is unmounted')
  }

  // Pack the board's tree on this x86 host: absolute paths the tree names resolve inside the root.
  const hostImg = path.join(tmpDir(t), 'host-packed.img')
  t0 = Date.now()
  const hp = await timed('packOnHostMs', 'kheadersfs pack --sysroot on the host', runCli(['pack', '--kernel', b.path(treeOnBoard.slice(1)), '--sysroot', b.root, '-o', hostImg], { env: { KHEADERSFS_LOG_LEVEL: 'warn' } }).then((r) => ({ ...r, ms: Date.now() - t0 })))
  t.equal(hp.code, 0, `pack on the host with --sysroot: ${hp.stdout}${hp.stderr.slice(-3000)}`)
  if (hp.code === 0) {
    const hi = await runCli(['info', '--json', hostImg])
    const hostInfo = JSON.parse(hi.stdout) as { release: string; arch: string; counts: unknown; payloads: Record<string, { sha256: string }> }
    const bi = boardInfo.code === 0 ? (JSON.parse(boardInfo.stdout) as typeof hostInfo) : undefined
    t.equal(hostInfo.release, release, 'the host-packed image has the board release')
    t.equal(hostInfo.arch, 'arm64', 'the host-packed image is for arm64')
    if (bi) {
      t.same(hostInfo.counts, bi.counts, 'host-packed and board-packed images count the same files, directories, symlinks')
      const same = hostInfo.payloads['kheaders.tar.xz'].sha256 === bi.payloads['kheaders.tar.xz'].sha256
      t.comment(`host-packed and board-packed archives are ${same ? 'byte-identical' : 'NOT byte-identical'}; config.gz ${hostInfo.payloads['config.gz'].sha256 === bi.payloads['config.gz'].sha256 ? 'identical' : 'differs'}`)
      figures.hostBoardArchiveIdentical = String(same)
    }
    // Mount the host-packed image on the board and build from it.
    mkdirSync(b.path('root/img'), { recursive: true })
    cpSync(hostImg, b.path('root/img/host-packed.img'))
    cpSync(HELLO, b.path('root/hello-host'), { recursive: true })
    const m2 = await timed('mountHostPackedMs', 'kheadersfs mount --image host-packed.img', b.run('kheadersfs mount --image /root/img/host-packed.img /proc-ext', { env, timeoutMs: 600_000 }))
    t.equal(m2.code, 0, `mount the host-packed image on the board: ${m2.stdout}${m2.stderr}`)
    if (m2.code === 0) {
      const hostList = (await b.must('tar -tJf /proc-ext/kheaders.txz | sort')).stdout
      if (boardList !== '') t.ok(hostList === boardList, `host-packed and board-packed archives list the same ${hostList.split('\n').length - 1} entries`)
      // config.gz bytes may differ (the board's Node links Debian's zlib); the .config must not.
      const hostConfig = (await b.must('zcat /proc-ext/config.gz | sha256sum')).stdout
      if (boardConfig !== '') t.equal(hostConfig, boardConfig, 'host-packed and board-packed config.gz hold the same .config')
      const mh = await timed('buildFromHostPackedMountMs', 'make -C /proc-ext/kheaders (host-packed) modules', b.run('make -C /proc-ext/kheaders M=/root/hello-host modules', { timeoutMs: 3600_000 }))
      t.equal(mh.code, 0, `build from the host-packed image's view:\n${mh.stdout.slice(-2000)}${mh.stderr.slice(-3000)}`)
      await checkKo('/root/hello-host/hello.ko', 'host-packed image')
      t.equal((await b.run('umount /proc-ext')).code, 0, 'umount the host-packed mount')
      t.ok(await b.waitNone(DAEMON, 20000), 'no daemon left after the second umount')
    }
  }

  const file = path.join(CACHE, 'board-figures.json')
  let all: Record<string, unknown> = {}
  try {
    all = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>
  } catch {
    // first run
  }
  all['trixie-arm64'] = figures
  writeFileSync(file, JSON.stringify(all, null, 2) + '\n')
  t.comment(`figures → ${file}: ${JSON.stringify(figures)}`)
})
