// Small real images for tests that need an image but not the Debian tree: a tiny synthetic kernel
// tree packed by the CLI, for the running kernel's release unless told otherwise.
import { execFileSync } from 'node:child_process'
import { mkdirSync, symlinkSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { runCli } from './cli'
import { tmpDir } from './tmp'
import { tinyTree } from './tiny-tree'

interface T {
  teardown(fn: () => unknown): void
}

export async function tinyImage(t: T, release = os.release(), profile = 'module-build'): Promise<string> {
  const dir = tmpDir(t)
  const tree = tinyTree(path.join(dir, 'tree'))
  const out = path.join(dir, 'tiny.img')
  const r = await runCli(['pack', '--kernel', tree, '--release', release, '--profile', profile, '-o', out], {
    env: { KHEADERSFS_LOG_LEVEL: 'warn' },
  })
  if (r.code !== 0) throw new Error(`tiny pack failed: ${r.stderr}`)
  return out
}

/** A big header for the view tests: 8000 distinct #define lines (~230 KB), no comments to strip. */
export const BIG_HEADER = Array.from(
  { length: 8000 },
  (_, i) => `#define KH_${String(i).padStart(5, '0')} 0x${((i * 2654435761) >>> 0).toString(16).padStart(8, '0')}\n`,
).join('')

/**
 * A tiny image for the serving core's tests, with what its view must handle: a symlink
 * (include/linux/link.h → kernel.h), an empty file (include/linux/empty.h) and a file spanning
 * several xz blocks (include/linux/big.h, packed with 64 KiB blocks). `tar` is kheaders.tar.xz
 * unpacked by GNU tar and xz: the bytes the view must serve, from readers other than ours.
 */
export async function viewImage(t: T): Promise<{ file: string; tar: string }> {
  const dir = tmpDir(t)
  const tree = tinyTree(path.join(dir, 'tree'), {
    extra: { 'include/linux/big.h': BIG_HEADER, 'include/linux/empty.h': '' },
  })
  symlinkSync('kernel.h', path.join(tree, 'include/linux/link.h'))
  const file = path.join(dir, 'view.img')
  const r = await runCli(['pack', '--kernel', tree, '--release', '6.9.0-view', '--block-size', '64K', '-o', file], {
    env: { KHEADERSFS_LOG_LEVEL: 'warn' },
  })
  if (r.code !== 0) throw new Error(`view pack failed: ${r.stderr}`)
  const tar = path.join(dir, 'tar')
  mkdirSync(tar)
  execFileSync('sh', ['-c', 'tar -xOf "$1" kheaders.tar.xz | tar -xJf - -C "$2"', 'sh', file, tar])
  return { file, tar }
}
