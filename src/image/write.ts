// Payloads → image bytes → file. The file appears whole or not at all: bytes go to a temp file beside
// the target (same filesystem, so rename is atomic), are fsynced, then renamed over the target.
import { closeSync, fsyncSync, openSync, readdirSync, renameSync, unlinkSync, writeSync } from 'node:fs'
import path from 'node:path'
import tarStream from 'tar-stream'
import { IoError, reason } from '../errors'
import { MEMBER, MEMBER_MODE, sha256 } from './format'

/** The image container: a ustar archive of the members in format order, SHA256SUMS last. */
export async function buildImage(members: { manifest: Buffer; config: Buffer; headers: Buffer }, epoch: number): Promise<Buffer> {
  const list: Array<[string, Buffer]> = [
    [MEMBER.manifest, members.manifest],
    [MEMBER.config, members.config],
    [MEMBER.headers, members.headers],
  ]
  list.push([MEMBER.sums, Buffer.from(list.map(([name, data]) => `${sha256(data)}  ${name}\n`).join(''))])
  const pack = tarStream.pack()
  const chunks: Buffer[] = []
  const done = new Promise<Buffer>((resolve, reject) => {
    pack.on('data', (c: unknown) => chunks.push(c as Buffer))
    pack.on('end', () => resolve(Buffer.concat(chunks)))
    pack.on('error', reject)
  })
  const mtime = new Date(epoch * 1000)
  for (const [name, data] of list) {
    pack.entry({ name, type: 'file', mode: MEMBER_MODE, uid: 0, gid: 0, uname: '', gname: '', mtime }, data)
  }
  pack.finalize()
  return done
}

/** Temp files are named after their target and the writer's pid, so a later run can recognize leftovers. */
export const TEMP_MARK = '.kheadersfs-tmp-'

export function tempPathFor(target: string, pid: number = process.pid): string {
  return path.join(path.dirname(target), `.${path.basename(target)}${TEMP_MARK}${pid}`)
}

/** Remove temp files a killed earlier run (kill -9) left for this target. Returns their paths. */
export function removeStaleTemps(target: string): string[] {
  const dir = path.dirname(target)
  const prefix = `.${path.basename(target)}${TEMP_MARK}`
  const removed: string[] = []
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch {
    return removed
  }
  for (const name of names) {
    if (!name.startsWith(prefix)) continue
    const pid = Number(name.slice(prefix.length))
    if (Number.isInteger(pid) && pid !== process.pid && alive(pid)) continue // another pack is writing it
    try {
      unlinkSync(path.join(dir, name))
      removed.push(path.join(dir, name))
    } catch {
      // gone already
    }
  }
  return removed
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Write `data` to `target` atomically. On any failure the temp file is removed and an IoError names
 * the target and the fix. The caller removes the temp file on signals (see commands/pack.ts).
 */
export function writeFileAtomic(target: string, data: Buffer, mode = 0o644): void {
  const tmp = tempPathFor(target)
  let fd: number | undefined
  try {
    fd = openSync(tmp, 'wx', mode)
    for (let off = 0; off < data.length; ) off += writeSync(fd, data, off, data.length - off)
    fsyncSync(fd)
    closeSync(fd)
    fd = undefined
    renameSync(tmp, target)
  } catch (e) {
    if (fd !== undefined) closeSync(fd)
    try {
      unlinkSync(tmp)
    } catch {
      // never created
    }
    const fix = (e as NodeJS.ErrnoException).code === 'ENOSPC' ? 'free some space or pass -o a path on another filesystem' : 'pass -o a writable path'
    throw new IoError(`Cannot write image ${target}: ${reason(e)}; ${fix}`, e)
  }
  // Make the rename itself durable.
  try {
    const dfd = openSync(path.dirname(target), 'r')
    fsyncSync(dfd)
    closeSync(dfd)
  } catch {
    // some filesystems refuse fsync on directories; the data is already safe
  }
}
