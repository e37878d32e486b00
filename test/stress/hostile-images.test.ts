// Hostile and broken images: every one must be refused by `kheadersfs verify` and by `kheadersfs
// mount` with one clear line and exit 4 (3 when absent), leaving no mount and no daemon behind.
// Crafted images get consistent SHA256SUMS, so the checks behind the checksums are what is tested.
// The second test holds the images that the load checks let through before (the daemon then met
// them while serving): each is now refused before the mount is ready.
import { randomInt } from 'node:crypto'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { gzipSync } from 'node:zlib'
import { execFileSync } from 'node:child_process'
import t, { type Test } from 'tap'
import { sha256, type FileRow } from '../../src/image/format'
import { parseBlockHeader } from '../../src/xz/block'
import { crc32 } from '../../src/xz/crc32'
import { parseXzIndex } from '../../src/xz/xz-index'
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

  // Not an image at all: said so, with what it looks like.
  const foreign = (what: string): RegExp =>
    new RegExp(`not a kheadersfs image \\(${what}\\); give an image written by "kheadersfs pack"$`)
  add('empty file', Buffer.alloc(0), foreign('the file is empty'))
  add('text file', Buffer.from('#!/bin/sh\necho hello\n'.repeat(50)), foreign('it looks like text'))
  add('gzip file', gzipSync(Buffer.alloc(100_000)), foreign('it looks like gzip data'))
  add(
    'a plain tar of other files',
    await tarOf([['README', Buffer.from('hi')]]),
    foreign('it is a tar archive whose first member is "README", not manifest\\.json'),
  )
  add('the headers archive instead of an image', headers, foreign('it looks like xz data'))

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
  add(
    'release "../etc" (a path; refused by the release pattern before the load checks)',
    await craft({ ...m(), release: '../etc' }, config, headers),
    /has a bad release "\.\.\/etc"/,
  )
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

  const { tried, passed } = await refuseAll(t, cases, dir)
  record({
    area: 'Hostile input',
    name: 'Images: truncated, bit flips, not a tar, wrong format/version, absurd sizes, duplicate/unexpected members, unsafe names, lying payloads — refused by verify and mount, no mount left',
    tried,
    passed,
    detail: `${cuts} truncations, ${flips} bit flips, ${cases.length - cuts - flips} crafted`,
  })
  t.equal(passed, tried)
})

