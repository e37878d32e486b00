// The kernel hooks' decisions, on the host with the tiny tree and every path in a temp directory:
// the settings file, packing (atomic, once per tree), what counts as the hooks' own image, and that an
// image placed by hand or served by an image package is never replaced or removed. The same flow with
// Debian's real packages and dpkg runs on an emulated board in test/board/kernel-hooks.test.ts.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { DEFAULT_CONFIG, parseConfig, switchedOff, threadsFor } from '../../src/kernel-hooks/config'
import { packRelease, removeRelease, sweepRemovedHeaders, type HookPaths } from '../../src/kernel-hooks/hooks'
import { readRecord } from '../../src/kernel-hooks/state'
import { runCli } from '../helpers/cli'
import { tinyTree, TINY_RELEASE } from '../helpers/tiny-tree'
import { tmpDir } from '../helpers/tmp'

const R = TINY_RELEASE
const config = { ...DEFAULT_CONFIG, threads: 1 }
const env = { KHEADERSFS_LOG_LEVEL: 'silent' }

function fakeSystem(t: Parameters<typeof tmpDir>[0]): HookPaths & { tree: string; image: string } {
  const d = tmpDir(t)
  const paths = {
    modules: path.join(d, 'lib/modules'),
    imagePackages: path.join(d, 'usr/lib/kheadersfs'),
    src: path.join(d, 'usr/src'),
    state: path.join(d, 'var/lib/kheadersfs/kernel-hooks'),
  }
  const tree = tinyTree(path.join(paths.src, `linux-headers-${R}`))
  return { ...paths, tree, image: path.join(paths.modules, R, 'kheaders.img') }
}

t.test('the settings file', async (t) => {
  t.same(parseConfig('# all defaults\n\n'), DEFAULT_CONFIG)
  t.same(parseConfig('PACK=no\nPROFILE=headers\n REMOVE_WITH_HEADERS = no \nTHREADS=2\nXZ_PRESET=1\n'), {
    pack: false,
    profile: 'headers',
    removeWithHeaders: false,
    threads: 2,
    xzPreset: 1,
  })
  for (const [text, why] of [
    ['PACK=off', /line 1 "PACK=off": PACK is yes or no/],
    ['# c\nPROFILE=full', /line 2 "PROFILE=full": PROFILE is one of module-build, headers/],
    ['THREADS=0', /THREADS is auto or a number/],
    ['pack yes', /not KEY=value/],
    ['XZ_PRESET=0', /XZ_PRESET is a number from 1 to 9/],
    ['XZ=9', /unknown key; the keys are PACK, PROFILE, REMOVE_WITH_HEADERS, THREADS, XZ_PRESET/],
  ] as const)
    t.throws(() => parseConfig(text, '/etc/x.conf'), { message: why, name: 'UsageError' }, text)
  t.ok(switchedOff({ KHEADERSFS_KERNEL_HOOKS: 'off' }))
  t.ok(switchedOff({ KHEADERSFS_KERNEL_HOOKS: 'NO' }))
  t.notOk(switchedOff({ KHEADERSFS_KERNEL_HOOKS: 'on' }))
  t.notOk(switchedOff({}))
})

t.test('THREADS=auto: one per core, as half the available memory allows at 100 MiB each', async (t) => {
  const MiB = 1 << 20
  t.equal(threadsFor('auto', 4, 8192 * MiB), 4)
  t.equal(threadsFor('auto', 4, 450 * MiB), 2, 'a 512 MB board with ~450 MB available: 2 threads')
  t.equal(threadsFor('auto', 4, 150 * MiB), 1, 'never below one')
  t.equal(threadsFor('auto', 4, undefined), 1, 'no /proc/meminfo: one')
  t.equal(threadsFor(3, 1, 0), 3, 'a number is taken as is')
})

