// A tar archive built in memory: tar-stream's pack of the given entries, collected into one Buffer
// (images and the .deb members are small enough to hold whole, and are written atomically after).
import tarStream, { type Header } from 'tar-stream'

export interface TarEntry {
  header: Partial<Header> & Pick<Header, 'name'>
  /** The file's bytes; none for a directory. */
  data?: Buffer
}

export function tarBuffer(entries: Iterable<TarEntry>): Promise<Buffer> {
  const pack = tarStream.pack()
  const chunks: Buffer[] = []
  const done = new Promise<Buffer>((resolve, reject) => {
    pack.on('data', (c: unknown) => chunks.push(c as Buffer))
    pack.on('end', () => resolve(Buffer.concat(chunks)))
    pack.on('error', reject)
  })
  for (const e of entries) {
    if (e.data === undefined) pack.entry(e.header)
    else pack.entry(e.header, e.data)
  }
  pack.finalize()
  return done
}
