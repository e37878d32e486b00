// The bash completion ("kheadersfs completion bash", generated from src/completion/spec.ts), sourced in a
// real bash: what <TAB> offers for commands, options, values and -o mount options, and that the table
// it comes from (and zsh's and fish's: test/unit/completion-shells.test.ts) cannot drift from the CLI
// (the command list is COMMANDS, every option a command's --help lists is offered, every option
// offered is one the command takes, every -o option offered is one parseMountOptions takes and the
// mount usage lists).
import { spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { COMMANDS } from '../../src/cli'
import { completionCommands } from '../../src/commands/completion'
import { completionScript } from '../../src/completion/scripts'
import { mount } from '../../src/commands/mount'
import { parseMountOptions } from '../../src/mounts/mount-options'
import { ROOT, runCli } from '../helpers/cli'
import { tmpDir } from '../helpers/tmp'

const SCRIPT = path.join(tmpDir(t), 'kheadersfs')
writeFileSync(SCRIPT, completionScript('bash', completionCommands()))

/** What bash offers for `line` with the cursor at its end (COMPREPLY, one per line), run in `cwd`. */
function complete(line: string, cwd = ROOT): string[] {
  const script = [
    'set -u',
    `source ${JSON.stringify(SCRIPT)}`,
    // bash's default word breaks: the script must cope with "=" and ":" splitting words.
    `COMP_WORDBREAKS=$' \\t\\n"\\'><=;|&(:'`,
    'COMP_LINE=$1',
    'COMP_POINT=${#COMP_LINE}',
    'read -ra COMP_WORDS <<<"$COMP_LINE"',
    'COMP_CWORD=$((${#COMP_WORDS[@]} - 1))',
    '[[ $COMP_LINE == *" " ]] && COMP_CWORD=${#COMP_WORDS[@]}',
    '_kheadersfs kheadersfs',
    '[[ ${#COMPREPLY[@]} -eq 0 ]] || printf "%s\\n" "${COMPREPLY[@]}"',
  ].join('\n')
  const r = spawnSync('bash', ['-c', script, 'bash', line], { encoding: 'utf8', cwd })
  if (r.status !== 0) throw new Error(`bash failed for ${JSON.stringify(line)}: ${r.stderr}`)
  if (r.stderr !== '') throw new Error(`bash printed errors for ${JSON.stringify(line)}: ${r.stderr}`)
  return r.stdout.split('\n').filter((l) => l !== '')
}

const commands = completionCommands().map((c) => c.name)

t.test('registered for kheadersfs', async (t) => {
  const r = spawnSync('bash', ['-c', `source ${JSON.stringify(SCRIPT)}; complete -p kheadersfs`], { encoding: 'utf8' })
  t.equal(r.stdout.trim(), 'complete -F _kheadersfs kheadersfs')
})

t.test("kheadersfs <TAB>: exactly the CLI's commands, and the global options", async (t) => {
  t.same(commands, [...Object.keys(COMMANDS), 'help'], 'the CLI\'s commands and "help"')
  t.same(complete('kheadersfs '), [...commands, '--help', '--version', '-V', '-v', '--log-level'])
  t.same(complete('kheadersfs help m'), ['mount'], 'help COMMAND')
  t.same(complete('kheadersfs completion '), ['bash', 'zsh', 'fish'])
  t.same(complete('kheadersfs m'), ['mount'], 'kheadersfs m<TAB>')
  t.same(complete('kheadersfs i'), ['info', 'install-helpers'])
  t.same(complete('kheadersfs st'), ['status'])
  t.same(complete('kheadersfs --log-level d'), ['debug'])
  t.same(
    complete('kheadersfs --log-level='),
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
    'joined form, after "="',
  )
  t.same(complete('kheadersfs --log-level=w'), ['warn'])
  t.same(complete('kheadersfs --log-level debug u'), ['umount'], 'the command after --log-level LEVEL')
  t.same(complete('kheadersfs frob '), [], 'nothing after an unknown command')
})

t.test("-o mount options: kheadersfs's own, values, after a comma", async (t) => {
  t.same(complete('kheadersfs mount -o cache'), ['cache_mb='], '-o cache<TAB>')
  t.same(complete('kheadersfs mount -o '), [
    'image=',
    'release=',
    'force',
    'nonempty',
    'log_level=',
    'allow_untrusted_image',
    'view=',
    'cache_mb=',
    'link_build',
    'X-mount.mkdir',
  ])
  t.same(
    complete('kheadersfs mount -o ro,l'),
    ['ro,log_level=', 'ro,link_build'],
    'the last item of a list (no "=" in the word yet)',
  )
  t.same(complete('kheadersfs mount -o view='), ['on', 'off'])
  t.same(complete('kheadersfs mount -o ro,view=of'), ['off'])
  t.same(complete('kheadersfs mount -o log_level=t'), ['trace'])
  t.same(complete('kheadersfs mount --options f'), ['force'])
  t.same(complete('kheadersfs mount -ocache'), ['-ocache_mb='], 'the joined -oOPTS form')
  t.same(complete('kheadersfs mount -o cache_mb='), [], 'no guess for a number')
  t.same(complete('kheadersfs pack -o cache'), [], "pack's -o is a file")
  t.same(complete('kheadersfs --log-level=debug mount -o ro,view=o'), ['on', 'off'], 'after a global option')
})

t.test('options and their values per command', async (t) => {
  t.same(complete('kheadersfs pack --pro'), ['--profile'])
  t.same(complete('kheadersfs pack --profile '), ['module-build', 'headers'])
  t.same(complete('kheadersfs pack --profile=h'), ['headers'])
  t.same(complete('kheadersfs verify --j'), ['--json'])
  t.same(complete('kheadersfs umount -'), ['--lazy', '-l', '--help', '--log-level'])
  t.same(complete('kheadersfs status --'), ['--json', '--help', '--log-level'])
  t.same(complete('kheadersfs mount --al'), ['--allow-untrusted-image'])
  t.same(complete('kheadersfs pack --threads '), [], 'no guess for a number')
})

t.test('files and directories where they go', async (t) => {
  const dir = tmpDir(t)
  mkdirSync(path.join(dir, 'tree'))
  writeFileSync(path.join(dir, 'k.img'), '')
  writeFileSync(path.join(dir, 'k.config'), '')
  t.same(complete('kheadersfs verify k', dir).sort(), ['k.config', 'k.img'], 'info/verify: files')
  t.same(complete('kheadersfs pack --kernel ', dir), ['tree'], '--kernel: directories only')
  t.same(complete('kheadersfs pack --kernel=t', dir), ['tree'], '--kernel=DIR')
  t.same(complete('kheadersfs mount --image k.i', dir), ['k.img'])
  t.same(complete('kheadersfs mount -o image=k.i', dir), ['k.img'], '-o image=PATH')
  t.same(complete('kheadersfs mount -o ro,image=k.i', dir), ['k.img'], 'after a comma too')
  t.same(complete('kheadersfs mount ', dir), ['tree'], 'the mountpoint: a directory')
  t.same(complete('kheadersfs mount --image k.img ', dir), ['tree'], "after an option's value")
  t.same(complete('kheadersfs mount -f ', dir), ['tree'], 'after a flag')
  t.same(complete('kheadersfs verify k.img ', dir), [], 'nothing after the one argument')
  t.same(complete('kheadersfs pack -ok.i', dir), ['-ok.img'], 'the joined -oFILE form')
})

t.test("no drift: every option a command's --help lists is offered; every option offered is taken", async (t) => {
  for (const name of Object.keys(COMMANDS)) {
    const offered = complete(`kheadersfs ${name} -`)
    const usage = COMMANDS[name].load().usage
    const listed = new Set<string>()
    // The "Usage:" lines' [--flag] and the option table's lines ("  -o, --output ...").
    for (const m of usage.matchAll(/\[(--?[a-zA-Z][\w-]*)/g)) listed.add(m[1])
    for (const m of usage.matchAll(/^\s{2,}(?:(-[a-zA-Z]), )?(--?[a-zA-Z][\w-]*)/gm)) {
      if (m[1]) listed.add(m[1])
      listed.add(m[2])
    }
    t.ok(listed.size > 0 || name === 'completion' || name === 'help', `${name}: its usage lists options`)
    listed.delete('-h') // --help's short form; --help is offered
    const missing = [...listed].filter((o) => !offered.includes(o))
    t.same(missing, [], `${name}: every option its --help lists is offered`)
    // Each offered option, followed by one that exists nowhere: the command line never parses, so
    // nothing runs (install-helpers --uninstall!), and the error names the first option it does not
    // know — the offered one if the command does not take it.
    // --help is checked on its own: it prints the usage and exits 0.
    const BOGUS = '--kheadersfs-completion-check'
    const checked = offered.filter((o) => o !== '--help')
    const runs = await Promise.all(
      checked.map((o) => runCli([name, o, BOGUS], { env: { KHEADERSFS_LOG_LEVEL: 'silent' } })),
    )
    t.same(
      runs.map((r) => r.code),
      checked.map(() => 2),
      `${name}: each check is a usage error (nothing ran)`,
    )
    const unknown = checked.filter((o, i) => runs[i].stderr.includes(`Unknown option '${o}'`))
    t.same(unknown, [], `${name}: every option offered is one it takes`)
    // (--log-level takes the bogus word as its value: a command with no options of its own has nothing to tell.)
    if (checked.some((o) => o !== '--log-level'))
      t.ok(
        runs.filter((r) => r.stderr.includes(`Unknown option '${BOGUS}'`)).length > 0,
        `${name}: the check does tell a known option from an unknown one`,
      )
    t.ok(offered.includes('--help'), `${name}: --help offered`)
    const help = await runCli([name, '--help'])
    t.equal(help.code, 0, `${name} --help exits 0`)
    t.equal(help.stdout, COMMANDS[name].load().usage + '\n', `${name} --help prints the usage the check above read`)
  }
})

t.test('no drift: the -o options offered are what parseMountOptions takes and mount --help lists', async (t) => {
  const offered = complete('kheadersfs mount -o ')
  const sample: Record<string, string> = {
    'image=': 'image=/x.img',
    'release=': 'release=6.1.0',
    'log_level=': 'log_level=debug',
    'view=': 'view=off',
    'cache_mb=': 'cache_mb=8',
  }
  for (const o of offered)
    t.doesNotThrow(() => parseMountOptions([sample[o] ?? o]), `parseMountOptions takes ${sample[o] ?? o}`)
  t.throws(
    () => parseMountOptions(['frob']),
    /not a kheadersfs or generic mount option/,
    'and refuses what it does not know (so the check above means something)',
  )
  // mount --help: "-o OPTS  comma-separated options: image=PATH, release=R, ...; generic mount options ..."
  const text = /-o OPTS\s+comma-separated options: ([^;]*);/.exec(mount.usage)
  t.ok(text, 'the mount usage has its -o list')
  const listed = text![1]
    .replace(/\([^)]*\)/g, '')
    .split(',')
    .map((s) => s.trim().replace(/=.*$/, '='))
  t.same([...listed].sort(), [...offered].sort(), 'the same options as mount --help lists')
})
