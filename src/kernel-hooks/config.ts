// /etc/kheadersfs/kernel-hooks.conf: what the kernel hooks do. KEY=value lines read here, never
// sourced by a shell (a conffile root edits must not become code the hooks run).
import { readFileSync } from 'node:fs'
import { UsageError, reason } from '../errors'
import { PROFILES, type Profile } from '../image/format'

export const CONFIG_FILE = '/etc/kheadersfs/kernel-hooks.conf'
/** Set to off (or no, 0) for one run: `KHEADERSFS_KERNEL_HOOKS=off apt-get upgrade`. */
export const ENV_SWITCH = 'KHEADERSFS_KERNEL_HOOKS'

export interface HookConfig {
  /** Pack an image when a kernel's headers are installed. */
  pack: boolean
  profile: Profile
  /** Removing a kernel's headers removes the image the hooks packed from them. */
  removeWithHeaders: boolean
  /** xz encoder threads; 'auto' = one per core, as memory allows (see threadsFor). */
  threads: number | 'auto'
  /** xz preset: 6 as `kheadersfs pack`; 1 packs ~3× faster for an image ~18% larger. */
  xzPreset: number
}

export const DEFAULT_CONFIG: Readonly<HookConfig> = {
  pack: true,
  profile: 'module-build',
  removeWithHeaders: true,
  threads: 'auto',
  xzPreset: 6,
}

/** A bad line names the file, the line and the fix; the hooks turn it into a warning. */
export function parseConfig(text: string, file = CONFIG_FILE): HookConfig {
  const config: HookConfig = { ...DEFAULT_CONFIG }
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) return
    const bad = (why: string): never => {
      throw new UsageError(`Cannot read ${file} line ${i + 1} ${JSON.stringify(line.slice(0, 60))}: ${why}`)
    }
    const eq = line.indexOf('=')
    if (eq < 0) bad('not KEY=value')
    const key = line.slice(0, eq).trim()
    const value = line.slice(eq + 1).trim()
    switch (key) {
      case 'PACK':
        config.pack = yesNo(value) ?? bad('PACK is yes or no')
        break
      case 'REMOVE_WITH_HEADERS':
        config.removeWithHeaders = yesNo(value) ?? bad('REMOVE_WITH_HEADERS is yes or no')
        break
      case 'PROFILE':
        config.profile = PROFILES.find((p) => p === value) ?? bad(`PROFILE is one of ${PROFILES.join(', ')}`)
        break
      case 'THREADS':
        config.threads =
          value === 'auto'
            ? 'auto'
            : /^[1-9][0-9]{0,2}$/.test(value)
              ? Number(value)
              : bad('THREADS is auto or a number of threads (1-999)')
        break
      case 'XZ_PRESET':
        config.xzPreset = /^[1-9]$/.test(value) ? Number(value) : bad('XZ_PRESET is a number from 1 to 9')
        break
      default:
        bad('unknown key; the keys are PACK, PROFILE, REMOVE_WITH_HEADERS, THREADS, XZ_PRESET')
    }
  })
  return config
}

/** The file's settings; a missing file (removed by hand) means the defaults. */
export function readConfig(file = CONFIG_FILE): HookConfig {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { ...DEFAULT_CONFIG }
    throw new UsageError(`Cannot read ${file}: ${reason(e)}`, e)
  }
  return parseConfig(text, file)
}

/** The one-run off switch: `off`, `no` or `0` in $KHEADERSFS_KERNEL_HOOKS turns the hooks off. */
export function switchedOff(env: NodeJS.ProcessEnv): boolean {
  const v = env[ENV_SWITCH]?.trim().toLowerCase()
  return v === 'off' || v === 'no' || v === '0'
}

function yesNo(v: string): boolean | undefined {
  if (v === 'yes') return true
  if (v === 'no') return false
  return undefined
}

/**
 * Encoder threads for `auto`: one per core, but no more than half the available memory allows at
 * ~100 MiB each (xz preset 6's encoder dictionary and match finder, plus two 1 MiB blocks). A pack
 * runs in the middle of an apt upgrade, beside whatever else the board runs: a 512 MB board with four
 * cores packs on one or two threads instead of being pushed into swap or the OOM killer.
 */
export function threadsFor(setting: HookConfig['threads'], cores: number, memAvailable: number | undefined): number {
  if (setting !== 'auto') return setting
  if (memAvailable === undefined) return 1
  return Math.max(1, Math.min(cores, Math.floor(memAvailable / 2 / (100 << 20))))
}

/** MemAvailable from /proc/meminfo, in bytes (undefined where there is none). */
export function memAvailable(meminfo = '/proc/meminfo'): number | undefined {
  try {
    const m = /^MemAvailable:\s+(\d+) kB$/m.exec(readFileSync(meminfo, 'utf8'))
    return m ? Number(m[1]) * 1024 : undefined
  } catch {
    return undefined
  }
}
