// kheadersfs pack: kernel build tree → image file (build host side).
import os from 'node:os'
import { intOption, oneOf, parseCommand, sizeOption } from '../args'
import type { Command, Context } from '../context'
import { debSink } from '../deb/sink'
import { InterruptedError, UsageError } from '../errors'
import { bytes, count } from '../format-bytes'
import { PROFILES } from '../image/format'
import type { ImageSink } from '../pack/output'
import { DEFAULT_BLOCK_SIZE } from '../pack/xz'
import { packImage, type PackHooks, type PackOptions, type PackResult, type Selected } from '../pack/pack'
import { LINE_INTERVAL_MS, packProgress, progressMode, type PackProgress } from '../progress'

export const DEFAULTS = { preset: 6, blockSize: DEFAULT_BLOCK_SIZE, profile: 'module-build' } as const

export const pack: Command = {
  usage: `Usage: kheadersfs pack --kernel DIR [options]
       kheadersfs pack --from-kheaders FILE --config CONFIG [options]

Pack a kernel build tree into one reproducible image file: kheaders.tar.xz (headers, and for module
builds the Makefiles, scripts and Module.symvers), config.gz and a manifest.

  --kernel DIR        kernel build tree: an in-tree build, an O= build directory, or
                      /usr/src/linux-headers-<release> (Debian's split tree is followed)
  --from-kheaders F   pack the kernel's own headers archive instead of a tree: F is
                      /sys/kernel/kheaders.tar.xz (CONFIG_IKHEADERS, after "modprobe kheaders"),
                      /proc/kheaders.txz, or a kheaders.ko that embeds it (Android GKI). Needs
                      --config (e.g. /proc/config.gz); makes a headers-profile image with the
                      archive's exact file list
  --source DIR        kernel source tree, when it cannot be found from DIR
  --sysroot ROOT      the root file system the tree belongs to (a board's root, an SDK sysroot):
                      absolute paths the tree names (Debian's stub Makefile, absolute links) are
                      looked up inside ROOT, never on this machine
  --cross-compile P   CROSS_COMPILE prefix of the board's compiler (e.g. aarch64-linux-gnu-), used
                      when the tree's host programs (fixdep, modpost, genksyms) are for another
                      machine than the kernel: they are rebuilt for the board in a scratch copy.
                      Default: $CROSS_COMPILE, else the compiler the tree's .config records
  --no-rebuild        refuse such a tree instead of rebuilding its host programs
  --trust-tree        rebuild them even if another user owns the tree (the rebuild runs the
                      tree's Makefiles and fixdep: the trust of building it; see SECURITY in kheadersfs(1))
  --profile P         module-build (default): everything "make -C tree M=dir modules" needs;
                      headers: only *.h under include/ and arch/<arch>/include/, like CONFIG_IKHEADERS
  --config FILE       .config or config.gz to use instead of DIR/.config (e.g. /proc/config.gz)
  --release R         kernel release to record instead of UTS_RELEASE from the tree
  -o, --output IMAGE  where to write (default: ./kheaders-<release>.img; with --deb, a directory)
  --deb               write a Debian package that installs the image at
                      /usr/lib/kheadersfs/<release>.img (where "kheadersfs mount" finds it):
                      DIR/<name>-<release>_<version>_<arch>.deb, DIR from -o (default: .);
                      prints its path last. Depends on kheadersfs, Enhances linux-image-<release>
  --deb-name PREFIX   package name prefix (default kheadersfs-image: kheadersfs-image-<release>)
  --deb-version V     package version; pass your kernel package's (e.g. 6.1.76-1). Default:
                      0~<the image's time> (UTC YYYYMMDD.HHMMSS): it rises with each kernel build
                      and sorts below any kernel package version, so a vendor's package wins
  --deb-arch A        Debian architecture (default: the kernel's: arm64, armhf for arm, amd64 ...)
  --deb-maintainer M  "Name <email>" (default: $DEBFULLNAME <$DEBEMAIL> as dch reads them, else
                      the kheadersfs project)
  --xz-preset N       xz preset 1-9 (default ${DEFAULTS.preset})
  --block-size N      xz block size in bytes, K/M suffixes allowed (default 1M); fixed, so the
                      output does not depend on --threads and each block decodes on its own
  --threads N         compression threads, 0 = one per core (default 0); never changes the bytes
  --json              progress and result as JSON lines on stdout (events: selected, phase,
                      progress, phase-end, done or error); see kheadersfs(1)
  -h, --help          show this help

Progress goes to stderr: a bar on a terminal, else a plain line as each phase starts and every
${LINE_INTERVAL_MS / 1000} s (none with --log-level warn). Ctrl-C or SIGTERM stops it within a second and writes
nothing (exit 130, or 143 for SIGTERM).

The archive's mtimes are SOURCE_DATE_EPOCH if set, else the kernel's own build timestamp.
Example: kheadersfs pack --kernel /usr/src/linux-headers-$(uname -r) -o /lib/modules/$(uname -r)/kheaders.img
         kheadersfs pack --kernel linux-build --deb --deb-version 6.1.76-1 -o ../packages`,

  async run(args, ctx) {
    const flags = parseFlags(args)
    const opts = packOptions(flags, ctx)
    const started = process.hrtime.bigint()
    const mode = progressMode(ctx, flags.json === true)
    const progress = packProgress(ctx, mode)
    const hooks = packHooks(ctx, opts, progress)
    let result: PackResult
    try {
      result = await interruptible((signal) => packImage(opts, { ...hooks, signal })).finally(() => progress.stop())
    } catch (e) {
      progress.failed(e)
      throw e
    }
    if (mode === 'json') progress.done(result)
    else printPacked(ctx, result, started, opts.sink !== undefined)
    return 0
  },
}

