// `-o` options, from the command line or from mount(8)/fstab through mount.fuse. Generic mount
// options are tolerated (mount.fuse passes dev, suid, nofail ... through), FUSE ones are taken, and
// kheadersfs's own are parsed; anything else is refused by name.
import { LEVELS, type Level } from '../log'
import { UsageError } from '../errors'
import { didYouMean, suggest } from '../suggest'

export interface MountOpts {
  image?: string
  release?: string
  force: boolean
  allowUntrusted: boolean
  nonempty: boolean
  logLevel?: Level
  /** Serve the archive's tree as kheaders/ (view=on|off). */
  view: boolean
  /** Bound of the decoded-block cache (cache_mb=N); undefined: DEFAULT_CACHE_MB, or one block if larger. */
  cacheMb?: number
  /** Point /lib/modules/<release>/build and source at the view while mounted. */
  linkBuild: boolean
  /** X-mount.mkdir[=MODE] (util-linux): create the mountpoint with this mode if it is missing. */
  mkdirMode?: number
}

/** Default bound of the decoded-block cache: measured in docs/design.md ("Block size and cache"). */
export const DEFAULT_CACHE_MB = 8
const MAX_CACHE_MB = 4096

/** Accepted and ignored: the daemon always mounts ro,nosuid,nodev whatever these say. */
const GENERIC = new Set([
  'defaults',
  'ro',
  'rw',
  'dev',
  'nodev',
  'suid',
  'nosuid',
  'exec',
  'noexec',
  'atime',
  'noatime',
  'relatime',
  'norelatime',
  'strictatime',
  'nostrictatime',
  'diratime',
  'nodiratime',
  'lazytime',
  'nolazytime',
  'sync',
  'async',
  'dirsync',
  'auto',
  'noauto',
  'user',
  'nouser',
  'users',
  'owner',
  'group',
  'nofail',
  '_netdev',
  'silent',
  'loud',
  'mand',
  'nomand',
  'iversion',
  'noiversion',
  // FUSE options kheadersfs sets itself
  'allow_other',
  'allow_root',
  'default_permissions',
  'kernel_cache',
  'auto_unmount',
])
/** kheadersfs's own options, for "did you mean" (with GENERIC). */
const OWN = [
  'force',
  'nonempty',
  'image',
  'release',
  'allow_untrusted_image',
  'link_build',
  'view',
  'cache_mb',
  'log_level',
  'X-mount.mkdir',
]
/** util-linux's mode for X-mount.mkdir without one. */
const DEFAULT_MKDIR_MODE = 0o755
/** X-mount.mkdir (x-mount.mkdir is util-linux's deprecated spelling): taken here, not foreign. */
const MKDIR = /^[xX]-mount\.mkdir(=|$)/
/** Prefixes of options meant for other programs (systemd, mount helpers). */
const FOREIGN = /^([xX]-|comment=|fsname=|subtype=|context=|fscontext=|defcontext=|rootcontext=|uid=|gid=)/

export function parseMountOptions(lists: string[]): MountOpts {
  const o: MountOpts = {
    force: false,
    allowUntrusted: false,
    nonempty: false,
    view: true,
    linkBuild: false,
  }
  for (const list of lists) {
    for (const raw of list.split(',')) {
      const opt = raw.trim()
      if (opt === '' || GENERIC.has(opt) || (FOREIGN.test(opt) && !MKDIR.test(opt))) continue
      const eq = opt.indexOf('=')
      const key = eq < 0 ? opt : opt.slice(0, eq)
      const value = eq < 0 ? undefined : opt.slice(eq + 1)
      const flag = (): true => {
        if (value !== undefined)
          throw new UsageError(`Cannot use mount option "${opt}": ${key} takes no value; write just ${key}`)
        return true
      }
      const need = (): string => {
        if (value === undefined || value === '')
          throw new UsageError(`Cannot use mount option "${opt}": it needs a value (${key}=...)`)
        return value
      }
      switch (key) {
        case 'force':
          o.force = flag()
          break
        case 'nonempty':
          o.nonempty = flag()
          break
        case 'image':
          o.image = need()
          break
        case 'release':
          o.release = need()
          break
        case 'allow_untrusted_image':
          o.allowUntrusted = flag()
          break
        case 'link_build':
          o.linkBuild = flag()
          break
        case 'X-mount.mkdir':
        case 'x-mount.mkdir': {
          // util-linux: an octal mode for mkdir(2), default 0755.
          if (value !== undefined && !/^[0-7]{3,4}$/.test(value))
            throw new UsageError(`Cannot use mount option "${opt}": give an octal mode such as 0755, or no value`)
          o.mkdirMode = value === undefined ? DEFAULT_MKDIR_MODE : parseInt(value, 8)
          break
        }
        case 'view': {
          const v = need()
          if (v !== 'on' && v !== 'off')
            throw new UsageError(
              `Cannot use mount option "${opt}":${meant(v, ['on', 'off'], 'view=')} choose view=on or view=off`,
            )
          o.view = v === 'on'
          break
        }
        case 'cache_mb': {
          const v = need()
          if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > MAX_CACHE_MB) {
            throw new UsageError(
              `Cannot use mount option "${opt}": give a whole number of MiB from 1 to ${MAX_CACHE_MB}`,
            )
          }
          o.cacheMb = Number(v)
          break
        }
        case 'log_level': {
          const v = need()
          if (!(LEVELS as readonly string[]).includes(v))
            throw new UsageError(
              `Cannot use mount option "${opt}":${meant(v, LEVELS, 'log_level=')} choose one of ${LEVELS.join(', ')}`,
            )
          o.logLevel = v as Level
          break
        }
        default:
          throw new UsageError(
            `Cannot use mount option "${opt}": not a kheadersfs or generic mount option; ${meantKey(key)}see "kheadersfs mount --help"`,
          )
      }
    }
  }
  if (o.linkBuild && !o.view)
    throw new UsageError('Cannot use mount option "link_build" with view=off: the links point at the kheaders/ view')
  return o
}

/** "did you mean "KEY"? " for a mistyped option, or "". */
function meantKey(key: string): string {
  const m = didYouMean(key, [...OWN, ...GENERIC], (k) => `"${k}"`)
  return m ? m + ' ' : ''
}

/** " did you mean KEY=VALUE?" for a mistyped value, or "". */
function meant(value: string, allowed: readonly string[], key: string): string {
  const s = suggest(value, allowed)
  return s === undefined ? '' : ` did you mean ${key}${s}?`
}
