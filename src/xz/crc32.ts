// CRC-32 (IEEE) for the xz headers, index and block checks. node:zlib has it from Node 20.15 / 22.2;
// on older Node (Debian bookworm's 18.19, Ubuntu 24.04's 18.19) lzma-native's liblzma computes it.
import zlib from 'node:zlib'

type Crc32 = (data: Uint8Array) => number

const native = (zlib as { crc32?: Crc32 }).crc32

export const crc32: Crc32 =
  native ??
  ((data) => {
    const lzma = require('lzma-native') as { crc32(data: Uint8Array): number }
    return lzma.crc32(data)
  })
