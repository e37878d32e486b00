// A kernel cross-built on this x86 host for arm64 (test/fixtures/cross-kernel.sh), packed here, used on
// an emulated Debian trixie arm64 board: the image goes where modprobe would look for the board
// kernel's modules, `kheadersfs mount /proc-ext` finds it by `uname -r`, and the board's own gcc builds
// hello.ko from the extracted archive and from the view. Without the host-program rebuild this fails
// with "Exec format error" at fixdep; with it, hello.ko is AArch64 with the tree's vermagic and a
// filled __versions section (MODVERSIONS: genksyms and modpost ran on the board).
import { spawnSync } from 'node:child_process'
import { cpSync, existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { Board, boardSkipReason, debFor, elfMachine, mountsUnder } from '../helpers/board'
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

t.test('arm64 kernel cross-built on x86: packed here, hello.ko built on the board from the mount', { skip: boardSkipReason('arm64', 'trixie') }, async (t) => {
  const deb = debFor(ROOT, 'arm64')
  if (deb === undefined) return t.fail('no build/packages/kheadersfs_*_arm64.deb: run packaging/build.sh first')
  const tree = crossKernel('arm64')
  const release = /UTS_RELEASE "([^"]+)"/.exec(readFileSync(path.join(tree, 'include/generated/utsrelease.h'), 'utf8'))![1]
  const image = path.join(tmpDir(t), 'cross.img')
  const packed = await runCli(['pack', '--kernel', tree, '-o', image], { env: { ...process.env, KHEADERSFS_LOG_LEVEL: 'warn' } })
  t.equal(packed.code, 0, packed.stderr.slice(-3000))

  const b = await Board.create(t, 'trixie', 'arm64')
  await b.aptUpdate()
  await b.installDeb(deb)
  await b.aptInstall(['make', 'gcc', 'kmod', 'xz-utils'], { noRecommends: true })
  await b.must(`mkdir -p /lib/modules/${release} /proc-ext /root/headers`)
  cpSync(image, b.path(`lib/modules/${release}/kheaders.img`))
  cpSync(HELLO, b.path('root/hello'), { recursive: true })
  cpSync(HELLO, b.path('root/hello-view'), { recursive: true })
  const env = { QEMU_UNAME: release }

  const m = await b.run('kheadersfs mount /proc-ext', { env, timeoutMs: 600_000 })
  t.equal(m.code, 0, `mount by uname -r: ${m.stdout}${m.stderr}`)
  if (m.code !== 0) return
  t.equal((await b.run('tar -xf /proc-ext/kheaders.txz -C /root/headers')).code, 0, 'tar -xf')
  const fixdep = await b.run('/root/headers/scripts/basic/fixdep 2>&1; true')
  t.notMatch(fixdep.stdout, /Exec format error/, 'fixdep runs on the board')

  for (const [dir, from] of [['/root/hello', '/root/headers'], ['/root/hello-view', '/proc-ext/kheaders']] as const) {
    const mk = await b.run(`make -C ${from} M=${dir} modules`, { timeoutMs: 3600_000 })
    t.equal(mk.code, 0, `build from ${from}:\n${mk.stdout.slice(-2000)}${mk.stderr.slice(-3000)}`)
    t.comment(`make -C ${from} M=${dir} modules: ${(mk.ms / 1000).toFixed(1)} s`)
    const ko = b.path(`${dir.slice(1)}/hello.ko`)
    if (!existsSync(ko)) {
      t.fail(`${from}: no hello.ko`)
      continue
    }
    t.equal(elfMachine(ko), EM_AARCH64, `${from}: hello.ko is AArch64`)
    const vermagic = (await b.run(`modinfo -F vermagic ${dir}/hello.ko`)).stdout.trim()
    t.match(vermagic, new RegExp(`^${release.replace(/[.+]/g, '\\$&')} .*modversions aarch64`), `${from}: vermagic "${vermagic}"`)
    t.ok(sections(ko).includes('__versions'), `${from}: __versions is there (symbol CRCs from Module.symvers)`)
  }
  t.equal((await b.run('umount /proc-ext')).code, 0, 'external umount')
  t.ok(await b.waitNone(DAEMON, 20000), 'no daemon left')
  t.same(mountsUnder(b.path('proc-ext')), [], '/proc-ext is unmounted')
})
