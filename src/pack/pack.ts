// The packing pipeline: input (a kernel tree or the kernel's own archive) → entries (selected, host
// programs fit to the target) → kheaders.tar.xz + config.gz + manifest → image file.
import type { HostProgramsInfo, Manifest, Profile, TargetInfo } from '../image/format'
import { serializeManifest } from '../image/manifest'
import { buildImage } from '../image/write'
import { LAYOUT_ORDER } from './build-order'
import { configGz } from './config'
import type { Selection, Skipped } from './entries'
import { fitHostPrograms, type FitOptions, type Fitted } from './fit-host-programs'
import { sha256 } from '../image/format'
import { buildHeadersTxz, type Archive, type ArchivePhase } from './headers-txz'
import {
  describeInput,
  inputRoots,
  inputTarget,
  readInput,
  selectEntries,
  type InputOptions,
  type PackInput,
} from './input'
import type { Kernel } from './kernel'
import { buildManifest } from './manifest'
import { imageFile, type ImageSink } from './output'
import { targetInfo } from './target'
import type { XzOptions } from './xz'

export interface PackOptions extends InputOptions, Omit<FitOptions, 'onRunTree'>, XzOptions {
  profile: Profile
  output?: string
  /** What the image becomes (default: the image file at `output`); an image package, for one. */
  sink?: ImageSink
  cwd: string
}

/** What pack is about to do, once the input is understood and the files are chosen. */
export interface Selected {
  kernel: Kernel
  input: ReturnType<typeof describeInput>
  files: number
  bytes: number
  skipped: Skipped[]
  output: string
  target?: TargetInfo
  hostPrograms?: HostProgramsInfo
}

/**
 * pack's steps in order: reading the tree and choosing its files, rebuilding host programs (cross-built
 * trees only), the archive's read, tar and xz, then writing the image (or building and writing the
 * package, with --deb).
 */
export type PackPhase = 'select' | 'rebuild' | ArchivePhase | 'write' | 'deb'

/** Progress of one phase in bytes; `total` 0 for the phases that are not measured (select, rebuild). */
export interface PhaseProgress {
  phase: PackPhase
  done: number
  total: number
}

export interface PackHooks {
  onSelected?: (info: Selected) => void
  onProgress?: (p: PhaseProgress) => void
  onRunTree?: FitOptions['onRunTree']
  signal?: AbortSignal
}

export interface PackResult {
  output: string
  manifest: Manifest
  imageBytes: number
  imageSha256: string
  /** Bytes of the file written at `output` (the image, or the package holding it). */
  outputBytes: number
  skipped: Skipped[]
  staleTempsRemoved: string[]
}

export async function packImage(opts: PackOptions, hooks: PackHooks = {}): Promise<PackResult> {
  hooks.onProgress?.({ phase: 'select', done: 0, total: 0 })
  const input = await readInput(opts)
  const found = inputTarget(input)
  const target = found && targetInfo(found)
  const sink = opts.sink ?? imageFile(opts.output)
  const { output, staleTempsRemoved } = sink.prepare({ ...input.kernel, target }, opts.cwd, inputRoots(input))
  const { selection, rebuild } = await chooseEntries(input, opts, hooks, target)
  try {
    hooks.onSelected?.(selected(input, selection, output, target, rebuild?.info))
    const headers = await buildHeadersTxz(selection.entries, {
      ...opts,
      epoch: input.kernel.epoch,
      arch: input.kernel.arch,
      onProgress: hooks.onProgress,
      signal: hooks.signal,
    })
    const config = { raw: input.kernel.config, gz: configGz(input.kernel.config) }
    const manifest = imageManifest(input, opts, headers, config, { target, hostPrograms: rebuild?.info })
    const image = await buildImage(
      { manifest: serializeManifest(manifest), config: config.gz, headers: headers.txz },
      input.kernel.epoch,
    )
    hooks.signal?.throwIfAborted()
    const phase = sink.phase ?? 'write'
    hooks.onProgress?.({ phase, done: 0, total: image.length })
    const outputBytes = await sink.write(output, image, manifest, hooks.signal)
    hooks.onProgress?.({ phase, done: image.length, total: image.length })
    return {
      output,
      manifest,
      imageBytes: image.length,
      imageSha256: sha256(image),
      outputBytes,
      skipped: selection.skipped,
      staleTempsRemoved,
    }
  } finally {
    // The rebuilt host programs are read from the scratch copy until the archive is built.
    rebuild?.cleanup()
  }
}

/** The input's entries for the profile, and for a module-build tree, its programs fit to the target. */
async function chooseEntries(
  input: PackInput,
  opts: PackOptions,
  hooks: PackHooks,
  target: TargetInfo | undefined,
): Promise<Fitted> {
  const selection = await selectEntries(input, opts.profile, hooks.signal)
  if (input.kind !== 'tree' || opts.profile !== 'module-build' || target === undefined) return { selection }
  return fitHostPrograms(
    input.tree,
    selection,
    target,
    {
      ...opts,
      onRunTree: (r) => {
        hooks.onProgress?.({ phase: 'rebuild', done: 0, total: 0 })
        hooks.onRunTree?.(r)
      },
    },
    hooks.signal,
  )
}

function selected(
  input: PackInput,
  selection: Selection,
  output: string,
  target: TargetInfo | undefined,
  hostPrograms: HostProgramsInfo | undefined,
): Selected {
  return {
    kernel: input.kernel,
    input: describeInput(input),
    files: selection.entries.length,
    bytes: selection.entries.reduce((n, e) => n + e.size, 0),
    skipped: selection.skipped,
    output,
    target,
    hostPrograms,
  }
}

/** The manifest: the kernel, the payloads, and what the image was packed from and how. */
function imageManifest(
  input: PackInput,
  opts: PackOptions,
  headers: Archive,
  config: { raw: Buffer; gz: Buffer },
  fitted: Pick<Manifest, 'target' | 'hostPrograms'>,
): Manifest {
  return buildManifest(input.kernel, opts.profile, headers, config, opts, {
    ...fitted,
    source: input.kind === 'kheaders-archive' ? { kind: 'kheaders-archive', sha256: input.archive.sha256 } : undefined,
    layout: { order: LAYOUT_ORDER },
  })
}
