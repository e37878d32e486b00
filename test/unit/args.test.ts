// Command-line parsing shared by every command (src/args.ts): parseArgs with one-line usage errors
// (exit 2) that say what to write instead, and the integer, size and choice checks.
import t from 'tap'
import { HelpRequested, intOption, oneOf, parseCommand, sizeOption, VersionRequested } from '../../src/args'

const usage = (message: string) => ({ name: 'UsageError', exitCode: 2, message })

t.test('parseCommand: values, positionals, --help/-h always known', async (t) => {
  const opts = {
    output: { type: 'string', short: 'o' },
    json: { type: 'boolean' },
    lazy: { type: 'boolean', short: 'l' },
  } as const
  const r = parseCommand('x', ['-o', 'a.img', '--json', 'pos', '-l'], opts)
  t.same({ ...r.values }, { output: 'a.img', json: true, lazy: true })
  t.same(r.positionals, ['pos'])
  t.throws(() => parseCommand('x', ['-h'], opts), new HelpRequested('x'))
  t.throws(() => parseCommand('x', ['--help'], opts), new HelpRequested('x'))
  t.same(
    { ...parseCommand('x', ['--output=-dash.img'], opts).values },
    { output: '-dash.img' },
    'a value starting with "-" after =',
  )
  t.same(parseCommand('x', ['--', '--json'], opts).positionals, ['--json'], 'after --, a positional')
})