const FLAGS = {
  kernel: { type: 'string' },
  source: { type: 'string' },
  sysroot: { type: 'string' },
  'from-kheaders': { type: 'string' },
  'cross-compile': { type: 'string' },
  'no-rebuild': { type: 'boolean' },
  'trust-tree': { type: 'boolean' },
  profile: { type: 'string' },
  config: { type: 'string' },
  release: { type: 'string' },
  output: { type: 'string', short: 'o' },
  'xz-preset': { type: 'string' },
  'block-size': { type: 'string' },
  threads: { type: 'string' },
  deb: { type: 'boolean' },
  'deb-name': { type: 'string' },
  'deb-version': { type: 'string' },
  'deb-arch': { type: 'string' },
  'deb-maintainer': { type: 'string' },
  json: { type: 'boolean' },
} as const

type Flags = ReturnType<typeof parseFlags>

function parseFlags(args: string[]) {
  const { values, positionals } = parseCommand('pack', args, FLAGS)
  if (positionals.length > 0)
    throw new UsageError(
      `kheadersfs pack: unexpected argument ${JSON.stringify(positionals[0])}; pass the tree with --kernel DIR`,
    )
  return values
}

/** The input (a tree, or the kernel's archive with what it allows) and every value, checked. */
function packOptions(values: Flags, ctx: Context): PackOptions {
  const fromKheaders = values['from-kheaders']
  if (fromKheaders !== undefined) checkArchiveFlags(values)
  else if (values.kernel === undefined) {
    throw new UsageError(
      'kheadersfs pack: --kernel DIR is required (e.g. --kernel /usr/src/linux-headers-$(uname -r)), or --from-kheaders FILE',
    )
  }
  for (const [flag, v] of Object.entries(values) as Array<[string, unknown]>) {
    if (v === '') throw new UsageError(`Cannot use --${flag} "": give it a value`)
  }
  return {
    kernel: values.kernel ?? '',
    fromKheaders,
    source: values.source,
    sysroot: values.sysroot,
    crossCompile: values['cross-compile'],
    rebuildHostPrograms: values['no-rebuild'] !== true,
    trustTree: values['trust-tree'] === true,
    profile:
      oneOf(values.profile, '--profile', PROFILES) ?? (fromKheaders !== undefined ? 'headers' : DEFAULTS.profile),
    config: values.config,
    release: values.release,
    output: values.output,
    sink: imageSink(values, ctx),
    preset: intOption(values['xz-preset'], '--xz-preset', 1, 9) ?? DEFAULTS.preset,
    blockSize: sizeOption(values['block-size'], '--block-size', 64 << 10, 1 << 30) ?? DEFAULTS.blockSize,
    threads: intOption(values.threads, '--threads', 0, 256) ?? 0,
    cwd: ctx.cwd,
    env: ctx.env,
  }
}

