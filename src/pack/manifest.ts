// Kernel facts + archive → Manifest (image/format.ts describes every field).
import { FORMAT_ID, FORMAT_VERSION, sha256, type Manifest, type Profile } from '../image/format'
import { generator } from '../version'
import type { Archive } from './headers-txz'
import type { Kernel } from './kernel'
import { CHECK, type XzOptions } from './xz'

export function buildManifest(
  kernel: Kernel,
  profile: Profile,
  archive: Archive,
  config: { gz: Buffer; raw: Buffer },
  xz: XzOptions,
  /** Format 1.1+ fields: the target, rebuilt host programs, the kernel archive packed from, the layout. */
  extra: Pick<Manifest, 'target' | 'hostPrograms' | 'source' | 'layout'> = {},
): Manifest {
  const count = (type: string): number => archive.files.filter((f) => f.type === type).length
  return {
    format: FORMAT_ID,
    version: FORMAT_VERSION,
    generator: generator(),
    release: kernel.release,
    arch: kernel.arch,
    profile,
    created: new Date(kernel.epoch * 1000).toISOString(),
    epoch: kernel.epoch,
    payloads: {
      'config.gz': { size: config.gz.length, sha256: sha256(config.gz), uncompressedSize: config.raw.length },
      'kheaders.tar.xz': {
        size: archive.txz.length,
        sha256: sha256(archive.txz),
        uncompressedSize: archive.tarSize,
        blockSize: xz.blockSize,
        preset: xz.preset,
        check: CHECK.name,
      },
    },
    counts: { files: count('file'), directories: count('directory'), symlinks: count('symlink') },
    bytes: { raw: archive.rawBytes, stripped: archive.strippedBytes },
    ...extra,
    files: archive.files,
  }
}
