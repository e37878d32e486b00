// The error model (src/errors.ts): every class made by defineError is its own class (instanceof,
// .name, the constructor's name logs show) with the exit code the CLI exits with and the errno
// src/serve/errno.ts answers, fixed or taken from the cause; the CLI prints it as one line.
import { constants } from 'node:os'
import pino from 'pino'
import t from 'tap'
import { report } from '../../src/cli'
import {
  DaemonFailed,
  defineError,
  ExitCode,
  FsError,
  FuseUnavailableError,
  HostProgramsError,
  ImageFormatError,
  ImageNotFoundError,
  InterruptedError,
  IoError,
  KernelTreeError,
  KheadersError,
  MountBusyError,
  MountpointError,
  UntrustedImageError,
  UsageError,
  XzFormatError,
  type KheadersErrorClass,
} from '../../src/errors'
import { toErrno } from '../../src/serve/errno'
import { parseXzIndex } from '../../src/xz/xz-index'

const { errno } = constants
const silent = pino({ level: 'silent' })

/** Every class with the exit code and errno (no cause) it must keep: docs/kheadersfs.1.md lists the codes. */
const KINDS: Array<[string, KheadersErrorClass, number, number]> = [
  ['UsageError', UsageError, 2, errno.EINVAL],
  ['ImageNotFoundError', ImageNotFoundError, 3, errno.ENOENT],
  ['ImageFormatError', ImageFormatError, 4, errno.EINVAL],
  ['UntrustedImageError', UntrustedImageError, 4, errno.EPERM],
  ['XzFormatError', XzFormatError, 4, errno.EIO],
  ['KernelTreeError', KernelTreeError, 7, errno.EINVAL],
  ['HostProgramsError', HostProgramsError, 7, errno.ENOEXEC],
  ['IoError', IoError, 8, errno.EIO],
  ['MountBusyError', MountBusyError, 5, errno.EBUSY],
  ['MountpointError', MountpointError, 9, errno.EINVAL],
  ['FuseUnavailableError', FuseUnavailableError, 6, errno.ENODEV],
  ['InterruptedError', InterruptedError, 130, errno.EINTR],
  ['DaemonFailed', DaemonFailed, 1, errno.EIO],
]

t.test('each class: its name, exit code and errno; instanceof itself, KheadersError and Error, no other', async (t) => {
  for (const [name, cls, exitCode, code] of KINDS) {
    const e = new cls(`Cannot frob ${name}; unfrob it`)
    t.equal(e.name, name, `${name}: .name`)
    t.equal(e.constructor.name, name, `${name}: the constructor's name (a logged error's "type", src/log.ts)`)
    t.equal(cls.name, name)
    t.equal(e.message, `Cannot frob ${name}; unfrob it`, `${name}: the message as given`)
    t.equal(e.exitCode, exitCode, `${name}: exit code ${exitCode}`)
    t.equal(e.errno, code, `${name}: errno ${code}`)
    t.equal(toErrno(e, silent, 'read', '/x'), code, `${name}: serve/errno answers ${code}`)
    t.ok(e instanceof cls && e instanceof KheadersError && e instanceof Error, `${name}: instanceof`)
    t.ok(KheadersError.is(e) && cls.is(e), `${name}: KheadersError.is and ${name}.is`)
    const others = KINDS.filter(([n]) => n !== name)
    t.same(
      others.filter(([, other]) => e instanceof other || other.is(e)).map(([n]) => n),
      [],
      `${name}: no other class claims it`,
    )
    t.notOk('cause' in e, `${name}: no cause unless given`)
    t.match(e.stack, new RegExp(`^${name}: Cannot frob`), `${name}: the stack names the class`)
  }
  t.equal(new Set(KINDS.map(([, cls]) => cls)).size, KINDS.length, 'distinct classes')
  t.notOk(UsageError.is(new Error('x')), 'a plain Error is none of them')
  t.notOk(KheadersError.is({ exitCode: 2 }), 'nor is a look-alike object')
})

