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
import { writeSync, closeSync, stat } from 'node:fs'
import { constants } from 'node:os'
import path from 'node:path'
import { ExitCode, ImageFormatError, IoError, KheadersError, MountpointError, UsageError, reason } from '../errors'
import { readImage } from '../image/read'
import type { Logger } from '../log'
import { fsPath } from '../os-path'
import { version } from '../version'
import { unitOf } from '../procfs'
import { formatReady, type ReadyMessage } from '../protocol/readiness'
import { removeState, writeState } from '../protocol/state'
import { createBuildLinks, MODULES_DIR, removeBuildLinks, type BuildLinks } from './build-links'
import { mountFuse, threadCount, type Mounted } from './fuse'
import { loadBinding } from '../native/binding'
import { createDispatch } from './ops'
import { checkFuse, checkMountpoint } from './preflight'
import { collectAfterLoad } from './reclaim'
import { buildTree, completeView, FLAT_FILES, VIEW_DIR, type Tree } from './tree'

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

export async function runDaemon(opts: DaemonOptions): Promise<number> {
  const log = opts.log.child({ component: 'daemon', mountpoint: opts.mountpoint })
  let readyFd = opts.readyFd
  const tell = (msg: ReadyMessage): void => {
    if (readyFd === undefined) return
    try {
      writeSync(readyFd, formatReady(msg))
      closeSync(readyFd)
    } catch {
      // the parent is gone; nothing to tell
    }
    readyFd = undefined
  }
  const counts: Record<string, number> = {}
  const started = await start(opts, log, counts).catch((e: unknown) => {
    const err = KheadersError.is(e) ? e : undefined
    log.error({ err: err ? err.message : (e as Error).stack }, 'failed to start')
    tell({
      ready: false,
      message: err ? err.message : `internal error: ${(e as Error).message}`,
      exitCode: err ? err.exitCode : ExitCode.failure,
    })
    throw e
  })
  tell({ ready: true, pid: process.pid })
  return serve(started, log, counts, opts.env)
}

interface Started {
  mounted: Mounted
  tree: Tree
  links: (BuildLinks & { view: string }) | undefined
  mountpoint: string
  startedAt: number
}

