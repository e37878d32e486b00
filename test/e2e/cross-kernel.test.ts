// Kernels cross-built here for arm64 and armhf from Debian's linux-source (test/fixtures/cross-kernel.sh):
// their scripts/ host programs are x86-64. pack must rebuild them for the board (or refuse), never
// ship them, and never touch the user's tree. The board side (hello.ko built on an emulated arm64
// board from this image) is in test/board/arm64-module-build.test.ts. Also --from-kheaders on the archive
// the kernel's own gen_kheaders.sh makes from the same tree, served with -o link_build.
import { spawnSync } from 'node:child_process'
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { readElfId, type ElfId } from '../../src/pack/elf'
import { bccPreprocessArgs, SCHED_PROBE } from '../helpers/bcc'
import { errorLines, runCli } from '../helpers/cli'
import { CROSS_PREFIX, crossKernel, kernelKheadersArchive, type CrossArch } from '../helpers/cross-kernel'
import { mountImage, waitGone } from '../helpers/mount'
import { BOUND_MS, packUntil } from '../helpers/pack-until'
import { tmpDir } from '../helpers/tmp'

const skip = process.getuid?.() !== 0 ? 'needs root (the fixture installs linux-source and cross compilers)' : false

/** Every ELF file under `dir` with its identification (relative path → id). */
function elfFiles(dir: string, rel = ''): Map<string, ElfId> {
  const out = new Map<string, ElfId>()
  for (const name of readdirSync(path.join(dir, rel))) {
    const r = rel === '' ? name : `${rel}/${name}`
    const st = lstatSync(path.join(dir, r), { throwIfNoEntry: false }) // links: their targets are walked too
    if (st?.isDirectory()) for (const [k, v] of elfFiles(dir, r)) out.set(k, v)
    else if (st?.isFile()) {
      const id = readElfId(path.join(dir, r))
      if (id !== undefined) out.set(r, id)
    }
  }
  return out
}

function extractArchive(image: string, into: string): void {
  mkdirSync(into, { recursive: true })
  const r = spawnSync('sh', ['-c', 'tar -xOf "$1" kheaders.tar.xz | tar -xJf - -C "$2"', 'sh', image, into])
  if (r.status !== 0) throw new Error(`extract: ${r.stderr.toString()}`)
}

const EXPECT: Record<CrossArch, { machine: number; bits: number; name: RegExp }> = {
  arm64: { machine: 183, bits: 64, name: /^AArch64 \(64-bit little-endian\)$/ },
  arm: { machine: 40, bits: 32, name: /^ARM \(32-bit little-endian\)$/ },
}

for (const arch of ['arm64', 'arm'] as const) {
  t.test(
    `${arch} kernel cross-built on x86: host programs rebuilt for the board, nothing x86 shipped`,
    { skip },
    async (t) => {
      const tree = crossKernel(arch)
      const want = EXPECT[arch]
      const before = readdirSync(path.join(tree, 'scripts/basic')).sort()
      t.equal(
        readElfId(path.join(tree, 'scripts/basic/fixdep'))?.machine,
        62,
        "the tree's own fixdep is an x86-64 program",
      )
      const dir = tmpDir(t)

      const refused = path.join(dir, 'refused.img')
      let t0 = Date.now()
      const r0 = await runCli(['pack', '--kernel', tree, '--no-rebuild', '-o', refused])
      const checkMs = Date.now() - t0
      t.equal(r0.code, 7, r0.stderr)
      t.match(
        errorLines(r0.stderr)[0],
        /scripts\/basic\/fixdep and \d+ more are built for x86-64 \(64-bit little-endian\), so "make M=" on the board would fail with "Exec format error"/,
      )
      t.notOk(existsSync(refused), 'refused: no image')

      const image = path.join(dir, `${arch}.img`)
      t0 = Date.now()
      const r = await runCli(['pack', '--kernel', tree, '-o', image])
      const packMs = Date.now() - t0
      t.equal(r.code, 0, r.stderr.slice(-3000))
      t.comment(`pack with host-program rebuild: ${packMs} ms (refusal after selection and ELF check: ${checkMs} ms)`)
      const info = JSON.parse((await runCli(['info', '--json', image])).stdout) as {
        target: { machine: number; bits: number; name: string; from: string }
        hostPrograms: { compiler: string; prefix: string; rebuilt: string[]; dropped: string[] }
      }
      t.equal(info.target.machine, want.machine)
      t.equal(info.target.from, 'vmlinux', "the kernel's own vmlinux named the target")
      t.match(info.target.name, want.name)
      t.equal(info.hostPrograms.prefix, CROSS_PREFIX[arch], 'compiler found from .config (CONFIG_CC_VERSION_TEXT)')
      t.match(info.hostPrograms.compiler, new RegExp(`^${CROSS_PREFIX[arch]}gcc `))
      t.same([...info.hostPrograms.rebuilt].sort(), [
        'scripts/basic/fixdep',
        'scripts/genksyms/genksyms',
        'scripts/mod/modpost',
      ])
      t.ok(info.hostPrograms.dropped.includes('scripts/kconfig/conf'), "kconfig's conf is left out, named")

      const out = path.join(dir, 'x')
      extractArchive(image, out)
      const elves = elfFiles(out)
      t.ok(elves.size >= 3, `${elves.size} ELF files in the archive`)
      const wrong = [...elves].filter(([, id]) => id.machine !== want.machine || id.bits !== want.bits).map(([p]) => p)
      t.same(wrong, [], `every ELF file in the archive is for ${arch}`)
      for (const p of ['scripts/basic/fixdep', 'scripts/mod/modpost', 'scripts/genksyms/genksyms'])
        t.ok(elves.has(p), `${p} shipped, rebuilt`)

      t.same(readdirSync(path.join(tree, 'scripts/basic')).sort(), before, "the user's tree gained no files")
      t.equal(readElfId(path.join(tree, 'scripts/basic/fixdep'))?.machine, 62, 'and its fixdep is untouched')

      // Same bytes on a second pack: the rebuild is reproducible too.
      const again = path.join(dir, 'again.img')
      t.equal((await runCli(['pack', '--kernel', tree, '-o', again])).code, 0)
      t.equal(readFileSync(again).equals(readFileSync(image)), true, 'packing twice gives the same image bytes')
    },
  )
}

