// `kheadersfs pack --deb`: the packed image written as an image package into a directory. Every
// option is checked when the command line is read, the package's name, version and architecture as
// soon as the kernel is known (before the long part); the .deb appears whole or not at all.
import { accessSync, constants, statSync } from 'node:fs'
import path from 'node:path'
import { IoError, reason } from '../errors'
import { removeStaleTemps, writeFileAtomic } from '../fs-atomic'
import type { Logger } from '../log'
import { checkOutput, type ImageSink } from '../pack/output'
import { maintainer } from './maintainer'
import { checkArch, checkVersion, defaultVersion, packageArch, packageName } from './names'
import { buildDeb, debFileName, type DebOptions } from './package'

export interface DebRequest {
  /** -o: the directory to write into (default: the current one). */
  dir?: string
  /** --deb-name: the package name's prefix (default kheadersfs-image). */
  name?: string
  version?: string
  arch?: string
  maintainer?: string
}

const DEFAULT_PREFIX = 'kheadersfs-image'

/** The sink for `request`, its values checked now (a bad one fails before anything is read). */
export function debSink(request: DebRequest, env: NodeJS.ProcessEnv, log?: Logger): ImageSink {
  const prefix = request.name ?? DEFAULT_PREFIX
  packageName(prefix, '0') // checks the prefix
  if (request.version !== undefined) checkVersion(request.version)
  if (request.arch !== undefined) checkArch(request.arch)
  const who = maintainer(request.maintainer, env)
  let deb: DebOptions | undefined
  return {
    phase: 'deb',
    prepare(kernel, cwd, roots) {
      deb = {
        package: packageName(prefix, kernel.release),
        version: request.version ?? defaultVersion(kernel.epoch),
        arch: packageArch(request.arch, kernel),
        maintainer: who,
      }
      const dir = path.resolve(cwd, request.dir ?? '.')
      checkDir(dir)
      const output = path.join(dir, debFileName(deb))
      checkOutput(output, roots)
      return { output, staleTempsRemoved: removeStaleTemps(output) }
    },
    async write(output, image, manifest, signal) {
      if (deb === undefined) throw new Error('debSink: write before prepare')
      log?.info({ package: deb.package, version: deb.version, arch: deb.arch }, 'building the image package')
      const bytes = await buildDeb(image, manifest, deb, signal)
      signal?.throwIfAborted()
      try {
        writeFileAtomic(output, bytes, { mode: 0o644, fsync: true })
      } catch (e) {
        const fix =
          (e as NodeJS.ErrnoException).code === 'ENOSPC'
            ? 'free some space or pass -o a directory on another filesystem'
            : 'pass -o a writable directory'
        throw new IoError(`Cannot write image package ${output}: ${reason(e)}; ${fix}`, e)
      }
      return bytes.length
    },
  }
}

/** With --deb, -o names a directory: it must exist and be writable. */
function checkDir(dir: string): void {
  try {
    if (!statSync(dir).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' })
    accessSync(dir, constants.W_OK)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    const fix =
      code === 'ENOENT'
        ? 'create it or pass -o an existing directory'
        : code === 'ENOTDIR'
          ? 'with --deb, -o names a directory'
          : 'pass -o a writable directory'
    throw new IoError(`Cannot write the image package into ${dir}: ${reason(e)}; ${fix}`, e)
  }
}