/** Everything up to ready; on failure, nothing is left behind (no mount, no links, no state). */
async function start(opts: DaemonOptions, log: Logger, counts: Record<string, number>): Promise<Started> {
  const t0 = performance.now()
  checkFuse(opts.env)
  loadBinding()
  checkMountpoint(opts.mountpoint, { nonempty: opts.nonempty })
  const { tree, image: m } = load(opts, log)
  const loadMs = performance.now() - t0
  log.info(
    {
      image: opts.image,
      release: m.release,
      profile: m.profile,
      imageBytes: m.bytes,
      loadMs: round(loadMs),
      view: opts.view,
      xzBlocks: tree.archive?.index.blocks.length,
      cacheBytes: tree.archive?.stats().boundBytes ?? 0,
    },
    'image loaded',
  )
  const t1 = performance.now()
  let mounted: Mounted
  try {
    mounted = mountFuse(opts.mountpoint, (replies, name) => createDispatch(tree, replies, name, log, counts), {
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
  let links: Started['links']
  try {
    // Proof of readiness: a lookup through the kernel. Async, so this thread stays free to answer it.
    await new Promise<void>((resolve, reject) =>
      stat(fsPath(path.join(opts.mountpoint, FLAT_FILES[2])), (e) => (e ? reject(e) : resolve())),
    )
    const mountMs = performance.now() - t1
    if (opts.linkBuild) {
      const view = path.join(opts.mountpoint, VIEW_DIR)
      try {
        links = { ...createBuildLinks(m.release, view), view }
      } catch (e) {
        throw new IoError(
          `Cannot link ${MODULES_DIR}/${m.release}/build to ${view}: ${reason(e)}; run as root or mount without -o link_build`,
          e,
        )
      }
      for (const k of links.kept) log.warn({ path: k.path, reason: k.reason }, `left ${k.path} alone: ${k.reason}`)
      if (links.links.length)
        log.info({ links: links.links, target: view }, 'linked the kernel build directory to the view')
    }
    const startedAt = Date.now()
    const unit = opts.env.INVOCATION_ID ? unitOf(process.pid) : undefined // only services have a PIDFile
    writeState(opts.env, {
      pid: process.pid,
      mountpoint: opts.mountpoint,
      image: path.resolve(opts.image),
      release: m.release,
      profile: m.profile,
      imageBytes: m.bytes,
      started: startedAt,
      logFile: opts.logFile,
      version: version(),
      ...(links ? { links: { links: links.links, createdDir: links.createdDir, view: links.view } } : {}),
      ...(unit ? { unit } : {}),
    })
    log.info(
      {
        imageBytes: m.bytes,
        servedBytes: tree.bytes,
        loadMs: round(loadMs),
        mountMs: round(mountMs),
        totalMs: round(performance.now() - t0),
      },
      'mounted',
    )
    return { mounted, tree, links, mountpoint: opts.mountpoint, startedAt }
  } catch (e) {
    if (links) removeBuildLinks(links, links.view)
    mounted.detach()
    // Nothing can have a file open yet but the readiness stat: the session ends at once.
    await Promise.race([mounted.ended, new Promise((r) => setTimeout(r, 5000).unref())])
    throw e
  }
}

/** From ready until the kernel ends the session. */
async function serve(s: Started, log: Logger, counts: Record<string, number>, env: NodeJS.ProcessEnv): Promise<number> {
  // Off the path to ready: the view's table (unless a lookup needed it already), then the load's
  // garbage (JSON text, file records) goes, not whenever V8 next needs room, so that the idle
  // daemon holds the image, the tree and little else (serve/reclaim.ts).
  setImmediate(() => completeView(s.tree))
  setTimeout(collectAfterLoad, COLLECT_AFTER_READY_MS).unref()
  let stopping = false
  const onSignal = (sig: NodeJS.Signals): void => {
    if (stopping) return
    stopping = true
    log.info({ signal: sig }, 'detaching (lazy); exiting when no file is open')
    const r = s.mounted.detach()
    // EINVAL: not mounted any more (someone unmounted it first): the session ends by itself.
    if (r.errno !== 0 && r.errno !== constants.errno.EINVAL)
      log.error({ err: r.message, errno: r.errno }, 'lazy unmount failed')
  }
  const stats = (): void =>
    log.info(
      {
        ops: counts,
        cache: s.tree.archive?.stats(),
        requests: s.mounted.stats(),
        threads: threadCount(),
        rssBytes: process.memoryUsage().rss,
        uptimeS: round((Date.now() - s.startedAt) / 1000),
      },
      'stats',
    )
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)
  process.on('SIGHUP', onSignal)
  // Like dd: SIGUSR1 logs what the daemon has done (operations, cache, memory) and goes on.
  process.on('SIGUSR1', stats)
  await s.mounted.ended
  if (s.links) removeBuildLinks(s.links, s.links.view)
  removeState(env, s.mountpoint, process.pid)
  log.info(
    { uptimeS: round((Date.now() - s.startedAt) / 1000), rssBytes: process.memoryUsage().rss },
    'unmounted; exiting',
  )
  return 0
}

/**
 * Read, check and index the image. Only the tree and the manifest's head outlive this call: the
 * file table (thousands of records) is garbage once the tree holds it in compact form.
 */
function load(
  opts: DaemonOptions,
  log: Logger,
): { tree: Tree; image: { release: string; profile: string; bytes: number } } {
  const image = readImage(opts.image, { trustedOnly: process.getuid?.() === 0 && !opts.allowUntrusted })
  const { release, profile } = image.manifest
  if (release !== opts.release && !opts.force) {
    throw new ImageFormatError(
      `Cannot load image ${opts.image}: it is for kernel ${release}, not ${opts.release}; use the image built with this kernel, or pass --force to load it anyway`,
    )
  }
  // A cache that cannot hold one block would decode a whole block for every read.
  const block = image.manifest.payloads['kheaders.tar.xz'].blockSize
  let cacheBytes = opts.cacheBytes ?? opts.defaultCacheBytes
  if (opts.view && cacheBytes < block) {
    const mib = Math.ceil(block / 2 ** 20)
    if (opts.cacheBytes !== undefined) {
      throw new UsageError(
        `Cannot use -o cache_mb=${opts.cacheBytes / 2 ** 20} with image ${opts.image}: its xz blocks are ${mib} MiB and the cache must hold one; give cache_mb=${mib} or more`,
      )
    }
    log.warn({ cacheBytes, blockSize: block }, `the default cache is smaller than one xz block: raised to ${mib} MiB`)
    cacheBytes = mib * 2 ** 20
  }
  // The manifest's file table is checked by now; only the table built from it waits for ready.
  const tree = buildTree(image, { view: opts.view, cacheBytes, deferView: true })
  return { tree, image: { release, profile, bytes: image.bytes } }
}

/**
 * The load leaves V8 marking its heap incrementally; a collection forced before that marking is
 * over keeps what it already found live. Measured: collected at once, the idle RssAnon was 17.2 or
 * 18.7 MB from one mount to the next (median 18.6); 300 ms later 17.1-17.6 MB in 7 mounts of 7,
 * 500 ms later in 6 of 7.
 */
const COLLECT_AFTER_READY_MS = 500

function round(n: number): number {
  return Math.round(n * 10) / 10
}
