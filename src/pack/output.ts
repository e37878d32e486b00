// Where the image goes, checked before the long part: its directory must exist, and it must not land
// in the kernel tree (it would be packed next time).
import { realpathSync, statSync } from 'node:fs'
import path from 'node:path'
import { IoError, UsageError, reason } from '../errors'
import { removeStaleTemps } from '../fs-atomic'

/**
 * The image's path (-o, else ./kheaders-<release>.img), checked against `roots` (the directories
 * packed from), and the temp files an interrupted pack left beside it, removed.
 */
export function prepareOutput(
  cwd: string,
  given: string | undefined,
  release: string,
  roots: readonly string[],
): { output: string; staleTempsRemoved: string[] } {
  const output = path.resolve(cwd, given ?? `kheaders-${release}.img`)
  checkOutput(output, roots)
  return { output, staleTempsRemoved: removeStaleTemps(output) }
}

function checkOutput(output: string, roots: readonly string[]): void {
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
