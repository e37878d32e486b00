// The subset of lzma-native 8 (no bundled types) that kheadersfs uses.
declare module 'lzma-native' {
  import type { Transform } from 'node:stream'
  interface StreamOptions {
    preset?: number
    check?: number
    threads?: number
    blockSize?: number
    memlimit?: number
    flags?: number
    synchronous?: boolean
    bufsize?: number
    filters?: Array<{ id: number | string; options?: object }>
  }
  interface LzmaStream extends Transform {
    /** Input bytes the coder consumed so far; stays at the end of the data once the coder has finished. */
    totalIn(): number
  }
  export function createStream(
    coder: 'easyEncoder' | 'streamEncoder' | 'autoDecoder' | 'streamDecoder',
    options?: StreamOptions,
  ): LzmaStream
  export function createCompressor(options?: StreamOptions): Transform
  export function createDecompressor(options?: StreamOptions): Transform
  export const CHECK_CRC32: number
  export const CHECK_CRC64: number
  export const CHECK_NONE: number
  export const CHECK_SHA256: number
  export const FILTER_LZMA2: number | string
  export const PRESET_EXTREME: number
  export const MODE_FAST: number
  export const MODE_NORMAL: number
  export const MF_HC4: number
  export const MF_BT4: number
  export const version: string
}
