// kheadersfs mount: like modprobe kheaders. Find the image for the running kernel, start the daemon,
// return once the files are readable.
import path from 'node:path'
import { parseCommand } from '../args'
import type { Command, Context } from '../context'
import { MountpointError, UsageError } from '../errors'
import { createLogger, logsAt } from '../log'
import { locateImage, runningRelease } from '../image/locate'
import { DEFAULT_CACHE_MB, parseMountOptions, type MountOpts } from '../mounts/mount-options'
import { makeMountpoint, undoOnFailure } from '../mounts/make-mountpoint'
import { findMount, health } from '../mounts/mountinfo'
import { unitOf } from '../procfs'
import { cleanStale } from '../mounts/stale'
import { READY_FD } from '../protocol/readiness'
import { mountProgress, STEPS_AFTER_MS } from '../mounts/mount-progress'
import { LOG_FD, startDetached, stderrIsJournal } from '../mounts/spawn'
import { logPath, readState } from '../protocol/state'
import { CLI_PATH } from '../version'

export const mount: Command = {
  usage: `Usage: kheadersfs mount [--image IMAGE] [--release R] [--force] [--allow-untrusted-image] [-m] [-o OPTS] [-f] MOUNTPOINT

Find the image for the running kernel, load it into memory and serve read-only:
  MOUNTPOINT/kheaders.txz      the header archive (also as kheaders.tar.xz)
  MOUNTPOINT/config.gz         the kernel configuration
  MOUNTPOINT/kheaders/         the archive's tree, nothing extracted: make -C MOUNTPOINT/kheaders M=$PWD
Returns once the files are readable. Unload with "umount MOUNTPOINT" or "kheadersfs umount".

  --image IMAGE     use this image instead of searching for one
  --release R       look for the image of release R instead of $(uname -r)
  --force           load an image built for another release (like modprobe -f)
  --allow-untrusted-image
                    as root, load an image that is not root-owned or that others can write
                    (refused by default: every module build would trust its headers)
  -m, --mkdir[=MODE]
                    create MOUNTPOINT and its parents if missing (mode 0755), and remove them
                    again if the mount fails; as root, not where another user could redirect it
                    (also -o X-mount.mkdir[=MODE], as for util-linux's mount)
  -o OPTS           comma-separated options: image=PATH, release=R, force, nonempty, X-mount.mkdir,
                    log_level=LEVEL, allow_untrusted_image, view=on|off (the kheaders/ directory, default on),
                    cache_mb=N (decoded-block cache, default ${DEFAULT_CACHE_MB}), link_build (point
                    /lib/modules/<release>/build and source at kheaders/ while mounted);
                    generic mount options (ro, nodev, nofail, ...) are accepted and ignored:
                    the mount is always ro,nosuid,nodev
  -f, --foreground  stay in the foreground and log to stderr (for systemd and debugging)

Images are searched in: --image, $KHEADERSFS_IMAGE, /lib/modules/$(uname -r)/kheaders.img,
/usr/lib/kheadersfs/$(uname -r).img.

mount(8) form (mount -t fuse.kheadersfs, /etc/fstab): kheadersfs SOURCE MOUNTPOINT [-o OPTS]
is "kheadersfs mount --image SOURCE -o OPTS MOUNTPOINT"; SOURCE "auto" (or "kheadersfs") searches.`,

  async run(args, ctx) {
    const req = parseRequest(args, ctx)
    if (findMount(req.mountpoint) !== undefined) {
      const done = await alreadyMounted(req.mountpoint, ctx)
      if (done !== undefined) return done
    }
    const image = path.resolve(
      ctx.cwd,
      locateImage({ explicit: req.explicit, release: req.release, env: ctx.env }).path,
    )
    // --mkdir: what it creates goes again if the mount fails.
    const made = req.options.mkdirMode === undefined ? [] : makeMountpoint(req.mountpoint, req.options.mkdirMode)
    if (req.foreground) {
      // Loaded here: the command that only starts a daemon needs neither FUSE nor xz.
      const { runDaemon } = require('../serve/daemon') as typeof import('../serve/daemon')
      const o = req.options
      const serving = runDaemon({
        mountpoint: req.mountpoint,
        image,
        release: req.release,
        force: req.force,
        allowUntrusted: req.allowUntrusted,
        nonempty: o.nonempty,
        view: o.view,
        cacheBytes: o.cacheMb === undefined ? undefined : o.cacheMb * 2 ** 20,
        defaultCacheBytes: DEFAULT_CACHE_MB * 2 ** 20,
        linkBuild: o.linkBuild,
        readyFd: req.readyFd,
        logFile: req.logFile ?? null,
        env: ctx.env,
        log:
          req.logFd !== undefined // spawned with its log file as this descriptor (mounts/spawn.ts)
            ? createLogger({ level: o.logLevel ?? ctx.logLevel, destination: req.logFd })
            : o.logLevel
              ? ctx.log.child({}, { level: o.logLevel })
              : ctx.log,
      })
      return undoOnFailure(made, serving)
    }
    const journal = stderrIsJournal(ctx.env)
    const logFile = journal ? null : logPath(ctx.env, req.mountpoint)
    const progress = mountProgress(ctx.stderr, {
      enabled: logsAt(ctx.logLevel, 'info'),
      afterMs: stepsAfter(ctx.env),
      journal,
    })
    try {
      await undoOnFailure(
        made,
        startDetached(daemonArgv(req, image, logFile, ctx.logLevel), {
          logFile,
          env: ctx.env,
          onStep: (s) => progress.step(s),
        }),
      )
    } catch (e) {
      progress.stop()
      throw e
    }
    progress.done(req.mountpoint)
    return 0
  },
}

