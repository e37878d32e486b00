// Synthetic input for the xz tests.

/** Deterministic header-like text: compressible, but not so much that blocks get tiny. */
export function headerText(size: number, seed = 1): Buffer {
  const parts: string[] = []
  let n = 0
  let x = seed
  while (n < size) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0
    const line = `#define CONFIG_${(x >>> 8).toString(36).toUpperCase()}_${n % 97} 0x${x.toString(16)}\n`
    parts.push(line)
    n += line.length
  }
  return Buffer.from(parts.join('')).subarray(0, size)
}
