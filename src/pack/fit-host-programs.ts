// Every ELF program packed must run on the kernel's machine. In a cross-built tree scripts/ holds
// build-host programs: they are rebuilt for the target (or the tree is refused with --no-rebuild);
// those module builds never run and that were not rebuilt are left out, and named.
import { HostProgramsError } from '../errors'
import type { HostProgramsInfo, TargetInfo } from '../image/format'
import { describeElf } from './elf'
import type { Selection, Skipped } from './entries'
import { checkTreeOwner, NEEDED_BY_MODULE_BUILDS, rebuildHostPrograms, type Rebuild } from './host-programs'
import type { KernelTree } from './kernel-tree'
import { foreignBinaries, type Foreign } from './target'

export interface FitOptions {
  /** false: refuse foreign programs instead of rebuilding them. */
  rebuildHostPrograms?: boolean
  /** Run the tree's code (the rebuild) even if another user owns the tree. */
  trustTree?: boolean
  crossCompile?: string
  env: NodeJS.ProcessEnv
  /** Called before the tree's code runs (make in a scratch copy), with what it runs. */
  onRunTree?: (info: { dirs: readonly string[]; compiler: string }) => void
}

export interface Fitted {
  selection: Selection
  /** The rebuild, if any: its scratch directory holds the rebuilt programs until cleanup(). */
  rebuild?: Rebuild & { info: HostProgramsInfo }
}

/** `selection` with every program fit for `target`: rebuilt ones read from the scratch copy, others dropped. */
export async function fitHostPrograms(
  tree: KernelTree,
  selection: Selection,
  target: TargetInfo,
  opts: FitOptions,
  signal?: AbortSignal,
): Promise<Fitted> {
  const foreign = foreignBinaries(selection.entries, target)
  if (foreign.length === 0) return { selection }
  if (opts.rebuildHostPrograms === false) throw refuseForeign(tree, target, foreign)
  // The one step that runs the tree's code: its owner must be the caller or root, or trusted.
  const dirs = (selection.within?.list() ?? [tree.objtree, tree.srctree]).filter((d) => d !== tree.sysroot)
  const files = selection.entries.flatMap((e) => (e.source === undefined ? [] : [e.source]))
  checkTreeOwner(dirs, files, opts.trustTree === true)
  const rebuild = await rebuildHostPrograms(
    tree,
    selection.entries,
    target,
    foreign.map((f) => f.entry.path),
    {
      crossCompile: opts.crossCompile,
      env: opts.env,
      onRun: (compiler) => opts.onRunTree?.({ dirs, compiler }),
      signal,
    },
  )
  const { rebuilt, dropped, skipped } = sortForeign(tree, target, foreign, rebuild)
  const gone = new Set(dropped)
  return {
    selection: {
      ...selection,
      entries: selection.entries.flatMap((e) => {
        if (gone.has(e.path)) return []
        const fresh = rebuild.programs.get(e.path)
        // Our own build output, in the scratch directory: no confinement to the tree.
        return fresh === undefined ? [e] : [{ ...e, source: fresh, within: undefined }]
      }),
      skipped: [...selection.skipped, ...skipped],
    },
    rebuild: {
      ...rebuild,
      info: { compiler: rebuild.compiler.version, prefix: rebuild.compiler.prefix, rebuilt, dropped },
    },
  }
}

/** Which foreign programs were rebuilt and which are dropped; one module builds run and not rebuilt is fatal. */
function sortForeign(
  tree: KernelTree,
  target: TargetInfo,
  foreign: readonly Foreign[],
  rebuild: Rebuild,
): { rebuilt: string[]; dropped: string[]; skipped: Skipped[] } {
  const rebuilt: string[] = []
  const dropped: string[] = []
  const skipped: Skipped[] = []
  for (const { entry, elf } of foreign) {
    if (rebuild.programs.has(entry.path)) {
      rebuilt.push(entry.path)
    } else if (NEEDED_BY_MODULE_BUILDS.includes(entry.path)) {
      rebuild.cleanup()
      throw new HostProgramsError(
        `Cannot pack ${tree.objtree} for ${target.name}: ${entry.path} is built for ${describeElf(elf)} and ${rebuild.compiler.prefix}gcc did not rebuild it; module builds on the board run it, so build it for the board or pass --profile headers`,
      )
    } else {
      dropped.push(entry.path)
      skipped.push({
        path: entry.path,
        reason: `a program for ${describeElf(elf)}, not ${target.name}; module builds do not run it, so it is left out`,
      })
    }
  }
  return { rebuilt, dropped, skipped }
}

function refuseForeign(tree: KernelTree, target: TargetInfo, foreign: readonly Foreign[]): Error {
  const first = foreign[0]
  const others = foreign.length > 1 ? ` and ${foreign.length - 1} more` : ''
  return new HostProgramsError(
    `Cannot pack ${tree.objtree} for ${target.name}: ${first.entry.path}${others} ${foreign.length > 1 ? 'are' : 'is'} built for ${describeElf(first.elf)}, so "make M=" on the board would fail with "Exec format error"; drop --no-rebuild to rebuild them with the board's compiler`,
  )
}
