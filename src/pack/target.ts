// The machine a kernel tree was built for, and whether the programs in it run there. The kernel's
// own vmlinux says it best; a headers package has none, so the architecture directory and the
// .config (64-bit, endianness) say it instead.
import { existsSync } from 'node:fs'
import path from 'node:path'
import type { TargetInfo } from '../image/format'
import { describeElf, readElfId, sameMachine, type ElfId } from './elf'
import type { SourceEntry } from './entries'
import type { Kernel } from './kernel'

export interface Target extends ElfId {
  /** Where the answer came from, for messages and the manifest. */
  from: 'vmlinux' | 'config'
}

/**
 * The kernel's target machine (from the vmlinux in `objtree`, when there is one), or undefined for an
 * architecture this table does not know.
 */
export function kernelTarget(
  kernel: Pick<Kernel, 'arch'> & { config: Buffer | undefined; objtree?: string },
): Target | undefined {
  const vmlinux = kernel.objtree === undefined ? undefined : path.join(kernel.objtree, 'vmlinux')
  if (vmlinux !== undefined && existsSync(vmlinux)) {
    const id = readElfId(vmlinux)
    if (id !== undefined) return { ...id, from: 'vmlinux' }
  }
  const id = targetFromConfig(kernel.arch, kernel.config?.toString('latin1') ?? '')
  return id && { ...id, from: 'config' }
}

/** The target as the manifest records it. */
export function targetInfo(target: Target): TargetInfo {
  return {
    machine: target.machine,
    bits: target.bits,
    endian: target.endian,
    name: describeElf(target),
    from: target.from,
  }
}

export function targetFromConfig(arch: string, config: string): ElfId | undefined {
  const y = (sym: string): boolean => new RegExp(`^CONFIG_${sym}=y$`, 'm').test(config)
  const le = (bigUnlessLittle: boolean): 'little' | 'big' =>
    bigUnlessLittle ? (y('CPU_LITTLE_ENDIAN') ? 'little' : 'big') : y('CPU_BIG_ENDIAN') ? 'big' : 'little'
  switch (arch) {
    case 'x86':
      return y('X86_64') || y('64BIT')
        ? { bits: 64, endian: 'little', machine: 62 }
        : { bits: 32, endian: 'little', machine: 3 }
    case 'arm64':
      return { bits: 64, endian: le(false), machine: 183 }
    case 'arm':
      return { bits: 32, endian: le(false), machine: 40 }
    case 'riscv':
      return { bits: y('64BIT') ? 64 : 32, endian: 'little', machine: 243 }
    case 'powerpc':
      return y('PPC64') ? { bits: 64, endian: le(true), machine: 21 } : { bits: 32, endian: 'big', machine: 20 }
    case 'mips':
      return { bits: y('64BIT') ? 64 : 32, endian: le(true), machine: 8 }
    case 's390':
      return { bits: 64, endian: 'big', machine: 22 }
    case 'loongarch':
      return { bits: 64, endian: 'little', machine: 258 }
    default:
      return undefined
  }
}

export interface Foreign {
  entry: SourceEntry
  elf: ElfId
}

/** Packed files that are ELF binaries for another machine than the kernel's. */
export function foreignBinaries(entries: SourceEntry[], target: ElfId): Foreign[] {
  const out: Foreign[] = []
  for (const entry of entries) {
    if (entry.type !== 'file' || entry.source === undefined || entry.strip) continue
    let elf: ElfId | undefined
    try {
      elf = readElfId(entry.source)
    } catch {
      continue // unreadable: the archiver names it with the fix ("make it readable")
    }
    if (elf !== undefined && !sameMachine(elf, target)) out.push({ entry, elf })
  }
  return out
}
