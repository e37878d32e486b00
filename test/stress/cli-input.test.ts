// The command line with missing and malformed values, odd -o lists, mountpoints with spaces and
// relative paths: each bad one gets one line, exit 2 (or its documented code), and changes nothing
// (no mount, no daemon, no state or output file); each good odd one works.
import { copyFileSync, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { errorLines, runCli } from '../helpers/cli'
import { tinyImage } from '../helpers/images'
import { daemonPids, isMounted, mountDirs, waitGone } from '../helpers/mount'
import { record } from '../helpers/stress'
import { tinyTree } from '../helpers/tiny-tree'
import { tmpDir } from '../helpers/tmp'

t.test('bad command lines: one line, their exit code, no state change', async (t) => {
  const image = await tinyImage(t)
  const w = tmpDir(t)
  const tree = tinyTree(path.join(w, 'tree'))
  const { mnt, env, runDir } = mountDirs(t)
  const out = path.join(w, 'out.img')
  const cases: Array<[string[], number, RegExp]> = [
    // missing values
    ...[
      '--kernel',
      '--source',
      '--profile',
      '--config',
      '--release',
      '-o',
      '--output',
      '--xz-preset',
      '--block-size',
      '--threads',
    ].map((f): [string[], number, RegExp] => [
      ['pack', '--kernel', tree, f],
      2,
      /argument missing|requires a value|--kernel DIR is required/,
    ]),
    ...['--image', '--release', '-o'].map((f): [string[], number, RegExp] => [
      ['mount', mnt, f],
      2,
      /argument missing/,
    ]),
    [['--log-level'], 2, /Cannot use --log-level without a value/],
    [['pack', '--kernel'], 2, /Option '--kernel <value>' argument missing/],
    // empty values
    [['pack', '--kernel', ''], 2, /Cannot use --kernel "": give it a value/],
    [['pack', '--kernel', tree, '-o', ''], 2, /Cannot use --output "": give it a value/],
    [['mount', '--image', '', mnt], 2, /Cannot use --image "": give it a value/],
    [['mount', '--release', '', mnt], 2, /Cannot use --release "": give it a value/],
    // malformed values
    ...['0', '10', 'six', '-1', '6.5'].map((v): [string[], number, RegExp] => [
      ['pack', '--kernel', tree, '-o', out, '--xz-preset', v],
      2,
      /Cannot use --xz-preset .*: give a whole number from 1 to 9|the value after --xz-preset starts with "-"; write --xz-preset=VALUE/,
    ]),
    ...['0', '1x', '-1M', '99G', 'M', '1.5M', '1000'].map((v): [string[], number, RegExp] => [
      ['pack', '--kernel', tree, '-o', out, '--block-size', v],
      2,
      /Cannot use --block-size .*: give a size from 65536 to 1073741824 bytes|the value after --block-size starts with "-"/,
    ]),
    ...['-1', 'all', '999', '2.5'].map((v): [string[], number, RegExp] => [
      ['pack', '--kernel', tree, '-o', out, '--threads', v],
      2,
      /Cannot use --threads .*: give a whole number from 0 to 256|the value after --threads starts with "-"/,
    ]),
    [
      ['pack', '--kernel', tree, '-o', out, '--profile', 'everything'],
      2,
      /Cannot use --profile "everything": choose one of module-build, headers/,
    ],
    [['--log-level', 'loud', 'status'], 2, /Cannot use --log-level "loud": choose one of/],
    [['pack', '--kernel', tree, '--bogus'], 2, /Unknown option '--bogus'/],
    [['pack', '--kernel', tree, 'extra'], 2, /unexpected argument "extra"/],
    [['frobnicate'], 2, /unknown command "frobnicate"/],
    [['status', 'x'], 2, /takes no arguments/],
    [['umount'], 2, /give exactly one MOUNTPOINT/],
    [['info'], 2, /give exactly one IMAGE/],
    [['verify', '/nonexistent.img'], 3, /Cannot read image \/nonexistent\.img: no such file/],
    [['pack', '--kernel', '/nonexistent-tree', '-o', out], 7, /Cannot pack|not a kernel|no such/],
    // -o lists with commas and = in odd places
    [
      ['mount', '--image', image, '-o', '=ro', mnt],
      2,
      /Cannot use mount option "=ro": not a kheadersfs or generic mount option/,
    ],
    [
      ['mount', '--image', image, '-o', 'ro,=', mnt],
      2,
      /Cannot use mount option "=": not a kheadersfs or generic mount option/,
    ],
    [
      ['mount', '--image', image, '-o', 'cache_mb==4', mnt],
      2,
      /Cannot use mount option "cache_mb==4": give a whole number of MiB/,
    ],
    [['mount', '--image', image, '-o', 'view=', mnt], 2, /Cannot use mount option "view=": it needs a value/],
    [
      ['mount', '--image', image, '-o', 'force=yes', mnt],
      2,
      /Cannot use mount option "force=yes": force takes no value; write just force/,
    ],
    [
      ['mount', '--image', image, '-o', 'link_build=1', mnt],
      2,
      /Cannot use mount option "link_build=1": link_build takes no value/,
    ],
    ...['--xz-preset=-1', '--threads=-2'].map((v): [string[], number, RegExp] => [
      ['pack', '--kernel', tree, '-o', out, v],
      2,
      /Cannot use --(xz-preset|threads) "-\d": give a whole number/,
    ]),
    [['mount', '--image', image, '-o', 'cache_mb=4,cache_mb=x', mnt], 2, /Cannot use mount option "cache_mb=x"/],
    [['mount', '--image', image, '-o', 'log_level', mnt], 2, /Cannot use mount option "log_level": it needs a value/],
    [['mount', '--image', image, mnt, mnt], 2, /give exactly one MOUNTPOINT/],
    [['mount', '--image', image], 2, /give exactly one MOUNTPOINT/],
    [[image, mnt, '-o', `image=${image}`], 2, /the image is given twice/],
    [['auto', mnt, '-o'], 2, /-o needs a value/],
  ]
  let passed = 0
  for (const [args, code, re] of cases) {
    const before = { run: existsSync(runDir) ? readdirSync(runDir).length : 0, w: readdirSync(w).length }
    const r = await runCli(args, { env, cwd: w })
    const lines = errorLines(r.stderr)
    const name = args.map((a) => JSON.stringify(a)).join(' ')
    const ok = [
      t.equal(r.code, code, `${name}: exit ${code}`),
      t.equal(lines.length, 1, `${name}: one line (${lines.join(' | ')})`),
      t.match(lines[0] ?? '', re, name),
      t.notOk(isMounted(mnt), `${name}: no mount`),
      t.equal(existsSync(runDir) ? readdirSync(runDir).length : 0, before.run, `${name}: no state file`),
      t.equal(readdirSync(w).length, before.w, `${name}: no file written`),
      t.same(daemonPids(runDir), [], `${name}: no daemon`),
    ].every(Boolean)
    if (ok) passed++
  }
  record({
    area: 'Hostile input',
    name: 'Command lines: every value-taking option with no, empty or malformed value; unknown options, commands and arguments; -o with commas and = in odd places',
    tried: cases.length,
    passed,
    detail: 'one line each, exit 2 (3/7 where documented), nothing mounted, written or started',
  })
  t.equal(passed, cases.length)
})

t.test('odd but valid: mountpoints with spaces, relative paths, -o with empty items and = inside values', async (t) => {
  const image = await tinyImage(t)
  const base = tmpDir(t)
  let tried = 0
  let passed = 0
  const good = async (name: string, args: string[], mnt: string, cwd: string): Promise<void> => {
    const runDir = path.join(base, `run-${tried}`)
    const env = { KHEADERSFS_RUN_DIR: runDir }
    mkdirSync(mnt, { recursive: true })
    t.teardown(() => {
      if (isMounted(mnt)) void runCli(['umount', '--lazy', mnt], { env })
    })
    const r = await runCli(args, { env, cwd })
    const served = r.code === 0 && statSync(path.join(mnt, 'kheaders.txz')).size > 0
    const status = await runCli(['status', '--json'], { env })
    const listed =
      r.code === 0 && (JSON.parse(status.stdout) as Array<{ mountpoint: string }>).some((m) => m.mountpoint === mnt)
    const [pid] = daemonPids(runDir)
    const u = await runCli(['umount', mnt], { env })
    const gone = pid !== undefined && (await waitGone(pid)) && !isMounted(mnt)
    const ok = [
      t.equal(r.code, 0, `${name}: ${r.stderr}`),
      t.ok(served, `${name}: served`),
      t.ok(listed, `${name}: status lists ${mnt}`),
      t.equal(u.code, 0, `${name}: umount ${u.stderr}`),
      t.ok(gone, `${name}: unloaded`),
    ].every(Boolean)
    tried++
    if (ok) passed++
  }
  const spaced = path.join(base, 'dir with spaces', 'mount point')
  await good('mountpoint with spaces', ['mount', '--image', image, spaced], spaced, base)
  const tabbed = path.join(base, 'tab\there', 'and\\backslash')
  await good('mountpoint with a tab and a backslash', ['mount', '--image', image, tabbed], tabbed, base)
  const rel = path.join(base, 'rel', 'mnt')
  mkdirSync(path.join(base, 'rel', 'img'), { recursive: true })
  await good(
    'relative mountpoint and image',
    ['mount', '--image', path.relative(path.join(base, 'rel'), image), 'mnt'],
    rel,
    path.join(base, 'rel'),
  )
  const odd = path.join(base, 'odd')
  await good(
    '-o with empty items and repeated options',
    ['mount', '--image', image, '-o', ',ro,,nodev,', '-o', 'cache_mb=8,cache_mb=16', odd],
    odd,
    base,
  )
  const eq = path.join(base, 'with=equals')
  mkdirSync(eq)
  const eqImage = path.join(eq, 'a=b.img')
  copyFileSync(image, eqImage)
  const eqMnt = path.join(base, 'eqmnt')
  await good('-o image= whose path holds "="', ['mount', '-o', `image=${eqImage}`, eqMnt], eqMnt, base)
  record({
    area: 'Hostile input',
    name: 'Command lines that are odd but valid: mountpoints with spaces, tab and backslash, relative paths, -o with empty items, repeats and = in values',
    tried,
    passed,
    detail: 'mounted, served, listed by status, unloaded',
  })
  t.equal(passed, tried)
})
