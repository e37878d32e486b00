// zsh and fish completion ("kheadersfs completion zsh|fish", generated from src/completion/spec.ts, the
// table test/unit/completion.test.ts checks against the CLI), run in the real shells: zsh's completion
// system in a pty (zsh/zpty, compinit, <TAB>) and fish's `complete -C`. Commands, options, option
// values, -o mount options, files for an image and directories for a tree, and every option of the
// table offered for every command.
import { spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { completionCommands } from '../../src/commands/completion'
import { completionScript } from '../../src/completion/scripts'
import { COMMAND_SPECS } from '../../src/completion/spec'
import { tmpDir } from '../helpers/tmp'

const commands = completionCommands().map((c) => c.name)
const have = (shell: string): boolean => spawnSync(shell, ['-c', 'true']).status === 0

/**
 * An interactive zsh in a pty with the generated _kheadersfs on its fpath: LINE, then <TAB>. compadd
 * is wrapped to print each match between \x01 and \x02; \x03 ends the run once completion is done.
 */
const ZSH_DRIVER = String.raw`
zmodload zsh/zpty || exit 3
zpty z zsh -f -i
zpty -w z "fpath=($1 \$fpath); PROMPT=; autoload -Uz compinit; compinit -u -D"
zpty -w z 'zstyle ":completion:*" insert-tab false; zstyle ":completion:*" menu no'
zpty -w z 'compadd() { local -a __hits; builtin compadd -O __hits "$@"; local h; for h in $__hits; do print -rn -- $'"'"'\x01'"'"'$h$'"'"'\x02'"'"'; done; builtin compadd "$@" }'
zpty -w z 'comppostfuncs=(__done); __done() { print -rn -- $'"'"'\x03'"'"'; exit }'
zpty -w z "$2"$'\t'
local line out
while zpty -r -t z line || { sleep 0.05; zpty -t z }; do
  out+=$line
  [[ $out == *$'\x03'* ]] && break
done
print -rn -- $out
`

t.test('zsh', { skip: have('zsh') ? false : 'no zsh (bash .ci/setup installs it)' }, async (t) => {
  const dir = tmpDir(t)
  const fpath = path.join(dir, 'fpath')
  mkdirSync(fpath)
  writeFileSync(path.join(fpath, '_kheadersfs'), completionScript('zsh', completionCommands()))
  writeFileSync(path.join(dir, 'driver.zsh'), ZSH_DRIVER)
  const cwd = path.join(dir, 'cwd')
  mkdirSync(path.join(cwd, 'tree'), { recursive: true })
  writeFileSync(path.join(cwd, 'k.img'), '')
  writeFileSync(path.join(cwd, 'k.config'), '')
  const complete = (line: string): string[] => {
    const r = spawnSync('zsh', ['-f', path.join(dir, 'driver.zsh'), fpath, line], {
      cwd,
      encoding: 'latin1',
      env: { ...process.env, TERM: 'dumb', HOME: dir },
      timeout: 20_000,
    })
    if (!r.stdout.includes('\x03')) throw new Error(`zsh did not complete ${JSON.stringify(line)}: ${r.stderr}`)
    return [...new Set([...r.stdout.matchAll(/\x01([^\x01\x02]*)\x02/g)].map((m) => m[1]))]
  }
  t.same(complete('kheadersfs '), commands, 'the commands')
  t.same(complete('kheadersfs -'), ['--help', '--version', '-V', '-v', '--log-level'], 'the global options')
  t.same(complete('kheadersfs m'), ['mount'])
  t.same(complete('kheadersfs pack --pro'), ['--profile'], 'an option')
  t.same(complete('kheadersfs pack --profile '), ['module-build', 'headers'], "the option's values")
  t.same(complete('kheadersfs pack --profile=h'), ['headers'], 'joined with "="')
  t.same(complete('kheadersfs --log-level d'), ['debug'], 'the global --log-level')
  t.same(complete('kheadersfs verify k').sort(), ['k.config', 'k.img'], 'files for an image')
  t.same(complete('kheadersfs mount --image k.i'), ['k.img'])
  t.same(complete('kheadersfs pack --kernel '), ['tree'], 'directories for a tree')
  t.same(complete('kheadersfs mount '), ['tree'], 'a directory for the mountpoint')
  t.same(complete('kheadersfs mount -o ro,l').sort(), ['link_build', 'log_level='], '-o: the last item of a list')
  t.same(complete('kheadersfs mount -o ro,view='), ['on', 'off'], '-o: a value')
  t.same(complete('kheadersfs mount -o image=k.i'), ['k.img'], '-o image=: files')
  t.same(complete('kheadersfs completion '), ['bash', 'zsh', 'fish'])
  t.same(complete('kheadersfs kernel-hook '), [
    'headers-installed',
    'image-installed',
    'image-removed',
    'headers-removed',
  ])
  t.same(complete('kheadersfs frob --'), [], 'nothing for an unknown command')
  for (const name of ['pack', 'mount', 'install-helpers']) {
    const want = [...COMMAND_SPECS[name].options.flatMap((o) => o.names), '--log-level', '-h', '--help']
    t.same(complete(`kheadersfs ${name} -`).sort(), want.sort(), `${name}: every option of the table`)
  }
})

t.test('fish', { skip: have('fish') ? false : 'no fish (bash .ci/setup installs it)' }, async (t) => {
  const dir = tmpDir(t)
  const script = path.join(dir, 'kheadersfs.fish')
  writeFileSync(script, completionScript('fish', completionCommands()))
  const cwd = path.join(dir, 'cwd')
  mkdirSync(path.join(cwd, 'tree'), { recursive: true })
  writeFileSync(path.join(cwd, 'k.img'), '')
  writeFileSync(path.join(cwd, 'k.config'), '')
  const complete = (line: string): string[] => {
    const r = spawnSync('fish', ['--no-config', '-c', 'source $argv[1]; complete -C $argv[2]', script, line], {
      cwd,
      encoding: 'utf8',
      env: { ...process.env, HOME: dir, XDG_CONFIG_HOME: dir, XDG_DATA_HOME: dir },
      timeout: 20_000,
    })
    if (r.status !== 0 || r.stderr !== '') throw new Error(`fish failed for ${JSON.stringify(line)}: ${r.stderr}`)
    return r.stdout
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => l.split('\t')[0])
  }
  t.same(complete('kheadersfs '), [...commands].sort(), 'the commands')
  t.same(complete('kheadersfs -').sort(), ['--help', '--log-level', '--version', '-V', '-v'], 'the global options')
  t.same(complete('kheadersfs pack --pro'), ['--profile'], 'an option')
  t.same(complete('kheadersfs pack --profile ').sort(), ['headers', 'module-build'], "the option's values")
  t.same(complete('kheadersfs pack --profile=h'), ['--profile=headers'], 'joined with "="')
  t.same(complete('kheadersfs --log-level d'), ['debug'], 'the global --log-level')
  t.same(complete('kheadersfs verify k'), ['k.config', 'k.img'], 'files for an image')
  t.same(complete('kheadersfs mount --image k.i'), ['k.img'])
  t.same(complete('kheadersfs pack --kernel t'), ['tree/'], 'directories for a tree')
  t.same(complete('kheadersfs mount t'), ['tree/'], 'a directory for the mountpoint')
  t.same(complete('kheadersfs verify k.img '), [], 'nothing after the one argument')
  t.same(complete('kheadersfs mount -o ro,l'), ['ro,link_build', 'ro,log_level='], '-o: the last item of a list')
  t.same(complete('kheadersfs mount -o ro,view='), ['ro,view=off', 'ro,view=on'], '-o: a value')
  t.same(complete('kheadersfs mount -o image=k.i'), ['image=k.img'], '-o image=: files')
  t.same(complete('kheadersfs mount -ocache'), ['-ocache_mb='], 'the joined -oOPTS form')
  t.same(complete('kheadersfs completion '), ['bash', 'fish', 'zsh'])
  for (const name of ['pack', 'mount', 'install-helpers']) {
    const want = [...COMMAND_SPECS[name].options.flatMap((o) => o.names), '--log-level', '-h', '--help']
    t.same(complete(`kheadersfs ${name} -`).sort(), want.sort(), `${name}: every option of the table`)
  }
})
