// The one place where errors become FUSE answers. Every request is answered through answer(): typed
// errors answer their errno, anything else is a bug, logged and answered EIO, and each request gets
// exactly one answer whatever happens, also when the work finishes later (a decode).
import { constants } from 'node:os'
import { KheadersError } from '../errors'
import type { Logger } from '../log'

/** Messages of failures already logged (a corrupt block fails every read of it: one line is enough). */
const logged = new Set<string>()

/**
 * The positive errno to answer for `e`. Typed errors answer their errno, silently, except an EIO (a
 * block that fails its check: the image is damaged), logged once per message; anything else is a bug,
 * logged every time and answered EIO.
 */
export function toErrno(e: unknown, log: Logger, op: string, what: string): number {
  if (KheadersError.is(e)) {
    if (e.errno === constants.errno.EIO && !logged.has(e.message) && logged.size < 1000) {
      logged.add(e.message)
      log.error({ op, node: what }, `answered EIO: ${e.message}`)
    }
    return e.errno
  }
  log.error({ op, node: what, err: e }, 'unexpected error in a filesystem operation; answered EIO')
  return constants.errno.EIO
}

/**
 * Run `fn` and send what it returns (or what its promise resolves to) with `send`, or the errno of
 * what it throws or rejects with with `fail`. `counts`, when given, counts calls per operation.
 */
export function answer<R>(
  log: Logger,
  op: string,
  what: string,
  fn: () => R | Promise<R>,
  send: (result: R) => void,
  fail: (errno: number) => void,
): void {
  let result: R | Promise<R>
  try {
    result = fn()
  } catch (e) {
    fail(toErrno(e, log, op, what))
    return
  }
  if (result instanceof Promise) result.then(send, (e: unknown) => fail(toErrno(e, log, op, what)))
  else send(result)
}
