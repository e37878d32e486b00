// Section 5 of the bench (issues 10 and 11): boards, packages and cross-built kernels.
//
// 5.1 The Debian packages of packaging/build.sh: .deb size and Installed-Size per architecture.
// 5.2 Packing a cross-built kernel tree (test/fixtures/cross-kernel.sh arm64, x86-64 host programs):
//     `kheadersfs pack` with its host-program rebuild (default) vs packing a tree that needs no
//     rebuild and holds the same files (the first image's own kheaders.tar.xz, extracted).
// 5.3 An emulated Debian trixie arm64 board (qemu-user on this x86 host, test/helpers/board.ts): the
//     arm64 .deb, that image at /lib/modules/<release>/kheaders.img, mount → readable vs `node -e 0`,
//     hello.ko built from the extracted archive vs from the view, umount → daemon exit.
// 5.4 Figures the board tests recorded (/var/cache/kheadersfs/board-figures.json), as context.
//
// Emulated figures are slow and noisy: one run each unless a row says otherwise. Nothing gates.
import { spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Board, boardSkipReason, CACHE, debFor, elfMachine, mountsUnder, type RunResult } from '../helpers/board'
import { CLI, ROOT } from '../helpers/cli'
import { HELLO } from '../helpers/debian'
import { fmtBytes, fmtMs, fmtRatio, NODE, now, q, run, Section, sh, stats, type Workspace } from './lib'

const ARCHS = ['amd64', 'arm64', 'armhf'] as const
const HOST_PROGRAMS = ['scripts/basic/fixdep', 'scripts/mod/modpost', 'scripts/genksyms/genksyms']
const DAEMON = /kheadersfs|node/
const EM_AARCH64 = 183

const log = (s: string): void => void process.stderr.write(`boards: ${s}\n`)
const kb = (n: number): string => `${n.toLocaleString('en-US')} B`

/** Sizes of the members of a tar (compressed or not, tar decides), from `tar -tvf`. */
function tarSizes(file: string, member?: string): Record<string, number> {
  const out: Record<string, number> = {}
  const cmd = member ? `tar -xOf ${q(file)} ${q(member)} | tar -tvJf -` : `tar -tvf ${q(file)}`
  for (const line of sh(cmd, { maxBuffer: 256 << 20 }).split('\n')) {
    const f = line.trim().split(/\s+/)
    if (f.length >= 6)
      out[
        f
          .slice(5)
          .join(' ')
          .replace(/^\.\//, '')
          .replace(/ -> .*$/, '')
      ] = Number(f[2])
  }
  return out
}

// ───────────────────────────── 5.1 packages ─────────────────────────────

function packages(): { section: Section; debs: Partial<Record<(typeof ARCHS)[number], string>> } {
  const section = new Section(
    '5.1 Debian packages',
    'What a user downloads and what it occupies once installed, per architecture. Each package holds the compiled JavaScript and the ' +
      'native FUSE addon built for that architecture (docs/packaging.md).',
    3,
  )
  log('packaging/build.sh (packages git HEAD)')
  const t0 = now()
  run('bash', [path.join(ROOT, 'packaging', 'build.sh')], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] })
  const buildMs = now() - t0
  const debs: Partial<Record<(typeof ARCHS)[number], string>> = {}
  const head = spawnSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim()
  let amd64 = 0
  for (const arch of ARCHS) {
    const deb = debFor(ROOT, arch)
    if (deb === undefined) {
      section.add({
        measure: `${arch} package`,
        ours: 'missing',
        baseline: '—',
        how: 'packaging/build.sh made no .deb for this arch',
      })
      continue
    }
    debs[arch] = deb
    const size = statSync(deb).size
    const installed = Number(run('dpkg-deb', ['-f', deb, 'Installed-Size']).trim()) * 1024
    if (arch === 'amd64') amd64 = size
    section.add({
      measure: `${arch}: .deb / Installed-Size`,
      ours: `${fmtBytes(size)} / ${fmtBytes(installed)}`,
      baseline: arch === 'amd64' || amd64 === 0 ? '—' : `amd64 .deb ${fmtBytes(amd64)}`,
      ratio:
        arch === 'amd64' || amd64 === 0
          ? `installed / .deb ${fmtRatio(installed / size)}`
          : `.deb vs amd64 ${fmtRatio(size / amd64)}; installed / .deb ${fmtRatio(installed / size)}`,
      how: `${path.basename(deb)} (git ${head}): file size; \`dpkg-deb -f X Installed-Size\` (KiB, ×1024; dpkg's estimate: file sizes rounded up per file)`,
    })
  }
  section.add({
    measure: 'packaging/build.sh wall time',
    ours: fmtMs(buildMs),
    baseline: '—',
    how: 'context only: all three archs, with its own cache (a rerun at the same commit mostly reuses it), lintian included',
  })
  return { section, debs }
}

