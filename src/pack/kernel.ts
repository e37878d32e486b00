// What pack records about the kernel, whichever source it came from (a build tree, kernel-tree.ts;
// the kernel's own archive, from-kheaders.ts), and the facts both read the same way from the
// kernel's generated headers: the release and the build time.
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { UsageError } from '../errors'
import { checkRelease } from '../image/release'

export interface Kernel {
  /** UTS_RELEASE: what `uname -r` and module vermagic report. */
  release: string
  /** SRCARCH: the arch/ directory name (x86 for x86_64). */
  arch: string
  /** The kernel configuration as text (from --config, plain or gzip, or objtree/.config). */
  config: Buffer
  configPath: string | undefined
  /** Seconds since the epoch used for every mtime in the archive and the manifest. */
  epoch: number
  epochSource: 'SOURCE_DATE_EPOCH' | 'kernel build timestamp' | 'none'
}

/** The text of one of the kernel's files, by path from its top; undefined when it cannot be read. */
export type KernelFiles = (rel: string) => string | undefined

/** The files of a directory (a tree's objtree). */
export function filesIn(dir: string): KernelFiles {
  return (rel) => {
    try {
      return readFileSync(path.join(dir, rel), 'utf8')
    } catch {
      return undefined
    }
  }
}

/** The release a kernel build writes into include/generated/utsrelease.h. */
const UTS_RELEASE = /#define\s+UTS_RELEASE\s+"([^"]+)"/

export function utsRelease(files: KernelFiles): string | undefined {
  return UTS_RELEASE.exec(files('include/generated/utsrelease.h') ?? '')?.[1]
}

/**
 * The release to record: `given` (--release), else what `found` reads from the kernel's files,
 * checked (image/release.ts); `missing` is the error when neither gives one.
 */
export function kernelRelease(
  given: string | undefined,
  found: () => string | undefined,
  missing: () => Error,
): string {
  const release = given ?? found()
  if (release === undefined) throw missing()
  return checkRelease(release)
}

/**
 * The archive's single mtime: SOURCE_DATE_EPOCH if set, else the time the kernel itself records for
 * its build (UTS_VERSION in include/generated/utsversion.h or compile.h), else 0. Never the wall clock
 * and never the input files' mtimes, so the same tree packs to the same bytes anywhere.
 */
export function buildEpoch(
  objtree: string | KernelFiles,
  env: NodeJS.ProcessEnv,
): { epoch: number; epochSource: Kernel['epochSource'] } {
  const read = typeof objtree === 'function' ? objtree : filesIn(objtree)
  const sde = env.SOURCE_DATE_EPOCH
  if (sde !== undefined && sde !== '') {
    if (!/^\d{1,12}$/.test(sde))
      throw new UsageError(`Cannot use SOURCE_DATE_EPOCH="${sde}": it must be a whole number of seconds since 1970`)
    return { epoch: Number(sde), epochSource: 'SOURCE_DATE_EPOCH' }
  }
  for (const f of ['include/generated/utsversion.h', 'include/generated/compile.h']) {
    const text = read(f)
    if (text === undefined) continue
    const m = /#define\s+UTS_VERSION\s+"([^"]*)"/.exec(text)
    const t = m ? parseUtsVersionDate(m[1]) : undefined
    if (t !== undefined) return { epoch: t, epochSource: 'kernel build timestamp' }
  }
  return { epoch: 0, epochSource: 'none' }
}

/**
 * Dates found in UTS_VERSION: upstream's `date` output ("#1 SMP PREEMPT_DYNAMIC Sun Nov 16 10:17:00
 * UTC 2025", or KBUILD_BUILD_TIMESTAMP verbatim) and Debian's "(2026-11-16)". Returns epoch seconds.
 */
export function parseUtsVersionDate(uts: string): number | undefined {
  const iso = /\((\d{4})-(\d{2})-(\d{2})\)\s*$/.exec(uts)
  if (iso) return Date.UTC(Number(iso[1]), Number(iso[2]) - 1, Number(iso[3])) / 1000
  const d = /([A-Z][a-z]{2} [A-Z][a-z]{2} +\d{1,2} \d{2}:\d{2}:\d{2})(?: (\S+))? (\d{4})\s*$/.exec(uts)
  if (d) {
    // A zone name other than UTC/GMT cannot be resolved portably; read the clock time as UTC.
    const zone = d[2] && /^(UTC|GMT|[+-]\d{4})$/.test(d[2]) ? d[2] : 'UTC'
    const t = Date.parse(`${d[1]} ${d[3]} ${zone}`)
    if (Number.isFinite(t)) return Math.floor(t / 1000)
  }
  return undefined
}
