// kheadersfs completion SHELL: print the bash, zsh or fish completion script, generated from the CLI's
// table of commands and options (src/completion/spec.ts), for installing by hand after an npm install.
import { parseCommand } from '../args'
import { COMMANDS } from '../cli'
import type { Command } from '../context'
import { UsageError } from '../errors'
import { completionScript, type CommandInfo } from '../completion/scripts'
import { SHELLS } from '../completion/spec'

/** The commands completion offers: the CLI's, and "help". */
export function completionCommands(): CommandInfo[] {
  const list = Object.entries(COMMANDS).map(([name, c]) => ({ name, summary: c.summary }))
  if (COMMANDS.help === undefined) list.push({ name: 'help', summary: "show the usage, or a command's" })
  return list
}

export const completion: Command = {
  usage: `Usage: kheadersfs completion bash|zsh|fish

Print the shell's completion script for kheadersfs: commands, options and their values, -o mount
options, images, directories and, for umount, the kheadersfs mounts. The Debian package and
"kheadersfs install-helpers" install all three; by hand, e.g.:
  kheadersfs completion bash > ~/.local/share/bash-completion/completions/kheadersfs
  kheadersfs completion zsh > ~/.zfunc/_kheadersfs      (a directory on $fpath)
  kheadersfs completion fish > ~/.config/fish/completions/kheadersfs.fish`,

  run(args, ctx) {
    const { positionals } = parseCommand('completion', args, {})
    if (positionals.length !== 1)
      throw new UsageError(
        `kheadersfs completion: name one shell (${SHELLS.join(', ')}); see "kheadersfs completion --help"`,
      )
    const shell = SHELLS.find((s) => s === positionals[0])
    if (shell === undefined)
      throw new UsageError(
        `kheadersfs completion: no completion for ${JSON.stringify(positionals[0])}; choose one of ${SHELLS.join(', ')}`,
      )
    ctx.stdout.write(completionScript(shell, completionCommands()))
    return 0
  },
}