/** $KHEADERSFS_STEPS_AFTER_MS (0: always say the steps), else STEPS_AFTER_MS. */
function stepsAfter(env: NodeJS.ProcessEnv): number {
  const v = env.KHEADERSFS_STEPS_AFTER_MS
  return v !== undefined && /^\d{1,7}$/.test(v) ? Number(v) : STEPS_AFTER_MS
}

/** What `kheadersfs mount` was asked, options and -o merged. */
interface MountRequest {
  mountpoint: string
  release: string
  force: boolean
  allowUntrusted: boolean
  explicit: string | undefined
  options: MountOpts
  foreground: boolean
  readyFd: number | undefined
  logFile: string | undefined
  logFd: number | undefined
}

function parseRequest(args: string[], ctx: Context): MountRequest {
  // --mkdir=MODE, as util-linux's mount --mkdir[=mode]: parseArgs has no optional values.
  const end = args.indexOf('--') < 0 ? args.length : args.indexOf('--')
  args = args.map((a, i) => (i < end && a.startsWith('--mkdir=') ? `-oX-mount.mkdir=${a.slice(8)}` : a))
  const { values, positionals } = parseCommand('mount', args, {
    image: { type: 'string' },
    release: { type: 'string' },
    force: { type: 'boolean' },
    'allow-untrusted-image': { type: 'boolean' },
    options: { type: 'string', short: 'o', multiple: true },
    foreground: { type: 'boolean', short: 'f' },
    mkdir: { type: 'boolean', short: 'm' },
    'ready-fd': { type: 'string' },
    'log-file': { type: 'string' },
    'log-fd': { type: 'string' },
  })
  if (positionals.length !== 1)
    throw new UsageError('kheadersfs mount: give exactly one MOUNTPOINT; see "kheadersfs mount --help"')
  for (const flag of ['image', 'release'] as const) {
    if (values[flag] === '') throw new UsageError(`Cannot use --${flag} "": give it a value`)
  }
  const o = parseMountOptions([...(values.mkdir === true ? ['X-mount.mkdir'] : []), ...(values.options ?? [])])
  return {
    mountpoint: path.resolve(ctx.cwd, positionals[0]),
    release: values.release ?? o.release ?? runningRelease(),
    force: values.force === true || o.force,
    allowUntrusted: values['allow-untrusted-image'] === true || o.allowUntrusted,
    explicit: values.image ?? o.image,
    options: o,
    foreground: values.foreground === true,
    readyFd: values['ready-fd'] === undefined ? undefined : Number(values['ready-fd']),
    logFile: values['log-file'],
    logFd: values['log-fd'] === undefined ? undefined : Number(values['log-fd']),
  }
}

