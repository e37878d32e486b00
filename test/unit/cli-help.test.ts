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
