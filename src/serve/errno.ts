// The one place where errors become FUSE answers. Every handler is wrapped in guard(): typed errors
// answer their errno, anything else is a bug, logged and answered EIO, and the callback fires exactly
// once whatever happens (fuse-native would otherwise answer ETIMEDOUT after 15 s).
import { constants } from 'node:os'
import { KheadersError } from '../errors'
import type { Logger } from '../log'

export function toErrno(e: unknown, log: Logger, op: string, path: string): number {
  if (KheadersError.is(e)) return -e.errno
  log.error({ op, path, err: e }, 'unexpected error in a filesystem operation; answered EIO')
  return -constants.errno.EIO
}

/**
 * Wrap `fn` so that it answers through `cb` once: with what it returns, or with the errno of what it
 * throws. `reply` turns the result into the callback's arguments.
 */
export function guard<A extends unknown[], R>(
  log: Logger,
  op: string,
  fn: (...args: A) => R,
  reply: (cb: (...r: any[]) => void, result: R) => void,
): (...argsAndCb: [...A, (...r: any[]) => void]) => void {
  return (...argsAndCb) => {
    const cb = argsAndCb[argsAndCb.length - 1] as (...r: any[]) => void
    const args = argsAndCb.slice(0, -1) as A
    let result: R
    try {
      result = fn(...args)
    } catch (e) {
      cb(toErrno(e, log, op, typeof args[0] === 'string' ? args[0] : ''))
      return
    }
    reply(cb, result)
  }
}

export const EROFS = -constants.errno.EROFS
