// Deep check of an image beyond what reading it checks (read.ts reports those: container, sha256,
// manifest): decode the whole xz stream, list the tar and compare it entry by entry with the
// manifest's table, gunzip the config.
import lzma from 'lzma-native'
import { Readable } from 'node:stream'
import { gunzipSync } from 'node:zlib'
import tarStream from 'tar-stream'
import { count } from '../format-bytes'
import type { FileRecord } from './format'
import type { Check, Image } from './read'

/** The checks after those reading the image made: xz, tar, gzip. */
export async function verifyImage(image: Image): Promise<Check[]> {
  const m = image.manifest
  const checks: Check[] = []
  let tar: Buffer | undefined
  try {
    tar = await xzDecode(image.headers)
    const want = m.payloads['kheaders.tar.xz'].uncompressedSize
    checks.push(
      tar.length === want
        ? { name: 'xz', ok: true, detail: `kheaders.tar.xz decodes to ${count(tar.length)} bytes` }
        : {
            name: 'xz',
            ok: false,
            detail: `kheaders.tar.xz decodes to ${tar.length} bytes, the manifest says ${want}`,
          },
    )
  } catch (e) {
    checks.push({ name: 'xz', ok: false, detail: `kheaders.tar.xz does not decode: ${(e as Error).message}` })
  }
  if (tar !== undefined) {
    try {
      const listed = await listTar(tar)
      const diff = compareListing(listed, m.files)
      checks.push(
        diff === undefined
          ? {
              name: 'tar',
              ok: true,
              detail: `${count(listed.length)} entries match the manifest (names, types, sizes, modes, links, offsets)`,
            }
          : { name: 'tar', ok: false, detail: diff },
      )
    } catch (e) {
      checks.push({ name: 'tar', ok: false, detail: `the archive is not a readable tar: ${(e as Error).message}` })
    }
  }
  try {
    const config = gunzipSync(image.config)
    const want = m.payloads['config.gz'].uncompressedSize
    checks.push(
      config.length === want
        ? { name: 'gzip', ok: true, detail: `config.gz gunzips to ${count(config.length)} bytes` }
        : { name: 'gzip', ok: false, detail: `config.gz gunzips to ${config.length} bytes, the manifest says ${want}` },
    )
  } catch (e) {
    checks.push({ name: 'gzip', ok: false, detail: `config.gz does not gunzip: ${(e as Error).message}` })
  }
  return checks
}

export function xzDecode(data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const dec = lzma.createDecompressor()
    const chunks: Buffer[] = []
    dec.on('data', (c: Buffer) => chunks.push(c))
    dec.on('end', () => resolve(Buffer.concat(chunks)))
    dec.on('error', reject)
    dec.end(data)
  })
}

/** The tar's entries as tar-stream reads them, with each entry's data offset. */
export async function listTar(tar: Buffer): Promise<FileRecord[]> {
  const out: FileRecord[] = []
  const extract = tarStream.extract()
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (h, stream, next) => {
      const type = h.type === 'file' || h.type === 'directory' || h.type === 'symlink' ? h.type : undefined
      if (type === undefined) return next(new Error(`entry ${h.name} has unsupported type ${h.type}`))
      // tar-stream's offset is where the entry's own ustar header starts (after any pax header); the
      // data follows that one 512-byte header.
      const rec: FileRecord = {
        path: h.name.replace(/\/$/, ''),
        type,
        offset: stream.offset + 512,
        size: h.size,
        mode: h.mode,
      }
      if (type === 'symlink') rec.link = h.linkname
      out.push(rec)
      stream.on('end', () => next())
      stream.resume()
    })
    extract.on('finish', () => resolve())
    extract.on('error', reject)
  })
  Readable.from([tar]).pipe(extract)
  await done
  return out
}

function compareListing(listed: FileRecord[], files: FileRecord[]): string | undefined {
  if (listed.length !== files.length) return `the tar has ${listed.length} entries, the manifest ${files.length}`
  for (let i = 0; i < listed.length; i++) {
    const a = listed[i]
    const b = files[i]
    const keys = ['path', 'type', 'size', 'mode', 'link'] as const
    for (const k of keys) {
      if (a[k] !== b[k])
        return `entry ${i} (${b.path}): ${k} is ${JSON.stringify(a[k])} in the tar, ${JSON.stringify(b[k])} in the manifest`
    }
    if (a.type === 'file' && a.offset !== b.offset)
      return `entry ${i} (${b.path}): data at offset ${a.offset} in the tar, ${b.offset} in the manifest`
  }
  return undefined
}
