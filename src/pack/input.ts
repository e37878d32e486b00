// What pack packs, from one of two sources: a kernel build tree (kernel-tree.ts, its files chosen for
// the profile by select.ts) or the kernel's own kheaders archive (from-kheaders.ts, its file list kept
// as it is). Either way: the kernel's facts (kernel.ts) and entries (entries.ts).
import { KernelTreeError } from '../errors'
import type { Profile } from '../image/format'
import type { Selection } from './entries'
import { readKheadersArchive, type KheadersArchive } from './from-kheaders'
import type { Kernel } from './kernel'
import { detectKernelTree, type KernelTree, type TreeLayout, type TreeOptions } from './kernel-tree'
import { selectFiles } from './select'
import { kernelTarget, type Target } from './target'

export type PackInput =
  | { kind: 'tree'; kernel: Kernel; tree: KernelTree }
  | { kind: 'kheaders-archive'; kernel: Kernel; archive: KheadersArchive }

export interface InputOptions extends TreeOptions {
  /** The kernel's own kheaders archive (or a kheaders.ko) to pack instead of a tree; needs config. */
  fromKheaders?: string
}

export async function readInput(opts: InputOptions): Promise<PackInput> {
  if (opts.fromKheaders !== undefined) {
    const archive = await readKheadersArchive(opts.fromKheaders, opts)
    return { kind: 'kheaders-archive', kernel: archive.kernel, archive }
  }
  const tree = detectKernelTree(opts)
  if (tree.config === undefined) {
    throw new KernelTreeError(
      `Cannot pack ${tree.objtree}: it has no .config; pass --config FILE (a .config, or /proc/config.gz of the running kernel)`,
    )
  }
  return { kind: 'tree', kernel: { ...tree, config: tree.config }, tree }
}

/** The entries to pack: a tree's, chosen for the profile; the archive's, all of them. */
export async function selectEntries(input: PackInput, profile: Profile, signal?: AbortSignal): Promise<Selection> {
  if (input.kind === 'tree') return selectFiles(input.tree, profile, signal)
  return { entries: input.archive.entries, skipped: [] }
}

/** The machine the kernel is for: a tree's vmlinux says it best, else the arch and .config. */
export function inputTarget(input: PackInput): Target | undefined {
  return kernelTarget(input.kind === 'tree' ? input.tree : input.kernel)
}

/** Directories whose files are packed: an image written inside one would be packed next time. */
export function inputRoots(input: PackInput): string[] {
  return input.kind === 'tree' ? [input.tree.objtree, input.tree.srctree] : []
}

/** Where the input is, as pack reports it (the archive file stands for both trees). */
export function describeInput(input: PackInput): {
  layout: TreeLayout | 'kheaders-archive'
  objtree: string
  srctree: string
} {
  if (input.kind === 'tree')
    return { layout: input.tree.layout, objtree: input.tree.objtree, srctree: input.tree.srctree }
  return { layout: 'kheaders-archive', objtree: input.archive.file, srctree: input.archive.file }
}
