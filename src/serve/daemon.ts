// The daemon (`kheadersfs mount -f`, or the detached child of `kheadersfs mount`): read and verify the
// image once, keep it in memory, mount, tell the parent it is ready, serve until the mount goes.
//
// Lifecycle, decided rather than defaulted (docs/design.md):
// - ready is signalled only after a stat through the mount succeeds, so the parent returns when the
//   files are readable;
// - the kernel ends the session when the mount is gone and no file of it is open (an external
//   umount, fusermount -u, umount -l once its readers closed): the daemon exits 0 and its memory is freed;
// - SIGTERM/SIGINT detach lazily (like `umount -l`) and exit 0 once no file is open any more, which
//   is what `systemctl stop` needs and never tears a file away from a reader;
// - a failure before ready leaves no mount behind and reaches the parent as one line.
import { writeSync, closeSync, stat, statSync } from 'node:fs'
import { constants } from 'node:os'
import path from 'node:path'
import { ExitCode, ImageFormatError, IoError, KheadersError, MountpointError, UsageError, reason } from '../errors'
import { bytes } from '../format-bytes'
import { readImage } from '../image/read'
import type { Logger } from '../log'
import { fsPath } from '../os-path'
import { version } from '../version'
import { unitOf } from '../procfs'
import { formatReady, type ReadyMessage, type StepMessage } from '../protocol/readiness'
import { removeState, writeState } from '../protocol/state'
import { createBuildLinks, MODULES_DIR, removeBuildLinks, type BuildLinks } from './build-links'
import { mountFuse, threadCount, type Mounted } from './fuse'
import { loadBinding } from '../native/binding'
import { createDispatch } from './ops'
import { checkFuse, checkMountpoint } from './preflight'
import { collectAfterLoad } from './reclaim'
import { buildTree, FLAT_FILES, VIEW_DIR, type Tree } from './tree'

export interface DaemonOptions {
  mountpoint: string
  image: string
  /** The release the image must be for (uname -r, or --release). */
  release: string
  force: boolean
  /** Load an image that is not root-owned or that others can write, even as root. */
  allowUntrusted: boolean
  nonempty: boolean
  /** Serve the archive's tree as kheaders/, with a decoded-block cache of `cacheBytes`. */
  view: boolean
  /** The cache bound asked for (-o cache_mb), or undefined for the default (raised to one block if need be). */
  cacheBytes: number | undefined
  defaultCacheBytes: number
  /** Point /lib/modules/<release>/build and source at the view while mounted. */
  linkBuild: boolean
  /** Descriptor of the readiness pipe from a parent `kheadersfs mount`. */
  readyFd?: number
  logFile: string | null
  env: NodeJS.ProcessEnv
  log: Logger
}

/** What a mount holds from ready until the kernel ends it: made by start(), undone by stop(). */
interface DaemonSession {
  readonly log: Logger
  readonly env: NodeJS.ProcessEnv
  readonly mountpoint: string
  readonly mounted: Mounted
  readonly tree: Tree
  /** The build links this mount owns (-o link_build), with the view they point at. */
  readonly links: OwnedLinks | undefined
  /** Calls per operation, counted by the dispatcher (for the stats). */
  readonly counts: Record<string, number>
  readonly startedAt: number
}

type OwnedLinks = BuildLinks & { view: string }

/** The manifest's head: all of the image the daemon needs once the tree holds the rest. */
interface LoadedImage {
  release: string
  profile: string
  bytes: number
}

export async function runDaemon(opts: DaemonOptions): Promise<number> {
  const log = opts.log.child({ component: 'daemon', mountpoint: opts.mountpoint })
  if (opts.readyFd !== undefined) logStrays(log)
  const ready = deferred()
  let session: DaemonSession
  try {
    session = await start(opts, log, ready.promise)
  } catch (e) {
    reportFailure(opts.readyFd, log, e)
    // A parent `kheadersfs mount` prints the error; the log has it: no second, unprefixed line here.
    if (opts.readyFd !== undefined) return KheadersError.is(e) ? e.exitCode : ExitCode.failure
    throw e
  }
  tellParent(opts.readyFd, { ready: true, pid: process.pid })
  ready.resolve() // the tree's idle time: it builds its view now, off the path to ready
  await serve(session)
  stop(session)
  return 0
}

