// pack knows the kernel's machine and never ships a program for another one silently: ELF
// identification against real binaries, the arch+config table, and the refusals on a tiny tree
// whose fixdep is a program for another machine.
import { spawnSync } from 'node:child_process'
import { existsSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { describeElf, parseElfId, readElfId } from '../../src/pack/elf'
import { debianCompilerPackage, findCompilerPrefix } from '../../src/pack/host-programs'
import { detectKernelTree } from '../../src/pack/kernel-tree'
import { selectFiles } from '../../src/pack/select'
import { foreignBinaries, kernelTarget, targetFromConfig } from '../../src/pack/target'
import { runCli } from '../helpers/cli'
import { tmpDir } from '../helpers/tmp'
import { tinyTree } from '../helpers/tiny-tree'

/** An ELF header for `machine` (little-endian unless said), enough for identification. */
function elfHeader(machine: number, bits: 32 | 64 = 64, endian: 'little' | 'big' = 'little'): Buffer {
  const b = Buffer.alloc(64)
  b.write('\x7fELF', 0, 'latin1')
  b[4] = bits === 64 ? 2 : 1
  b[5] = endian === 'little' ? 1 : 2
  if (endian === 'little') b.writeUInt16LE(machine, 18)
  else b.writeUInt16BE(machine, 18)
  return b
}

t.test("ELF identification: this machine's node, cross compilers' output, non-ELF files", async (t) => {
  t.same(readElfId(process.execPath), { bits: 64, endian: 'little', machine: 62 }, 'node here is x86-64')
  t.equal(describeElf(readElfId(process.execPath)!), 'x86-64 (64-bit little-endian)')
  t.equal(readElfId(__filename), undefined, 'a script is not ELF')
  t.same(parseElfId(elfHeader(20, 32, 'big')), { bits: 32, endian: 'big', machine: 20 })
  t.equal(parseElfId(elfHeader(62).subarray(0, 10)), undefined, 'too short')
  for (const [cc, machine, bits] of [
    ['aarch64-linux-gnu-gcc', 183, 64],
    ['arm-linux-gnueabihf-gcc', 40, 32],
  ] as const) {
    if (spawnSync(cc, ['--version']).status !== 0) {
      t.comment(`${cc} not installed: skipped (installed by .ci/setup --boards)`)
      continue
    }
    const dir = tmpDir(t)
    writeFileSync(path.join(dir, 'x.c'), 'int main(void) { return 0; }\n')
    t.equal(spawnSync(cc, ['-o', path.join(dir, 'x'), path.join(dir, 'x.c')]).status, 0)
    t.same(readElfId(path.join(dir, 'x')), { bits, endian: 'little', machine }, cc)
  }
})

t.test('target from arch and .config, for trees without a vmlinux', async (t) => {
  t.same(targetFromConfig('x86', 'CONFIG_X86_64=y\n'), { bits: 64, endian: 'little', machine: 62 })
  t.same(targetFromConfig('x86', 'CONFIG_X86_32=y\n'), { bits: 32, endian: 'little', machine: 3 })
  t.same(targetFromConfig('arm64', ''), { bits: 64, endian: 'little', machine: 183 })
  t.same(targetFromConfig('arm64', 'CONFIG_CPU_BIG_ENDIAN=y\n'), { bits: 64, endian: 'big', machine: 183 })
  t.same(targetFromConfig('arm', 'CONFIG_ARM=y\n'), { bits: 32, endian: 'little', machine: 40 })
  t.same(targetFromConfig('powerpc', 'CONFIG_PPC64=y\nCONFIG_CPU_LITTLE_ENDIAN=y\n'), {
    bits: 64,
    endian: 'little',
    machine: 21,
  })
  t.same(targetFromConfig('riscv', 'CONFIG_64BIT=y\n'), { bits: 64, endian: 'little', machine: 243 })
  t.equal(targetFromConfig('um', ''), undefined, 'unknown arch: no check rather than a wrong one')
})

t.test('vmlinux, when the tree has one, says what the kernel is for', async (t) => {
  const dir = tinyTree(tmpDir(t), { extra: { '.config': 'CONFIG_X86_64=y\nCONFIG_MODULES=y\n' } })
  t.equal(kernelTarget(detectKernelTree({ kernel: dir, env: {} }))?.machine, 62)
  writeFileSync(path.join(dir, 'vmlinux'), elfHeader(3, 32))
  t.same(kernelTarget(detectKernelTree({ kernel: dir, env: {} })), {
    bits: 32,
    endian: 'little',
    machine: 3,
    from: 'vmlinux',
  })
})

t.test('a program for another machine is found, and pack refuses or names the compiler to install', async (t) => {
  const dir = tinyTree(tmpDir(t), { extra: { '.config': 'CONFIG_X86_64=y\nCONFIG_MODULES=y\n' } })
  writeFileSync(path.join(dir, 'scripts/basic/fixdep'), elfHeader(183), { mode: 0o755 })
  const tree = detectKernelTree({ kernel: dir, env: {} })
  const foreign = foreignBinaries((await selectFiles(tree, 'module-build')).entries, kernelTarget(tree)!)
  t.same(
    foreign.map((f) => f.entry.path),
    ['scripts/basic/fixdep'],
  )

  const out = path.join(tmpDir(t), 'x.img')
  const refused = await runCli(['pack', '--kernel', dir, '--no-rebuild', '-o', out])
  t.equal(refused.code, 7, refused.stderr)
  t.match(
    refused.stderr,
    /Cannot pack .* for x86-64 \(64-bit little-endian\): scripts\/basic\/fixdep is built for AArch64 \(64-bit little-endian\), so "make M=" on the board would fail with "Exec format error"; drop --no-rebuild/,
  )
  t.notOk(existsSync(out), 'no image')

  const noCompiler = await runCli(['pack', '--kernel', dir, '--cross-compile', 'x86_64-nowhere-linux-gnu-', '-o', out])
  t.equal(noCompiler.code, 7, noCompiler.stderr)
  t.match(
    noCompiler.stderr,
    /Cannot rebuild the kernel's host programs for x86-64 \(64-bit little-endian\): x86_64-nowhere-linux-gnu-gcc is not installed; apt-get install gcc-x86_64-nowhere-linux-gnu \(or pass --cross-compile PREFIX\)/,
  )
  t.notOk(existsSync(out), 'no image')

  const unnamed = await runCli(['pack', '--kernel', dir, '-o', out], { env: { ...process.env, CROSS_COMPILE: '' } })
  t.equal(unnamed.code, 7, unnamed.stderr)
  t.match(
    unnamed.stderr,
    /no cross compiler named; pass --cross-compile PREFIX \(e\.g\. aarch64-linux-gnu-\) or set CROSS_COMPILE/,
  )

  const headers = await runCli(['pack', '--kernel', dir, '--profile', 'headers', '-o', out])
  t.equal(headers.code, 0, `--profile headers packs no programs, so needs no rebuild: ${headers.stderr}`)
})

t.test('the cross compiler: --cross-compile, $CROSS_COMPILE, or the one .config records', async (t) => {
  const dir = tinyTree(tmpDir(t), {
    extra: {
      '.config': 'CONFIG_CC_VERSION_TEXT="aarch64-linux-gnu-gcc (Debian 12.2.0-14) 12.2.0"\nCONFIG_MODULES=y\n',
    },
  })
  const tree = detectKernelTree({ kernel: dir, env: {} })
  t.same(findCompilerPrefix(tree, undefined, {}), { prefix: 'aarch64-linux-gnu-', from: '.config' })
  t.same(findCompilerPrefix(tree, undefined, { CROSS_COMPILE: 'arm-linux-gnueabihf-' }), {
    prefix: 'arm-linux-gnueabihf-',
    from: 'CROSS_COMPILE',
  })
  t.same(findCompilerPrefix(tree, 'riscv64-linux-gnu-', { CROSS_COMPILE: 'x-' }), {
    prefix: 'riscv64-linux-gnu-',
    from: '--cross-compile',
  })
  const native = tinyTree(tmpDir(t), {
    extra: { '.config': 'CONFIG_CC_VERSION_TEXT="gcc-12 (Debian 12.2.0-14) 12.2.0"\n' },
  })
  t.equal(
    findCompilerPrefix(detectKernelTree({ kernel: native, env: {} }), undefined, {}),
    undefined,
    'a native gcc names no prefix',
  )
  t.equal(debianCompilerPackage('aarch64-linux-gnu-'), 'gcc-aarch64-linux-gnu')
  t.equal(debianCompilerPackage('arm-linux-gnueabihf-'), 'gcc-arm-linux-gnueabihf')
})
