// The two tar members of a .deb (control.tar.xz, data.tar.xz), normalized as dpkg-deb
// --root-owner-group makes them and reproducible builds want them: "./"-rooted names, every parent
// directory listed, sorted by name, owner root:root (0/0, named as dpkg-deb names them), the modes
// given, one mtime.
import path from 'node:path'
import { tarBuffer } from '../tar-buffer'
import { xzBuffer } from '../pack/xz'

export interface DebFile {
  /** Path inside the archive without the leading "./" (e.g. usr/lib/kheadersfs/6.1.0.img). */
  path: string
  data: Buffer
  mode: number
}

const DIR_MODE = 0o755

/**
 * xz settings of both members. The image inside is already xz and gzip (its manifest is not), so a
 * high preset buys nothing: -6 and -9 were the same size to 0.1%. Fixed block size and threads off
 * the bytes, as for images (pack/xz.ts).
 */
const XZ = { preset: 6, blockSize: 8 << 20, threads: 0 } as const

/** tar.xz of `files` and every directory above them (the root "./" included). */
export async function debTarXz(files: readonly DebFile[], mtime: number, signal?: AbortSignal): Promise<Buffer> {
  return xzBuffer(await debTar(files, mtime), XZ, undefined, signal)
}

async function debTar(files: readonly DebFile[], mtime: number): Promise<Buffer> {
  const dirs = new Set<string>()
  for (const f of files) {
    for (let d = path.posix.dirname(f.path); d !== '.'; d = path.posix.dirname(d)) dirs.add(d)
  }
  const entries: Array<{ name: string; file?: DebFile }> = [
    { name: './' },
    ...[...dirs].map((d) => ({ name: `./${d}/` })),
    ...files.map((file) => ({ name: `./${file.path}`, file })),
  ]
  // Byte order, as `LC_ALL=C sort`: a directory "./a/" sorts before its contents "./a/b".
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  const date = new Date(mtime * 1000)
  const owner = { uid: 0, gid: 0, uname: 'root', gname: 'root', mtime: date }
  return tarBuffer(
    entries.map((e) =>
      e.file === undefined
        ? { header: { name: e.name, type: 'directory', mode: DIR_MODE, ...owner } }
        : {
            header: { name: e.name, type: 'file', mode: e.file.mode, size: e.file.data.length, ...owner },
            data: e.file.data,
          },
    ),
  )
}
