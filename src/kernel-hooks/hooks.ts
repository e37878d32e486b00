// What the kernel hooks do, the way dkms follows kernels: a kernel's headers installed → pack its
// image to /lib/modules/<release>/kheaders.img; the kernel or its headers removed → remove that image.
// Only images the hooks packed themselves (state.ts) are ever replaced or removed, and a release an
// image package already serves (/usr/lib/kheadersfs/<release>.img) is left to it.
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { IoError, KernelTreeError, reason } from '../errors'
import { bytes } from '../format-bytes'
import { tempPathFor, removeStaleTemps } from '../fs-atomic'
import { checkRelease } from '../image/release'
import { packImage } from '../pack/pack'
import { DEFAULT_BLOCK_SIZE } from '../pack/xz'
import { memAvailable, threadsFor, type HookConfig } from './config'
import {
  isHooksImage,
  readRecord,
  recordedReleases,
  removeRecord,
  sha256File,
  treeStamp,
  writeRecord,
  type HookRecord,
} from './state'

/** Where the hooks look and write; a test points them into a temp directory. */
export interface HookPaths {
  modules: string
  imagePackages: string
  src: string
  state: string
}

export const SYSTEM_PATHS: Readonly<HookPaths> = {
  modules: '/lib/modules',
  imagePackages: '/usr/lib/kheadersfs',
  src: '/usr/src',
  state: '/var/lib/kheadersfs/kernel-hooks',
}

/** What a hook did, as the one line it prints. */
export interface Done {
  line: string
  packed?: { image: string; bytes: number; ms: number }
}

const imageOf = (paths: HookPaths, release: string): string => path.join(paths.modules, release, 'kheaders.img')

/** The headers tree of `release`: where Debian, Ubuntu, Raspberry Pi OS and bindeb-pkg put it, else the build link. */
function headersTree(paths: HookPaths, release: string): string | undefined {
  for (const dir of [path.join(paths.src, `linux-headers-${release}`), path.join(paths.modules, release, 'build')])
    if (existsSync(path.join(dir, 'Makefile'))) return dir
  return undefined
}

/**
 * Pack the image of `release` from its installed headers, unless an image package serves the
 * release, an image not packed by the hooks is in the way, or the image is already packed from this
 * very tree. Atomic: the image is packed to a temp file beside it and renamed into place, so a
 * failure (a full disk, a broken tree) leaves the old image or none, never a part of one.
 */
export async function packRelease(
  release: string,
  config: HookConfig,
  paths: HookPaths,
  env: NodeJS.ProcessEnv,
): Promise<Done> {
  checkRelease(release)
  const image = imageOf(paths, release)
  const packaged = path.join(paths.imagePackages, `${release}.img`)
  if (existsSync(packaged)) return { line: `${release}: not packing: the image package's ${packaged} serves it` }
  const tree = headersTree(paths, release)
  if (tree === undefined)
    return { line: `${release}: not packing: no headers tree (${path.join(paths.src, `linux-headers-${release}`)})` }
  const old = readRecord(paths.state, release)
  const ours = isHooksImage(old, image)
  if (existsSync(image) && !ours)
    return {
      line: `${release}: kept ${image}: not packed by the kernel hooks (placed by hand?); remove it to let them pack one`,
    }
  const stamp = treeStamp(tree)
  if (ours && old!.tree === tree && old!.treeStamp === stamp && old!.profile === config.profile)
    return { line: `${release}: ${image} is up to date (packed from ${tree})` }

  mkdirSync(path.dirname(image), { recursive: true })
  removeStaleTemps(image)
  const tmp = tempPathFor(image)
  const t0 = Date.now()
  try {
    const result = await packImage({
      kernel: tree,
      profile: config.profile,
      output: tmp,
      // A tree whose host programs are for another machine is refused, not rebuilt: rebuilding runs
      // its Makefiles in the middle of an apt run (see SECURITY in kheadersfs(1)).
      rebuildHostPrograms: false,
      preset: config.xzPreset,
      blockSize: DEFAULT_BLOCK_SIZE,
      threads: threadsFor(config.threads, os.availableParallelism(), memAvailable()),
      cwd: '/',
      env,
    }).catch((e: unknown) => {
      // pack names its temp file and suggests -o: neither means anything to someone upgrading a kernel.
      if (errnoCode(e) !== 'ENOSPC') throw e
      throw new IoError(
        `Cannot write ${image}: no space left on device; free some space on the file system of ${path.dirname(image)}`,
        e,
      )
    })
    if (result.manifest.release !== release)
      throw new KernelTreeError(
        `Cannot pack ${tree} for ${release}: its UTS_RELEASE is ${result.manifest.release}; fix or reinstall the headers package`,
      )
    const record: HookRecord = {
      release,
      image,
      sha256: sha256File(tmp),
      tree,
      treeStamp: stamp,
      profile: config.profile,
    }
    // The record first: from the rename on, the image must be known as the hooks' own.
    writeRecord(paths.state, record)
    try {
      renameSync(tmp, image)
    } catch (e) {
      if (old === undefined) removeRecord(paths.state, release)
      else writeRecord(paths.state, old)
      throw new IoError(`Cannot install ${image}: ${reason(e)}`, e)
    }
    const ms = Date.now() - t0
    return {
      line: `${release}: packed ${image} (${config.profile}, ${bytes(result.imageBytes)}) from ${tree} in ${(ms / 1000).toFixed(1)} s`,
      packed: { image, bytes: result.imageBytes, ms },
    }
  } finally {
    rmSync(tmp, { force: true })
  }
}

/** Remove the image the hooks packed for `release` (and their record); any other image stays. */
export function removeRelease(release: string, paths: HookPaths, why: string): Done {
  checkRelease(release)
  const image = imageOf(paths, release)
  const record = readRecord(paths.state, release)
  const there = existsSync(image)
  if (there && !isHooksImage(record, image)) {
    removeRecord(paths.state, release)
    return { line: `${release}: kept ${image}: not packed by the kernel hooks` }
  }
  removeRecord(paths.state, release)
  if (!there) return { line: record ? `${release}: ${image} already gone` : '' }
  try {
    rmSync(image)
  } catch (e) {
    throw new IoError(`Cannot remove ${image}: ${reason(e)}`, e)
  }
  return { line: `${release}: removed ${image} (${why})` }
}

/**
 * After packages changed /usr/src (the dpkg trigger): the images packed from a headers tree that is
 * gone now are removed, or kept with REMOVE_WITH_HEADERS=no. A headers package has no removal hook
 * of its own (Debian's run only header_postinst.d), hence the trigger.
 */
export function sweepRemovedHeaders(config: HookConfig, paths: HookPaths): Done[] {
  const done: Done[] = []
  for (const release of recordedReleases(paths.state)) {
    const r = readRecord(paths.state, release)
    if (r === undefined || existsSync(path.join(r.tree, 'Makefile'))) continue
    if (config.removeWithHeaders) done.push(removeRelease(release, paths, `its headers ${r.tree} were removed`))
    else
      done.push({
        line: `${release}: kept ${r.image} after its headers were removed (REMOVE_WITH_HEADERS=no)`,
      })
  }
  return done.filter((d) => d.line !== '')
}

function errnoCode(e: unknown): string | undefined {
  for (let c = e as { code?: string; cause?: unknown } | undefined; c; c = c.cause as typeof c)
    if (typeof c.code === 'string') return c.code
  return undefined
}
