// Payloads → image bytes → file. The file appears whole or not at all: bytes go to a temp file beside
// the target, are fsynced, then renamed over the target (src/fs-atomic.ts).
import { IoError, reason } from '../errors'
import { writeFileAtomic } from '../fs-atomic'
import { tarBuffer } from '../tar-buffer'
import { MEMBER, MEMBER_MODE, sha256 } from './format'

/** The image container: a ustar archive of the members in format order, SHA256SUMS last. */
export async function buildImage(
  members: { manifest: Buffer; config: Buffer; headers: Buffer },
  epoch: number,
): Promise<Buffer> {
  const list: Array<[string, Buffer]> = [
    [MEMBER.manifest, members.manifest],
    [MEMBER.config, members.config],
    [MEMBER.headers, members.headers],
  ]
  list.push([MEMBER.sums, Buffer.from(list.map(([name, data]) => `${sha256(data)}  ${name}\n`).join(''))])
  const mtime = new Date(epoch * 1000)
  return tarBuffer(
    list.map(([name, data]) => ({
      header: { name, type: 'file', mode: MEMBER_MODE, uid: 0, gid: 0, uname: '', gname: '', mtime },
      data,
    })),
  )
}

/** Write the image file: whole or not at all, fsynced (src/fs-atomic.ts); a failure names the target and the fix. */
export function writeImage(target: string, data: Buffer, mode = 0o644): void {
  try {
    writeFileAtomic(target, data, { mode, fsync: true })
  } catch (e) {
    const fix =
      (e as NodeJS.ErrnoException).code === 'ENOSPC'
        ? 'free some space or pass -o a path on another filesystem'
        : 'pass -o a writable path'
    throw new IoError(`Cannot write image ${target}: ${reason(e)}; ${fix}`, e)
  }
}
