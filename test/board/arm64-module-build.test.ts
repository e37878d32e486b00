// The real board flow on an emulated Debian trixie arm64 board (qemu-user), for the two kinds of
// kernel a board runs:
// 1. Debian's own arm64 kernel: linux-headers-arm64 installed on the board; pack ON THE BOARD; mount
//    with the board's release (QEMU_UNAME); build test/fixtures/hello with the board's gcc from the
//    extracted archive and from the view /proc-ext/kheaders → an AArch64 hello.ko whose vermagic is
//    the release; umount → no daemon. Then pack the same tree on this x86 host with --sysroot: the
//    archive must be byte-identical to the board's, so every packed byte came from the board's root.
// 2. A kernel cross-built on this x86 host (test/fixtures/cross-kernel.sh): packed here (its host
//    programs rebuilt for arm64), found by `uname -r` on the board, hello.ko built from the extracted
//    archive and from the view, with the tree's vermagic and a filled __versions section.
// The board starts from a cached layer with the toolchain, linux-headers-arm64 and kheadersfs's
// dependencies (installing them under qemu takes ~10 min); installing the .deb into a root with no
// compiler is test/board/install.test.ts's job. Step times are printed and the mount/build figures
// go to /var/cache/kheadersfs/board-figures.json. No timing asserts.
import { spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { ARM64_TOOLCHAIN, Board, boardSkipReason, CACHE, debFor, elfMachine, mountsUnder } from '../helpers/board'
import { ROOT, runCli } from '../helpers/cli'
import { crossKernel } from '../helpers/cross-kernel'
import { HELLO } from '../helpers/debian'
import { tmpDir } from '../helpers/tmp'

const DAEMON = /kheadersfs|node/
const EM_AARCH64 = 183

/** Names of the ELF sections of `file` (binutils' readelf reads any machine's ELF). */
function sections(file: string): string[] {
  const r = spawnSync('readelf', ['-S', '-W', file], { encoding: 'utf8' })
  return [...r.stdout.matchAll(/\]\s+(\S+)/g)].map((m) => m[1])
}

