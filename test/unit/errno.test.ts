// Errors → FUSE answers (src/serve/errno.ts): a typed error answers its errno, anything else is a
// bug that is logged and answered EIO, and answer() answers exactly once whether the work returns,
// throws, resolves or rejects.
import { constants } from 'node:os'
import { Writable } from 'node:stream'
import pino from 'pino'
import t from 'tap'
import { FsError, IoError, MountBusyError, UsageError } from '../../src/errors'
import { answer, toErrno } from '../../src/serve/errno'

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

/** send and fail callbacks that record every answer: ['ok', value] or ['err', errno]. */
function recorder(): { send: (v: unknown) => void; fail: (e: number) => void; calls: unknown[][] } {
  const calls: unknown[][] = []
  return { send: (v) => calls.push(['ok', v]), fail: (e) => calls.push(['err', e]), calls }
}

/** Let every pending promise reaction run (a settled handler's callback fires within this). */
const settle = (): Promise<void> => new Promise((r) => setImmediate(r))

t.test('toErrno: typed errors answer their errno, silently', async (t) => {
  const { log, lines } = capture()
  t.equal(toErrno(new FsError('ENOENT', '/x'), log, 'getattr', '/x'), errno.ENOENT)
  t.equal(toErrno(new FsError('ENOTDIR', '/x/y'), log, 'getattr', '/x/y'), errno.ENOTDIR)
  t.equal(toErrno(new FsError('ENAMETOOLONG', '/x'), log, 'getattr', '/x'), errno.ENAMETOOLONG)
  t.equal(toErrno(new MountBusyError('busy'), log, 'op', '/'), errno.EBUSY)
  t.equal(toErrno(new UsageError('bad'), log, 'op', '/'), errno.EINVAL)
  const enospc = Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' })
  t.equal(
    toErrno(new IoError('write failed', enospc), log, 'op', '/'),
    errno.ENOSPC,
    "IoError carries its cause's errno",
  )
  t.equal(lines.length, 0, 'nothing logged for expected errors')
})

t.test('toErrno: anything else is EIO, logged once as an error with the op and path', async (t) => {
  const { log, lines } = capture()
  t.equal(toErrno(new TypeError('x is undefined'), log, 'read', '/kheaders/a.h'), errno.EIO)
  t.equal(lines.length, 1)
  t.match(lines[0], {
    level: 50,
    op: 'read',
    node: '/kheaders/a.h',
    msg: 'unexpected error in a filesystem operation; answered EIO',
    err: { type: 'TypeError', message: 'x is undefined' },
  })
  // A Node system error is not one of ours either: EIO and logged (handlers type what they expect).
  const enoent = Object.assign(new Error('ENOENT'), { code: 'ENOENT', errno: -2 })
  t.equal(toErrno(enoent, log, 'getattr', '/'), errno.EIO)
  t.equal(toErrno('a string', log, 'getattr', '/'), errno.EIO, 'a thrown non-Error')
  t.equal(toErrno(undefined, log, 'getattr', '/'), errno.EIO, 'a thrown undefined')
  t.equal(lines.length, 4, 'each logged')
})

t.test('answer: a sync result is sent, once', async (t) => {
  const { log, lines } = capture()
  const r = recorder()
  answer(log, 'getattr', '7', () => ({ size: 7 }), r.send, r.fail)
  t.same(r.calls, [['ok', { size: 7 }]], 'answered at once, exactly once')
  await settle()
  t.equal(r.calls.length, 1, 'and never again')
  t.equal(lines.length, 0)
})

t.test('answer: a sync throw answers the errno, once, and send is not called', async (t) => {
  const { log, lines } = capture()
  const r = recorder()
  answer(
    log,
    'readdir',
    '3',
    (): string[] => {
      throw new FsError('ENOTDIR', 'node 3')
    },
    r.send,
    r.fail,
  )
  t.same(r.calls, [['err', errno.ENOTDIR]])
  await settle()
  t.equal(r.calls.length, 1)
  t.equal(lines.length, 0)
})

t.test('answer: an unknown sync throw is EIO and logged with the op and node', async (t) => {
  const { log, lines } = capture()
  const r = recorder()
  answer(
    log,
    'readlink',
    '12',
    (): string => {
      throw new RangeError('bug')
    },
    r.send,
    r.fail,
  )
  t.same(r.calls, [['err', errno.EIO]])
  t.equal(lines.length, 1)
  t.match(lines[0], { op: 'readlink', node: '12', err: { type: 'RangeError', message: 'bug' } })
})

t.test('answer: a promise answers when it settles, once', async (t) => {
  const { log, lines } = capture()
  let resolve!: (n: number) => void
  const r = recorder()
  answer(log, 'read', '4', () => new Promise<number>((res) => (resolve = res)), r.send, r.fail)
  await settle()
  t.same(r.calls, [], 'no answer before the promise settles')
  resolve(42)
  await settle()
  t.same(r.calls, [['ok', 42]], 'the resolved value, exactly once')
  resolve(43)
  await settle()
  t.same(r.calls, [['ok', 42]], 'a second resolve changes nothing')
  t.equal(lines.length, 0)
})

t.test('answer: a rejection answers the errno; an unknown one EIO, logged', async (t) => {
  const { log, lines } = capture()
  const a = recorder()
  answer(log, 'read', '2', async () => Promise.reject(new FsError('EISDIR', 'node 2')), a.send, a.fail)
  t.same(a.calls, [], 'not answered synchronously')
  await settle()
  t.same(a.calls, [['err', errno.EISDIR]])
  t.equal(lines.length, 0)

  const b = recorder()
  answer(
    log,
    'read',
    '9',
    async (): Promise<number> => {
      await settle()
      throw new Error('decoder broke')
    },
    b.send,
    b.fail,
  )
  await settle()
  await settle()
  t.same(b.calls, [['err', errno.EIO]], 'an async unknown error: EIO, once')
  t.equal(lines.length, 1)
  t.match(lines[0], { op: 'read', node: '9', err: { message: 'decoder broke' } })

  const c = recorder()
  // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- what this test is about
  answer(log, 'read', '1', () => Promise.reject('not an Error'), c.send, c.fail)
  await settle()
  t.same(c.calls, [['err', errno.EIO]], 'a rejection with a non-Error: EIO, once')
})
