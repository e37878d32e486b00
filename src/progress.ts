// Pack progress: a bar on a terminal (cli-progress), throttled log lines otherwise.
import { SingleBar } from 'cli-progress'
import type { Context } from './context'
import { bytes } from './format-bytes'
import type { ArchiveProgress } from './pack/headers-txz'

export interface PackProgress {
  update(p: ArchiveProgress): void
  stop(): void
}

export function packProgress(ctx: Context, total: number): PackProgress {
  if (ctx.stderr.isTTY) {
    const bar = new SingleBar({
      format: 'packing [{bar}] {value}/{total} files | tar {tar} → xz {xz}',
      stream: ctx.stderr as NodeJS.WritableStream,
      hideCursor: true,
      clearOnComplete: true,
      fps: 10,
    })
    bar.start(total, 0, { tar: bytes(0), xz: bytes(0) })
    return {
      update: (p) => bar.update(p.filesDone, { tar: bytes(p.tarBytes), xz: bytes(p.xzBytes) }),
      stop: () => bar.stop(),
    }
  }
  let last = 0
  return {
    update: (p) => {
      const now = Date.now()
      if (now - last < 1000) return
      last = now
      ctx.log.info({ files: p.filesDone, total: p.filesTotal, tarBytes: p.tarBytes, xzBytes: p.xzBytes }, 'packing')
    },
    stop: () => undefined,
  }
}
