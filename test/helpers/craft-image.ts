// Hand-made images for hostile-input tests: any members in any order, with SHA256SUMS recomputed so
// that the checks behind the checksums (manifest fields, xz index, member layout) are what is tested.
import { sha256, type FileRow, type Manifest } from '../../src/image/format'
import { parseImage, readContainer } from '../../src/image/read'
import { tarBuffer } from '../../src/tar-buffer'

export type Member = [name: string, data: Buffer]

/** manifest.json as written (the file table as rows), for altering on purpose. */
export type ManifestJson = Omit<Manifest, 'files' | 'format' | 'profile'> & {
  format: string
  profile: string
  files: FileRow[]
}

/** The members of a valid image, for altering one of them. */
export function membersOf(image: Buffer): { manifest: ManifestJson; config: Buffer; headers: Buffer } {
  const img = parseImage(image, 'valid.img')
  const raw = readContainer(image, (why) => {
    throw new Error(why)
  })[0].data
  return { manifest: JSON.parse(raw.toString('utf8')) as ManifestJson, config: img.config, headers: img.headers }
}

/** SHA256SUMS for `members` (every member but the sums), as the packer writes it. */
export function sums(members: Member[]): Buffer {
  return Buffer.from(members.map(([n, d]) => `${sha256(d)}  ${n}\n`).join(''))
}

/** A ustar archive of exactly these members, in order (add SHA256SUMS yourself, or use image()). */
export function tarOf(members: Member[]): Promise<Buffer> {
  return tarBuffer(
    members.map(([name, data]) => ({
      header: { name, mode: 0o444, uid: 0, gid: 0, uname: '', gname: '', mtime: new Date(0) },
      data,
    })),
  )
}

/** An image from a manifest object and payloads, with consistent SHA256SUMS. */
export function image(manifest: ManifestJson, config: Buffer, headers: Buffer): Promise<Buffer> {
  const members: Member[] = [
    ['manifest.json', Buffer.from(JSON.stringify(manifest))],
    ['config.gz', config],
    ['kheaders.tar.xz', headers],
  ]
  return tarOf([...members, ['SHA256SUMS', sums(members)]])
}
