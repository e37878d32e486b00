// The packing pipeline: kernel tree → selection → kheaders.tar.xz + config.gz + manifest → image file.
import { realpathSync, statSync } from 'node:fs'
import path from 'node:path'
import { IoError, KernelTreeError, UsageError, reason } from '../errors'
import type { Manifest, Profile } from '../image/format'
import { serializeManifest } from '../image/manifest'
import { buildImage, removeStaleTemps, writeFileAtomic } from '../image/write'
import { configGz } from './config-gz'
import { buildArchive, type ArchiveProgress } from './headers-txz'
import { detectKernelTree, type KernelTree } from './kernel-tree'
import { buildManifest } from './manifest'
import { selectFiles, type Skipped } from './select'
import type { XzOptions } from './xz'

export interface PackOptions extends XzOptions {
  kernel: string
  source?: string
  profile: Profile
  config?: string
  release?: string
  /** Root file system the tree belongs to (a board's root, an SDK sysroot). */
  sysroot?: string
  output?: string
  cwd: string
  env: NodeJS.ProcessEnv
}

export interface PackHooks {
  /** Called once the tree is understood and the files are chosen. */
  onSelected?: (info: { tree: KernelTree; files: number; bytes: number; skipped: Skipped[]; output: string }) => void
  onProgress?: (p: ArchiveProgress) => void
  signal?: AbortSignal
}

export interface PackResult {
  output: string
  tree: KernelTree
  manifest: Manifest
  imageBytes: number
  skipped: Skipped[]
  staleTempsRemoved: string[]
}

export async function packImage(opts: PackOptions, hooks: PackHooks = {}): Promise<PackResult> {
  const tree = detectKernelTree(opts)
  if (tree.config === undefined) {
    throw new KernelTreeError(`Cannot pack ${tree.objtree}: it has no .config; pass --config FILE (a .config, or /proc/config.gz of the running kernel)`)
  }
  const output = path.resolve(opts.cwd, opts.output ?? `kheaders-${tree.release}.img`)
  checkOutput(output, tree)
  const staleTempsRemoved = removeStaleTemps(output)

  const selection = selectFiles(tree, opts.profile)
  hooks.onSelected?.({
    tree,
    files: selection.entries.length,
    bytes: selection.entries.reduce((n, e) => n + e.size, 0),
    skipped: selection.skipped,
    output,
  })
  const archive = await buildArchive(selection.entries, { ...opts, epoch: tree.epoch, onProgress: hooks.onProgress, signal: hooks.signal })
  const config = { raw: tree.config, gz: configGz(tree.config) }
  const manifest = buildManifest(tree, opts.profile, archive, config, opts)
  const image = await buildImage({ manifest: serializeManifest(manifest), config: config.gz, headers: archive.txz }, tree.epoch)
  hooks.signal?.throwIfAborted()
  writeFileAtomic(output, image)
  return { output, tree, manifest, imageBytes: image.length, skipped: selection.skipped, staleTempsRemoved }
}

/** Fail before the long part: the target's directory must exist and the image must not land in the tree. */
function checkOutput(output: string, tree: KernelTree): void {
  const dir = path.dirname(output)
  let realDir: string
  try {
    if (!statSync(dir).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' })
    realDir = realpathSync(dir)
  } catch (e) {
    throw new IoError(`Cannot write image ${output}: ${dir}: ${reason(e)}; create the directory or pass -o another path`, e)
  }
  try {
    if (statSync(output).isDirectory()) throw new UsageError(`Cannot write image ${output}: it is a directory; pass -o a file path`)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e
  }
  const real = path.join(realDir, path.basename(output))
  for (const root of new Set([tree.objtree, tree.srctree])) {
    if (real.startsWith(root + path.sep)) {
      throw new UsageError(`Cannot write image ${output}: it is inside the kernel tree ${root} and would be packed next time; pass -o a path outside it`)
    }
  }
}