// ───────────────────────────── 5.2 cross-built tree ─────────────────────────────

interface CrossResult {
  section: Section
  image: string
  release: string
}

function crossPack(ws: Workspace): CrossResult {
  log('cross-built arm64 tree (test/fixtures/cross-kernel.sh arm64, cached)')
  const tree = run('bash', [path.join(ROOT, 'test', 'fixtures', 'cross-kernel.sh'), 'arm64'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  }).trim()
  const release = readFileSync(path.join(tree, 'include', 'config', 'kernel.release'), 'utf8').trim()
  const section = new Section(
    '5.2 Packing a cross-built kernel tree',
    `The arm64 kernel cross-built on this host by test/fixtures/cross-kernel.sh (${tree}, release ${release}): an in-tree build whose ` +
      'host programs (fixdep, modpost, genksyms) are x86-64, so `kheadersfs pack` rebuilds them for AArch64 in a scratch copy with ' +
      '`aarch64-linux-gnu-gcc` (the compiler the .config records). Baseline: packing a tree that needs no rebuild with the same file ' +
      "set — the first image's own kheaders.tar.xz extracted to a temp dir (a self-contained in-tree tree with AArch64 host programs, " +
      `no vmlinux). Same run, page cache warm (the tree is read once before timing), one run each, ${os.availableParallelism()} cores. Ratio = rebuild / no rebuild.`,
    3,
  )
  const env = { ...ws.env }
  delete env.CROSS_COMPILE // the .config's compiler decides, as for a user without the variable
  sh(`find -L ${q(tree)} -type f -print0 | xargs -0 cat > /dev/null`)
  const rebuilt = path.join(ws.tmp, `cross-${release}.img`)
  log('pack with the host-program rebuild')
  let t0 = now()
  run(NODE, [CLI, 'pack', '--kernel', tree, '-o', rebuilt], { env })
  const rebuildMs = now() - t0

  const plain = path.join(ws.tmp, 'cross-extracted')
  mkdirSync(plain)
  sh(`tar -xOf ${q(rebuilt)} kheaders.tar.xz | tar -xJf - -C ${q(plain)}`)
  sh(`find ${q(plain)} -type f -print0 | xargs -0 cat > /dev/null`)
  const plainImg = path.join(ws.tmp, 'cross-extracted.img')
  log('pack of the extracted tree (no rebuild needed)')
  t0 = now()
  run(NODE, [CLI, 'pack', '--kernel', plain, '-o', plainImg], { env })
  const plainMs = now() - t0

  const info = JSON.parse(run(NODE, [CLI, 'info', '--json', rebuilt], { env })) as {
    hostPrograms?: { compiler: string; prefix: string; rebuilt: string[]; dropped: string[] }
  }
  const infoPlain = JSON.parse(run(NODE, [CLI, 'info', '--json', plainImg], { env })) as { hostPrograms?: unknown }
  const listA = tarSizes(rebuilt, 'kheaders.tar.xz')
  const listB = tarSizes(plainImg, 'kheaders.tar.xz')
  const namesA = Object.keys(listA).sort()
  const namesB = Object.keys(listB).sort()
  const sameList = namesA.length === namesB.length && namesA.every((n, i) => n === namesB[i])
  const sameBytes = sameList && namesA.every((n) => listA[n] === listB[n])

  section.add({
    measure: 'pack wall time',
    ours: `${fmtMs(rebuildMs)} (with rebuild)`,
    baseline: `${fmtMs(plainMs)} (no rebuild needed)`,
    ratio: fmtRatio(rebuildMs / plainMs),
    how: `\`kheadersfs pack --kernel TREE -o IMG\` (default profile and threads), 1 run each, one after the other (the shared machine's load moves both); the rebuild's image records ${info.hostPrograms ? `compiler "${info.hostPrograms.compiler}"` : 'no hostPrograms (!)'}; the baseline's records ${infoPlain.hostPrograms ? 'a rebuild (!)' : 'none'}`,
  })
  const sizeA = statSync(rebuilt).size
  const sizeB = statSync(plainImg).size
  section.add({
    measure: 'image size',
    ours: fmtBytes(sizeA),
    baseline: fmtBytes(sizeB),
    ratio: fmtRatio(sizeA / sizeB),
    how: `whole image files; archive file lists ${sameList ? `identical (${namesA.length} entries)` : `DIFFER (${namesA.length} vs ${namesB.length} entries)`}, member sizes ${sameBytes ? 'identical' : 'differ'} (\`tar -tvJ\` of each kheaders.tar.xz)${sizeA === sizeB ? "; the images differ only in the manifest's hostPrograms record, which the tar padding absorbs" : '; the manifest (hostPrograms record) and xz make the difference'}`,
  })
  for (const p of HOST_PROGRAMS) {
    const x86 = path.join(tree, p)
    const orig = existsSync(x86) ? statSync(x86).size : NaN
    const arm = listA[p]
    const machine = existsSync(x86) ? elfMachine(x86) : 0
    section.add({
      measure: `${p}`,
      ours: arm === undefined ? 'not in the image' : `${kb(arm)} (AArch64, rebuilt)`,
      baseline: `${kb(orig)} (${machine === 62 ? 'x86-64' : `e_machine ${machine}`}, in the cache tree)`,
      ratio: arm === undefined ? '—' : fmtRatio(arm / orig),
      how: "size in the image (`tar -tvJ` of its kheaders.tar.xz) vs the cross-built tree's own x86-64 file; both unstripped, as Kbuild links them (AArch64 binaries are laid out for 64 KiB pages, which pads small ones)",
    })
  }
  const dropped = info.hostPrograms?.dropped ?? []
  const droppedBytes = dropped.map((d) => (existsSync(path.join(tree, d)) ? statSync(path.join(tree, d)).size : 0))
  const droppedTotal = droppedBytes.reduce((a, b) => a + b, 0)
  section.add({
    measure: 'host programs left out',
    ours: `${dropped.length} files, ${kb(droppedTotal)}`,
    baseline: '—',
    how: `\`kheadersfs info --json\` hostPrograms.dropped, sizes in the cache tree: ${dropped.map((d, i) => `${d} ${droppedBytes[i].toLocaleString('en-US')}`).join(', ') || 'none'}`,
  })
  rmSync(plain, { recursive: true, force: true })
  rmSync(plainImg, { force: true })
  return { section, image: rebuilt, release }
}

