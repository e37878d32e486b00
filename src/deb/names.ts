// Debian's rules for what a package may be called and numbered (Debian Policy §5.6.1, §5.6.12), and
// the Debian architecture of a kernel: the checks run before anything is packed, so a bad value costs
// nothing.
import type { Manifest } from '../image/format'
import { UsageError } from '../errors'

/** Policy §5.6.1: lower case letters, digits, + - . ; at least two characters, alphanumeric first. */
const PACKAGE = /^[a-z0-9][a-z0-9+.-]+$/

/** Policy §5.6.12: [epoch:]upstream[-revision]; upstream starts with a digit; ":" only after an epoch. */
const VERSION = /^(?:(\d+):)?([0-9][A-Za-z0-9.+~:-]*?)(?:-([A-Za-z0-9.+~]+))?$/

/** `prefix`-<release> as a package name. Upper case and the _ ~ a release may hold are not allowed in one. */
export function packageName(prefix: string, release: string): string {
  if (!PACKAGE.test(`${prefix}-0`) || prefix.endsWith('-')) {
    throw new UsageError(
      `Cannot use --deb-name ${JSON.stringify(prefix)}: a Debian package name is lower-case letters, digits and + - . (starting with a letter or digit); e.g. --deb-name kheadersfs-image`,
    )
  }
  return `${prefix}-${debianRelease(release)}`
}

/**
 * The release as part of a package name. A release may hold what a package name may not: upper case
 * becomes lower case, _ and ~ become - and +. The image keeps the exact release as its file name.
 */
export function debianRelease(release: string): string {
  return release.toLowerCase().replace(/_/g, '-').replace(/~/g, '+')
}

export function checkVersion(version: string): string {
  const m = VERSION.exec(version)
  // ":" in the upstream part needs an epoch, "-" in it a revision (the part after the last "-").
  if (m === null || (m[1] === undefined && m[2].includes(':')) || (m[3] === undefined && m[2].includes('-'))) {
    throw new UsageError(
      `Cannot use --deb-version ${JSON.stringify(version)}: a Debian version starts with a digit and holds letters, digits and . + ~ - : (e.g. --deb-version 6.1.76-1, your kernel package's version)`,
    )
  }
  return version
}

/**
 * The default version, when no kernel package version is given: 0~<the image's time>, UTC. It sorts
 * below any kernel package's version (a vendor's package of the same release replaces it) and rises
 * with each new build of the kernel (the image's time is the kernel's build time, or SOURCE_DATE_EPOCH).
 */
export function defaultVersion(epoch: number): string {
  const iso = new Date(epoch * 1000).toISOString() // 2026-11-30T00:00:00.000Z
  return `0~${iso.slice(0, 10).replace(/-/g, '')}.${iso.slice(11, 19).replace(/:/g, '')}`
}

/** The Debian architecture of the image's kernel: its arch/ name, refined by the target's bits and byte order. */
export function debianArch(m: Pick<Manifest, 'arch' | 'target'>): string | undefined {
  const bits = m.target?.bits
  const little = m.target === undefined || m.target.endian === 'little'
  switch (m.arch) {
    case 'arm64':
      return little ? 'arm64' : undefined
    case 'arm':
      return little ? 'armhf' : undefined // armel kernels exist, but armhf is what boards run today
    case 'x86':
      return bits === 64 ? 'amd64' : bits === 32 ? 'i386' : undefined
    case 'riscv':
      return bits === 64 ? 'riscv64' : undefined
    case 'powerpc':
      return bits === 64 ? (little ? 'ppc64el' : 'ppc64') : bits === 32 ? 'powerpc' : undefined
    case 'mips':
      return little ? (bits === 64 ? 'mips64el' : bits === 32 ? 'mipsel' : undefined) : undefined
    case 's390':
      return 's390x'
    case 'loongarch':
      return 'loong64'
    default:
      return undefined
  }
}

/** --deb-arch's value, or the kernel's Debian architecture, or a UsageError asking for --deb-arch. */
export function packageArch(given: string | undefined, m: Pick<Manifest, 'arch' | 'target'>): string {
  if (given !== undefined) return checkArch(given)

  const arch = debianArch(m)
  if (arch === undefined) {
    const what = m.target === undefined ? m.arch : `${m.arch} (${m.target.name})`
    throw new UsageError(
      `Cannot tell the Debian architecture of a ${what} kernel; pass --deb-arch with the architecture of its linux-image package`,
    )
  }
  return arch
}

export function checkArch(arch: string): string {
  if (!/^[a-z0-9][a-z0-9-]*$/.test(arch))
    throw new UsageError(
      `Cannot use --deb-arch ${JSON.stringify(arch)}: give a Debian architecture (dpkg-architecture -L), e.g. arm64`,
    )
  return arch
}
