// The ar(5) container of a .deb, as dpkg-deb writes it (deb(5)): the global magic, then per member a
// 60-byte header (name without GNU ar's trailing "/", mtime, uid 0, gid 0, mode 100644, size) and
// the data, padded with "\n" to an even length. Written here rather than taken from npm: the format
// is these few lines, and the npm writers (ar-async 0.1.4) are unmaintained and file-based.

export interface ArMember {
  /** At most 16 bytes, no "/" (deb member names are short ASCII: debian-binary, control.tar.xz). */
  name: string
  data: Buffer
}

const MAGIC = '!<arch>\n'
const HEADER_END = '`\n'

/** The ar archive of `members`, in the order given, every member with mtime `mtime` (seconds). */
export function arArchive(members: readonly ArMember[], mtime: number): Buffer {
  const parts: Buffer[] = [Buffer.from(MAGIC, 'latin1')]
  for (const m of members) {
    if (!/^[\x21-\x7e]{1,16}$/.test(m.name) || m.name.includes('/')) throw new Error(`bad ar member name ${m.name}`)
    const header =
      field(m.name, 16) +
      field(String(Math.trunc(mtime)), 12) +
      field('0', 6) +
      field('0', 6) +
      field('100644', 8) +
      field(String(m.data.length), 10) +
      HEADER_END
    parts.push(Buffer.from(header, 'latin1'), m.data)
    if (m.data.length % 2 === 1) parts.push(Buffer.from('\n', 'latin1'))
  }
  return Buffer.concat(parts)
}

/** A header field: left-aligned, space-padded, refused when it does not fit. */
function field(value: string, width: number): string {
  if (value.length > width) throw new Error(`ar header field "${value}" is longer than ${width} bytes`)
  return value.padEnd(width, ' ')
}