// ───────────────────────────── 5.3 the board ─────────────────────────────

async function board(deb: string, image: string, release: string): Promise<Section> {
  const section = new Section(
    '5.3 An emulated arm64 board',
    '**Emulated: qemu-user (binfmt_misc) on this x86-64 host, not hardware** — every board figure includes instruction translation ' +
      'and is many times slower than an arm64 machine would be; the ratios compare like with like under the same emulation. ' +
      `A fresh Debian trixie arm64 root (test/helpers/board.ts: overlay over a cached mmdebstrap root, chroot) with ${path.basename(deb)} ` +
      'and `make gcc kmod xz-utils` installed (--no-install-recommends; no linux-headers), and the image of 5.2 at ' +
      `/lib/modules/${release}/kheaders.img; commands run with \`QEMU_UNAME=${release}\` so \`uname -r\` names it. ` +
      'Times are wall times of `chroot ROOT /bin/sh -c CMD` as seen from the host (spawn included). One run each (emulation is slow) unless a row says otherwise.',
    3,
  )
  const teardowns: Array<() => unknown> = []
  const t = {
    teardown: (fn: () => unknown) => void teardowns.push(fn),
    comment: (...a: unknown[]) => log(a.map(String).join(' ')),
  }
  const b = await Board.create(t, 'trixie', 'arm64')
  try {
    const env = { QEMU_UNAME: release }
    let t0 = now()
    log('board: apt-get update, install the .deb')
    await b.installDeb(deb)
    const installMs = now() - t0
    log('board: apt-get install make gcc kmod xz-utils')
    t0 = now()
    await b.aptInstall(['make', 'gcc', 'kmod', 'xz-utils'], { noRecommends: true })
    const toolchainMs = now() - t0
    const gcc = (await b.must('gcc --version')).stdout.split('\n')[0]
    mkdirSync(b.path(`lib/modules/${release}`), { recursive: true })
    cpSync(image, b.path(`lib/modules/${release}/kheaders.img`))
    await b.must('mkdir -p /proc-ext /root/h')
    cpSync(HELLO, b.path('root/hello'), { recursive: true })
    cpSync(HELLO, b.path('root/hello2'), { recursive: true })
    const uname = (await b.must('uname -r', { env })).stdout.trim()
    if (uname !== release) throw new Error(`QEMU_UNAME not honoured: uname -r = ${uname}`)

    log('board: node -e 0 ×3')
    const nodeRuns: number[] = []
    for (let i = 0; i < 3; i++) nodeRuns.push((await b.must('node -e 0', { env })).ms)
    const nodeStart = stats(nodeRuns)

    log('board: kheadersfs mount /proc-ext')
    // Time stamps inside the board (date +%s%N): mount returned, then the first byte of kheaders.txz read.
    const mt = await b.must(
      'a=$(date +%s%N); kheadersfs mount /proc-ext; b=$(date +%s%N); head -c 1 /proc-ext/kheaders.txz > /dev/null; c=$(date +%s%N); echo $a $b $c',
      { env, timeoutMs: 600_000 },
    )
    const [ta, tb, tc] = mt.stdout
      .trim()
      .split(/\s+/)
      .map((n) => Number(n) / 1e6)
    const mountMs = tb - ta
    const readableMs = tc - ta
    let extractMs = NaN
    let builtX: RunResult | undefined
    let builtV: RunResult | undefined
    let exitMs = NaN
    let umountMs = NaN
    try {
      log('board: tar -xf /proc-ext/kheaders.txz -C /root/h')
      extractMs = (await b.must('tar -xf /proc-ext/kheaders.txz -C /root/h', { env })).ms
      log('board: make -C /root/h M=/root/hello modules')
      builtX = await b.run('make -C /root/h M=/root/hello modules', { env, timeoutMs: 3600_000 })
      if (builtX.code !== 0)
        log(`extracted build failed:\n${builtX.stdout.slice(-2000)}\n${builtX.stderr.slice(-2000)}`)
      log('board: make -C /proc-ext/kheaders M=/root/hello2 modules')
      builtV = await b.run('make -C /proc-ext/kheaders M=/root/hello2 modules', { env, timeoutMs: 3600_000 })
      if (builtV.code !== 0) log(`view build failed:\n${builtV.stdout.slice(-2000)}\n${builtV.stderr.slice(-2000)}`)
    } finally {
      log('board: umount /proc-ext → daemon exit')
      t0 = now()
      const um = await b.run('umount /proc-ext')
      umountMs = now() - t0
      while (b.live(DAEMON).length > 0 && now() - t0 < 60_000) await new Promise((r) => setTimeout(r, 10))
      if (um.code === 0 && b.live(DAEMON).length === 0) exitMs = now() - t0
      if (mountsUnder(b.path('proc-ext')).length > 0) spawnSync('umount', ['-l', b.path('proc-ext')])
    }
    const ko = (dir: string, r: RunResult | undefined): string => {
      if (r === undefined) return 'not run'
      if (r.code !== 0) return `FAILED (exit ${r.code}) after ${fmtMs(r.ms)}`
      const f = b.path(`root/${dir}/hello.ko`)
      return existsSync(f)
        ? `${fmtMs(r.ms)} (hello.ko ${elfMachine(f) === EM_AARCH64 ? 'AArch64' : `e_machine ${elfMachine(f)}`})`
        : `${fmtMs(r.ms)} (no hello.ko!)`
    }
    const ok = (r: RunResult | undefined): boolean => r !== undefined && r.code === 0

    section.add({
      measure: 'board setup: .deb, then toolchain',
      ours: `${fmtMs(installMs)}; ${fmtMs(toolchainMs)}`,
      baseline: '—',
      how: `context only: \`apt-get update\` (cached lists revalidated) + \`apt-get install ./${path.basename(deb)}\`; then \`apt-get install --no-install-recommends make gcc kmod xz-utils\` from the shared .deb cache (${gcc})`,
    })
    section.add({
      measure: '`kheadersfs mount /proc-ext` → readable',
      ours: `${fmtMs(readableMs)} (command returned at ${fmtMs(mountMs)})`,
      baseline: `${fmtMs(nodeStart.median)} (\`node -e 0\`, median of 3: ${nodeRuns.map(fmtMs).join(', ')})`,
      ratio: fmtRatio(readableMs / nodeStart.median),
      how: 'on the board: `date +%s%N` before `kheadersfs mount /proc-ext` (image found via `uname -r`), after it returned, and after `head -c 1 /proc-ext/kheaders.txz`; 1 run. Baseline: bare node start on the same board',
    })
    section.add({
      measure: '`tar -xf /proc-ext/kheaders.txz -C /root/h`',
      ours: fmtMs(extractMs),
      baseline: '—',
      how: "extract the module-build archive from the mount to the board's disk (overlay upper dir on the host's disk), 1 run",
    })
    section.add({
      measure: 'hello.ko: view build vs extracted build',
      ours: ko('hello2', builtV),
      baseline: ko('hello', builtX),
      ratio: ok(builtV) && ok(builtX) ? fmtRatio(builtV.ms / builtX.ms) : '—',
      how: `\`make -C /proc-ext/kheaders M=/root/hello2 modules\` vs \`make -C /root/h M=/root/hello modules\`: test/fixtures/hello, fresh copies, the board's gcc (not the aarch64-linux-gnu-gcc the kernel was built with); the extracted build ran first, then the view build on the same mount (after the tar extraction had read the whole archive through it), 1 run each`,
    })
    section.add({
      measure: 'hello.ko: view build vs extract + build',
      ours: ok(builtV) ? fmtMs(builtV.ms) : '—',
      baseline: ok(builtX)
        ? `${fmtMs(extractMs + builtX.ms)} (tar ${fmtMs(extractMs)} + make ${fmtMs(builtX.ms)})`
        : '—',
      ratio: ok(builtV) && ok(builtX) ? fmtRatio(builtV.ms / (extractMs + builtX.ms)) : '—',
      how: 'the rows above: building from the view against extracting the archive first and building from the copy',
    })
    section.add({
      measure: '`umount /proc-ext` → daemon exited',
      ours: Number.isNaN(exitMs) ? 'daemon still running 60 s after umount (or umount failed)' : fmtMs(exitMs),
      baseline: `\`umount\` command itself ${fmtMs(umountMs)}`,
      how: 'from the host: spawn `umount /proc-ext` in the board, then poll every 10 ms until no live process in the root matches /kheadersfs|node/; 1 run',
    })
    return section
  } finally {
    await b.close()
    for (const fn of teardowns) await fn()
  }
}

