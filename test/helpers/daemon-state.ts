// A daemon's state record as src/protocol/state.ts writes it, for tests of state and status.
import type { DaemonState } from '../../src/protocol/state'

export const daemonState = (mountpoint: string, pid: number, started = 1_700_000_000_000): DaemonState => ({
  pid,
  mountpoint,
  image: '/x.img',
  release: '6.1.0-test',
  profile: 'module-build',
  imageBytes: 1234,
  started,
  logFile: null,
  version: '0.1.0',
})
