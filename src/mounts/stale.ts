// Cleaning up after a daemon that died without unloading (kill -9, OOM): its mount answers
// "Transport endpoint is not connected", and its state file and -o link_build links remain.
import { removeBuildLinks } from '../serve/build-links'
import { unmount } from './mountinfo'
import { readState, removeState } from '../protocol/state'

export function cleanStale(env: NodeJS.ProcessEnv, mountpoint: string): ReturnType<typeof unmount> {
  const state = readState(env, mountpoint)
  const result = unmount(mountpoint, true)
  if (state?.links) removeBuildLinks(state.links, state.links.view)
  removeState(env, mountpoint)
  return result
}