// ───────────────────────────── 5.4 recorded figures ─────────────────────────────

const FIGURE_LABELS: Record<string, string> = {
  freshRootMs: 'fresh board root (overlay)',
  aptUpdateMs: '`apt-get update`',
  installDebMs: '`apt-get install ./kheadersfs_*.deb`',
  aptInstallToolchainMs: '`apt-get install make gcc linux-headers-arm64 kmod xz-utils`',
  packOnBoardMs: '`kheadersfs pack` on the board',
  mountMs: '`kheadersfs mount /proc-ext`',
  tarExtractMs: '`tar -xf /proc-ext/kheaders.txz`',
  buildFromExtractedMs: 'hello.ko from the extracted tree',
  buildFromMountMs: 'hello.ko from /proc-ext/kheaders',
  daemonExitMs: '`umount` → daemon exit',
  packOnHostMs: '`kheadersfs pack --sysroot` of the board tree on the host',
  mountHostPackedMs: 'mount the host-packed image on the board',
  buildFromHostPackedMountMs: 'hello.ko from the host-packed mount',
}

function recordedFigures(): Section | undefined {
  const file = path.join(CACHE, 'board-figures.json')
  if (!existsSync(file)) return undefined
  const all = JSON.parse(readFileSync(file, 'utf8')) as Record<string, Record<string, string | number>>
  const section = new Section(
    '5.4 Figures recorded by the board tests',
    `Context, not measured by this bench: the step times the board tests (test/board/arm64-module-build.test.ts) last wrote to ${file}, ` +
      `copied as they are — ${Object.entries(all)
        .map(
          ([board, f]) =>
            `${board}: test run of ${f.date ?? '?'}${f.release ? `, release ${f.release}` : ''}${f.deb ? `, ${f.deb}` : ''}`,
        )
        .join('; ')}. One run each, emulated as above, ` +
      "with Debian's own linux-headers-arm64 (packed on the board, and on the host with --sysroot) rather than the cross-built tree.",
    3,
  )
  for (const [board, figs] of Object.entries(all)) {
    const meta = `${board} test run (${figs.date ?? '?'})`
    for (const [k, v] of Object.entries(figs)) {
      if (typeof v !== 'number') continue
      section.add({
        measure: `${board}: ${FIGURE_LABELS[k] ?? k}`,
        ours: fmtMs(v),
        baseline: '—',
        how: `${meta}: \`${k}\``,
      })
    }
    const ratio = (a: string, b: string, what: string): void => {
      if (typeof figs[a] === 'number' && typeof figs[b] === 'number') {
        section.add({
          measure: `${board}: ${what}`,
          ours: fmtMs(figs[a]),
          baseline: fmtMs(figs[b]),
          ratio: fmtRatio(figs[a] / figs[b]),
          how: `${a} / ${b}, same test run`,
        })
      }
    }
    ratio('buildFromMountMs', 'buildFromExtractedMs', 'view build / extracted build')
    for (const [k, v] of Object.entries(figs))
      if (typeof v !== 'number' && !['date', 'release', 'deb', 'board'].includes(k))
        section.add({ measure: `${board}: ${k}`, ours: String(v), baseline: '—', how: meta })
  }
  return section
}