t.test('images that passed the load checks before and then misbehaved are refused at load', async (t) => {
  const valid = readFileSync(await tinyImage(t))
  const { manifest, config, headers } = membersOf(valid)
  const dir = tmpDir(t)
  const m = (): ManifestJson => structuredClone(manifest)
  const row = (mm: ManifestJson, p: string): FileRow => {
    const r = mm.files.find((f) => f[0] === p)
    if (r === undefined) throw new Error(`the tiny image has no ${p}`)
    return r
  }
  // Rows added at the end of the table: after every entry of the tar, size 0 (the tar's end-of-archive
  // blocks are still inside uncompressedSize), so offsets stay in order and inside the archive.
  const last = manifest.files[manifest.files.length - 1]
  const tail = last[2] + Math.ceil(last[3] / 512) * 512
  const withRows = (rows: FileRow[]): ManifestJson => {
    const mm = m()
    for (const r of rows) {
      mm.files.push(r)
      mm.counts[r[1] === 'f' ? 'files' : r[1] === 'd' ? 'directories' : 'symlinks']++
    }
    return mm
  }
  const file = (p: string): FileRow => [p, 'f', tail, 0, 0o644]
  const link = (p: string, target: string): FileRow => [p, 'l', tail, 0, 0o777, target]

  const cases: Case[] = []
  const add = async (name: string, mm: ManifestJson, why: RegExp, xz = headers): Promise<void> => {
    cases.push({ name, bytes: await craft(mm, config, xz), why })
  }

  // Depth. A 40,000-deep file's directory rows would hold 40,000² / 2 path components (1.6 GB of
  // manifest, past its 64 MiB limit): the file row alone, which is also past PATH_MAX. 2,000 deep
  // fits PATH_MAX, with every directory row: refused at the first row deeper than 64.
  await add(
    'a file 40,000 directories deep',
    withRows([file('d/'.repeat(40_000) + 'x.h')]),
    /has an unsafe path "(d\/){99}d[^"]*": longer than 4095 bytes/,
  )
  const dirs2000 = Array.from({ length: 2000 }, (_, i): FileRow => ['d/'.repeat(i) + 'd', 'd', tail, 0, 0o755])
  await add(
    'a file 2,000 directories deep, with its 2,000 directory rows',
    withRows([...dirs2000, file('d/'.repeat(2000) + 'x.h')]),
    new RegExp(
      `files\\[${manifest.files.length + 64}\\] has an unsafe path "(d/){64}d": more than 64 directories deep`,
    ),
  )
  await add(
    'a path 65 components deep',
    withRows([file('include/' + 'd/'.repeat(63) + 'x.h')]),
    /has an unsafe path "include\/(d\/){63}x\.h": more than 64 directories deep/,
  )

  // Modes a read-only tree of headers never needs.
  for (const [what, p, mode] of [
    ['setuid file (04644)', 'include/linux/kernel.h', 0o4644],
    ['setgid directory (02755)', 'include/linux', 0o2755],
    ['sticky directory (01755)', 'include', 0o1755],
    ['world-writable file (0666)', 'include/linux/types.h', 0o666],
    ['group-writable file (0664)', 'Makefile', 0o664],
  ] as const) {
    const mm = m()
    row(mm, p)[4] = mode
    await add(
      what,
      mm,
      new RegExp(`gives ${esc(p)} mode ${mode.toString(8)} ${esc('(setuid, setgid, sticky or writable by others)')}`),
    )
  }

  await add(
    'a name that is both a file and a parent directory',
    withRows([file('include/linux/kernel.h/x.h')]),
    /lists include\/linux\/kernel\.h as a file and as the parent of include\/linux\/kernel\.h\/x\.h/,
  )

  for (const release of ['..', 'x', '-x', '.6.1']) {
    await add(
      `release ${JSON.stringify(release)}`,
      { ...m(), release },
      new RegExp(`has a bad release ${esc(JSON.stringify(release))}`),
    )
  }

  // Names.
  const renamed = (p: string): ManifestJson => {
    const mm = m()
    row(mm, 'include/linux/types.h')[0] = p
    return mm
  }
  await add(
    'a name with a NUL character',
    renamed('include/linux/ty\u0000pes.h'),
    /unsafe path "include\/linux\/ty\\u0000pes\.h": a control character or bytes that are not UTF-8/,
  )
  await add(
    'a name with a newline',
    renamed('include/linux/ty\npes.h'),
    /unsafe path "include\/linux\/ty\\npes\.h": a control character/,
  )
  await add(
    'a component of 256 bytes',
    renamed('include/linux/' + 'n'.repeat(254) + '.h'),
    /unsafe path "include\/linux\/n+": a name over 255 bytes/, // the message cuts the path at 200 characters
  )
  await add(
    'a component of 256 bytes in UTF-8 (128 two-byte characters)',
    renamed('include/linux/' + 'é'.repeat(128)),
    /unsafe path "include\/linux\/é+": a name over 255 bytes/,
  )
  await add(
    'an unpaired surrogate in a name ("\\ud800" in JSON)',
    renamed('include/linux/ty\ud800pes.h'),
    /unsafe path "include\/linux\/ty\\ud800pes\.h": a control character or bytes that are not UTF-8/,
  )
  // The bytes themselves: JSON.parse after toString('utf8') would read 0xff as U+FFFD, a name the
  // image does not hold.
  const json = Buffer.from(JSON.stringify(renamed('include/linux/tyXpes.h')))
  json[json.indexOf('tyXpes.h') + 2] = 0xff
  const notUtf8: [string, Buffer][] = [
    ['manifest.json', json],
    ['config.gz', config],
    ['kheaders.tar.xz', headers],
  ]
  cases.push({
    name: 'manifest.json with a 0xff byte inside a path',
    bytes: await tarOf([...notUtf8, ['SHA256SUMS', sums(notUtf8)]]),
    why: /manifest\.json is not valid UTF-8/,
  })

  // Symbolic links that lead out of the archive.
  const out = (from: string, to: string, why: string): RegExp =>
    new RegExp(esc(`has ${from}, a link to ${to} that does not resolve inside the archive: ${why}`))
  await add(
    'a link to an absolute path',
    withRows([link('include/linux/passwd.h', '/etc/passwd')]),
    out('include/linux/passwd.h', '/etc/passwd', 'an absolute path leads out of the archive'),
  )
  await add(
    'a link to ../../.. (climbs out)',
    withRows([link('include/linux/up.h', '../../..')]),
    out('include/linux/up.h', '../../..', "it climbs above the archive's root"),
  )
  await add(
    'a link climbing out through another link (include/up -> .., include/x.h -> up/../../etc/passwd)',
    withRows([link('include/up', '..'), link('include/x.h', 'up/../../etc/passwd')]),
    out('include/x.h', 'up/../../etc/passwd', "it climbs above the archive's root (through include/up)"),
  )
  await add(
    'a link through a link to an absolute path (include/etc -> /etc, include/x.h -> etc/passwd)',
    withRows([link('include/x.h', 'etc/passwd'), link('include/etc', '/etc')]),
    out('include/x.h', 'etc/passwd', 'it goes through include/etc, a link to the absolute /etc'),
  )
  await add(
    'a 2-link loop (include/a.h -> b.h, include/b.h -> a.h)',
    withRows([link('include/a.h', 'b.h'), link('include/b.h', 'a.h')]),
    out('include/a.h', 'b.h', 'it loops: more than 40 links in a row'),
  )

  // A block header the index agrees with but that is damaged (sha256s recomputed): before, such an
  // image mounted and every read of the block failed; now the header is checked at load.
  const block = parseXzIndex(headers).blocks[0]
  const reheader = async (name: string, edit: (xz: Buffer, props: number) => void, why: RegExp): Promise<void> => {
    const xz = Buffer.from(headers)
    // The LZMA2 filter's one-byte properties, after its ID (0x21) and properties size (1).
    const props = parseBlockHeader(xz, block.fileOffset).filters[0].props.byteOffset - xz.byteOffset
    edit(xz, props)
    const mm = m()
    mm.payloads['kheaders.tar.xz'].sha256 = sha256(xz)
    await add(name, mm, why, xz)
  }
  await reheader(
    'a block header byte changed (the LZMA2 dictionary property)',
    (xz, props) => (xz[props] ^= 0x01),
    /kheaders\.tar\.xz is not a usable \.xz file \(xz: block header at byte \d+: CRC32 mismatch\)/,
  )
  await reheader(
    'a block header with another filter and its CRC32 recomputed',
    (xz, props) => {
      xz[props - 2] = 0x04 // x86 BCJ instead of LZMA2
      const crcAt = block.fileOffset + block.headerSize - 4
      xz.writeUInt32LE(crc32(xz.subarray(block.fileOffset, crcAt)), crcAt)
    },
    /kheaders\.tar\.xz is not a usable \.xz file \(xz: block 0 at byte \d+: filter chain 0x4 is not supported/,
  )

  const { tried, passed } = await refuseAll(t, cases, dir)
  record({
    area: 'Hostile input',
    name: 'Images that passed the load checks before and then misbehaved (deep trees, setuid/setgid/sticky/writable modes, a file that is also a parent, releases that are not releases, NUL/control/non-UTF-8/overlong names, links out of the archive or in a loop, a damaged xz block header): refused at load by verify and mount, no mount, daemon or state file left',
    tried,
    passed,
    detail: `${cases.length} crafted`,
  })
  t.equal(passed, tried)
})

