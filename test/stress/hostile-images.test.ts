// Hostile and broken images: every one must be refused by `kheadersfs verify` and by `kheadersfs
// mount` with one clear line and exit 4 (3 when absent), leaving no mount and no daemon behind.
// Crafted images get consistent SHA256SUMS, so the checks behind the checksums are what is tested.
import { randomInt } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { gzipSync } from 'node:zlib'
import { execFileSync } from 'node:child_process'
import t from 'tap'
import { sha256 } from '../../src/image/format'
import { errorLines, runCli } from '../helpers/cli'
import { image as craft, membersOf, sums, tarOf, type ManifestJson, type Member } from '../helpers/craft-image'
import { tinyImage } from '../helpers/images'
import { daemonPids, isMounted, mountDirs } from '../helpers/mount'
import { record, size } from '../helpers/stress'
import { tmpDir } from '../helpers/tmp'

interface Case {
  name: string
  bytes: Buffer
  /** What the one-line error must say. */
  why: RegExp
}

t.test('hostile and broken images are refused by verify and mount', async (t) => {
  const valid = readFileSync(await tinyImage(t))
  const { manifest, config, headers } = membersOf(valid)
  const dir = tmpDir(t)
  const m = (): ManifestJson => structuredClone(manifest)
  const members = (): Member[] => [
    ['manifest.json', Buffer.from(JSON.stringify(manifest))],
    ['config.gz', config],
    ['kheaders.tar.xz', headers],
  ]
  const withSums = async (list: Member[]): Promise<Buffer> =>
    tarOf([...list, ['SHA256SUMS', sums(list.filter(([n]) => n !== 'evil'))]])

  const cases: Case[] = []
  const add = (name: string, bytes: Buffer, why: RegExp): void => {
    cases.push({ name, bytes, why })
  }

  // Damage of the file itself.
  const cuts = size(20, 8)
  for (let i = 0; i < cuts; i++) {
    const at = i === 0 ? 0 : i === 1 ? 511 : i === 2 ? valid.length - 1 : Math.floor((valid.length * i) / cuts)
    add(
      `truncated to ${at} of ${valid.length} bytes`,
      valid.subarray(0, at),
      /truncated|missing member|end-of-archive|padding|not a/,
    )
  }
  const flips = size(50, 12)
  for (let i = 0; i < flips; i++) {
    const b = Buffer.from(valid)
    const at = randomInt(0, b.length)
    b[at] ^= 1 << randomInt(0, 8)
    add(
      `bit flip at byte ${at}`,
      b,
      /checksum|SHA256SUMS|padding|end-of-archive|corrupted|not ustar|expected|size field|truncated|regular file|missing member|prefix|not valid|manifest/,
    )
  }

  // Not an image at all.
  add('empty file', Buffer.alloc(0), /truncated/)
  add('text file', Buffer.from('#!/bin/sh\necho hello\n'.repeat(50)), /bad checksum|truncated/)
  add('gzip file', gzipSync(Buffer.alloc(100_000)), /bad checksum|truncated/)
  add(
    'a plain tar of other files',
    await tarOf([['README', Buffer.from('hi')]]),
    /member 1 is "README", expected manifest\.json/,
  )
  add('the headers archive instead of an image', headers, /bad checksum|truncated/)

  // Format identity and version.
  add(
    'wrong format identifier',
    await craft({ ...m(), format: 'squashfs' }, config, headers),
    /format "squashfs", not "kheadersfs-image"/,
  )
  add(
    'future format version 2.0',
    await craft({ ...m(), version: '2.0' }, config, headers),
    /image format version 2\.0 is not supported \(this kheadersfs reads 1\.x\); upgrade kheadersfs/,
  )
  add(
    'version that is not a number',
    await craft({ ...m(), version: 'latest' }, config, headers),
    /bad version "latest"/,
  )

  // Sizes the file cannot back.
  const big = m()
  big.payloads['kheaders.tar.xz'].size = headers.length + 1_000_000
  add(
    'manifest claims a payload larger than its member',
    await craft(big, config, headers),
    /kheaders\.tar\.xz is \d+ bytes but the manifest says \d+/,
  )
  const huge = m()
  huge.payloads['kheaders.tar.xz'].uncompressedSize = 5e12
  add('manifest claims a 5 TB archive', await craft(huge, config, headers), /bad uncompressedSize/)
  const hugeFile = m()
  hugeFile.files[hugeFile.files.length - 1][3] = 2 ** 40
  add('file table claims a 1 TiB file', await craft(hugeFile, config, headers), /outside the archive/)
  const many = m()
  many.counts.files = 1e9
  add('counts claim a billion files', await craft(many, config, headers), /bad counts\.files/)
  const lying = m()
  lying.payloads['kheaders.tar.xz'].uncompressedSize += 512
  add(
    'manifest and xz index disagree on the tar size',
    await craft(lying, config, headers),
    /holds \d+ bytes of tar, the manifest says \d+/,
  )
  const member = Buffer.from(valid)
  member.write('77777777777\0', 124, 'latin1') // the size field of manifest.json's header: 8 GiB
  fixChecksum(member, 0)
  add('tar header claims an 8 GiB member', member, /truncated: manifest\.json needs \d+ bytes/)

  // Members: duplicates, extras, strange names.
  add(
    'duplicate manifest.json',
    await withSums([members()[0], ...members()]),
    /duplicate member manifest\.json|member 2 is "manifest\.json"/,
  )
  add(
    'unexpected member after SHA256SUMS',
    Buffer.concat([(await withSums(members())).subarray(0, -1024), await tarOf([['evil', Buffer.from('x')]])]),
    /unexpected member "evil" after SHA256SUMS/,
  )
  add(
    'unexpected member in the middle',
    await withSums([members()[0], ['evil', Buffer.from('rm -rf /')], members()[1], members()[2]]),
    /member 2 is "evil", expected config\.gz/,
  )
  add(
    'member named ../kheaders.tar.xz',
    await withSums([members()[0], members()[1], ['../kheaders.tar.xz', headers]]),
    /member 3 is "\.\.\/kheaders\.tar\.xz", expected kheaders\.tar\.xz/,
  )
  add(
    'member named /etc/passwd',
    await withSums([members()[0], ['/etc/passwd', config], members()[2]]),
    /member 2 is "\/etc\/passwd", expected config\.gz/,
  )
  for (const bad of ['../etc/passwd', '/etc/shadow', 'include/../../x', 'a//b', '.']) {
    const mm = m()
    mm.files[mm.files.length - 1][0] = bad
    add(`file table path ${JSON.stringify(bad)}`, await craft(mm, config, headers), /unsafe path/)
  }
  const link = m()
  link.files.push(['include/zz-escape', 'l', link.files[link.files.length - 1][2] + 512, 0, 0o777, ''])
  add(
    'symlink without a target',
    await craft(link, config, headers),
    /bad link target|counts do not match|outside the archive/,
  )

  // Payloads that pass their checksums but are not what they claim.
  const notXz = gzipSync(Buffer.alloc(4096))
  const nx = m()
  nx.payloads['kheaders.tar.xz'] = { ...nx.payloads['kheaders.tar.xz'], size: notXz.length, sha256: sha256(notXz) }
  add('kheaders.tar.xz is gzip, not xz', await craft(nx, config, notXz), /kheaders\.tar\.xz is not a usable \.xz file/)
  const otherXz = execFileSync('xz', ['-c', '--check=crc64'], { input: Buffer.alloc(3 << 20) })
  const ox = m()
  ox.payloads['kheaders.tar.xz'] = { ...ox.payloads['kheaders.tar.xz'], size: otherXz.length, sha256: sha256(otherXz) }
  add(
    'kheaders.tar.xz is another archive',
    await craft(ox, config, otherXz),
    /holds \d+ bytes of tar, the manifest says \d+|block size/,
  )

  let passed = 0
  let tried = 0
  for (const c of cases) {
    const file = path.join(dir, 'bad.img')
    writeFileSync(file, c.bytes)
    const v = await runCli(['verify', file])
    const d = mountDirs(t)
    const mnt = await runCli(['mount', '--force', '--image', file, d.mnt], { env: d.env })
    const ok = [
      t.equal(v.code, 4, `${c.name}: verify exits 4`),
      t.match(errorLines(v.stderr).join('\n'), c.why, `${c.name}: verify says why`),
      t.equal(mnt.code, 4, `${c.name}: mount exits 4`),
      t.equal(
        errorLines(mnt.stderr).length,
        1,
        `${c.name}: mount says one line (${errorLines(mnt.stderr).join(' | ')})`,
      ),
      t.match(
        errorLines(mnt.stderr)[0] ?? '',
        /^kheadersfs: Cannot (use|read|load) image .*bad\.img: /,
        `${c.name}: mount names the image`,
      ),
      t.match(errorLines(mnt.stderr)[0] ?? '', c.why, `${c.name}: mount says why`),
      t.notOk(isMounted(d.mnt), `${c.name}: nothing mounted`),
      t.same(daemonPids(d.runDir), [], `${c.name}: no daemon`),
    ].every(Boolean)
    tried++
    if (ok) passed++
  }
  record({
    area: 'Hostile input',
    name: 'Images: truncated, bit flips, not a tar, wrong format/version, absurd sizes, duplicate/unexpected members, unsafe names, lying payloads — refused by verify and mount, no mount left',
    tried,
    passed,
    detail: `${cuts} truncations, ${flips} bit flips, ${cases.length - cuts - flips} crafted`,
  })
  t.equal(passed, tried)
})

/** Recompute the ustar checksum of the header at `off` after editing it. */
function fixChecksum(b: Buffer, off: number): void {
  b.fill(0x20, off + 148, off + 156)
  let sum = 0
  for (let i = 0; i < 512; i++) sum += b[off + i]
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', off + 148, 'latin1')
}
