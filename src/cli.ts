#!/usr/bin/env node
// argv → command. The only place that prints errors and sets the exit code: every failure a user can
// cause arrives here as a KheadersError with a one-line message and its documented exit code.
import { HelpRequested, oneOf, VersionRequested } from './args'
import type { Command, Context } from './context'
import { ExitCode, InterruptedError, KheadersError, UsageError } from './errors'
import { createLogger, errorsToJournal, LEVELS, type Level } from './log'
import { nodeTooOld } from './node-version'
import { rawArgv } from './os-path'
import { didYouMean } from './suggest'
import { version } from './version'

/** The mount command's module: it also recognizes mount.fuse's calling form. */
const mountModule = (): typeof import('./commands/mount') =>
  require('./commands/mount') as typeof import('./commands/mount')

/**
 * Each command's module is loaded only when it runs: a mount starts two processes (the command and
 * its daemon), and each starts ~35 ms sooner without pack's and the other commands' modules.
 */
export const COMMANDS: Record<string, { summary: string; load: () => Command }> = {
  pack: {
    summary: 'pack a kernel build tree into an image (headers archive, config, manifest)',
    load: () => (require('./commands/pack') as typeof import('./commands/pack')).pack,
  },
  info: {
    summary: 'show what an image holds (release, arch, profile, sizes, sha256), like modinfo',
    load: () => (require('./commands/info') as typeof import('./commands/info')).info,
  },
  verify: {
    summary: 'check an image: container, sha256s, full xz decode, tar listing, gzip',
    load: () => (require('./commands/verify') as typeof import('./commands/verify')).verify,
  },
  mount: {
    summary: 'load an image and serve kheaders.txz and config.gz at MOUNTPOINT (like modprobe kheaders)',
    load: () => mountModule().mount,
  },
  umount: {
    summary: 'unload a mount: refuse while in use, like rmmod (--lazy: detach now)',
    load: () => (require('./commands/umount') as typeof import('./commands/umount')).umount,
  },
  status: {
    summary: 'list kheadersfs mounts with daemon pid, image, release, memory, open files (like lsmod)',
    load: () => (require('./commands/status') as typeof import('./commands/status')).status,
  },
  'install-helpers': {
    summary: 'install the CLI, the mount(8) helper and systemd units where the system finds them',
    load: () => (require('./commands/install-helpers') as typeof import('./commands/install-helpers')).installHelpers,
  },
  'kernel-hook': {
    summary: 'what the package runs when kernels come and go: pack or remove /lib/modules/RELEASE/kheaders.img',
    load: () => (require('./commands/kernel-hook') as typeof import('./commands/kernel-hook')).kernelHook,
  },
  completion: {
    summary: 'print the bash, zsh or fish completion script',
    load: () => (require('./commands/completion') as typeof import('./commands/completion')).completion,
  },
}

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length))
  return [
    'Usage: kheadersfs COMMAND [options]',
    '',
    'Kernel headers and config for the running kernel, served from memory over FUSE.',
    '',
    ...Object.entries(COMMANDS).map(([n, c]) => `  ${n.padEnd(width)}  ${c.summary}`),
    '',
    'Global options: --log-level LEVEL (fatal, error, warn, info, debug, trace, silent; or $KHEADERSFS_LOG_LEVEL),',
    '                --version (-V, -v), --help. "kheadersfs help COMMAND" shows a command\'s options.',
  ].join('\n')
}

/** Pull --log-level out of argv wherever it appears, so every command accepts it. */
function takeLogLevel(argv: string[], env: NodeJS.ProcessEnv): { level: Level; rest: string[] } {
  const rest: string[] = []
  let value: string | undefined = env.KHEADERSFS_LOG_LEVEL || undefined
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--log-level') {
      if (i + 1 >= argv.length)
        throw new UsageError('Cannot use --log-level without a value: give one of ' + LEVELS.join(', '))
      value = argv[++i]
    } else if (a.startsWith('--log-level=')) value = a.slice('--log-level='.length)
    else rest.push(a)
  }
  return { level: oneOf(value, '--log-level', LEVELS) ?? 'info', rest }
}

/** What the tool itself takes before a command, for "did you mean" (--log-level is taken anywhere). */
const GLOBAL_OPTIONS = ['--help', '--version', '--log-level']

