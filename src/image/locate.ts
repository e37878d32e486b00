// Which image to load, found the way modprobe finds a module: an explicit path, then
// $KHEADERSFS_IMAGE, then the image shipped beside the running kernel's modules, then the
// distribution-wide directory.
import { existsSync } from 'node:fs'
import os from 'node:os'
import { ImageNotFoundError } from '../errors'
import { checkRelease } from './release'

export interface Located {
  path: string
  /** Where it looked, in order, for the error message and `--log-level debug`. */
  tried: string[]
}

export function runningRelease(): string {
  return os.release()
}

export function searchPath(release: string, env: NodeJS.ProcessEnv): Array<{ path: string; from: string }> {
  const list: Array<{ path: string; from: string }> = []
  if (env.KHEADERSFS_IMAGE) list.push({ path: env.KHEADERSFS_IMAGE, from: '$KHEADERSFS_IMAGE' })
  list.push({ path: `/lib/modules/${release}/kheaders.img`, from: 'modules directory' })
  list.push({ path: `/usr/lib/kheadersfs/${release}.img`, from: 'kheadersfs library' })
  return list
}

export function locateImage(opts: { explicit?: string; release: string; env: NodeJS.ProcessEnv }): Located {
  if (opts.explicit !== undefined) return { path: opts.explicit, tried: [opts.explicit] }
  // It becomes a path below /lib/modules: a release and nothing else.
  const list = searchPath(checkRelease(opts.release), opts.env)
  for (const c of list) if (existsSync(c.path)) return { path: c.path, tried: list.map((l) => l.path) }
  const where = [opts.env.KHEADERSFS_IMAGE ? undefined : '$KHEADERSFS_IMAGE (unset)', ...list.map((l) => l.path)]
    .filter(Boolean)
    .join(', ')
  throw new ImageNotFoundError(
    `Cannot find a kheadersfs image for ${opts.release}: looked in ${where}; pack one with "kheadersfs pack" and install it at /lib/modules/${opts.release}/kheaders.img, or pass --image`,
  )
}
