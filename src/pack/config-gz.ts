// .config → config.gz exactly as IKCONFIG_PROC's is made: `gzip -n -9` (no name, mtime 0), so the
// same config gives the same bytes. Node's gzip header carries mtime 0 and no name already.
import { gzipSync } from 'node:zlib'

export function configGz(config: Buffer): Buffer {
  return gzipSync(config, { level: 9 })
}