t.test(
  "parseCommand: --help wins over everything else on the line; an option's value or what follows -- does not ask",
  async (t) => {
    const opts = {
      output: { type: 'string', short: 'o' },
      foreground: { type: 'boolean', short: 'f' },
      lazy: { type: 'boolean', short: 'l' },
    } as const
    const help = (args: string[]): unknown => {
      try {
        parseCommand('mount', args, opts, false)
      } catch (e) {
        return e
      }
      return undefined
    }
    for (const args of [
      ['--help'],
      ['-h'],
      ['--frob', '--help'],
      ['a', 'b', '-h', '--output'],
      ['--output=x', '--lazy=yes', '--help'],
      ['-fh'],
      ['-lfh', 'x'],
      ['--help', '--', 'x'],
    ]) {
      const e = help(args)
      t.ok(e instanceof HelpRequested, `${args.join(' ')}: help`)
      t.match(e, { name: 'HelpRequested', command: 'mount', message: 'kheadersfs mount --help' })
    }
    t.match(help(['--', '--help']), { name: 'UsageError', message: /Unexpected argument '--help'/ })
    t.same(parseCommand('mount', ['--', '-h'], opts).positionals, ['-h'])
    t.match(
      help(['--output', '--help']),
      {
        name: 'UsageError',
        message:
          'kheadersfs mount: the value after --output starts with "-"; write --output=VALUE to pass it, or give --output a value',
      },
      "an option's value",
    )
    t.same({ ...parseCommand('mount', ['-oh'], opts).values }, { output: 'h' }, '-oh: -o with the value "h"')
    t.same({ ...parseCommand('mount', ['--output=--help'], opts).values }, { output: '--help' })
    t.match(help(['--help=yes']), { name: 'UsageError', message: /--help' does not take an argument/ })
  },
)

t.test('parseCommand: --version asks for the version, after --help; not as a value or after --', async (t) => {
  const opts = { output: { type: 'string', short: 'o' }, json: { type: 'boolean' } } as const
  t.throws(() => parseCommand('info', ['--version'], opts), new VersionRequested('info'))
  t.throws(() => parseCommand('info', ['--frob', 'x', '--version'], opts), new VersionRequested('info'))
  t.throws(() => parseCommand('info', ['--version', '--help'], opts), new HelpRequested('info'), 'help wins')
  t.same({ ...parseCommand('info', ['--output=--version'], opts).values }, { output: '--version' })
  t.same(parseCommand('info', ['--', '--version'], opts).positionals, ['--version'])
})

t.test('parseCommand: errors are one line, name the command and the fix, exit 2', async (t) => {
  const opts = {
    output: { type: 'string', short: 'o' },
    threads: { type: 'string' },
    lazy: { type: 'boolean', short: 'l' },
  } as const
  t.throws(
    () => parseCommand('info', ['--frob'], opts),
    usage('kheadersfs info: Unknown option \'--frob\'; see "kheadersfs info --help"'),
  )
  t.throws(
    () => parseCommand('pack', ['--outptu', 'x'], opts),
    usage('kheadersfs pack: Unknown option \'--outptu\'; did you mean --output? see "kheadersfs pack --help"'),
  )
  t.throws(
    () => parseCommand('pack', ['--thread=2'], opts),
    usage('kheadersfs pack: Unknown option \'--thread\'; did you mean --threads? see "kheadersfs pack --help"'),
  )
  t.throws(
    () => parseCommand('pack', ['--out', 'x'], opts),
    usage('kheadersfs pack: Unknown option \'--out\'; did you mean --output? see "kheadersfs pack --help"'),
    'a prefix',
  )
  t.throws(
    () => parseCommand('info', ['-z'], opts),
    usage('kheadersfs info: Unknown option \'-z\'; see "kheadersfs info --help"'),
  )
  t.throws(
    () => parseCommand('umount', ['--lazy=yes'], opts),
    usage('kheadersfs umount: Option \'-l, --lazy\' does not take an argument; see "kheadersfs umount --help"'),
  )
  t.throws(
    () => parseCommand('status', ['x'], opts, false),
    usage(
      'kheadersfs status: Unexpected argument \'x\'. This command does not take positional arguments; see "kheadersfs status --help"',
    ),
  )
  t.throws(
    () => parseCommand('pack', ['--output'], opts),
    usage('kheadersfs pack: Option \'-o, --output <value>\' argument missing; see "kheadersfs pack --help"'),
  )
  // parseArgs will not take "-1" as a value: the message says how to pass it, in a form that works.
  t.throws(
    () => parseCommand('pack', ['--threads', '-1'], opts),
    usage(
      'kheadersfs pack: the value after --threads starts with "-"; write --threads=VALUE to pass it, or give --threads a value',
    ),
  )
  t.throws(
    () => parseCommand('pack', ['--output', '-x.img'], opts),
    usage(
      'kheadersfs pack: the value after --output starts with "-"; write --output=VALUE to pass it, or give --output a value',
    ),
  )
  // "-o=VALUE" would pass "=VALUE" (parseArgs takes what follows a short option as its value):
  // a short option is named by its long form.
  t.same(
    { ...parseCommand('pack', ['-o=-x.img'], opts).values },
    { output: '=-x.img' },
    'what -o=VALUE would really pass',
  )
  t.throws(
    () => parseCommand('pack', ['-o', '-x.img'], opts),
    usage('kheadersfs pack: the value after -o starts with "-"; write --output=VALUE to pass it, or give -o a value'),
  )
})

t.test('intOption: whole numbers in range, else exit 2 naming the range', async (t) => {
  t.equal(intOption(undefined, '--n', 1, 9), undefined)
  t.equal(intOption('1', '--n', 1, 9), 1)
  t.equal(intOption('9', '--n', 1, 9), 9)
  t.equal(intOption('007', '--n', 1, 9), 7)
  for (const bad of ['0', '10', '-1', '1.5', '1e1', ' 5', '5 ', '', 'x', '0x5', '9'.repeat(400)]) {
    t.throws(
      () => intOption(bad, '--n', 1, 9),
      usage(`Cannot use --n ${JSON.stringify(bad)}: give a whole number from 1 to 9`),
      JSON.stringify(bad),
    )
  }
})

t.test('sizeOption: bytes with K/M/G (and optional i?B), in range', async (t) => {
  const S = (v: string): number | undefined => sizeOption(v, '--block-size', 1, 1 << 30)
  t.equal(sizeOption(undefined, '--block-size', 1, 2), undefined)
  t.equal(S('1048576'), 1048576)
  t.equal(S('64K'), 65536)
  t.equal(S('64k'), 65536)
  t.equal(S('64KiB'), 65536)
  t.equal(S('64KB'), 65536)
  t.equal(S('2M'), 2 << 20)
  t.equal(S('2MiB'), 2 << 20)
  t.equal(S('1G'), 1 << 30)
  t.equal(S('10B'), 10)
  t.equal(S('64 K'), 65536, 'a space before the suffix')
  for (const bad of ['0', '2G', '1T', '-1K', '1.5M', 'K', '', 'M1', '1KK', '99999999999999999999G']) {
    t.throws(
      () => S(bad),
      usage(
        `Cannot use --block-size ${JSON.stringify(bad)}: give a size from 1 to 1073741824 bytes (suffixes K, M, G allowed)`,
      ),
      JSON.stringify(bad),
    )
  }
})

t.test('oneOf: one of the allowed words, else exit 2 listing them', async (t) => {
  const allowed = ['headers', 'module-build'] as const
  t.equal(oneOf(undefined, '--profile', allowed), undefined)
  t.equal(oneOf('headers', '--profile', allowed), 'headers')
  t.throws(
    () => oneOf('Headers', '--profile', allowed),
    usage('Cannot use --profile "Headers": did you mean headers? choose one of headers, module-build'),
    'case matters, and is the first thing suggested',
  )
  t.throws(
    () => oneOf('module', '--profile', allowed),
    usage('Cannot use --profile "module": did you mean module-build? choose one of headers, module-build'),
    'a prefix',
  )
  t.throws(
    () => oneOf('everything', '--profile', allowed),
    usage('Cannot use --profile "everything": choose one of headers, module-build'),
    'nothing close: no suggestion',
  )
  t.throws(() => oneOf('', '--profile', allowed), usage('Cannot use --profile "": choose one of headers, module-build'))
})
