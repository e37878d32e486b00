// Trees whose code pack would run as root. Rebuilding a cross-built tree's host programs runs the
// tree's Makefiles and its scripts/basic/fixdep (in a scratch copy), with a compiler the tree's
// .config may name: that is refused for a tree another user owns unless --trust-tree, and for a
// compiler that is not a plain name on PATH (or a --cross-compile / $CROSS_COMPILE prefix holding
// shell or make syntax). A canary proves nothing ran: the copy's top Makefile touches it when make
// parses it, and every fake compiler put on PATH touches it when run.
import { execFileSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t, { type Test } from 'tap'
import { readElfId } from '../../src/pack/elf'
import { detectKernelTree } from '../../src/pack/kernel-tree'
import { selectFiles } from '../../src/pack/select'
import { errorLines, runCli } from '../helpers/cli'
import { CROSS_PREFIX, crossKernel } from '../helpers/cross-kernel'
import { record } from '../helpers/stress'
import { tmpDir } from '../helpers/tmp'

const skip =
  process.getuid?.() !== 0 ? 'needs root (files given to nobody; the cross-built fixture installs packages)' : false
const NOBODY = 65534

/**
 * Copy what pack selects from `src` (module-build profile) to `dst`: the same files the host-program
 * rebuild's scratch copy is made from, without the 1.5 GB of objects, and not hard links (a chown of
 * the copy would change the cached tree).
 */
async function copySelection(src: string, dst: string): Promise<number> {
  const tree = detectKernelTree({ kernel: src, env: process.env })
  const { entries } = await selectFiles(tree, 'module-build')
  for (const e of entries) {
    const p = path.join(dst, e.path)
    if (e.type === 'directory') {
      mkdirSync(p, { recursive: true })
      continue
    }
    mkdirSync(path.dirname(p), { recursive: true })
    if (e.type === 'symlink') symlinkSync(e.linkname!, p)
    else if (e.data !== undefined) writeFileSync(p, e.data)
    else copyFileSync(e.source!, p) // keeps the mode: fixdep stays executable
  }
  return entries.length
}

interface Packed {
  code: number | null
  stderr: string
  /** The one line a user sees, or '' when there is not exactly one. */
  line: string
  /** The image file was written. */
  made: boolean
  /** The canary exists: make parsed the tree's Makefile, or a fake compiler ran. */
  ran: boolean
  out: string
}

t.test('trees whose code pack would run as root: refused unless trusted, nothing run', { skip }, async (t) => {
  const src = crossKernel('arm64')
  const dir = tmpDir(t)
  const k = path.join(dir, 'k')
  let t0 = Date.now()
  const copied = await copySelection(src, k)
  t.comment(`copied ${copied} entries of ${src} in ${Date.now() - t0} ms`)
  const canary = path.join(dir, 'CANARY')
  const makefile = path.join(k, 'Makefile')
  writeFileSync(makefile, `$(shell touch ${canary})\n${readFileSync(makefile, 'utf8')}`)
  const config = readFileSync(path.join(k, '.config'), 'utf8')
  // What makes pack want to run the tree's code: an arm64 kernel whose host programs are x86-64.
  t.equal(readElfId(path.join(k, 'scripts/basic/fixdep'))?.machine, 62, "the copy's fixdep is an x86-64 program")
  t.match(config, /^CONFIG_ARM64=y$/m, 'the kernel is for arm64')
  t.match(config, /^CONFIG_CC_VERSION_TEXT="aarch64-linux-gnu-gcc /m, '.config names the cross compiler')

  // Fake compilers: each touches the canary and then compiles, so a pack that took one would work.
  const bin = path.join(dir, 'bin')
  mkdirSync(bin)
  const fake = (name: string): void =>
    writeFileSync(path.join(bin, name), `#!/bin/sh\ntouch "$KHF_CANARY"\nexec ${CROSS_PREFIX.arm64}gcc "$@"\n`, {
      mode: 0o755,
    })
  const env = {
    PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    KHF_CANARY: canary,
    CROSS_COMPILE: '',
    KHEADERSFS_LOG_LEVEL: 'info',
  }
  let n = 0
  const pack = async (args: string[], extraEnv: Record<string, string> = {}): Promise<Packed> => {
    const out = path.join(dir, `x${n++}.img`)
    rmSync(canary, { force: true })
    const r = await runCli(['pack', '--kernel', k, '-o', out, '--xz-preset', '1', ...args], {
      env: { ...env, ...extraEnv },
    })
    const lines = errorLines(r.stderr)
    return {
      code: r.code,
      stderr: r.stderr,
      line: lines.length === 1 ? lines[0] : '',
      made: existsSync(out),
      ran: existsSync(canary),
      out,
    }
  }

  let tried = 0
  let passed = 0
  /** Count a case: every check of it passed. */
  const tally = (t: Test, results: boolean[], p: Packed): void => {
    tried++
    if (results.every(Boolean)) passed++
    else t.comment(p.stderr.slice(-3000))
  }
  const refusedBeforeRunning = (t: Test, p: Packed, says: string): boolean[] => [
    t.equal(p.code, 7, 'exit 7'),
    t.ok(p.line.includes(says), `one line: ${says}`),
    t.notOk(p.made, 'no image'),
    t.notOk(p.ran, 'nothing ran: make never parsed the Makefile, no compiler ran'),
  ]

  // Only the first word of CONFIG_CC_VERSION_TEXT names the compiler, so "$(touch X)-gcc" (a space) never
  // got that far; tabs do. The rule before took the basename of any first word ending in -gcc and ran it
  // from PATH: each of these ran its fake compiler, and make expanded the prefix on its command line.
  const named = [
    ['a path climbing out of the tree', '../../tmp/evil-gcc'],
    ['make syntax (tabs, no spaces)', '$(shell\ttouch\t$(KHF_CANARY))-gcc'],
    ['shell syntax (tabs, no spaces)', 'aarch64-linux-gnu-gcc;touch\t$$KHF_CANARY;aarch64-linux-gnu-gcc'],
  ] as const
  for (const [what, cc] of named) {
    await t.test(`.config names a compiler that is ${what}: refused before anything runs`, async (t) => {
      fake(path.basename(cc)) // what a rule taking the basename would have run from PATH
      writeFileSync(
        path.join(k, '.config'),
        config.replace(/^CONFIG_CC_VERSION_TEXT=.*$/m, () => `CONFIG_CC_VERSION_TEXT="${cc} (GCC) 12.2.0"`),
      )
      t.teardown(() => writeFileSync(path.join(k, '.config'), config))
      const p = await pack([])
      tally(
        t,
        refusedBeforeRunning(
          t,
          p,
          `with the compiler ${path.join(k, '.config')} names (${JSON.stringify(cc)}): it is not a plain compiler name found on PATH; pass --cross-compile PREFIX`,
        ),
        p,
      )
    })
  }

  const prefixes = [
    ['--cross-compile', 'aarch64-linux-gnu-$(shell touch $(KHF_CANARY))'],
    ['CROSS_COMPILE', 'aarch64-linux-gnu-`touch "$KHF_CANARY"`'],
  ] as const
  for (const [from, prefix] of prefixes) {
    await t.test(`${from} ${prefix}: refused before anything runs`, async (t) => {
      fake(`${prefix}gcc`)
      const p =
        from === '--cross-compile' ? await pack(['--cross-compile', prefix]) : await pack([], { CROSS_COMPILE: prefix })
      tally(
        t,
        refusedBeforeRunning(
          t,
          p,
          `kheadersfs: Cannot use ${from} ${JSON.stringify(prefix)}: a compiler prefix holds only letters, digits and _ . + / - (e.g. aarch64-linux-gnu-)`,
        ),
        p,
      )
    })
  }

  // Only scripts/ is another user's: its Makefiles and fixdep would still run as root.
  await t.test(
    "the top directory is root's, scripts/ (whose Makefiles and fixdep run) belongs to nobody",
    async (t) => {
      execFileSync('chown', ['-R', `${NOBODY}:${NOBODY}`, path.join(k, 'scripts')])
      t.teardown(() => execFileSync('chown', ['-R', '0:0', path.join(k, 'scripts')]))
      const p = await pack([])
      t.equal(p.code, 7, 'exit 7')
      t.match(p.line, `belongs to uid ${NOBODY}; check the tree and pass --trust-tree`, 'one line naming the owner')
      t.match(p.line, `${path.join(k, 'scripts')}`, 'and what of the tree it is')
      t.notOk(p.ran, 'make never parsed the Makefile')
    },
  )

  await t.test('a tree that belongs to nobody: refused without --trust-tree, make never runs', async (t) => {
    execFileSync('chown', ['-R', `${NOBODY}:${NOBODY}`, k])
    t0 = Date.now()
    const p = await pack([])
    const ms = Date.now() - t0
    const results = refusedBeforeRunning(
      t,
      p,
      `kheadersfs: Cannot rebuild the kernel's host programs from ${k}: that runs its Makefiles and scripts/basic/fixdep as root, and the directory ${k} belongs to uid ${NOBODY}; check the tree and pass --trust-tree, or pass --profile headers (nothing is run)`,
    )
    results.push(t.notOk(p.stderr.includes("running the tree's Makefiles"), 'pack did not say it runs them'))
    t.comment(`refused in ${ms} ms`)
    // The way out the line names: the headers profile runs nothing.
    const h = await pack(['--profile', 'headers'])
    results.push(
      t.equal(h.code, 0, '--profile headers: exit 0'),
      t.ok(h.made, 'an image'),
      t.notOk(h.ran, 'and nothing ran'),
    )
    tally(t, results, p)
  })

  await t.test('the same tree with --trust-tree: the rebuild runs, and pack says so', async (t) => {
    t0 = Date.now()
    const p = await pack(['--trust-tree'])
    const ms = Date.now() - t0
    const said = p.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg?: string; dirs?: string[] })
      .find((l) => l.msg?.startsWith("running the tree's Makefiles"))
    const results = [
      t.equal(p.code, 0, 'exit 0'),
      t.ok(p.made, 'image written'),
      t.ok(p.ran, "make parsed the tree's Makefile (the canary works)"),
      t.equal(
        said?.msg,
        `running the tree's Makefiles and scripts/basic/fixdep (in a scratch copy) to rebuild its host programs with ${CROSS_PREFIX.arm64}gcc`,
        'pack says it runs them',
      ),
      t.same(said?.dirs, [k], 'naming the tree'),
    ]
    if (p.made) {
      const info = JSON.parse((await runCli(['info', '--json', p.out])).stdout) as {
        hostPrograms?: { rebuilt: string[] }
      }
      results.push(
        t.same(
          [...(info.hostPrograms?.rebuilt ?? [])].sort(),
          ['scripts/basic/fixdep', 'scripts/genksyms/genksyms', 'scripts/mod/modpost'],
          'the host programs were rebuilt for the board',
        ),
      )
    }
    t.comment(`pack --trust-tree with the rebuild: ${ms} ms`)
    tally(t, results, p)
  })

  record({
    area: 'Hostile input',
    name: 'Trees whose code pack would run as root: a cross-built tree owned by nobody, a compiler .config names that is a path or holds make or shell syntax, such a --cross-compile or $CROSS_COMPILE prefix',
    tried,
    passed,
    detail:
      'refused with one line (exit 7, no image) before make parses a Makefile or any compiler runs (canary); --trust-tree runs the rebuild and says so',
  })
  t.equal(passed, tried, 'every tree whose code would run handled')
})