/**
 * Something is mounted at `mountpoint`. A live kheadersfs mount is "already loaded" (exit 0, as
 * modprobe says of a loaded module); a stale one is cleaned and the mount goes on (undefined).
 */
async function alreadyMounted(mountpoint: string, ctx: Context): Promise<number | undefined> {
  if ((await health(mountpoint)) === 'live') {
    const s = readState(ctx.env, mountpoint)
    // Under systemd (a service or mount unit started us), "already loaded" would make the unit
    // adopt a daemon that lives in another unit: fail and name that unit instead.
    if (ctx.env.INVOCATION_ID) {
      const unit = s === undefined ? undefined : unitOf(s.pid)
      throw new MountpointError(
        `Cannot mount at ${mountpoint}: kheadersfs already serves it${s ? ` (pid ${s.pid}${unit ? `, ${unit}` : ''})` : ''}; stop that first${unit ? ` (systemctl stop '${unit}')` : ''}, or use only one unit for this path`,
      )
    }
    ctx.stdout.write(
      `kheadersfs: ${mountpoint} is already loaded${s ? ` (pid ${s.pid}, image ${s.image}, release ${s.release})` : ''}\n`,
    )
    return 0
  }
  // A daemon was killed and left "Transport endpoint is not connected": clear it and go on.
  const r = cleanStale(ctx.env, mountpoint)
  ctx.log.warn({ mountpoint, result: r }, 'cleaned up a stale mount left by a dead daemon')
  return undefined
}

/** The daemon's command line: it names what it serves, so `ps` shows it (as sshfs's does). */
function daemonArgv(req: MountRequest, image: string, logFile: string | null, logLevel: string): string[] {
  const o = req.options
  const daemonOpts = [
    ...(o.nonempty ? ['nonempty'] : []),
    `view=${o.view ? 'on' : 'off'}`,
    ...(o.cacheMb === undefined ? [] : [`cache_mb=${o.cacheMb}`]),
    ...(o.linkBuild ? ['link_build'] : []),
  ]
  return [
    CLI_PATH,
    'mount',
    '--foreground',
    '--image',
    image,
    '--release',
    req.release,
    ...(req.force ? ['--force'] : []),
    ...(req.allowUntrusted ? ['--allow-untrusted-image'] : []),
    '-o',
    daemonOpts.join(','),
    '--ready-fd',
    String(READY_FD),
    ...(logFile ? ['--log-file', logFile, '--log-fd', String(LOG_FD)] : []),
    '--log-level',
    o.logLevel ?? logLevel,
    req.mountpoint,
  ]
}

/** Sources that mean "search for the image", as a device name means nothing to a FUSE filesystem. */
export const AUTO_SOURCES = ['auto', 'kheadersfs'] as const

/**
 * The calling form of mount.fuse (and of mount/mount.kheadersfs): `SOURCE MOUNTPOINT [-o OPTS]...`,
 * as `mount -t fuse.kheadersfs` and fstab lines run it. Returns the equivalent `mount` arguments, or
 * undefined when `argv` is not in that form (so the CLI reports an unknown command instead).
 */
export function helperForm(argv: string[]): string[] | undefined {
  const positionals: string[] = []
  const opts: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '-o') {
      if (i + 1 >= argv.length) throw new UsageError('kheadersfs: -o needs a value (comma-separated mount options)')
      opts.push(argv[++i])
    } else if (a.startsWith('-o')) opts.push(a.slice(2))
    else if (a.startsWith('-')) return undefined
    else positionals.push(a)
  }
  if (positionals.length !== 2) return undefined
  const [source, mountpoint] = positionals
  const args = ['mount']
  if (!(AUTO_SOURCES as readonly string[]).includes(source)) {
    if (parseMountOptions(opts).image !== undefined) {
      throw new UsageError(
        `kheadersfs: the image is given twice (SOURCE ${JSON.stringify(source)} and -o image=); give SOURCE "auto" to use -o image=`,
      )
    }
    args.push('--image', source)
  }
  for (const o of opts) args.push('-o', o)
  args.push(mountpoint)
  return args
}
