// An image → the Debian binary package that installs it where `kheadersfs mount` finds it
// (/usr/lib/kheadersfs/<release>.img, src/image/locate.ts): debian-binary, control.tar.xz and
// data.tar.xz in an ar archive, every byte a function of the image and the options (no dpkg-deb, so
// it builds on hosts without dpkg: Fedora for Yocto, macOS).
import type { Manifest } from '../image/format'
import { project } from '../project'
import { arArchive } from './ar'
import { controlFile, md5sums, type ControlFields } from './control'
import { changelog, copyright } from './docs'
import { debianRelease } from './names'
import { debTarXz, type DebFile } from './tar'

export interface DebOptions {
  /** The package name is `<prefix>-<release>` (names.ts). */
  package: string
  version: string
  arch: string
  maintainer: string
}

/**
 * The first kheadersfs release that reads each major version of the image format (readers accept
 * every minor version of their major: minor versions only add fields). Add a line with each new major.
 */
const FIRST_READER: Record<number, string> = { 1: '0.1.0' }

const OVERRIDES = '# Not an upload to Debian: there is no ITP bug to close.\ninitial-upload-closes-no-bugs\n'

/** Where the package installs the image: the second place locate.ts looks, the one dpkg may own. */
export function imagePath(release: string): string {
  return `usr/lib/kheadersfs/${release}.img`
}

export function debFileName(o: DebOptions): string {
  // dpkg-name's form: the epoch is not part of the file name.
  return `${o.package}_${o.version.replace(/^\d+:/, '')}_${o.arch}.deb`
}

export async function buildDeb(image: Buffer, m: Manifest, o: DebOptions, signal?: AbortSignal): Promise<Buffer> {
  const facts = { package: o.package, version: o.version, release: m.release, maintainer: o.maintainer, epoch: m.epoch }
  const log = changelog(facts)
  const doc = `usr/share/doc/${o.package}`
  const files: DebFile[] = [
    { path: imagePath(m.release), data: image, mode: 0o644 },
    { path: `${doc}/${log.name}`, data: log.data, mode: 0o644 },
    { path: `${doc}/copyright`, data: Buffer.from(copyright(facts)), mode: 0o644 },
  ]
  // lintian takes a one-entry changelog of a -1 version for a first upload to Debian that should close
  // its ITP bug; an image package is never uploaded there.
  if (/-1$/.test(o.version))
    files.push({ path: `usr/share/lintian/overrides/${o.package}`, data: Buffer.from(OVERRIDES), mode: 0o644 })
  files.sort((a, b) => (a.path < b.path ? -1 : 1))
  const control = controlFile(controlFields(m, o), files)
  const [controlTar, dataTar] = await Promise.all([
    debTarXz(
      [
        { path: 'control', data: Buffer.from(control), mode: 0o644 },
        { path: 'md5sums', data: Buffer.from(md5sums(files)), mode: 0o644 },
      ],
      m.epoch,
      signal,
    ),
    debTarXz(files, m.epoch, signal),
  ])
  return arArchive(
    [
      { name: 'debian-binary', data: Buffer.from('2.0\n') },
      { name: 'control.tar.xz', data: controlTar },
      { name: 'data.tar.xz', data: dataTar },
    ],
    m.epoch,
  )
}

function controlFields(m: Manifest, o: DebOptions): ControlFields {
  const major = Number(m.version.split('.')[0])
  const reader = FIRST_READER[major]
  if (reader === undefined) throw new Error(`no kheadersfs release known to read image format ${m.version}`)
  const what =
    m.profile === 'module-build'
      ? 'headers, module build files (Makefiles, scripts, Module.symvers) and .config'
      : 'headers (include/ and arch/*/include/, as CONFIG_IKHEADERS holds them) and .config'
  const synopsis = `Linux ${m.release} headers and config for kheadersfs`
  return {
    package: o.package,
    version: o.version,
    architecture: o.arch,
    maintainer: o.maintainer,
    depends: `kheadersfs (>= ${reader})`,
    enhances: `linux-image-${debianRelease(m.release)}`,
    section: 'kernel',
    homepage: project().homepage,
    synopsis: synopsis.length <= 80 ? synopsis : 'kernel headers and config for kheadersfs',
    description: [
      `The ${what} of the Linux kernel ${m.release} (${o.arch}), packed by "kheadersfs pack" into one image ` +
        `file installed at /${imagePath(m.release)}.`,
      `On a system running this kernel, "kheadersfs mount /proc-ext" finds the image by release and serves ` +
        'kheaders.txz, the header tree and config.gz from memory, as CONFIG_IKHEADERS and IKCONFIG_PROC do ' +
        'in the kernel' +
        (m.profile === 'module-build'
          ? ': out-of-tree modules build against /proc-ext/kheaders without a linux-headers package.'
          : '.'),
    ],
  }
}
