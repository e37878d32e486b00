// install-helpers' one install plan, staged with --destdir: the files, their modes and contents, and
// where the wrapper, the mount helper and the units point, both for a checkout (the default) and
// for the Debian package (--for-package, what packaging/build.sh runs). Everything is written under
// temp directories: nothing here installs into the host's /usr or /sbin.
import { spawnSync } from 'node:child_process'
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { completionCommands } from '../../src/commands/completion'
import { MARK } from '../../src/commands/install-helpers'
import { completionScript } from '../../src/completion/scripts'
import { DEFAULT_CONFIG, parseConfig } from '../../src/kernel-hooks/config'
import { CLI, errorLines, ROOT, run, runCli } from '../helpers/cli'
import { tmpDir } from '../helpers/tmp'

const root = process.getuid?.() === 0
const env = { KHEADERSFS_LOG_LEVEL: 'silent' }
const SERVICE = 'kheadersfs@.service'
const MOUNT_UNIT = 'proc\\x2dext.mount'
/** What build.sh passes, after --destdir. */
const PACKAGE = [
  '--for-package',
  '--node',
  '/usr/bin/node',
  '--app',
  '/usr/lib/kheadersfs/app',
  '--bindir',
  '/usr/bin',
  '--helperdir',
  '/sbin',
  '--unitdir',
  '/usr/lib/systemd/system',
]

/** Every file and directory under dir with its mode, as "755 usr/bin/kheadersfs". */
function listing(dir: string, rel = ''): string[] {
  const out: string[] = []
  for (const name of readdirSync(path.join(dir, rel)).sort()) {
    const r = rel ? `${rel}/${name}` : name
    const st = lstatSync(path.join(dir, r))
    out.push(`${(st.mode & 0o7777).toString(8)} ${r}${st.isDirectory() ? '/' : ''}`)
    if (st.isDirectory()) out.push(...listing(dir, r))
  }
  return out
}

const read = (dest: string, p: string): string => readFileSync(path.join(dest, p), 'utf8')
const syntaxOk = (file: string): boolean => spawnSync('sh', ['-n', file]).status === 0