t.test(
  "arm64 board: Debian's kernel and a cross-built one, packed on the board and on the host, modules built from the mount",
  { skip: boardSkipReason('arm64', 'trixie') },
  async (t) => {
    const deb = debFor(ROOT, 'arm64')
    if (deb === undefined) return t.fail('no build/packages/kheadersfs_*_arm64.deb: run packaging/build.sh first')
    const figures: Record<string, number | string> = {
      date: new Date().toISOString(),
      board: 'trixie-arm64 (qemu-user)',
      deb: path.basename(deb),
    }
    const timed = async <R extends { ms: number }>(key: string, label: string, p: Promise<R>): Promise<R> => {
      const r = await p
      figures[key] = r.ms
      t.comment(`step ${label}: ${(r.ms / 1000).toFixed(1)} s`)
      return r
    }
    const since = (t0: number): { ms: number } => ({ ms: Date.now() - t0 })

    let t0 = Date.now()
    const b = await Board.create(t, 'trixie', 'arm64', { layer: ARM64_TOOLCHAIN })
    await timed('freshRootMs', 'fresh root (cached toolchain layer)', Promise.resolve(since(t0)))
    t.equal((await b.run('uname -m')).stdout.trim(), 'aarch64', 'the root runs as aarch64')
    await timed('installDebMs', `apt-get install ./${path.basename(deb)}`, b.installDeb(deb, { update: false }))
    t.equal((await b.run('kheadersfs --version')).code, 0, 'kheadersfs --version')

    const checkKo = async (ko: string, what: string, release: string): Promise<void> => {
      if (!existsSync(b.path(ko))) return void t.fail(`${what}: ${ko} not built`)
      t.equal(elfMachine(b.path(ko)), EM_AARCH64, `${what}: hello.ko is AArch64 (e_machine 183)`)
      const vm = (await b.run(`modinfo -F vermagic ${ko}`)).stdout.trim()
      t.ok(vm.startsWith(release + ' '), `${what}: vermagic "${vm}" starts with ${release}`)
      if (/modversions/.test(vm))
        t.ok(sections(b.path(ko)).includes('__versions'), `${what}: __versions filled (MODVERSIONS)`)
    }
    /** mount by uname -r, extract, build from the extracted tree and from the view, umount. */
    const boardFlow = async (release: string, tag: string): Promise<{ list: string; config: string }> => {
      const env = { QEMU_UNAME: release }
      const hello = `/root/${tag}`
      await b.must(`mkdir -p /proc-ext ${hello}/headers`)
      cpSync(HELLO, b.path(`${hello.slice(1)}/extracted`), { recursive: true })
      cpSync(HELLO, b.path(`${hello.slice(1)}/view`), { recursive: true })
      const m = await timed(
        `${tag}MountMs`,
        `${tag}: kheadersfs mount /proc-ext`,
        b.run('kheadersfs mount /proc-ext', { env, timeoutMs: 600_000 }),
      )
      t.equal(m.code, 0, `${tag}: mount finds /lib/modules/${release}/kheaders.img: ${m.stdout}${m.stderr}`)
      if (m.code !== 0) return { list: '', config: '' }
      const list = (await b.must('tar -tJf /proc-ext/kheaders.txz | sort')).stdout
      const config = (await b.must('zcat /proc-ext/config.gz | sha256sum')).stdout
      const x = await timed(
        `${tag}TarExtractMs`,
        `${tag}: tar -xf /proc-ext/kheaders.txz`,
        b.run(`tar -xf /proc-ext/kheaders.txz -C ${hello}/headers`),
      )
      t.equal(x.code, 0, `${tag}: tar -xf: ${x.stderr}`)
      const fixdep = await b.run(`${hello}/headers/scripts/basic/fixdep 2>&1; true`)
      t.notMatch(fixdep.stdout, /Exec format error/, `${tag}: the archive's fixdep runs on the board`)
      for (const [dir, from, key] of [
        [`${hello}/extracted`, `${hello}/headers`, 'BuildFromExtractedMs'],
        [`${hello}/view`, '/proc-ext/kheaders', 'BuildFromMountMs'],
      ] as const) {
        const mk = await timed(
          `${tag}${key}`,
          `${tag}: make -C ${from} M=${dir} modules`,
          b.run(`make -C ${from} M=${dir} modules`, { timeoutMs: 3600_000 }),
        )
        t.equal(mk.code, 0, `${tag}: build from ${from}:\n${mk.stdout.slice(-2000)}${mk.stderr.slice(-3000)}`)
        await checkKo(`${dir}/hello.ko`, `${tag}, ${from}`, release)
      }
      const st = await b.run('kheadersfs status', { env })
      t.match(st.stdout, /\/proc-ext/, `${tag}: kheadersfs status lists /proc-ext`)
      t.equal((await b.run('umount /proc-ext')).code, 0, `${tag}: external umount`)
      t0 = Date.now()
      t.ok(await b.waitNone(DAEMON, 20000), `${tag}: no daemon left after umount: ${JSON.stringify(b.live(DAEMON))}`)
      await timed(`${tag}DaemonExitMs`, `${tag}: daemon exit after umount`, Promise.resolve(since(t0)))
      t.same(mountsUnder(b.path('proc-ext')), [], `${tag}: /proc-ext is unmounted`)
      return { list, config }
    }

    // 1. Debian's arm64 kernel, packed on the board.
    const uts = await b.must('cat /usr/src/linux-headers-*-arm64/include/generated/utsrelease.h')
    const release = /UTS_RELEASE "([^"]+)"/.exec(uts.stdout)?.[1]
    if (release === undefined) throw new Error(`no UTS_RELEASE in ${uts.stdout}`)
    figures.release = release
    const treeOnBoard = `/usr/src/linux-headers-${release}`
    const pack = await timed(
      'packOnBoardMs',
      'kheadersfs pack on the board',
      b.run(
        `mkdir -p /lib/modules/${release} && kheadersfs pack --kernel ${treeOnBoard} -o /lib/modules/${release}/kheaders.img`,
        { timeoutMs: 3600_000 },
      ),
    )
    t.equal(pack.code, 0, `pack on the board: ${pack.stdout}${pack.stderr.slice(-3000)}`)
    const boardInfo = JSON.parse(
      (await b.must(`kheadersfs info --json /lib/modules/${release}/kheaders.img`)).stdout,
    ) as Info
    t.equal(boardInfo.target?.machine, EM_AARCH64, 'the board-packed image is for AArch64')
    const debian = await boardFlow(release, 'debian')

    // The same tree packed on this x86 host, from inside the board's root.
    type Info = {
      release: string
      arch: string
      counts: unknown
      target?: { machine: number }
      payloads: Record<string, { sha256: string }>
    }
    const hostImg = path.join(tmpDir(t), 'host-packed.img')
    t0 = Date.now()
    const hp = await runCli(['pack', '--kernel', b.path(treeOnBoard.slice(1)), '--sysroot', b.root, '-o', hostImg], {
      env: { ...process.env, KHEADERSFS_LOG_LEVEL: 'warn' },
    })
    await timed('packOnHostMs', 'kheadersfs pack --sysroot on the host', Promise.resolve(since(t0)))
    t.equal(hp.code, 0, `pack on the host with --sysroot: ${hp.stderr.slice(-3000)}`)
    if (hp.code === 0) {
      const hostInfo = JSON.parse((await runCli(['info', '--json', hostImg])).stdout) as Info
      t.equal(hostInfo.release, release, 'the host-packed image has the board release')
      t.same(hostInfo.counts, boardInfo.counts, 'same file, directory and symlink counts as the board-packed image')
      t.equal(
        hostInfo.payloads['kheaders.tar.xz'].sha256,
        boardInfo.payloads['kheaders.tar.xz'].sha256,
        "byte-identical archive: every packed byte came from the board's root, none from this machine",
      )
      // config.gz bytes may differ (the board's nodejs links Debian's zlib); the .config must not.
      const cfg = spawnSync('sh', ['-c', `tar -xOf '${hostImg}' config.gz | zcat | sha256sum`], {
        encoding: 'utf8',
      }).stdout
      if (debian.config !== '')
        t.equal(cfg, debian.config, 'host-packed and board-packed config.gz hold the same .config')
    }

    // 2. A kernel cross-built on this host, packed here.
    const tree = crossKernel('arm64')
    const xrel = /UTS_RELEASE "([^"]+)"/.exec(
      readFileSync(path.join(tree, 'include/generated/utsrelease.h'), 'utf8'),
    )![1]
    const ximg = path.join(tmpDir(t), 'cross.img')
    t0 = Date.now()
    const xp = await runCli(['pack', '--kernel', tree, '-o', ximg], {
      env: { ...process.env, KHEADERSFS_LOG_LEVEL: 'error' },
    })
    await timed(
      'crossPackOnHostMs',
      'kheadersfs pack of the cross-built tree (host programs rebuilt)',
      Promise.resolve(since(t0)),
    )
    t.equal(xp.code, 0, `pack the cross-built tree: ${xp.stderr.slice(-3000)}`)
    mkdirSync(b.path(`lib/modules/${xrel}`), { recursive: true })
    cpSync(ximg, b.path(`lib/modules/${xrel}/kheaders.img`))
    await boardFlow(xrel, 'cross')

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
  },
)
