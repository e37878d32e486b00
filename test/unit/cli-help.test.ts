// "kheadersfs COMMAND --help", handled once (src/args.ts parseCommand, src/cli.ts) for every command:
// the command's usage on stdout and exit 0, whatever else the line holds, bad arguments included.
// Nothing runs: install-helpers --uninstall --help removes nothing, mount --help mounts nothing.
import t from 'tap'
import { COMMANDS } from '../../src/cli'
import { runCli } from '../helpers/cli'

const env = { KHEADERSFS_LOG_LEVEL: 'silent', KHEADERSFS_RUN_DIR: '/nonexistent/kheadersfs-help-test' }

for (const name of Object.keys(COMMANDS)) {
  t.test(`${name} --help`, async (t) => {
    const usage = COMMANDS[name].load().usage
    t.match(usage, new RegExp(`^Usage: kheadersfs ${name} `), 'its own usage')
    const lines = [
      [name, '--help'],
      [name, '-h'],
      [name, '--no-such-option', 'extra', 'words', '--help'],
      [name, '--help', '--', 'x'],
      ['--log-level', 'debug', name, '-h', '--json=bad'],
    ]
    const runs = await Promise.all(lines.map((args) => runCli(args, { env })))
    for (const [i, r] of runs.entries()) {
      const line = lines[i].join(' ')
      t.equal(r.code, 0, `${line}: exit 0`)
      t.equal(r.stdout, usage + '\n', `${line}: the usage on stdout`)
      t.equal(r.stderr, '', `${line}: nothing on stderr`)
    }
  })
}

t.test('short flags grouped with -h ask for help too; after --, --help is an argument', async (t) => {
  const mount = await runCli(['mount', '-fh', '/nonexistent'], { env })
  t.same([mount.code, mount.stdout], [0, COMMANDS.mount.load().usage + '\n'], 'mount -fh: help, nothing mounted')
  const umount = await runCli(['umount', '-lh'], { env })
  t.same([umount.code, umount.stdout], [0, COMMANDS.umount.load().usage + '\n'])
  const status = await runCli(['status', '--', '--help'], { env })
  t.equal(status.code, 2, 'status -- --help: an argument, refused')
  t.equal(status.stdout, '')
  t.match(status.stderr, /^kheadersfs status: /)
})

t.test("the tool's own --help lists every command", async (t) => {
  const r = await runCli(['--help'])
  t.equal(r.code, 0)
  for (const name of Object.keys(COMMANDS))
    t.match(r.stdout, new RegExp(`^  ${name} +${COMMANDS[name].summary.replace(/[()]/g, '\\$&')}$`, 'm'))
})

t.test('"kheadersfs help COMMAND" is "kheadersfs COMMAND --help"; "help" alone the general usage', async (t) => {
  const general = await runCli(['--help'], { env })
  for (const name of Object.keys(COMMANDS)) {
    const r = await runCli(['help', name], { env })
    t.same([r.code, r.stdout, r.stderr], [0, COMMANDS[name].load().usage + '\n', ''], `help ${name}`)
  }
  for (const args of [['help'], ['help', '--help'], ['--log-level', 'debug', 'help']]) {
    const r = await runCli(args, { env })
    t.same([r.code, r.stdout, r.stderr], [0, general.stdout, ''], args.join(' '))
  }
  const typo = await runCli(['help', 'stauts'], { env })
  t.same([typo.code, typo.stdout], [2, ''], 'help stauts: exit 2, nothing on stdout')
  t.equal(typo.stderr, 'kheadersfs help: no command "stauts"; did you mean "status"?\n')
  const none = await runCli(['help', 'nosuch'], { env })
  t.equal(none.code, 2)
  t.equal(none.stderr, 'kheadersfs help: no command "nosuch"; run "kheadersfs --help" for the list\n')
})

t.test('-V, -v and --version print the version, also after a command; nothing else runs', async (t) => {
  const want = /^kheadersfs \d+\.\d+\.\d+\S*\n$/
  const lines = [['-V'], ['-v'], ['--version'], ['pack', '--version'], ['mount', '/nonexistent', '--version']]
  for (const args of lines) {
    const r = await runCli(args, { env })
    t.equal(r.code, 0, `${args.join(' ')}: exit 0`)
    t.match(r.stdout, want, `${args.join(' ')}: the version`)
    t.equal(r.stderr, '')
  }
  const help = await runCli(['status', '--version', '--help'], { env })
  t.equal(help.stdout, COMMANDS.status.load().usage + '\n', '--help wins over --version')
})

t.test('a mistyped command or option names the one meant, and exits 2', async (t) => {
  const cases: Array<[string[], string]> = [
    [['pak'], 'kheadersfs: unknown command "pak"; did you mean "pack"?'],
    [['stauts'], 'kheadersfs: unknown command "stauts"; did you mean "status"?'],
    [['xyzzy'], 'kheadersfs: unknown command "xyzzy"; run "kheadersfs --help" for the list'],
    [['--verison'], 'kheadersfs: unknown option "--verison"; did you mean "--version"?'],
    [['-x'], 'kheadersfs: unknown option "-x"; run "kheadersfs --help" for the list'],
    [
      ['pack', '--kernal', 'X'],
      'kheadersfs pack: Unknown option \'--kernal\'; did you mean --kernel? see "kheadersfs pack --help"',
    ],
    [
      ['pack', '--kern', 'X'],
      'kheadersfs pack: Unknown option \'--kern\'; did you mean --kernel? see "kheadersfs pack --help"',
    ],
    [
      ['--log-level', 'wran', 'status'],
      'kheadersfs: Cannot use --log-level "wran": did you mean warn? choose one of fatal, error, warn, info, debug, trace, silent',
    ],
  ]
  for (const [args, line] of cases) {
    const r = await runCli(args, { env })
    t.same([r.code, r.stdout, r.stderr], [2, '', line + '\n'], args.join(' '))
  }
})
