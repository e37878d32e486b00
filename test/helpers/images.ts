// Small real images for tests that need an image but not the Debian tree: a tiny synthetic kernel
// tree packed by the CLI, for the running kernel's release unless told otherwise.
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
  const r = await runCli(['pack', '--kernel', tree, '--release', release, '--profile', profile, '-o', out], { env: { KHEADERSFS_LOG_LEVEL: 'warn' } })
  if (r.code !== 0) throw new Error(`tiny pack failed: ${r.stderr}`)
  return out
}
