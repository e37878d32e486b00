// Typed errors. Every failure a user can cause is one of these classes: the message is one line that
// names the thing and the fix, `exitCode` is what the CLI exits with (documented in docs/kheadersfs.1.md),
// and `errno` is what a FUSE handler answers. src/cli.ts prints them; src/serve/errno.ts maps them.
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
  interrupted: 130, // SIGINT during pack: nothing was written
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
  Object.defineProperty(cls.prototype, 'name', { value: name, enumerable: false })
  return cls
}

export const UsageError = named(
  class UsageError extends KheadersError {
    constructor(message: string) {
      super(message, { exitCode: ExitCode.usage, errno: constants.errno.EINVAL })
    }
  },
  'UsageError',
)

export const ImageNotFoundError = named(
  class ImageNotFoundError extends KheadersError {
    constructor(message: string) {
      super(message, { exitCode: ExitCode.imageNotFound, errno: constants.errno.ENOENT })
    }
  },
  'ImageNotFoundError',
)

export const ImageFormatError = named(
  class ImageFormatError extends KheadersError {
    constructor(message: string, cause?: unknown) {
      super(message, { exitCode: ExitCode.badImage, errno: constants.errno.EINVAL, cause })
    }
  },
  'ImageFormatError',
)

/** An image another user could have written, refused when root loads it (see image/read.ts). */
export const UntrustedImageError = named(
  class UntrustedImageError extends KheadersError {
    constructor(message: string) {
      super(message, { exitCode: ExitCode.badImage, errno: constants.errno.EPERM })
    }
  },
  'UntrustedImageError',
)

export const KernelTreeError = named(
  class KernelTreeError extends KheadersError {
    constructor(message: string, cause?: unknown) {
      super(message, { exitCode: ExitCode.kernelTree, errno: constants.errno.EINVAL, cause })
    }
  },
  'KernelTreeError',
)

/** A cross-built tree whose host programs cannot be made to run on the board (no compiler, make failed). */
export const HostProgramsError = named(
  class HostProgramsError extends KheadersError {
    constructor(message: string, cause?: unknown) {
      super(message, { exitCode: ExitCode.kernelTree, errno: constants.errno.ENOEXEC, cause })
    }
  },
  'HostProgramsError',
)

export const IoError = named(
  class IoError extends KheadersError {
    constructor(message: string, cause?: unknown) {
      const errno = errnoOf(cause) ?? constants.errno.EIO
      super(message, { exitCode: ExitCode.io, errno, cause })
    }
  },
  'IoError',
)

export const MountBusyError = named(
  class MountBusyError extends KheadersError {
    constructor(message: string) {
      super(message, { exitCode: ExitCode.busy, errno: constants.errno.EBUSY })
    }
  },
  'MountBusyError',
)

export const MountpointError = named(
  class MountpointError extends KheadersError {
    constructor(message: string, errno: number = constants.errno.EINVAL) {
      super(message, { exitCode: ExitCode.mountpoint, errno })
    }
  },
  'MountpointError',
)

export const FuseUnavailableError = named(
  class FuseUnavailableError extends KheadersError {
    constructor(message: string, cause?: unknown) {
      super(message, { exitCode: ExitCode.fuseUnavailable, errno: constants.errno.ENODEV, cause })
    }
  },
  'FuseUnavailableError',
)

export const InterruptedError = named(
  class InterruptedError extends KheadersError {
    constructor(message: string) {
      super(message, { exitCode: ExitCode.interrupted, errno: constants.errno.EINTR })
    }
  },
  'InterruptedError',
)

/** Filesystem errors (ENOENT, ENOTDIR, EISDIR, EROFS ...) raised by the served tree: errno only. */
export const FsError = named(
  class FsError extends KheadersError {
    constructor(code: keyof typeof constants.errno, what: string) {
      super(`${code}: ${what}`, { errno: constants.errno[code] })
    }
  },
  'FsError',
)

/** The positive errno of a Node system error (`err.errno` is negative, `err.code` is the name). */
export function errnoOf(e: unknown): number | undefined {
  const code = (e as NodeJS.ErrnoException | undefined)?.code
  if (code && code in constants.errno) return constants.errno[code as keyof typeof constants.errno]
  return undefined
}

/** One-line reason from a Node system error: "ENOSPC: no space left on device". */
export function reason(e: unknown): string {
  const err = e as NodeJS.ErrnoException
  if (err?.code && typeof err.message === 'string') {
    // Node's messages repeat the syscall and path ("ENOENT: no such file or directory, open '/x'").
    return err.message.replace(/, (open|stat|lstat|readlink|scandir|rename|mkdir|unlink|write|read|close|fsync|access)( .*)?$/, '')
  }
  return err instanceof Error ? err.message : String(e)
}