/** With --deb, the image goes into a package (src/deb/); the --deb-* options need it. */
function imageSink(values: Flags, ctx: Context): ImageSink | undefined {
  if (values.deb !== true) {
    const flag = (['deb-name', 'deb-version', 'deb-arch', 'deb-maintainer'] as const).find(
      (f) => values[f] !== undefined,
    )
    if (flag !== undefined) throw new UsageError(`kheadersfs pack: --${flag} is for image packages: add --deb`)
    return undefined
  }
  return debSink(
    {
      dir: values.output,
      name: values['deb-name'],
      version: values['deb-version'],
      arch: values['deb-arch'],
      maintainer: values['deb-maintainer'],
    },
    ctx.env,
    ctx.log,
  )
}

/** --from-kheaders packs an archive of headers: no tree flags, no other profile. */
function checkArchiveFlags(values: Flags): void {
  for (const flag of ['kernel', 'source', 'sysroot', 'cross-compile', 'no-rebuild', 'trust-tree'] as const) {
    if (values[flag] !== undefined)
      throw new UsageError(`kheadersfs pack: --from-kheaders packs an archive, not a tree: drop --${flag}`)
  }
  if (values.profile !== undefined && values.profile !== 'headers') {
    throw new UsageError(
      "kheadersfs pack: the kernel's archive holds headers only, so --from-kheaders makes a headers-profile image: drop --profile or pass --profile headers",
    )
  }
}

/**
 * Ctrl-C (or SIGTERM) aborts `work`: every phase stops at once (the process then ends by the signal: cli.ts) and
 * nothing is written (images are renamed into place whole, by a synchronous write no handler can split).
 */
async function interruptible<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const abort = new AbortController()
  const onSignal = (name: NodeJS.Signals): void =>
    abort.abort(new InterruptedError(`kheadersfs pack: interrupted by ${name}; no image was written`, name))
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  try {
    return await work(abort.signal)
  } catch (e) {
    if (abort.signal.aborted) throw abort.signal.reason
    throw e
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}

/** The log while packing: code run from the tree, the input understood; and progress. */
function packHooks(ctx: Context, opts: PackOptions, progress: PackProgress): PackHooks {
  return {
    onRunTree: (r) =>
      ctx.log.info(
        { dirs: r.dirs, compiler: r.compiler },
        `running the tree's Makefiles and scripts/basic/fixdep (in a scratch copy) to rebuild its host programs with ${r.compiler}`,
      ),
    onSelected: (s) => {
      logSelected(ctx, s, opts.threads || os.availableParallelism())
      progress.selected(s)
    },
    onProgress: (p) => progress.update(p),
  }
}

function logSelected(ctx: Context, s: Selected, threads: number): void {
  for (const k of s.skipped) ctx.log.warn({ path: k.path, reason: k.reason }, `skipped ${k.path}: ${k.reason}`)
  if (s.hostPrograms !== undefined) {
    ctx.log.info(
      { compiler: s.hostPrograms.compiler, rebuilt: s.hostPrograms.rebuilt },
      `rebuilt ${s.hostPrograms.rebuilt.length} host programs for the board with ${s.hostPrograms.prefix}gcc`,
    )
  }
  // The progress output says what is packed; the record, for --log-level debug.
  ctx.log.debug(
    {
      release: s.kernel.release,
      target: s.target?.name,
      arch: s.kernel.arch,
      layout: s.input.layout,
      objtree: s.input.objtree,
      srctree: s.input.srctree,
      files: s.files,
      epochSource: s.kernel.epochSource,
      threads,
    },
    'kernel tree',
  )
}

function printPacked(ctx: Context, result: PackResult, started: bigint, deb: boolean): void {
  const m = result.manifest
  const secs = Number(process.hrtime.bigint() - started) / 1e9
  for (const t of result.staleTempsRemoved) ctx.log.warn({ path: t }, 'removed a temp file left by an interrupted pack')
  const pkg = deb ? `; image package ${bytes(result.outputBytes)}` : ''
  ctx.stdout.write(
    `packed ${count(m.counts.files)} files (${bytes(m.bytes.raw)} raw, ${bytes(m.bytes.stripped)} stripped) for ${m.release} ${m.arch} ${m.profile} ` +
      `into ${result.output}: ${bytes(result.imageBytes)} (kheaders.tar.xz ${bytes(m.payloads['kheaders.tar.xz'].size)}, config.gz ${bytes(m.payloads['config.gz'].size)}${pkg}) in ${secs.toFixed(1)} s\n`,
  )
  // The package's name is made from the kernel: its path alone on the last line, for scripts.
  if (deb) ctx.stdout.write(`${result.output}\n`)
}
