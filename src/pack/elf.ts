// ELF identification: which machine a binary runs on. A cross-built kernel tree's scripts/ host
// programs (fixdep, modpost, genksyms) are for the build host; on the board `make M=` then dies
// with "Exec format error". pack compares every ELF file it packs with the kernel's own target.
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs'

export interface ElfId {
  /** 32 or 64 (EI_CLASS). */
  bits: 32 | 64
  endian: 'little' | 'big'
  /** e_machine: 62 x86-64, 183 AArch64, 40 ARM, 3 i386, 243 RISC-V, ... */
  machine: number
}

/** Readable names for the machines kernels are built for (elf.h EM_*). */
const MACHINES: Record<number, string> = {
  3: 'i386',
  8: 'MIPS',
  20: 'PowerPC',
  21: 'PowerPC64',
  22: 'S/390',
  40: 'ARM',
  62: 'x86-64',
  183: 'AArch64',
  243: 'RISC-V',
  258: 'LoongArch',
}

export function describeElf(id: ElfId): string {
  const name = MACHINES[id.machine] ?? `ELF machine ${id.machine}`
  return `${name} (${id.bits}-bit ${id.endian}-endian)`
}

/** Parse an ELF identification from a file's first bytes; undefined when it is not ELF. */
export function parseElfId(head: Uint8Array): ElfId | undefined {
  if (head.length < 20 || head[0] !== 0x7f || head[1] !== 0x45 || head[2] !== 0x4c || head[3] !== 0x46) return undefined
  const bits = head[4] === 1 ? 32 : head[4] === 2 ? 64 : undefined
  const endian = head[5] === 1 ? 'little' : head[5] === 2 ? 'big' : undefined
  if (bits === undefined || endian === undefined) return undefined
  const machine = endian === 'little' ? head[18] | (head[19] << 8) : (head[18] << 8) | head[19]
  return { bits, endian, machine }
}

/** The ELF identification of a file, or undefined when it is not an ELF file (scripts, text). */
export function readElfId(file: string): ElfId | undefined {
  // Never block on a FIFO swapped in after selection; only a regular file is read (links are
  // followed: vmlinux or a program may be one, and the archiver re-checks what it reads).
  const fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK)
  try {
    if (!fstatSync(fd).isFile()) return undefined
    const head = Buffer.alloc(20)
    const n = readSync(fd, head, 0, 20, 0)
    return parseElfId(head.subarray(0, n))
  } finally {
    closeSync(fd)
  }
}

export function sameMachine(a: ElfId, b: ElfId): boolean {
  return a.machine === b.machine && a.bits === b.bits && a.endian === b.endian
}
