// Errors → FUSE answers (src/serve/errno.ts): a typed error answers its errno, anything else is a
// bug that is logged and answered EIO, and guard() calls back exactly once whether the handler
// returns, throws, resolves or rejects.
import { constants } from 'node:os'
import { Writable } from 'node:stream'
import pino from 'pino'
import t from 'tap'
import { FsError, IoError, MountBusyError, UsageError } from '../../src/errors'
import { EROFS, guard, toErrno, type FuseReply } from '../../src/serve/errno'

const { errno } = constants

/** A real pino logger whose records land in `lines` (parsed). */
function capture(): { log: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l !== '') lines.push(JSON.parse(l) as Record<string, unknown>)
      done()
    },
  })
  return { log: pino({ level: 'info' }, stream), lines }
}

/** A callback that records every call's arguments. */
function recorder(): { cb: FuseReply; calls: unknown[][] } {
  const calls: unknown[][] = []
  return { cb: (...r: unknown[]) => calls.push(r), calls }
}

/** Let every pending promise reaction run (a settled handler's callback fires within this). */
const settle = (): Promise<void> => new Promise((r) => setImmediate(r))

const ok = (cb: FuseReply, value: unknown): void => cb(0, value)

t.test('toErrno: typed errors answer their errno (negated), silently', async (t) => {
  const { log, lines } = capture()
  t.equal(toErrno(new FsError('ENOENT', '/x'), log, 'getattr', '/x'), -errno.ENOENT)
  t.equal(toErrno(new FsError('ENOTDIR', '/x/y'), log, 'getattr', '/x/y'), -errno.ENOTDIR)
  t.equal(toErrno(new FsError('ENAMETOOLONG', '/x'), log, 'getattr', '/x'), -errno.ENAMETOOLONG)
  t.equal(toErrno(new MountBusyError('busy'), log, 'op', '/'), -errno.EBUSY)
  t.equal(toErrno(new UsageError('bad'), log, 'op', '/'), -errno.EINVAL)
  const enospc = Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' })
  t.equal(
    toErrno(new IoError('write failed', enospc), log, 'op', '/'),
    -errno.ENOSPC,
    "IoError carries its cause's errno",
  )
  t.equal(lines.length, 0, 'nothing logged for expected errors')
})

t.test('toErrno: anything else is EIO, logged once as an error with the op and path', async (t) => {
  const { log, lines } = capture()
  t.equal(toErrno(new TypeError('x is undefined'), log, 'read', '/kheaders/a.h'), -errno.EIO)
  t.equal(lines.length, 1)
  t.match(lines[0], {
    level: 50,
    op: 'read',
    path: '/kheaders/a.h',
    msg: 'unexpected error in a filesystem operation; answered EIO',
    err: { type: 'TypeError', message: 'x is undefined' },
  })
  // A Node system error is not one of ours either: EIO and logged (handlers type what they expect).
  const enoent = Object.assign(new Error('ENOENT'), { code: 'ENOENT', errno: -2 })
  t.equal(toErrno(enoent, log, 'getattr', '/'), -errno.EIO)
  t.equal(toErrno('a string', log, 'getattr', '/'), -errno.EIO, 'a thrown non-Error')
  t.equal(toErrno(undefined, log, 'getattr', '/'), -errno.EIO, 'a thrown undefined')
  t.equal(lines.length, 4, 'each logged')
})

t.test('guard: a sync result answers through reply, once', async (t) => {
  const { log, lines } = capture()
  const { cb, calls } = recorder()
  const seen: unknown[][] = []
  const h = guard(log, 'getattr', (path: string, n: number) => (seen.push([path, n]), { size: n }), ok)
  h('/a', 7, cb)
  t.same(seen, [['/a', 7]], 'the handler gets the arguments without the callback')
  t.same(calls, [[0, { size: 7 }]], 'answered at once, exactly once')
  await settle()
  t.equal(calls.length, 1, 'and never again')
  t.equal(lines.length, 0)
})

