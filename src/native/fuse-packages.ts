// What to install for FUSE on *this* system, for the error messages that say so. kheadersfs needs the
// libfuse 2 library (libfuse.so.2) and a `fusermount` program. Their package names differ: Debian 13
// and Ubuntu 24.04 renamed the library to libfuse2t64 (64-bit time_t), fusermount comes from fuse3 on
// current Debian/Ubuntu (installing "fuse" there would remove fuse3 and sshfs), and other
// distributions name both their own way. Decided from /etc/os-release, read only when a message needs it.
import { readFileSync } from 'node:fs'

export interface OsRelease {
  id: string
  idLike: string[]
  versionId: string
}

export function readOsRelease(file = '/etc/os-release'): OsRelease | undefined {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch {
    return undefined
  }
  const field = (k: string): string =>
    (new RegExp(`^${k}=(.*)$`, 'm').exec(text)?.[1] ?? '').trim().replace(/^["']|["']$/g, '')
  return { id: field('ID'), idLike: field('ID_LIKE').split(/\s+/).filter(Boolean), versionId: field('VERSION_ID') }
}

/** Numeric compare of dotted versions ("24.04" vs "24.4" alike); missing parts count as 0. */
function atLeast(version: string, min: string): boolean {
  const a = version.split('.').map(Number)
  const b = min.split('.').map(Number)
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i] ?? 0
    const y = b[i] ?? 0
    if (Number.isNaN(x)) return true // testing/sid and unknown versions: assume current
    if (x !== y) return x > y
  }
  return true
}

/**
 * The install hint for the library and/or fusermount, e.g. "apt-get install libfuse2t64 fuse3".
 * Unknown systems (Yocto, Buildroot) get what to provide rather than a package manager line.
 */
export function fuseInstallHint(
  need: { library: boolean; fusermount: boolean },
  os: OsRelease | undefined = readOsRelease(),
): string {
  const family = os === undefined ? '' : ([os.id, ...os.idLike].find((f) => KNOWN.has(f)) ?? '')
  const pkgs: string[] = []
  switch (family) {
    case 'debian':
    case 'ubuntu': {
      // Debian without a VERSION_ID is testing/sid: already t64. Derivatives with their own version
      // numbers (Mint, Pop!_OS) cannot be placed: name both.
      const { id, versionId } = os!
      const t64 =
        id === 'ubuntu'
          ? atLeast(versionId, '24.04')
          : id === 'debian' || id === 'raspbian'
            ? versionId === '' || atLeast(versionId, '13')
            : undefined
      if (need.library)
        pkgs.push(
          t64 === undefined ? 'libfuse2t64 (libfuse2 on releases before 2024)' : t64 ? 'libfuse2t64' : 'libfuse2',
        )
      if (need.fusermount) pkgs.push('fuse3')
      return `apt-get install ${pkgs.join(' ')}`
    }
    case 'fedora':
    case 'rhel':
      if (need.library) pkgs.push('fuse-libs')
      if (need.fusermount) pkgs.push('fuse')
      return `dnf install ${pkgs.join(' ')}`
    case 'alpine':
      return 'apk add fuse'
    case 'arch':
      return 'pacman -S fuse2'
    default: {
      const what = [
        need.library ? 'the libfuse 2.9 library (libfuse.so.2)' : '',
        need.fusermount ? 'fusermount (from libfuse 2 or 3)' : '',
      ].filter(Boolean)
      return `add ${what.join(' and ')} to the system image (Yocto: the fuse recipe; Buildroot: BR2_PACKAGE_LIBFUSE)`
    }
  }
}

const KNOWN = new Set(['debian', 'ubuntu', 'fedora', 'rhel', 'alpine', 'arch'])