/**
 * Everything up to ready: checks, the image in memory, the mount, proof that it answers, the build
 * links and the state file. On failure nothing is left behind (no mount, no links, no state).
 * `ready` resolves once the parent was told; the tree builds its view after it, off the path to ready.
 */
async function start(opts: DaemonOptions, log: Logger, ready: Promise<void>): Promise<DaemonSession> {
  const t0 = performance.now()
  preflight(opts)
  tellStep(opts.readyFd, `loading ${opts.image} (${bytes(fileSize(opts.image))})`)
  const { tree, image } = loadImage(opts, log, ready, t0)
  const t1 = performance.now()
  const counts: Record<string, number> = {}
  tellStep(opts.readyFd, `mounting at ${opts.mountpoint}`)
  const mounted = mount(opts, tree, log, counts)
  // Once the view's table is whole the binding answers lookups, and reads of cached blocks, itself.
  tree.whenWhole((table) => {
    mounted.answerFrom(table)
    const archive = tree.archive
    if (archive !== undefined) archive.share(mounted.shareBlocks(table.offset, tree.viewFrom, archive.blockStarts()))
  })
  try {
    await readable(opts.mountpoint)
    const mountMs = performance.now() - t1
    if (opts.linkBuild) tellStep(opts.readyFd, `linking /lib/modules/${image.release}/build to the view`)
    const { links, startedAt } = linkAndRecord(opts, image, log)
    log.info(
      {
        imageBytes: image.bytes,
        servedBytes: tree.bytes,
        loadMs: round(t1 - t0),
        mountMs: round(mountMs),
        totalMs: round(performance.now() - t0),
      },
      'mounted',
    )
    return { log, env: opts.env, mountpoint: opts.mountpoint, mounted, tree, links, counts, startedAt }
  } catch (e) {
    await unmountAtOnce(mounted)
    throw e
  }
}

/** The image file's size for the step line; 0 when it cannot be read (loading it then says why). */
function fileSize(file: string): number {
  try {
    return statSync(file).size
  } catch {
    return 0
  }
}

/** Each common failure gets its own one-line message, before anything is read or mounted. */
function preflight(opts: DaemonOptions): void {
  checkFuse(opts.env)
  loadBinding()
  checkMountpoint(opts.mountpoint, { nonempty: opts.nonempty })
}

/**
 * Read, check and index the image. Only the tree and the manifest's head outlive this call: the
 * file table (thousands of records) is garbage once the tree holds it in compact form.
 */
function loadImage(
  opts: DaemonOptions,
  log: Logger,
  ready: Promise<void>,
  t0: number,
): { tree: Tree; image: LoadedImage } {
  const image = readImage(opts.image, { trustedOnly: process.getuid?.() === 0 && !opts.allowUntrusted })
  const { release, profile } = image.manifest
  if (release !== opts.release && !opts.force) {
    throw new ImageFormatError(
      `Cannot load image ${opts.image}: it is for kernel ${release}, not ${opts.release}; use the image built with this kernel, or pass --force to load it anyway`,
    )
  }
  const cacheBytes = cacheBound(opts, image.manifest.payloads['kheaders.tar.xz'].blockSize, log)
  // The manifest's file table is checked by now; only the table built from it waits for ready.
  const tree = buildTree(image, { view: opts.view, cacheBytes, idleFrom: ready })
  const loaded = { release, profile, bytes: image.bytes }
  logLoaded(opts, log, tree, loaded, performance.now() - t0)
  return { tree, image: loaded }
}

function logLoaded(opts: DaemonOptions, log: Logger, tree: Tree, image: LoadedImage, loadMs: number): void {
  log.info(
    {
      image: opts.image,
      release: image.release,
      profile: image.profile,
      imageBytes: image.bytes,
      loadMs: round(loadMs),
      view: opts.view,
      xzBlocks: tree.archive?.index.blocks.length,
      cacheBytes: tree.archive?.stats().boundBytes ?? 0,
    },
    'image loaded',
  )
}

/** The decoded-block cache's bound: a cache that cannot hold one block would decode a whole block for every read. */
function cacheBound(opts: DaemonOptions, block: number, log: Logger): number {
  const asked = opts.cacheBytes ?? opts.defaultCacheBytes
  if (!opts.view || asked >= block) return asked
  const mib = Math.ceil(block / 2 ** 20)
  if (opts.cacheBytes !== undefined) {
    throw new UsageError(
      `Cannot use -o cache_mb=${opts.cacheBytes / 2 ** 20} with image ${opts.image}: its xz blocks are ${mib} MiB and the cache must hold one; give cache_mb=${mib} or more`,
    )
  }
  log.warn(
    { cacheBytes: asked, blockSize: block },
    `the default cache is smaller than one xz block: raised to ${mib} MiB`,
  )
  return mib * 2 ** 20
}

