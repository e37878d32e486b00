// Where the image goes, checked before the long part: its directory must exist, and it must not land
// in the kernel tree (it would be packed next time).
import { realpathSync, statSync } from 'node:fs'
import path from 'node:path'
import { IoError, UsageError, reason } from '../errors'
import type { Manifest, TargetInfo } from '../image/format'
import { writeImage } from '../image/write'
import { removeStaleTemps } from '../fs-atomic'
import type { Kernel } from './kernel'

/** What pack knows of the kernel before the long part: enough to name and check the output. */
export type KernelFacts = Pick<Kernel, 'release' | 'arch' | 'epoch'> & { target?: TargetInfo }

/** What a packed image becomes: the image file itself, or a package holding it (src/deb/sink.ts). */
export interface ImageSink {
  /** How pack's progress names writing it (default 'write'). */
  readonly phase?: 'write' | 'deb'
  /** The path to write, checked (and an interrupted run's temp files removed) before anything is packed. */
  prepare(kernel: KernelFacts, cwd: string, roots: readonly string[]): { output: string; staleTempsRemoved: string[] }
  /** Write `output` from the image, whole or not at all; its size in bytes. */
  write(output: string, image: Buffer, manifest: Manifest, signal?: AbortSignal): Promise<number>
}

/** The image file at -o (default ./kheaders-<release>.img). */
export function imageFile(given: string | undefined): ImageSink {
  return {
    prepare: (kernel, cwd, roots) => prepareOutput(cwd, given, kernel.release, roots),
    write: (output, image) => {
      writeImage(output, image)
      return Promise.resolve(image.length)
    },
  }
}

/**
 * The image's path (-o, else ./kheaders-<release>.img), checked against `roots` (the directories
 * packed from), and the temp files an interrupted pack left beside it, removed.
 */
function prepareOutput(
  cwd: string,
  given: string | undefined,
  release: string,
  roots: readonly string[],
): { output: string; staleTempsRemoved: string[] } {
  const output = path.resolve(cwd, given ?? `kheaders-${release}.img`)
  checkOutput(output, roots)
  return { output, staleTempsRemoved: removeStaleTemps(output) }
}

/** `output`'s directory exists, `output` is not a directory, and it is outside every root. */
export function checkOutput(output: string, roots: readonly string[]): void {
  const dir = path.dirname(output)
  let realDir: string
  try {
    if (!statSync(dir).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' })
    realDir = realpathSync(dir)
  } catch (e) {
    throw new IoError(
      `Cannot write image ${output}: ${dir}: ${reason(e)}; create the directory or pass -o another path`,
      e,
    )
  }
  try {
    if (statSync(output).isDirectory())
      throw new UsageError(`Cannot write image ${output}: it is a directory; pass -o a file path`)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e
  }
  const real = path.join(realDir, path.basename(output))
  for (const root of new Set(roots)) {
    if (real.startsWith(root + path.sep)) {
      throw new UsageError(
        `Cannot write image ${output}: it is inside the kernel tree ${root} and would be packed next time; pass -o a path outside it`,
      )
    }
  }
}