t.test(
  'cause: kept as the standard Error cause; IoError answers its errno, DaemonFailed exits with its exit code',
  async (t) => {
    const enospc = Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' })
    for (const [name, cls] of KINDS) t.equal(new cls('x', enospc).cause, enospc, `${name}: cause`)
    t.equal(new IoError('x', enospc).errno, errno.ENOSPC, "IoError: the cause's errno")
    t.equal(new IoError('x', new Error('no code')).errno, errno.EIO, 'IoError: EIO when the cause has none')
    t.equal(new ImageFormatError('x', enospc).errno, errno.EINVAL, 'other classes keep their own errno')
    t.equal(new KernelTreeError('x', enospc).exitCode, ExitCode.kernelTree)
    // The daemon's readiness line: the mount command exits as the daemon's error would have.
    const relayed = new DaemonFailed('Cannot mount at /m: the directory is not empty', {
      ready: false,
      message: 'm',
      exitCode: 9,
    })
    t.equal(relayed.exitCode, 9, "DaemonFailed: the readiness message's exit code")
    t.equal(new DaemonFailed('x', { ready: false, message: 'm', exitCode: 0 }).exitCode, 0, 'even 0')
    t.equal(new DaemonFailed('x', new UsageError('bad')).exitCode, 2, 'a KheadersError cause: its exit code')
    t.equal(new DaemonFailed('x', new Error('spawn ENOENT')).exitCode, 1, 'a cause without one: failure')
    t.equal(relayed.errno, errno.EIO)
  },
)

t.test('FsError: errno only, named by it', async (t) => {
  const e = new FsError('ENOTDIR', '/a/b')
  t.equal(e.message, 'ENOTDIR: /a/b')
  t.same([e.name, e.constructor.name, e.exitCode, e.errno], ['FsError', 'FsError', ExitCode.failure, errno.ENOTDIR])
  t.ok(e instanceof FsError && KheadersError.is(e))
  t.equal(toErrno(e, silent, 'getattr', '/a/b'), errno.ENOTDIR)
})

t.test('defineError: a new class in one line', async (t) => {
  const Frob = defineError('FrobError', ExitCode.busy, 'EAGAIN')
  const e = new Frob('frobbed')
  t.same([e.name, e.exitCode, e.errno, e.message], ['FrobError', 5, errno.EAGAIN, 'frobbed'])
  t.ok(
    e instanceof Frob && !(e instanceof MountBusyError) && !MountBusyError.is(e),
    'not the other class with exit code 5',
  )
  const Computed = defineError(
    'ComputedError',
    () => ExitCode.io,
    () => 42,
  )
  t.same(
    [new Computed('x').exitCode, new Computed('x').errno],
    [8, 42],
    'exit code and errno from functions of the cause',
  )
})

t.test('XzFormatError from src/xz: "xz: ..." with the bad-image exit code and EIO', async (t) => {
  const e = (() => {
    try {
      parseXzIndex(Buffer.alloc(64))
    } catch (err) {
      return err
    }
  })()
  t.ok(e instanceof XzFormatError, 'the class from src/errors.ts')
  t.match(e, { name: 'XzFormatError', exitCode: 4, errno: errno.EIO, message: /^xz: / })
})

t.test("report: the one printer, one line, the class's exit code", async (t) => {
  const lines: string[] = []
  const stderr = { write: (s: string) => lines.push(s) }
  t.equal(report(new ImageNotFoundError('Cannot find an image for 6.1; pass --image'), stderr), 3)
  t.equal(report(new UsageError('kheadersfs mount: give exactly one MOUNTPOINT'), stderr), 2)
  t.equal(report(new DaemonFailed('Cannot mount at /m: busy', { ready: false, message: '', exitCode: 9 }), stderr), 9)
  t.same(lines, [
    'kheadersfs: Cannot find an image for 6.1; pass --image\n',
    'kheadersfs mount: give exactly one MOUNTPOINT\n',
    'kheadersfs: Cannot mount at /m: busy\n',
  ])
  const out: string[] = []
  t.equal(report(new TypeError('x is undefined'), { write: (s: string) => out.push(s) }), 1)
  t.match(out.join(''), /^kheadersfs: internal error: TypeError: x is undefined\n[\s\S]*Please report this/)
})