t.test('pack once per tree, replace only its own image, remove it with its kernel', async (t) => {
  const s = fakeSystem(t)
  const first = await packRelease(R, config, s, env)
  t.match(first.line, new RegExp(`packed ${s.image} \\(module-build, .*\\) from ${s.tree}`))
  t.ok(existsSync(s.image), 'the image is there')
  t.equal(readRecord(s.state, R)?.tree, s.tree, 'and recorded as the hooks own')
  t.same(readdirSync(path.dirname(s.image)), ['kheaders.img'], 'no temp file left beside it')
  t.match((await packRelease(R, config, s, env)).line, /is up to date/, 'the same tree again: not packed twice')
  const repacked = await packRelease(R, { ...config, profile: 'headers' }, s, env)
  t.match(repacked.line, /packed .*\(headers,/, 'another profile: packed again over its own image')

  t.same(removeRelease(R, s, 'test').line, `${R}: removed ${s.image} (test)`)
  t.notOk(existsSync(s.image))
  t.equal(readRecord(s.state, R), undefined, 'the record goes with it')
})

t.test('an image placed by hand is never replaced or removed', async (t) => {
  const s = fakeSystem(t)
  await packRelease(R, config, s, env)
  writeFileSync(s.image, 'placed by hand')
  t.match((await packRelease(R, config, s, env)).line, /kept .*not packed by the kernel hooks/)
  t.match(removeRelease(R, s, 'test').line, /kept .*not packed by the kernel hooks/)
  rmSync(path.join(s.tree, 'Makefile'))
  t.same(sweepRemovedHeaders(config, s), [], 'its headers gone: nothing to sweep (the record was dropped)')
  t.equal(readFileSync(s.image, 'utf8'), 'placed by hand', 'byte for byte what the user put there')
})

t.test('an image package serves the release: not packed', async (t) => {
  const s = fakeSystem(t)
  mkdirSync(s.imagePackages, { recursive: true })
  writeFileSync(path.join(s.imagePackages, `${R}.img`), 'packaged')
  t.match((await packRelease(R, config, s, env)).line, /not packing: the image package's .* serves it/)
  t.notOk(existsSync(s.image))
})

t.test('headers removed: the sweep removes their image, or keeps it with REMOVE_WITH_HEADERS=no', async (t) => {
  const s = fakeSystem(t)
  await packRelease(R, config, s, env)
  t.same(sweepRemovedHeaders(config, s), [], 'headers still there: nothing to do')
  rmSync(s.tree, { recursive: true })
  t.match(sweepRemovedHeaders({ ...config, removeWithHeaders: false }, s)[0]?.line, /kept .*REMOVE_WITH_HEADERS=no/)
  t.ok(existsSync(s.image))
  t.match(sweepRemovedHeaders(config, s)[0]?.line, /removed .*its headers .* were removed/)
  t.notOk(existsSync(s.image))
})

t.test('a failing pack leaves no image and no temp file', async (t) => {
  const s = fakeSystem(t)
  rmSync(path.join(s.tree, 'include/linux'), { recursive: true })
  await t.rejects(packRelease(R, config, s, env), { name: 'KernelTreeError' })
  t.same(readdirSync(path.join(s.modules, R)), [], 'nothing in the modules directory')
  t.equal(readRecord(s.state, R), undefined, 'nothing recorded')
})

t.test('the command: a warning and exit 0 on failure, exit 2 only for a usage error', async (t) => {
  const none = await runCli(['kernel-hook', 'headers-installed', '0.0.0-kheadersfs-none'], { env })
  t.same([none.code, none.stderr], [0, ''])
  t.match(none.stdout, /0\.0\.0-kheadersfs-none: not packing: no headers tree/)
  const bad = await runCli(['kernel-hook', 'headers-installed', '../etc'], { env })
  t.equal(bad.code, 0, 'a bad release from a hook is a warning too')
  t.match(bad.stderr, /^kheadersfs: warning: cannot pack the image for \.\.\/etc: Cannot use release/)
  t.equal(bad.stderr.trim().split('\n').length, 1, 'one line')
  const strict = await runCli(['kernel-hook', '--strict', 'headers-installed', '../etc'], { env })
  t.equal(strict.code, 2, "--strict: the failure's own exit status (by hand, from a script)")
  t.match(strict.stderr, /^kheadersfs: cannot pack the image for \.\.\/etc: Cannot use release/)
  const upgrade = await runCli(['kernel-hook', 'image-removed', '0.0.0-kheadersfs-none'], {
    env: { ...env, DEB_MAINT_PARAMS: 'upgrade 1.2-1' },
  })
  t.same([upgrade.code, upgrade.stdout, upgrade.stderr], [0, '', ''], 'postrm "upgrade": nothing done')
  t.equal((await runCli(['kernel-hook', 'repack', R], { env })).code, 2)
  t.equal((await runCli(['kernel-hook', 'headers-removed', R], { env })).code, 2)
})