// ───────────────────────────── section 5 ─────────────────────────────

export async function benchBoards(ws: Workspace, note = ''): Promise<Section[]> {
  const head = new Section(
    '5. Boards, packages and cross-built kernels',
    'What kheadersfs costs where it is meant to run: the size of its Debian packages, the price of packing a kernel cross-built on ' +
      'an x86 host for an arm64 board (its host programs rebuilt for the board), and mounting and building a module on an ' +
      'arm64 board. **The board is emulated with qemu-user on this x86-64 host; its figures are not hardware figures**, ' +
      'and its ratios compare steps under the same emulation. No targets: these rows report.' +
      (note ? ` ${note}` : ''),
  )
  const sections = [head]
  const { section: pkgs, debs } = packages()
  sections.push(pkgs)
  const cross = crossPack(ws)
  sections.push(cross.section)
  const skip = boardSkipReason('arm64', 'trixie')
  if (skip !== false || debs.arm64 === undefined) {
    sections.push(new Section('5.3 An emulated arm64 board', `Not run: ${skip || 'no arm64 .deb'}.`, 3))
  } else {
    sections.push(await board(debs.arm64, cross.image, cross.release))
  }
  rmSync(cross.image, { force: true })
  const recorded = recordedFigures()
  if (recorded) sections.push(recorded)
  return sections
}

