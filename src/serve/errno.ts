// The one place where errors become FUSE answers. Every handler is wrapped in guard(): typed errors
// answer their errno, anything else is a bug, logged and answered EIO, and the callback fires exactly
// once whatever happens, also for handlers that answer later (fuse-native would otherwise answer
// ETIMEDOUT after 15 s).
import { constants } from 'node:os'
import { KheadersError } from '../errors'
import type { Logger } from '../log'

/** A fuse-native callback: cb(code, ...values), code negative for -errno (types/fuse-native.d.ts). */
export type FuseReply = (code: number, ...values: unknown[]) => void

export function toErrno(e: unknown, log: Logger, op: string, path: string): number {
  if (KheadersError.is(e)) return -e.errno
  log.error({ op, path, err: e }, 'unexpected error in a filesystem operation; answered EIO')
  return -constants.errno.EIO
}

/**
 * Wrap `fn` so that it answers through `cb` once: with what it returns (or what its promise resolves
 * to), or with the errno of what it throws or rejects with. `reply` turns the result into the
 * callback's arguments. `counts`, when given, counts calls per operation (for the daemon's stats).
 */
export function guard<A extends unknown[], R>(
  log: Logger,
  op: string,
  fn: (...args: A) => R | Promise<R>,
  reply: (cb: FuseReply, result: R) => void,
  counts?: Record<string, number>,
): (...argsAndCb: [...A, FuseReply]) => void {
  return (...argsAndCb) => {
    const cb = argsAndCb[argsAndCb.length - 1] as FuseReply
    const args = argsAndCb.slice(0, -1) as A
    const path = typeof args[0] === 'string' ? args[0] : ''
    if (counts !== undefined) counts[op] = (counts[op] ?? 0) + 1
    const fail = (e: unknown): void => cb(toErrno(e, log, op, path))
    let result: R | Promise<R>
    try {
      result = fn(...args)
    } catch (e) {
      fail(e)
      return
    }
    if (result instanceof Promise) result.then((r) => reply(cb, r), fail)
    else reply(cb, result)
  }
}

export const EROFS = -constants.errno.EROFS
