// The packing pipeline: kernel tree → selection → kheaders.tar.xz + config.gz + manifest → image file.
import { realpathSync, statSync } from 'node:fs'
import path from 'node:path'
import { HostProgramsError, IoError, KernelTreeError, UsageError, reason } from '../errors'
import { removeStaleTemps } from '../fs-atomic'
import type { HostProgramsInfo, Manifest, Profile, TargetInfo } from '../image/format'
import { serializeManifest } from '../image/manifest'
import { buildImage, writeImage } from '../image/write'
import { configGz } from './config-gz'
import { describeElf } from './elf'
import { LAYOUT_ORDER } from './build-order'
import { buildArchive, type ArchiveProgress } from './headers-txz'
import { checkTreeOwner, NEEDED_BY_MODULE_BUILDS, rebuildHostPrograms, type Rebuild } from './host-programs'
import { readKheadersArchive } from './from-kheaders'
import { detectKernelTree, readConfig, type KernelTree } from './kernel-tree'
import { buildManifest } from './manifest'
import { selectFiles, type Selection, type Skipped } from './select'
import { foreignBinaries, kernelTarget } from './target'
import type { XzOptions } from './xz'

export interface PackOptions extends XzOptions {
  kernel: string
  source?: string
  profile: Profile
  config?: string
  release?: string
  /** Root file system the tree belongs to (a board's root, an SDK sysroot). */
  sysroot?: string
  /** CROSS_COMPILE prefix for rebuilding a cross-built tree's host programs. */
  crossCompile?: string
  /** The kernel's own kheaders archive (or a kheaders.ko) to pack instead of a tree; needs config. */
  fromKheaders?: string
  /** false: refuse a tree whose host programs are for another machine instead of rebuilding them. */
  rebuildHostPrograms?: boolean
  /** Run the tree's code (the host-program rebuild) even if another user owns the tree. */
  trustTree?: boolean
  output?: string
  cwd: string
  env: NodeJS.ProcessEnv
}

export interface PackHooks {
  /** Called once the tree is understood and the files are chosen. */
  onSelected?: (info: {
    tree: KernelTree
    files: number
    bytes: number
    skipped: Skipped[]
    output: string
    target?: TargetInfo
    hostPrograms?: HostProgramsInfo
  }) => void
  onProgress?: (p: ArchiveProgress) => void
  /** Called before pack runs code from the tree (make in a scratch copy), with what it runs. */
  onRunTree?: (info: { dirs: readonly string[]; compiler: string }) => void
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
  const archive =
    opts.fromKheaders === undefined
      ? undefined
      : await readKheadersArchive(opts.fromKheaders, { ...opts, readConfig: (f) => readConfig('', f).config! })
  const tree = archive?.tree ?? detectKernelTree(opts)
  if (tree.config === undefined) {
    throw new KernelTreeError(
      `Cannot pack ${tree.objtree}: it has no .config; pass --config FILE (a .config, or /proc/config.gz of the running kernel)`,
    )
  }
  const output = path.resolve(opts.cwd, opts.output ?? `kheaders-${tree.release}.img`)
  checkOutput(output, tree)
  const staleTempsRemoved = removeStaleTemps(output)

  const selection: Selection =
    archive === undefined ? selectFiles(tree, opts.profile) : { entries: archive.entries, skipped: [] }
  const target = kernelTarget(tree)
  const targetInfo: TargetInfo | undefined = target && {
    machine: target.machine,
    bits: target.bits,
    endian: target.endian,
    name: describeElf(target),
    from: target.from,
  }
  const rebuild =
    opts.profile === 'module-build' && target !== undefined
      ? fitHostPrograms(tree, selection, targetInfo!, opts, hooks)
      : undefined
  try {
    hooks.onSelected?.({
      tree,
      files: selection.entries.length,
      bytes: selection.entries.reduce((n, e) => n + e.size, 0),
      skipped: selection.skipped,
      output,
      target: targetInfo,
      hostPrograms: rebuild?.info,
    })
    const built = await buildArchive(selection.entries, {
      ...opts,
      epoch: tree.epoch,
      arch: tree.arch,
      onProgress: hooks.onProgress,
      signal: hooks.signal,
    })
    const config = { raw: tree.config, gz: configGz(tree.config) }
    const source = archive && { kind: 'kheaders-archive' as const, sha256: archive.sha256 }
    const manifest = buildManifest(tree, opts.profile, built, config, opts, {
      target: targetInfo,
      hostPrograms: rebuild?.info,
      source,
      layout: { order: LAYOUT_ORDER },
    })
    const image = await buildImage(
      { manifest: serializeManifest(manifest), config: config.gz, headers: built.txz },
      tree.epoch,
    )
    hooks.signal?.throwIfAborted()
    writeImage(output, image)
    return { output, tree, manifest, imageBytes: image.length, skipped: selection.skipped, staleTempsRemoved }
  } finally {
    // The rebuilt host programs are read from the scratch copy until the archive is built.
    rebuild?.cleanup()
  }
}

