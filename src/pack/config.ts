// The kernel configuration, in and out. In: a .config or a config.gz (e.g. the running kernel's
// /proc/config.gz), checked to be one. Out: config.gz exactly as IKCONFIG_PROC's is made, `gzip -n -9`
// (no name, mtime 0), so the same config gives the same bytes; Node's gzip header carries mtime 0 and
// no name already.
import { readFileSync } from 'node:fs'
import { gunzipSync, gzipSync } from 'node:zlib'
import { KernelTreeError, reason } from '../errors'

/** The config in `file`, as text; undefined when `optional` and the file does not exist. */
export function readConfig(file: string): Buffer
export function readConfig(file: string, optional: boolean): Buffer | undefined
export function readConfig(file: string, optional = false): Buffer | undefined {
  let data: Buffer
  try {
    data = readFileSync(file)
  } catch (e) {
    if (optional && (e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new KernelTreeError(
      `Cannot read config ${file}: ${reason(e)}; pass --config a kernel .config or config.gz`,
      e,
    )
  }
  if (data[0] === 0x1f && data[1] === 0x8b) {
    try {
      data = gunzipSync(data)
    } catch (e) {
      throw new KernelTreeError(
        `Cannot read config ${file}: not a valid gzip file (${reason(e)}); pass --config a kernel .config or config.gz`,
        e,
      )
    }
  }
  if (!/^CONFIG_[A-Z0-9_]+=/m.test(data.toString('latin1'))) {
    throw new KernelTreeError(
      `Cannot use config ${file}: no CONFIG_ lines in it; pass --config a kernel .config or config.gz`,
    )
  }
  return data
}

export function configGz(config: Buffer): Buffer {
  return gzipSync(config, { level: 9 })
}