/**
 * The existing report with its "## N." section (default 5) replaced, or added before the first later
 * section (or at the end), and the summary line recounted.
 */
export function spliceSection(doc: string, markdown: string, n = '5'): string {
  const lines = doc.split('\n')
  const num = (l: string): number | undefined => {
    const m = /^## (\d+)\. /.exec(l)
    return m ? Number(m[1]) : undefined
  }
  const start = lines.findIndex((l) => num(l) === Number(n))
  const body = markdown.trimEnd().split('\n')
  let out: string[]
  if (start < 0) {
    const later = lines.findIndex((l) => (num(l) ?? 0) > Number(n))
    if (later < 0)
      out = [...lines.slice(0, lines.length && lines[lines.length - 1] === '' ? -1 : undefined), ...body, '']
    else out = [...lines.slice(0, later), ...body, '', ...lines.slice(later)]
  } else {
    let end = lines.findIndex((l, i) => i > start && /^## /.test(l))
    if (end < 0) end = lines.length
    out = [...lines.slice(0, start), ...body, '', ...lines.slice(end)]
  }
  // Recount PASS/MISS over every table's Result column (the 6th cell of a 7-cell row).
  let pass = 0
  const missed: string[] = []
  for (const l of out) {
    if (!l.startsWith('| ') || l.startsWith('| Measure ')) continue
    const cells = l.slice(2, -2).split(/(?<!\\) \| /)
    if (cells.length !== 7) continue
    if (cells[5] === 'PASS') pass++
    else if (cells[5] === '**MISS**') missed.push(cells[0].replace(/\\\|/g, '|'))
  }
  const summary =
    `**Summary: ${pass} PASS, ${missed.length} MISS**` + (missed.length ? ` (MISS: ${missed.join('; ')})` : '')
  const si = out.findIndex((l) => l.startsWith('**Summary: '))
  if (si >= 0) out[si] = summary
  return out.join('\n').replace(/\n*$/, '\n')
}
