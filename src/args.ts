// Command-line parsing on node:util parseArgs (built into Node 20), with the one-line usage errors
// and value checks every command shares.
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { UsageError } from './errors'
import { didYouMean, suggest } from './suggest'

type Options = NonNullable<ParseArgsConfig['options']>

/**
 * Thrown by parseCommand when the command line asks for help: src/cli.ts then prints the command's
 * usage to stdout and exits 0. Not a KheadersError: nothing failed.
 */
export class HelpRequested extends Error {
  constructor(readonly command: string) {
    super(`kheadersfs ${command} --help`)
    this.name = 'HelpRequested'
  }
}

/** Thrown by parseCommand for "kheadersfs COMMAND --version": src/cli.ts prints the version, exit 0. */
export class VersionRequested extends Error {
  constructor(readonly command: string) {
    super(`kheadersfs ${command} --version`)
    this.name = 'VersionRequested'
  }
}

/**
 * The command's options and positionals, or a UsageError naming the fix (with the option meant, when
 * an unknown one is close to one). --help (-h, also in a group such as -fh) wins over everything else
 * on the line, bad arguments included: HelpRequested; then --version: VersionRequested. An option's
 * value ("-o --help") and what follows "--" do not ask for either.
 */
export function parseCommand<O extends Options>(command: string, args: string[], options: O, allowPositionals = true) {
  const all = { help: { type: 'boolean' as const, short: 'h' }, version: { type: 'boolean' as const }, ...options }
  const asked = parseArgs({ args, options: all, allowPositionals: true, strict: false }).values
  if (asked.help === true) throw new HelpRequested(command)
  if (asked.version === true) throw new VersionRequested(command)
  try {
    return parseArgs({ args, options: all, allowPositionals, strict: true })
  } catch (e) {
    const first = (e as Error).message.split('\n')[0]
    // parseArgs will not take "-1" as a value ("argument is ambiguous"): say what to write instead.
    const ambiguous = /^Option '(-[^']*)' argument is ambiguous/.exec(first)
    if (ambiguous) {
      const flag = ambiguous[1].split(',').pop()!.trim().split(' ')[0]
      // "-o=VALUE" would pass "=VALUE" (what follows a short option is its value): name the long form.
      const long = /^-[^-]$/.test(flag)
        ? Object.entries(options).find(([, o]) => o.short === flag.slice(1))?.[0]
        : undefined
      const write = long === undefined ? flag : `--${long}`
      throw new UsageError(
        `kheadersfs ${command}: the value after ${flag} starts with "-"; write ${write}=VALUE to pass it, or give ${flag} a value`,
      )
    }
    const msg = first.replace(/\. To specify a positional argument.*$/, '').replace(/\.$/, '')
    const unknown = /^Unknown option '--([^']+)'/.exec(first)?.[1]
    const meant = unknown === undefined ? '' : didYouMean(unknown, Object.keys(all), (o) => `--${o}`)
    throw new UsageError(`kheadersfs ${command}: ${msg}; ${meant ? meant + ' ' : ''}see "kheadersfs ${command} --help"`)
  }
}

/** An integer option in [min, max]. */
export function intOption(value: string | undefined, flag: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new UsageError(`Cannot use ${flag} ${JSON.stringify(value)}: give a whole number from ${min} to ${max}`)
  }
  return Number(value)
}

/** A byte size with an optional binary suffix: 1048576, 1024K, 1M, 1MiB. */
export function sizeOption(value: string | undefined, flag: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined
  const m = /^(\d+)\s*([KMG]?)(?:i?B)?$/i.exec(value)
  const n = m ? Number(m[1]) * 1024 ** ' KMG'.indexOf((m[2] || ' ').toUpperCase()) : NaN
  if (!m || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(
      `Cannot use ${flag} ${JSON.stringify(value)}: give a size from ${min} to ${max} bytes (suffixes K, M, G allowed)`,
    )
  }
  return n
}

export function oneOf<T extends string>(value: string | undefined, flag: string, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined
  if (!(allowed as readonly string[]).includes(value)) {
    const meant = suggest(value, allowed)
    throw new UsageError(
      `Cannot use ${flag} ${JSON.stringify(value)}: ${meant ? `did you mean ${meant}? ` : ''}choose one of ${allowed.join(', ')}`,
    )
  }
  return value as T
}