// The rebuild runs the cross compiler through make for seconds: Ctrl-C or a SIGTERM to pack alone
// (not its process group) must still end it within a second, make and its compilers with it.
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  t.test(`${sig} while host programs are rebuilt: pack, make and gcc gone within a second`, { skip }, async (t) => {
    const tree = crossKernel('arm64')
    const dir = tmpDir(t)
    const scratchBefore = hostprogScratch()
    const r = await packUntil(['--kernel', tree, '-o', path.join(dir, 'k.img')], 'rebuild', sig)
    t.ok(
      r.events.some((e) => e.phase === 'rebuild'),
      'pack reached the rebuild',
    )
    t.ok(r.ms < BOUND_MS, `exited ${r.ms.toFixed(0)} ms after ${sig} (bound ${BOUND_MS} ms)`)
    t.equal(r.code, sig === 'SIGINT' ? 130 : 143)
    t.same(errorLines(r.stderr), [`kheadersfs pack: interrupted by ${sig}; no image was written`])
    t.same(readdirSync(dir), [], 'no image, no temp file')
    // Its scratch copy of the tree goes in an rm of its own that outlives pack (host-programs.ts).
    const deadline = Date.now() + 60_000
    while (hostprogScratch().length > scratchBefore.length && Date.now() < deadline) await sleep(100)
    t.same(hostprogScratch(), scratchBefore, 'the scratch tree of the rebuild is removed')
    const left = spawnSync('pgrep', ['-f', 'kheadersfs-hostprogs-'], { encoding: 'utf8' }).stdout.trim()
    t.equal(left, '', 'no make or compiler left running in the scratch tree')
  })
}

/** The rebuild's scratch directories in the temp directory. */
function hostprogScratch(): string[] {
  return readdirSync(os.tmpdir()).filter((n) => n.startsWith('kheadersfs-hostprogs-'))
}

t.test(
  '--from-kheaders: the archive gen_kheaders.sh makes from the arm64 tree, served with link_build',
  { skip },
  async (t) => {
    const tree = crossKernel('arm64')
    const archive = kernelKheadersArchive(tree, 'arm64')
    const dir = tmpDir(t)
    const image = path.join(dir, 'kh.img')
    const r = await runCli(['pack', '--from-kheaders', archive, '--config', path.join(tree, '.config'), '-o', image])
    t.equal(r.code, 0, r.stderr)
    const list = (args: string): string[] =>
      spawnSync('sh', ['-c', args], { encoding: 'utf8', maxBuffer: 64 << 20 })
        .stdout.split('\n')
        .map((l) => l.replace(/^\.\//, '').replace(/\/$/, ''))
        .filter((l) => l !== '' && l !== '.')
        .sort()
    const kernelList = list(`tar -tJf '${archive}'`)
    t.ok(kernelList.length > 1000, `${kernelList.length} entries in the kernel's archive`)
    t.same(
      list(`tar -xOf '${image}' kheaders.tar.xz | tar -tJ`),
      kernelList,
      "the image lists exactly the kernel archive's files",
    )

    const release = /UTS_RELEASE "([^"]+)"/.exec(
      readFileSync(path.join(tree, 'include/generated/utsrelease.h'), 'utf8'),
    )![1]
    const modules = path.join('/lib/modules', release)
    if (existsSync(modules)) return t.fail(`${modules} exists already; refusing to touch it`)
    t.teardown(() => rmSync(modules, { recursive: true, force: true }))
    const m = await mountImage(t, image, ['--force', '-o', 'link_build'])
    const build = path.join(modules, 'build')
    t.equal(readlinkSync(build), path.join(m.mnt, 'kheaders'))
    // What BCC does with a kernel tree: kconfig.h forced in, the arch's and generic include dirs.
    const src = path.join(dir, 'probe.c')
    writeFileSync(src, SCHED_PROBE)
    const cc = spawnSync(`${CROSS_PREFIX.arm64}gcc`, bccPreprocessArgs(build, 'arm64', src), {
      encoding: 'utf8',
      maxBuffer: 256 << 20,
    })
    t.equal(cc.status, 0, cc.stderr.slice(-2000))
    t.match(
      cc.stdout,
      /struct task_struct \{/,
      'linux/sched.h preprocesses from /lib/modules/<release>/build, nothing extracted',
    )
    t.equal(spawnSync('umount', [m.mnt]).status, 0)
    t.ok(await waitGone(m.pid))
    t.notOk(existsSync(build), 'the build link went with the mount')
  },
)