/**
 * Verify and mount each image: both exit 4 with one line saying why; nothing is mounted, no daemon
 * runs for the mountpoint, and the run directory holds no state (.json) or pid (.pid) file.
 */
async function refuseAll(t: Test, cases: Case[], dir: string): Promise<{ tried: number; passed: number }> {
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
      t.equal(errorLines(v.stderr).length, 1, `${c.name}: verify says one line (${errorLines(v.stderr).join(' | ')})`),
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
      t.same(processesFor(d.mnt), [], `${c.name}: no process serves the mountpoint`),
      t.same(stateFiles(d.runDir), [], `${c.name}: no state or pid file`),
    ].every(Boolean)
    tried++
    if (ok) passed++
  }
  return { tried, passed }
}

/** Pids whose command line names `mnt` (a daemon started for it). */
function processesFor(mnt: string): number[] {
  const out: number[] = []
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue
    try {
      if (readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').includes(mnt)) out.push(Number(p))
    } catch {
      // gone
    }
  }
  return out
}

/** The daemon's state and pid files in `runDir` (its log may stay: it says why the load failed). */
function stateFiles(runDir: string): string[] {
  try {
    return readdirSync(runDir).filter((f) => f.endsWith('.json') || f.endsWith('.pid'))
  } catch {
    return []
  }
}

/** `s` as a regular expression that matches exactly it. */
function esc(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
}

/** Recompute the ustar checksum of the header at `off` after editing it. */
function fixChecksum(b: Buffer, off: number): void {
  b.fill(0x20, off + 148, off + 156)
  let sum = 0
  for (let i = 0; i < 512; i++) sum += b[off + i]
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', off + 148, 'latin1')
}
