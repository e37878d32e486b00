// Typed errors, all of them here. Every failure a user can cause is one of these classes, each made by
// defineError: the message is one line that names the thing and the fix, `exitCode` is what the CLI
// exits with (documented in docs/kheadersfs.1.md), and `errno` is what a FUSE handler answers.
// src/cli.ts prints them; src/serve/errno.ts maps them.
import { constants } from 'node:os'

/** Process exit codes: distinct per failure class so scripts and systemd can tell them apart. */
export const ExitCode = {
  ok: 0,
  failure: 1, // anything unexpected (a bug): the message says so
  usage: 2, // bad command line
  imageNotFound: 3,
  badImage: 4, // not an image, corrupt, unknown version, wrong release without --force
  busy: 5, // in use (umount with open files), like rmmod
  fuseUnavailable: 6, // no /dev/fuse, no libfuse2, no fusermount
  kernelTree: 7, // pack input is not a usable kernel tree
  io: 8, // reading or writing a file failed (ENOSPC, EACCES, ...)
  mountpoint: 9, // mountpoint missing, not a directory, not empty, mount refused
  interrupted: 130, // SIGINT during pack: nothing was written (128 + the signal's number, as a shell reports it)
  terminated: 143, // SIGTERM during pack: nothing was written
} as const
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode]

const brand = Symbol.for('kheadersfs.error')

export class KheadersError extends Error {
  readonly exitCode: ExitCode
  readonly errno: number
  constructor(message: string, opts: { exitCode?: ExitCode; errno?: number; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause })
    this.exitCode = opts.exitCode ?? ExitCode.failure
    this.errno = opts.errno ?? constants.errno.EIO
    Object.defineProperty(this, brand, { value: true })
  }
  /** `instanceof` fails across module copies (tap loads tests separately); the brand does not. */
  static is(e: unknown): e is KheadersError {
    return typeof e === 'object' && e !== null && (e as Record<symbol, unknown>)[brand] === true
  }
}

function named<T extends abstract new (...a: never[]) => KheadersError>(cls: T, name: string): T {
  Object.defineProperty(cls, 'name', { value: name })
  Object.defineProperty(cls.prototype, 'name', { value: name, enumerable: false })
  return cls
}

type ErrnoName = keyof typeof constants.errno

/** A class of error from defineError: `new X(message, cause?)`, like `new Error(message, { cause })`. */
export interface KheadersErrorClass {
  new (message: string, cause?: unknown): KheadersError
  readonly prototype: KheadersError
  /** True for an X, also one from another copy of this module (by its brand and name). */
  is(e: unknown): e is KheadersError
}

/**
 * One class of error: what the CLI exits with and what a FUSE handler answers, each fixed or taken
 * from the cause (an IoError answers its system error's errno; a DaemonFailed exits with the daemon's
 * exit code). `name` is the class's name, as `.name` and in logs.
 */
export function defineError(
  name: string,
  exitCode: ExitCode | ((cause: unknown) => ExitCode),
  errno: ErrnoName | ((cause: unknown) => number),
): KheadersErrorClass {
  const cls = class extends KheadersError {
    constructor(message: string, cause?: unknown) {
      super(message, {
        exitCode: typeof exitCode === 'function' ? exitCode(cause) : exitCode,
        errno: typeof errno === 'function' ? errno(cause) : constants.errno[errno],
        cause,
      })
    }
    static override is(e: unknown): e is KheadersError {
      return KheadersError.is(e) && e.name === name
    }
  }
  return named(cls, name)
}

export const UsageError = defineError('UsageError', ExitCode.usage, 'EINVAL')
export const ImageNotFoundError = defineError('ImageNotFoundError', ExitCode.imageNotFound, 'ENOENT')
export const ImageFormatError = defineError('ImageFormatError', ExitCode.badImage, 'EINVAL')
/** An image another user could have written, refused when root loads it (see image/read.ts). */
export const UntrustedImageError = defineError('UntrustedImageError', ExitCode.badImage, 'EPERM')
/** A malformed or unsupported .xz file (src/xz/). EIO for FUSE: to a reader it is a bad medium, not a bad call. */
export const XzFormatError = defineError('XzFormatError', ExitCode.badImage, 'EIO')
export const KernelTreeError = defineError('KernelTreeError', ExitCode.kernelTree, 'EINVAL')
/** A cross-built tree whose host programs cannot be made to run on the board (no compiler, make failed). */
export const HostProgramsError = defineError('HostProgramsError', ExitCode.kernelTree, 'ENOEXEC')
/** Reading or writing failed: answers the errno of its cause (a Node system error), else EIO. */
export const IoError = defineError('IoError', ExitCode.io, (cause) => errnoOf(cause) ?? constants.errno.EIO)
export const MountBusyError = defineError('MountBusyError', ExitCode.busy, 'EBUSY')
export const MountpointError = defineError('MountpointError', ExitCode.mountpoint, 'EINVAL')
export const FuseUnavailableError = defineError('FuseUnavailableError', ExitCode.fuseUnavailable, 'ENODEV')
/** pack stopped by a signal; its cause is the signal's name ('SIGTERM' exits 143, anything else 130). */
export const InterruptedError = defineError(
  'InterruptedError',
  (cause) => (cause === 'SIGTERM' ? ExitCode.terminated : ExitCode.interrupted),
  'EINTR',
)
/**
 * The mount daemon did not start (src/mounts/spawn.ts). Its cause, when the daemon said why, is its
 * readiness message ({ message, exitCode }): the command then exits as the daemon's error would have.
 */
export const DaemonFailed = defineError('DaemonFailed', (cause) => exitCodeOf(cause) ?? ExitCode.failure, 'EIO')

/** Filesystem errors (ENOENT, ENOTDIR, EISDIR, EROFS ...) raised by the served tree: errno only, per error. */
export const FsError = named(
  class FsError extends KheadersError {
    constructor(code: ErrnoName, what: string) {
      super(`${code}: ${what}`, { errno: constants.errno[code] })
    }
  },
  'FsError',
)

/** The exit code something carries (a KheadersError, a daemon's readiness message), if any. */
function exitCodeOf(e: unknown): ExitCode | undefined {
  const code = (e as { exitCode?: unknown } | undefined)?.exitCode
  return typeof code === 'number' ? (code as ExitCode) : undefined
}

/** The positive errno of a Node system error (`err.errno` is negative, `err.code` is the name). */
function errnoOf(e: unknown): number | undefined {
  const code = (e as NodeJS.ErrnoException | undefined)?.code
  if (code && code in constants.errno) return constants.errno[code as keyof typeof constants.errno]
  return undefined
}

/** One-line reason from a Node system error: "ENOSPC: no space left on device". */
export function reason(e: unknown): string {
  const err = e as NodeJS.ErrnoException
  if (err?.code && typeof err.message === 'string') {
    // Node's messages repeat the syscall and path ("ENOENT: no such file or directory, open '/x'").
    return err.message.replace(
      /, (open|stat|lstat|readlink|scandir|rename|mkdir|unlink|write|read|close|fsync|access)( .*)?$/,
      '',
    )
  }
  return err instanceof Error ? err.message : String(e)
}