export async function main(argv: string[], base: Omit<Context, 'log' | 'logLevel'>): Promise<number> {
  const { level, rest } = takeLogLevel(argv, base.env)
  const [name, ...args] = rest
  if (
    name === undefined ||
    name === '--help' ||
    name === '-h' ||
    (name === 'help' && (args.length === 0 || args[0] === '--help' || args[0] === '-h'))
  ) {
    base.stdout.write(usage() + '\n')
    return name === undefined ? ExitCode.usage : 0
  }
  if (name === '--version' || name === '-V' || name === '-v') {
    base.stdout.write(`kheadersfs ${version()}\n`)
    return 0
  }
  // "kheadersfs help COMMAND" is "kheadersfs COMMAND --help".
  if (name === 'help') {
    if (args.length > 1 || COMMANDS[args[0]] === undefined) {
      const meant = args.length > 1 ? '' : didYouMean(args[0], Object.keys(COMMANDS), (c) => JSON.stringify(c))
      throw new UsageError(
        `kheadersfs help: ${args.length > 1 ? 'give one COMMAND' : `no command ${JSON.stringify(args[0])}`}; ${meant || 'run "kheadersfs --help" for the list'}`,
      )
    }
    base.stdout.write(COMMANDS[args[0]].load().usage + '\n')
    return 0
  }
  // mount.fuse runs "kheadersfs SOURCE MOUNTPOINT -o OPTS" (mount -t fuse.kheadersfs, fstab).
  const asHelper = COMMANDS[name] === undefined ? mountModule().helperForm(rest) : undefined
  if (asHelper !== undefined) return main(['--log-level', level, ...asHelper], base)
  const command = COMMANDS[name]
  if (command === undefined) {
    const [what, known] = name.startsWith('-')
      ? ['option', GLOBAL_OPTIONS]
      : ['command', [...Object.keys(COMMANDS), 'help']]
    const meant = didYouMean(name, known, (c) => JSON.stringify(c))
    throw new UsageError(
      `kheadersfs: unknown ${what} ${JSON.stringify(name)}; ${meant || 'run "kheadersfs --help" for the list'}`,
    )
  }
  const pretty = base.stderr.isTTY === true && !(name === 'mount' && args.includes('--ready-fd'))
  const ctx: Context = { ...base, log: createLogger({ level, destination: 2, pretty }), logLevel: level }
  const cmd = command.load()
  // "kheadersfs COMMAND --help", for every command alike: its usage on stdout, exit 0 (see parseCommand);
  // "kheadersfs COMMAND --version": the version.
  try {
    return await cmd.run(args, ctx)
  } catch (e) {
    if (e instanceof VersionRequested) {
      base.stdout.write(`kheadersfs ${version()}\n`)
      return 0
    }
    if (!(e instanceof HelpRequested)) throw e
    base.stdout.write(cmd.usage + '\n')
    return 0
  }
}

/** Print a failure as one line and map it to its exit code; unexpected errors say they are bugs. */
export function report(e: unknown, stderr: Context['stderr']): number {
  if (KheadersError.is(e)) {
    // Usage errors already name the command ("kheadersfs mount: ..."); the rest get the tool's name.
    stderr.write(e.message.startsWith('kheadersfs') ? `${e.message}\n` : `kheadersfs: ${e.message}\n`)
    return e.exitCode
  }
  const err = e as Error
  stderr.write(
    `kheadersfs: internal error: ${err?.stack ?? String(e)}\nPlease report this with the command line you ran.\n`,
  )
  return ExitCode.failure
}

if (require.main === module) {
  const old = nodeTooOld(process.versions.node)
  if (old !== undefined) {
    process.stderr.write(old + '\n')
    process.exit(ExitCode.failure)
  }
  const ctx = { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() }
  // Exit explicitly: a daemon's FUSE thread and helpers would otherwise keep the event loop alive
  // after its mount is gone. stdout/stderr writes are synchronous for files, pipes and TTYs on Linux.
  // The arguments' exact bytes: a mountpoint's name need not be UTF-8 (os-path.ts).
  main(rawArgv(), ctx).then(
    (code) => process.exit(code),
    // Under systemd the error line is prefixed <3>, so `journalctl -p err` finds it.
    (e: unknown) => {
      const code = report(e, errorsToJournal(process.stderr, 2, process.env))
      if (InterruptedError.is(e)) dieBy(e.cause as NodeJS.Signals)
      process.exit(code)
    },
  )
}

/**
 * End by `signal` itself once the command has cleaned up and said so, as a shell expects of an
 * interrupted program (status 128 + its number: 130, 143). process.exit would first wait for the
 * work running on libuv's thread pool (an xz encoder job: seconds), since libuv joins its threads
 * at exit; a signal's default action is carried out by the kernel at once. The command has removed
 * its handlers (pack.ts), so the default action applies.
 */
function dieBy(signal: NodeJS.Signals): void {
  if (process.listenerCount(signal) > 0) return
  process.kill(process.pid, signal)
}