/**
 * Every ELF program packed must run on the kernel's machine. In a cross-built tree scripts/ holds
 * build-host programs: rebuild them for the target (or refuse with --no-rebuild); those module
 * builds never run and that were not rebuilt are left out, and named.
 */
function fitHostPrograms(
  tree: KernelTree,
  selection: Selection,
  target: TargetInfo,
  opts: PackOptions,
  hooks: PackHooks,
): (Rebuild & { info: HostProgramsInfo }) | undefined {
  const foreign = foreignBinaries(selection.entries, target)
  if (foreign.length === 0) return undefined
  const first = foreign[0]
  const others = foreign.length > 1 ? ` and ${foreign.length - 1} more` : ''
  if (opts.rebuildHostPrograms === false) {
    throw new HostProgramsError(
      `Cannot pack ${tree.objtree} for ${target.name}: ${first.entry.path}${others} ${foreign.length > 1 ? 'are' : 'is'} built for ${describeElf(first.elf)}, so "make M=" on the board would fail with "Exec format error"; drop --no-rebuild to rebuild them with the board's compiler`,
    )
  }
  // The one step that runs the tree's code: its owner must be the caller or root, or trusted.
  const dirs = (selection.within?.list() ?? [tree.objtree, tree.srctree]).filter((d) => d !== tree.sysroot)
  const files = selection.entries.flatMap((e) => (e.source === undefined ? [] : [e.source]))
  checkTreeOwner(dirs, files, opts.trustTree === true)
  const rebuild = rebuildHostPrograms(
    tree,
    selection.entries,
    target,
    foreign.map((f) => f.entry.path),
    { crossCompile: opts.crossCompile, env: opts.env, onRun: (compiler) => hooks.onRunTree?.({ dirs, compiler }) },
  )
  const rebuilt: string[] = []
  const dropped: string[] = []
  for (const { entry, elf } of foreign) {
    const fresh = rebuild.programs.get(entry.path)
    if (fresh !== undefined) {
      entry.source = fresh
      entry.within = undefined // our own build output, in the scratch directory
      rebuilt.push(entry.path)
    } else if (NEEDED_BY_MODULE_BUILDS.includes(entry.path)) {
      rebuild.cleanup()
      throw new HostProgramsError(
        `Cannot pack ${tree.objtree} for ${target.name}: ${entry.path} is built for ${describeElf(elf)} and ${rebuild.compiler.prefix}gcc did not rebuild it; module builds on the board run it, so build it for the board or pass --profile headers`,
      )
    } else {
      dropped.push(entry.path)
      selection.skipped.push({
        path: entry.path,
        reason: `a program for ${describeElf(elf)}, not ${target.name}; module builds do not run it, so it is left out`,
      })
    }
  }
  if (dropped.length > 0) {
    const gone = new Set(dropped)
    selection.entries = selection.entries.filter((e) => !gone.has(e.path))
  }
  return { ...rebuild, info: { compiler: rebuild.compiler.version, prefix: rebuild.compiler.prefix, rebuilt, dropped } }
}

/** Fail before the long part: the target's directory must exist and the image must not land in the tree. */
function checkOutput(output: string, tree: KernelTree): void {
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
  for (const root of new Set([tree.objtree, tree.srctree])) {
    if (real.startsWith(root + path.sep)) {
      throw new UsageError(
        `Cannot write image ${output}: it is inside the kernel tree ${root} and would be packed next time; pass -o a path outside it`,
      )
    }
  }
}