/** Mount `tree`, its requests counted in `counts`; libfuse's refusal becomes a one-line error. */
function mount(opts: DaemonOptions, tree: Tree, log: Logger, counts: Record<string, number>): Mounted {
  try {
    return mountFuse(opts.mountpoint, (replies, name) => createDispatch(tree, replies, name, log, counts), {
      allowOther: process.getuid?.() === 0,
      nonempty: opts.nonempty,
      mtime: tree.mtime.getTime() / 1000,
    })
  } catch (e) {
    if (KheadersError.is(e)) throw e
    throw new MountpointError(
      `Cannot mount at ${opts.mountpoint}: libfuse refused (${(e as Error).message}); see ${opts.logFile ?? 'the messages above'}`,
    )
  }
}

/** Proof of readiness: a lookup through the kernel. Async, so this thread stays free to answer it. */
function readable(mountpoint: string): Promise<void> {
  return new Promise<void>((resolve, reject) =>
    stat(fsPath(path.join(mountpoint, FLAT_FILES[2])), (e) => (e ? reject(e) : resolve())),
  )
}

/** The build links (-o link_build), then the state file that names them; a failure leaves neither. */
function linkAndRecord(
  opts: DaemonOptions,
  image: LoadedImage,
  log: Logger,
): { links: OwnedLinks | undefined; startedAt: number } {
  const links = opts.linkBuild ? linkBuild(image.release, path.join(opts.mountpoint, VIEW_DIR), log) : undefined
  const startedAt = Date.now()
  try {
    recordState(opts, image, links, startedAt)
  } catch (e) {
    if (links) removeBuildLinks(links, links.view)
    throw e
  }
  return { links, startedAt }
}

function linkBuild(release: string, view: string, log: Logger): OwnedLinks {
  const links = createLinks(release, view)
  for (const k of links.kept) log.warn({ path: k.path, reason: k.reason }, `left ${k.path} alone: ${k.reason}`)
  if (links.links.length)
    log.info({ links: links.links, target: view }, 'linked the kernel build directory to the view')
  return { ...links, view }
}

function createLinks(release: string, view: string): BuildLinks {
  try {
    return createBuildLinks(release, view)
  } catch (e) {
    throw new IoError(
      `Cannot link ${MODULES_DIR}/${release}/build to ${view}: ${reason(e)}; run as root or mount without -o link_build`,
      e,
    )
  }
}

/** The state file `kheadersfs status`, `umount` and the next `mount` read. */
function recordState(opts: DaemonOptions, image: LoadedImage, links: OwnedLinks | undefined, started: number): void {
  const unit = opts.env.INVOCATION_ID ? unitOf(process.pid) : undefined // only services have a PIDFile
  writeState(opts.env, {
    pid: process.pid,
    mountpoint: opts.mountpoint,
    image: path.resolve(opts.image),
    release: image.release,
    profile: image.profile,
    imageBytes: image.bytes,
    started,
    logFile: opts.logFile,
    version: version(),
    ...(links ? { links: { links: links.links, createdDir: links.createdDir, view: links.view } } : {}),
    ...(unit ? { unit } : {}),
  })
}

/** Undo the mount before ready: nothing can have a file open but the readiness stat, so the session ends at once. */
async function unmountAtOnce(mounted: Mounted): Promise<void> {
  mounted.detach()
  await Promise.race([mounted.ended, new Promise((r) => setTimeout(r, 5000).unref())])
}

/**
 * A detached daemon's stderr is a pipe nobody reads after ready (mounts/spawn.ts) or the journal:
 * Node's warnings (--no-warnings) and an uncaught exception become records of its log instead of bare
 * text.
 */
function logStrays(log: Logger): void {
  process.on('warning', (w) => log.warn({ warning: w.name, code: (w as { code?: string }).code }, w.message))
  process.on('uncaughtException', (e) => {
    // Something wrote to process.stderr after ready (NODE_DEBUG, a library): the pipe is closed, the
    // text lost, and that is no reason to end the mount. The daemon has no other pipe or socket.
    const err = e as NodeJS.ErrnoException
    if (err.code === 'EPIPE' && err.syscall === 'write') return
    log.fatal({ err: e }, 'uncaught exception; exiting')
    process.exit(ExitCode.failure)
  })
}

