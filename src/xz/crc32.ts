// CRC-32 (IEEE) for the xz headers, index and block checks. Headers and the index are a few bytes to
// a few kB: a table in JS does them, so the daemon does not load node:zlib (~180 kB of heap and a few
// ms of start-up) for them. Long inputs (block checks in `kheadersfs verify`) go to native code:
// node:zlib's from Node 20.15 / 22.2, on older Node (Debian 12's and Ubuntu 24.04's 18.19)
// lzma-native's liblzma.
type Crc32 = (data: Uint8Array) => number

const TABLE = new Int32Array(256)
for (let n = 0; n < 256; n++) {
  let c = n
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
  TABLE[n] = c
}

function table(data: Uint8Array): number {
  let c = -1
  for (let i = 0; i < data.length; i++) c = TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8)
  return (c ^ -1) >>> 0
}

/** Inputs longer than this are worth loading native code for. */
const SHORT = 64 * 1024
let native: Crc32 | undefined

export const crc32: Crc32 = (data) => {
  if (data.length <= SHORT) return table(data)
  native ??= (require('node:zlib') as { crc32?: Crc32 }).crc32 ?? (require('lzma-native') as { crc32: Crc32 }).crc32
  return native(data)
}