t.test('guard: a sync throw answers the errno, once', async (t) => {
  const { log, lines } = capture()
  const { cb, calls } = recorder()
  let replies = 0
  const h = guard(
    log,
    'readdir',
    (path: string): string[] => {
      throw new FsError('ENOTDIR', path)
    },
    (c, r) => (replies++, ok(c, r)),
  )
  h('/config.gz', cb)
  t.same(calls, [[-errno.ENOTDIR]])
  await settle()
  t.equal(calls.length, 1)
  t.equal(replies, 0, 'reply is not called for a failure')
  t.equal(lines.length, 0)
})

t.test('guard: an unknown sync throw is EIO and logged with op and path', async (t) => {
  const { log, lines } = capture()
  const { cb, calls } = recorder()
  const h = guard(
    log,
    'readlink',
    (_path: string): string => {
      throw new RangeError('bug')
    },
    ok,
  )
  h('/kheaders/x', cb)
  t.same(calls, [[-errno.EIO]])
  t.equal(lines.length, 1)
  t.match(lines[0], { op: 'readlink', path: '/kheaders/x', err: { type: 'RangeError', message: 'bug' } })
})

t.test('guard: a promise answers when it settles, once', async (t) => {
  const { log, lines } = capture()
  let resolve!: (n: number) => void
  const { cb, calls } = recorder()
  const h = guard(
    log,
    'read',
    (_path: string, _fd: number) => new Promise<number>((r) => (resolve = r)),
    (c, n) => c(n),
  )
  h('/kheaders/a.h', 3, cb)
  await settle()
  t.same(calls, [], 'no answer before the promise settles')
  resolve(42)
  await settle()
  t.same(calls, [[42]], 'the resolved value, exactly once')
  resolve(43)
  await settle()
  t.same(calls, [[42]], 'a second resolve changes nothing')
  t.equal(lines.length, 0)
})

t.test('guard: a rejection answers the errno; an unknown one EIO, logged', async (t) => {
  const { log, lines } = capture()
  const a = recorder()
  guard(
    log,
    'read',
    async (path: string) => Promise.reject(new FsError('EISDIR', path)),
    (c, n: number) => c(n),
  )('/kheaders', a.cb)
  t.same(a.calls, [], 'not answered synchronously')
  await settle()
  t.same(a.calls, [[-errno.EISDIR]])
  t.equal(lines.length, 0)

  const b = recorder()
  guard(
    log,
    'read',
    async (_path: string): Promise<number> => {
      await settle()
      throw new Error('decoder broke')
    },
    (c, n: number) => c(n),
  )('/kheaders/big.h', b.cb)
  await settle()
  await settle()
  t.same(b.calls, [[-errno.EIO]], 'an async unknown error: EIO, once')
  t.equal(lines.length, 1)
  t.match(lines[0], { op: 'read', path: '/kheaders/big.h', err: { message: 'decoder broke' } })

  const c = recorder()
  guard(
    log,
    'read',
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- what this test is about
    (_path: string) => Promise.reject('not an Error'),
    (cb, n: number) => cb(n),
  )('/x', c.cb)
  await settle()
  t.same(c.calls, [[-errno.EIO]], 'a rejection with a non-Error: EIO, once')
})

t.test('guard: the path is the first argument when it is a string, else empty; counts per op', async (t) => {
  const { log, lines } = capture()
  const counts: Record<string, number> = {}
  const bad = (): never => {
    throw new Error('bug')
  }
  guard(log, 'statfs', (_p: string) => bad(), ok, counts)('/', recorder().cb)
  guard(log, 'weird', (_n: number) => bad(), ok, counts)(5, recorder().cb)
  t.match(lines, [
    { op: 'statfs', path: '/' },
    { op: 'weird', path: '' },
  ])
  const get = guard(log, 'getattr', (_p: string) => 1, ok, counts)
  for (let i = 0; i < 3; i++) get('/', recorder().cb)
  t.same(counts, { statfs: 1, weird: 1, getattr: 3 }, 'failed calls count too')
  const none = guard(log, 'getattr', (_p: string) => 1, ok)
  none('/', recorder().cb)
  t.same(counts, { statfs: 1, weird: 1, getattr: 3 }, 'no counts object, nothing counted')
})

t.test('EROFS is the negated errno', async (t) => {
  t.equal(EROFS, -30)
  t.equal(EROFS, -errno.EROFS)
})
