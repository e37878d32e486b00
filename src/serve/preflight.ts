// Checks before mounting, so each common failure gets its own one-line message instead of libfuse's
// generic "fuse failed".
import { accessSync, constants, readdirSync, statSync } from 'node:fs'
import path from 'node:path'
import { FuseUnavailableError, MountpointError, reason } from '../errors'
import { fsPath } from '../os-path'
import { fuseInstallHint } from '../native/fuse-packages'

export function checkMountpoint(mountpoint: string, opts: { nonempty: boolean }): void {
  let st
  try {
    st = statSync(fsPath(mountpoint))
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code === 'ENOENT')
      throw new MountpointError(
        `Cannot mount at ${mountpoint}: no such directory; pass --mkdir (-o X-mount.mkdir) or create it first (mkdir -p ${mountpoint})`,
      )
    throw new MountpointError(`Cannot mount at ${mountpoint}: ${reason(e)}`)
  }
  if (!st.isDirectory())
    throw new MountpointError(`Cannot mount at ${mountpoint}: not a directory; pass a directory as the mountpoint`)
  if (!opts.nonempty && readdirSync(fsPath(mountpoint)).length > 0) {
    throw new MountpointError(
      `Cannot mount at ${mountpoint}: the directory is not empty; use an empty directory or pass -o nonempty`,
    )
  }
}

export function checkFuse(env: NodeJS.ProcessEnv): void {
  try {
    accessSync('/dev/fuse', constants.R_OK | constants.W_OK)
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === 'ENOENT'
    throw new FuseUnavailableError(
      missing
        ? 'Cannot mount: /dev/fuse does not exist; load the fuse module (modprobe fuse) or give the container the device (--device /dev/fuse)'
        : `Cannot mount: /dev/fuse is not usable (${reason(e)}); run as root or add yourself to the group that owns it`,
      e,
    )
  }
  // libfuse2 runs fusermount to mount as non-root and, for auto_unmount, as root too.
  const dirs = (env.PATH ?? '/usr/bin:/bin').split(':').concat(['/usr/bin', '/bin'])
  if (!dirs.some((d) => isExecutable(path.join(d, 'fusermount')))) {
    throw new FuseUnavailableError(
      `Cannot mount: fusermount is not installed; ${fuseInstallHint({ library: false, fusermount: true })}`,
    )
  }
}

function isExecutable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK)
    return statSync(p).isFile()
  } catch {
    return false
  }
}