t.test("--for-package --destdir: the Debian package's wrapper, helper, units and kernel hooks", async (t) => {
  const dest = tmpDir(t)
  const r = await runCli(['install-helpers', '--destdir', dest, ...PACKAGE], { env })
  t.equal(r.code, 0, r.stderr)
  t.same(
    listing(dest).filter((l) => !l.endsWith('/')),
    [
      '755 etc/kernel/header_postinst.d/kheadersfs',
      '755 etc/kernel/postinst.d/kheadersfs',
      '755 etc/kernel/postrm.d/kheadersfs',
      '644 etc/kheadersfs/kernel-hooks.conf',
      '755 sbin/mount.kheadersfs',
      '755 usr/bin/kheadersfs',
      '644 usr/lib/systemd/system/kheadersfs@.service',
      '644 usr/lib/systemd/system/proc\\x2dext.mount',
    ],
    'exactly these files, with their modes',
  )
  for (const [dir, event] of [
    ['header_postinst.d', 'headers-installed'],
    ['postinst.d', 'image-installed'],
    ['postrm.d', 'image-removed'],
  ]) {
    const hook = read(dest, `etc/kernel/${dir}/kheadersfs`)
    t.match(hook, /^\[ -x \/usr\/bin\/kheadersfs \] \|\| exit 0$/m, `${dir}: does nothing once kheadersfs is removed`)
    t.match(
      hook,
      new RegExp(`^/usr/bin/kheadersfs kernel-hook ${event} "\\$1" </dev/null \\|\\|$`, 'm'),
      `${dir}: ${event}`,
    )
    t.match(hook, /\nexit 0\n$/, `${dir}: always exits 0`)
    t.notMatch(hook, /@[A-Z_]+@/, `${dir}: every placeholder filled`)
    t.ok(syntaxOk(path.join(dest, `etc/kernel/${dir}/kheadersfs`)), `${dir}: sh -n`)
  }
  t.same(
    parseConfig(read(dest, 'etc/kheadersfs/kernel-hooks.conf')),
    DEFAULT_CONFIG,
    'the shipped settings are the defaults the code assumes',
  )
  t.notMatch(r.stdout, /Next:/, 'no "Next:" hint: nothing is installed on this system')
  t.equal(
    read(dest, 'usr/bin/kheadersfs'),
    '#!/bin/sh\n# kheadersfs: kernel headers and config over FUSE (see kheadersfs(1))\n' +
      'exec /usr/bin/node /usr/lib/kheadersfs/app/dist/src/cli.js "$@"\n',
    'the wrapper runs the packaged app with /usr/bin/node',
  )
  const helper = read(dest, 'sbin/mount.kheadersfs')
  t.match(helper, /^#!\/bin\/sh\n# mount\(8\) helper/, 'the helper starts with its shebang and comment')
  t.match(helper, /^KHEADERSFS=\$\{KHEADERSFS_BIN:-\/usr\/bin\/kheadersfs\}$/m, 'the helper runs /usr/bin/kheadersfs')
  t.match(helper, /^# Installed by the kheadersfs package as \/sbin\/mount\.kheadersfs,/m)
  t.match(read(dest, `usr/lib/systemd/system/${SERVICE}`), /^ExecStart=\/usr\/bin\/kheadersfs mount %f$/m)
  for (const [p, text] of [
    'sbin/mount.kheadersfs',
    'usr/bin/kheadersfs',
    ...[SERVICE, MOUNT_UNIT].map((u) => `usr/lib/systemd/system/${u}`),
  ].map((p) => [p, read(dest, p)] as const)) {
    t.notOk(text.includes(MARK), `${p}: no install-helpers mark (dpkg owns it)`)
    t.notMatch(text, /@[A-Z_]+@/, `${p}: every placeholder filled`)
    t.notMatch(text, /\/usr\/local\//, `${p}: names no /usr/local path`)
  }
  for (const u of [SERVICE, MOUNT_UNIT])
    t.match(read(dest, `usr/lib/systemd/system/${u}`), /Installed by the kheadersfs package\./)
  t.ok(syntaxOk(path.join(dest, 'usr/bin/kheadersfs')) && syntaxOk(path.join(dest, 'sbin/mount.kheadersfs')), 'sh -n')

  t.test('install-helpers replaces none of them (no mark), and --uninstall keeps them', async (t) => {
    const again = await runCli(['install-helpers', '--destdir', dest, ...PACKAGE.slice(1)], { env })
    t.equal(again.code, 8)
    t.match(errorLines(again.stderr)[0], /a file not installed by kheadersfs is there/)
    const u = await runCli(['install-helpers', '--destdir', dest, '--uninstall', ...PACKAGE.slice(5)], { env })
    t.equal(u.code, 0, u.stderr)
    t.equal(u.stdout.match(/^kept /gm)?.length, 4, '--uninstall keeps all four')
  })
})

t.test(
  "--destdir: a checkout's plan, pointing at this node and this CLI",
  // The safety check asks that this checkout and node be root's alone.
  { skip: !root && 'needs root: install-helpers checks that only root can change this checkout' },
  async (t) => {
    const dest = tmpDir(t)
    const r = await runCli(['install-helpers', '--destdir', dest], { env })
    t.equal(r.code, 0, r.stderr)
    t.same(
      listing(dest).filter((l) => !l.endsWith('/')),
      [
        '755 sbin/mount.kheadersfs',
        '755 usr/local/bin/kheadersfs',
        '644 usr/local/lib/systemd/system/kheadersfs@.service',
        '644 usr/local/lib/systemd/system/proc\\x2dext.mount',
        '644 usr/local/share/bash-completion/completions/kheadersfs',
        '644 usr/local/share/fish/vendor_completions.d/kheadersfs.fish',
        '644 usr/local/share/man/man1/kheadersfs.1',
        '644 usr/local/share/man/man8/mount.kheadersfs.8',
        '644 usr/local/share/zsh/site-functions/_kheadersfs',
      ],
    )
    t.match(r.stdout, /^Next: /m, 'the "Next:" hint')
    const wrapper = path.join(dest, 'usr/local/bin/kheadersfs')
    const text = readFileSync(wrapper, 'utf8')
    t.equal(text.split('\n')[1], `# kheadersfs: ${MARK}`, 'the wrapper is marked as ours')
    t.ok(text.includes(CLI) && text.includes(process.execPath), 'it names this CLI and this node')
    const v = await run(wrapper, ['--version'])
    t.match(v.stdout, /^kheadersfs \d+\.\d+\.\d+/, 'and runs them')
    const helper = read(dest, 'sbin/mount.kheadersfs')
    t.equal(helper.split('\n')[1], `# ${MARK}`, 'the mark follows the shebang')
    t.match(helper, /^KHEADERSFS=\$\{KHEADERSFS_BIN:-\/usr\/local\/bin\/kheadersfs\}$/m)
    t.match(helper, /^# Installed by "kheadersfs install-helpers" as \/sbin\/mount\.kheadersfs,/m)
    const service = read(dest, `usr/local/lib/systemd/system/${SERVICE}`)
    t.equal(service.split('\n')[0], `# ${MARK}`)
    t.match(service, /^ExecStart=\/usr\/local\/bin\/kheadersfs mount %f$/m)
    for (const p of [
      'sbin/mount.kheadersfs',
      `usr/local/lib/systemd/system/${SERVICE}`,
      `usr/local/lib/systemd/system/${MOUNT_UNIT}`,
    ])
      t.notMatch(read(dest, p), /@[A-Z_]+@/, `${p}: every placeholder filled`)

    const u = await runCli(['install-helpers', '--destdir', dest, '--uninstall'], { env })
    t.equal(u.code, 0, u.stderr)
    t.equal(u.stdout.match(/^removed /gm)?.length, 9, '--uninstall removes all nine')
    t.same(
      listing(dest).filter((l) => !l.endsWith('/')),
      [],
    )
  },
)

t.test('paths that need quoting reach the wrapper as one word each', async (t) => {
  const dir = tmpDir(t)
  // A node that prints its arguments: the wrapper's exec line, as sh reads it.
  const node = path.join(dir, "no de's")
  writeFileSync(node, '#!/bin/sh\nfor a; do printf "%s\\n" "$a"; done\n')
  chmodSync(node, 0o755)
  const dest = path.join(dir, 'dest')
  const app = "/opt/k headers/it's $(x)"
  const r = await runCli(['install-helpers', '--destdir', dest, '--for-package', '--node', node, '--app', app], { env })
  t.equal(r.code, 0, r.stderr)
  const wrapper = path.join(dest, 'usr/local/bin/kheadersfs')
  const out = await run(wrapper, ['a b', '*'])
  t.equal(out.stdout, `${app}/dist/src/cli.js\na b\n*\n`, 'node gets the CLI path and the arguments unchanged')
})

t.test('refusals: nothing is written', async (t) => {
  const dir = tmpDir(t)
  // Every directory in the temp dir, so that even a wrong acceptance writes nothing outside it.
  const dirs = ['--bindir', `${dir}/bin`, '--helperdir', `${dir}/sbin`, '--unitdir', `${dir}/units`]
  const cases: Array<[string[], number, RegExp]> = [
    [['--for-package', ...dirs], 2, /Cannot use --for-package without --destdir/],
    [['--app', 'relative/app', ...dirs], 2, /Cannot use --app "relative\/app": give an absolute path/],
    [['--node', 'node', ...dirs], 2, /Cannot use --node "node": give an absolute path/],
    [['--node', `${dir}/no-node`, ...dirs], 8, /Cannot install the helpers: there is no .*\/no-node; give --node/],
    [['--app', `${dir}/no-app`, ...dirs], 8, /there is no .*\/no-app\/dist\/src\/cli\.js; give --app/],
  ]
  for (const [args, code, msg] of cases) {
    const r = await runCli(['install-helpers', ...args], { env })
    t.equal(r.code, code, `${args.slice(0, 2).join(' ')}: exit ${code}`)
    t.match(errorLines(r.stderr)[0], msg)
  }
  t.same(readdirSync(dir), [], 'nothing written')
})

t.test(
  'an --app another user can change is refused when it runs here, and not checked when staged',
  { skip: !root && 'needs root to give the app to another user' },
  async (t) => {
    const dir = tmpDir(t)
    const app = path.join(dir, 'app')
    mkdirSync(path.join(app, 'dist', 'src'), { recursive: true })
    writeFileSync(path.join(app, 'dist', 'src', 'cli.js'), '')
    chownSync(path.join(app, 'dist', 'src', 'cli.js'), 65534, 65534)
    const dirs = ['--bindir', `${dir}/bin`, '--helperdir', `${dir}/sbin`, '--unitdir', `${dir}/units`]
    const live = await runCli(['install-helpers', '--app', app, ...dirs], { env })
    t.equal(live.code, 8)
    t.match(
      errorLines(live.stderr)[0],
      /Cannot install the helpers: they run .*cli\.js as root, and .* belongs to uid 65534/,
    )
    t.notOk(existsSync(path.join(dir, 'bin')), 'nothing written')
    const staged = await runCli(
      ['install-helpers', '--destdir', path.join(dir, 'dest'), '--app', app, '--node', '/usr/bin/node'],
      {
        env,
      },
    )
    t.equal(staged.code, 0, `staged for another system: ${staged.stderr}`)
  },
)

t.test(
  'a prefix: the manual pages and completion beside the units, found by man and systemd-analyze verify',
  { skip: !root && 'needs root: install-helpers checks that only root can change this checkout' },
  async (t) => {
    // Installed live (no --destdir) into a temp prefix, as into /usr/local, then uninstalled.
    const prefix = tmpDir(t)
    const dirs = {
      bindir: `${prefix}/bin`,
      helperdir: `${prefix}/sbin`,
      unitdir: `${prefix}/lib/systemd/system`,
      datadir: `${prefix}/share`,
    }
    const args = Object.entries(dirs).flatMap(([k, v]) => [`--${k}`, v])
    const r = await runCli(['install-helpers', ...args], { env })
    t.equal(r.code, 0, r.stderr)
    const page = read(prefix, 'share/man/man1/kheadersfs.1')
    t.equal(page.split('\n')[0], `.\\" ${MARK}`, 'the page is marked as ours (a roff comment)')
    t.equal(
      page.slice(page.indexOf('\n') + 1),
      readFileSync(path.join(ROOT, 'dist/man/kheadersfs.1'), 'utf8'),
      "the build's page (packaging/man.mjs)",
    )
    for (const [shell, p, first] of [
      ['bash', 'share/bash-completion/completions/kheadersfs', 0],
      ['zsh', 'share/zsh/site-functions/_kheadersfs', 1],
      ['fish', 'share/fish/vendor_completions.d/kheadersfs.fish', 0],
    ] as const) {
      const lines = read(prefix, p).split('\n')
      t.equal(lines[first], `# ${MARK}`, `${shell}: marked${first ? ' after #compdef' : ''}`)
      lines.splice(first, 1)
      t.equal(
        lines.join('\n'),
        completionScript(shell, completionCommands()),
        `${shell}: "kheadersfs completion ${shell}"`,
      )
    }
    // man-db derives its path from PATH (BINDIR/../share/man), as for /usr/local/bin.
    const manEnv = { ...process.env, MANPATH: '', PATH: `${dirs.bindir}:${process.env.PATH}`, MAN_DISABLE_SECCOMP: '1' }
    for (const [section, name] of [
      ['1', 'kheadersfs'],
      ['8', 'mount.kheadersfs'],
    ]) {
      const m = spawnSync('man', [section, name], {
        encoding: 'utf8',
        env: { ...manEnv, MANPAGER: 'cat', MANWIDTH: '80' },
      })
      t.equal(m.status, 0, `man ${section} ${name}: ${m.stderr}`)
      t.match(m.stdout, /^NAME\n\s+kheadersfs\s+-\s+kernel headers/m, `man ${section} ${name} shows kheadersfs(1)`)
    }
    const verify = spawnSync('systemd-analyze', ['verify', SERVICE, MOUNT_UNIT], {
      cwd: dirs.unitdir,
      encoding: 'utf8',
      env: manEnv,
    })
    if (verify.error === undefined) {
      t.notMatch(verify.stderr, /Command 'man/, "systemd-analyze verify finds the units' Documentation= page")
      t.equal(verify.status, 0, `systemd-analyze verify: ${verify.stderr}`)
      // Without the page (what install-helpers left before issue 21) the same check fails.
      const without = spawnSync('systemd-analyze', ['verify', SERVICE], {
        cwd: dirs.unitdir,
        encoding: 'utf8',
        env: { ...manEnv, PATH: process.env.PATH },
      })
      t.match(without.stderr, /Command 'man kheadersfs\(1\)' failed/, 'and fails where man cannot find it')
    }
    const u = await runCli(['install-helpers', '--uninstall', ...args], { env })
    t.equal(u.code, 0, u.stderr)
    t.equal(u.stdout.match(/^removed /gm)?.length, 9, '--uninstall removes the pages and scripts too')
    t.same(
      listing(prefix).filter((l) => !l.endsWith('/')),
      [],
    )
  },
)