/** Log why the start failed and tell the parent, with the exit code it is to give. */
function reportFailure(readyFd: number | undefined, log: Logger, e: unknown): void {
  const err = KheadersError.is(e) ? e : undefined
  log.error({ err: err ? err.message : (e as Error).stack }, 'failed to start')
  tellParent(readyFd, {
    ready: false,
    message: err ? err.message : `internal error: ${(e as Error).message}`,
    exitCode: err ? err.exitCode : ExitCode.failure,
  })
}

/** The readiness line to a parent `kheadersfs mount`, then the pipe closed; nothing without a parent. */
function tellParent(readyFd: number | undefined, msg: ReadyMessage): void {
  if (readyFd === undefined) return
  try {
    writeSync(readyFd, formatReady(msg))
    closeSync(readyFd)
  } catch {
    // the parent is gone; nothing to tell
  }
}

/** A step on the way to ready, for the parent to show when the mount is slow (mounts/mount-progress.ts). */
function tellStep(readyFd: number | undefined, step: StepMessage['step']): void {
  if (readyFd === undefined) return
  try {
    writeSync(readyFd, formatReady({ step }))
  } catch {
    // the parent is gone; it learns nothing more
  }
}

/** From ready until the kernel ends the session (after an unmount, once no file is open). */
async function serve(s: DaemonSession): Promise<void> {
  // Once the tree has built its view (the first idle turn after ready), the load's garbage (JSON
  // text, file records) goes, not whenever V8 next needs room: the idle daemon holds the image, the
  // tree and little else (serve/reclaim.ts).
  setTimeout(collectAfterLoad, COLLECT_AFTER_READY_MS).unref()
  handleSignals(s)
  await s.mounted.ended
}

/** Remove what the mount left outside this process: its build links and its state file. */
function stop(s: DaemonSession): void {
  if (s.links) removeBuildLinks(s.links, s.links.view)
  removeState(s.env, s.mountpoint, process.pid)
  s.log.info({ uptimeS: uptime(s), rssBytes: process.memoryUsage().rss }, 'unmounted; exiting')
}

/**
 * SIGTERM/SIGINT/SIGHUP detach lazily (umount -l), once; the session then ends when no file is open.
 * Like dd's, SIGUSR1 logs what the daemon has done (operations, cache, memory) and goes on.
 */
function handleSignals(s: DaemonSession): void {
  let detached = false
  const detach = (sig: NodeJS.Signals): void => {
    if (detached) return
    detached = true
    s.log.info({ signal: sig }, 'detaching (lazy); exiting when no file is open')
    const r = s.mounted.detach()
    // EINVAL: not mounted any more (someone unmounted it first): the session ends by itself.
    if (r.errno !== 0 && r.errno !== constants.errno.EINVAL)
      s.log.error({ err: r.message, errno: r.errno }, 'lazy unmount failed')
  }
  process.on('SIGTERM', detach)
  process.on('SIGINT', detach)
  process.on('SIGHUP', detach)
  process.on('SIGUSR1', () => logStats(s))
}

/** Requests served by kind: the dispatcher's counts plus what the binding answered from the table. */
function opsServed(s: DaemonSession): Record<string, number> {
  const ops = { ...s.counts }
  for (const [op, n] of Object.entries(s.mounted.stats().answered)) if (n > 0) ops[op] = (ops[op] ?? 0) + n
  return ops
}

function logStats(s: DaemonSession): void {
  s.log.info(
    {
      ops: opsServed(s),
      cache: s.tree.archive?.stats(),
      requests: s.mounted.stats(),
      threads: threadCount(),
      rssBytes: process.memoryUsage().rss,
      uptimeS: uptime(s),
    },
    'stats',
  )
}

/** A collection forced while V8 still marks the load's heap keeps what it found live (docs/design.md, "Memory"). */
const COLLECT_AFTER_READY_MS = 500

/** A promise and its resolve, apart (Promise.withResolvers needs Node 22). */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = (): void => undefined
  const promise = new Promise<void>((r) => (resolve = r))
  return { promise, resolve }
}

function uptime(s: DaemonSession): number {
  return round((Date.now() - s.startedAt) / 1000)
}

function round(n: number): number {
  return Math.round(n * 10) / 10
}
