// src/deb/ pieces on their own: the ar container as binutils' ar reads it, Policy's name and version
// rules, and the kernel arch → Debian architecture table.
import { spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { arArchive } from '../../src/deb/ar'
import { checkVersion, debianArch, packageName } from '../../src/deb/names'
import { tmpDir } from '../helpers/tmp'

t.test('ar: binutils ar lists and extracts the members, odd sizes padded', async (t) => {
  const w = tmpDir(t)
  const file = path.join(w, 'x.a')
  const members = [
    { name: 'debian-binary', data: Buffer.from('2.0\n') },
    { name: 'odd', data: Buffer.from('abc') },
    { name: 'control.tar.xz', data: Buffer.alloc(1000, 7) },
  ]
  const a = arArchive(members, 1796000000)
  t.equal(a.length, 8 + 3 * 60 + 4 + 4 + 1000, 'magic, three headers, data, one pad byte')
  writeFileSync(file, a)
  const ar = spawnSync('ar', ['tv', file], { encoding: 'utf8' })
  if (ar.status !== 0) return void t.comment(`no binutils ar, listing not checked: ${ar.stderr}`)
  t.match(
    ar.stdout,
    /^rw-r--r-- 0\/0 +4 .* debian-binary\nrw-r--r-- 0\/0 +3 .* odd\nrw-r--r-- 0\/0 +1000 .* control\.tar\.xz\n$/,
  )
  t.equal(spawnSync('ar', ['x', file, 'odd'], { cwd: w }).status, 0)
  t.equal(readFileSync(path.join(w, 'odd'), 'utf8'), 'abc')
  t.throws(() => arArchive([{ name: 'a/b', data: Buffer.alloc(0) }], 0), /bad ar member name/)
})

t.test('names and versions', async (t) => {
  t.equal(packageName('kheadersfs-image', '6.1.0-18-arm64'), 'kheadersfs-image-6.1.0-18-arm64')
  t.equal(packageName('kheadersfs-image', '6.6.51+rpt-rpi-v8'), 'kheadersfs-image-6.6.51+rpt-rpi-v8')
  t.equal(packageName('k', '6.1.0_Custom~rc1'), 'k-6.1.0-custom+rc1', 'upper case, _ and ~ made valid')
  for (const bad of ['Kheaders', 'k_image', '-k', 'k-', ''])
    t.throws(() => packageName(bad, '6.1'), { name: 'UsageError' }, `prefix ${JSON.stringify(bad)}`)
  for (const good of ['1', '6.1.76-1', '1:6.6.51-1+rpt3', '0~20261130.000000', '6.1-rc1-1', '2:1.0'])
    t.equal(checkVersion(good), good)
  for (const bad of ['v1', '1.0-', '1:a', 'a:1', '1.0_1', '1 2', ''])
    t.throws(() => checkVersion(bad), { name: 'UsageError' }, `version ${JSON.stringify(bad)}`)
})

t.test('Debian architecture of a kernel', async (t) => {
  const target = (bits: 32 | 64, endian: 'little' | 'big' = 'little') => ({
    machine: 0,
    bits,
    endian,
    name: '',
    from: 'config' as const,
  })
  const cases: Array<[string, ReturnType<typeof target> | undefined, string | undefined]> = [
    ['arm64', target(64), 'arm64'],
    ['arm64', target(64, 'big'), undefined],
    ['arm', target(32), 'armhf'],
    ['x86', target(64), 'amd64'],
    ['x86', target(32), 'i386'],
    ['x86', undefined, undefined],
    ['riscv', target(64), 'riscv64'],
    ['powerpc', target(64), 'ppc64el'],
    ['powerpc', target(64, 'big'), 'ppc64'],
    ['s390', target(64, 'big'), 's390x'],
    ['loongarch', target(64), 'loong64'],
    ['mips', target(64), 'mips64el'],
    ['sparc', undefined, undefined],
  ]
  for (const [arch, tg, want] of cases) t.equal(debianArch({ arch, target: tg }), want, `${arch} ${JSON.stringify(tg)}`)
})
