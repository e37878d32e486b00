import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { gzipSync } from 'node:zlib'
import { removeStaleTemps, tempPathFor } from '../../src/fs-atomic'
import { FORMAT_ID, sha256, type FileRow, type Manifest } from '../../src/image/format'
import { parseManifest, serializeManifest } from '../../src/image/manifest'
import { parseImage, type Check } from '../../src/image/read'
import { buildImage, writeImage } from '../../src/image/write'
import type { ManifestJson } from '../helpers/craft-image'
import { tmpDir } from '../helpers/tmp'

// A real .xz of 4096 bytes (what the manifest below says the tar holds), one block.
const headers = execFileSync('xz', ['-c', '--check=crc64'], { input: Buffer.alloc(4096) })
const config = Buffer.from('pretend gzip bytes')
const manifest = (over: Partial<Manifest> = {}): Manifest => ({
  format: FORMAT_ID,
  version: '1.0',
  generator: 'kheadersfs test',
  release: '6.1.0-test',
  arch: 'x86',
  profile: 'headers',
  created: '2023-11-14T22:13:20.000Z',
  epoch: 1_700_000_000,
  payloads: {
    'config.gz': { size: config.length, sha256: sha256(config), uncompressedSize: 100 },
    'kheaders.tar.xz': {
      size: headers.length,
      sha256: sha256(headers),
      uncompressedSize: 4096,
      blockSize: 1 << 20,
      preset: 6,
      check: 'crc64',
    },
  },
  counts: { files: 1, directories: 1, symlinks: 1 },
  bytes: { raw: 10, stripped: 8 },
  files: [
    { path: 'include', type: 'directory', offset: 512, size: 0, mode: 0o755 },
    { path: 'include/a.h', type: 'file', offset: 1024, size: 10, mode: 0o644 },
    { path: 'include/b.h', type: 'symlink', offset: 1536, size: 0, mode: 0o777, link: 'a.h' },
  ],
  ...over,
})
const image = (m: Manifest = manifest()) => buildImage({ manifest: serializeManifest(m), config, headers }, m.epoch)

t.test('manifest round-trips and is deterministic', async (t) => {
  const m = manifest()
  const s = serializeManifest(m)
  t.same(parseManifest(s), m)
  t.ok(serializeManifest(parseManifest(s)).equals(s))
  t.match(s.toString(), /\n {4}\["include\/b\.h","l",1536,0,511,"a\.h"\]\n/)
})

t.test('manifest validation names the bad field', async (t) => {
  const bad = (patch: (o: ManifestJson) => void, re: RegExp): void => {
    const o = JSON.parse(serializeManifest(manifest()).toString()) as ManifestJson
    patch(o)
    t.throws(() => parseManifest(Buffer.from(JSON.stringify(o))), { message: re }, re.source)
  }
  bad((o) => (o.format = 'tar'), /format "tar"/)
  bad((o) => (o.version = '2.0'), /version 2\.0 is not supported .*upgrade kheadersfs/)
  bad((o) => (o.version = 'one'), /bad version/)
  bad((o) => (o.release = '../x'), /bad release/)
  bad((o) => (o.profile = 'all'), /unknown profile/)
  bad((o) => (o.payloads['kheaders.tar.xz'].sha256 = 'x'), /bad sha256/)
  bad((o) => (o.payloads['kheaders.tar.xz'].uncompressedSize = 1e15), /bad uncompressedSize/)
  bad((o) => (o.files[1][0] = '../etc/passwd'), /unsafe path/)
  bad((o) => (o.files[1][0] = '/etc/passwd'), /unsafe path/)
  bad((o) => (o.files[1][2] = 4000), /outside the archive/)
  bad((o) => (o.files[1][2] = -1), /bad offset/)
  bad((o) => o.files.push(o.files[1]), /twice|outside/)
  bad((o) => (o.counts.files = 2), /counts do not match/)
  t.throws(() => parseManifest(Buffer.from('{')), { message: /not valid JSON/ })
  t.ok(
    parseManifest(Buffer.from(serializeManifest(manifest()).toString().replace('"1.0"', '"1.7"'))),
    'a newer minor version is read',
  )
})

t.test('manifest validation: what the daemon could trip on later is refused at load', async (t) => {
  const json = (): ManifestJson => JSON.parse(serializeManifest(manifest()).toString()) as ManifestJson
  // A row added after the others (offset in order, size 0), with the counts kept right.
  const push = (o: ManifestJson, row: FileRow): void => {
    o.files.push(row)
    o.counts[row[1] === 'f' ? 'files' : row[1] === 'd' ? 'directories' : 'symlinks']++
  }
  const parse = (patch: (o: ManifestJson) => void) => () => {
    const o = json()
    patch(o)
    return parseManifest(Buffer.from(JSON.stringify(o)))
  }
  const bad = (what: string, patch: (o: ManifestJson) => void, re: RegExp): void => {
    t.throws(parse(patch), { message: re }, what)
  }
  const good = (what: string, patch: (o: ManifestJson) => void): void => {
    t.doesNotThrow(parse(patch), what)
  }
  const rename = (p: string) => (o: ManifestJson) => (o.files[1][0] = p)

  // Bytes that are not UTF-8: toString would read them as U+FFFD, a name the image does not hold.
  const raw = Buffer.from(JSON.stringify(json()).replace('include/a.h', 'include/aX.h'))
  raw[raw.indexOf('include/aX.h') + 9] = 0xff
  t.throws(() => parseManifest(raw), { message: /^manifest\.json is not valid UTF-8$/ }, 'a 0xff byte in a path')

  bad(
    'a NUL in a name',
    rename('include/a\u0000.h'),
    /files\[1\] has an unsafe path "include\/a\\u0000\.h": a control character or bytes that are not UTF-8/,
  )
  bad(
    'an escape character in a name',
    rename('include/a\x1b[2J.h'),
    /unsafe path "include\/a\\u001b\[2J\.h": a control character/,
  )
  bad('a DEL in a name', rename('include/a\x7f.h'), /unsafe path "include\/a\x7f\.h": a control character/)
  bad(
    'an unpaired surrogate',
    rename('include/a\ud800.h'),
    /unsafe path "include\/a\\ud800\.h": a control character or bytes that are not UTF-8/,
  )
  bad('an unpaired low surrogate', rename('include/a\udc00.h'), /bytes that are not UTF-8/)
  good('a surrogate pair (U+1F600) is UTF-8', rename('include/a\u{1f600}.h'))
  bad('a name of 256 bytes', rename('include/' + 'a'.repeat(256)), /unsafe path "include\/a+": a name over 255 bytes/)
  bad('a name of 258 bytes in 86 characters', rename('include/' + '€'.repeat(86)), /a name over 255 bytes/)
  good('a name of 255 bytes', rename('include/' + 'a'.repeat(255)))
  good('a name of 255 bytes in 85 characters', rename('include/' + '€'.repeat(85)))
  bad(
    '65 components',
    rename('include/' + 'd/'.repeat(63) + 'a.h'),
    /unsafe path "include\/(d\/){63}a\.h": more than 64 directories deep/,
  )
  good('64 components', rename('include/' + 'd/'.repeat(62) + 'a.h'))
  // 16 names of 255 bytes and their 15 slashes: 4095 bytes; one more byte is over PATH_MAX.
  const long = Array.from({ length: 16 }, (_, i) => (i === 0 ? 'include' + 'n'.repeat(248) : 'n'.repeat(255))).join('/')
  good('a path of 4095 bytes', rename(long))
  bad('a path of 4096 bytes', rename(long + 'n'), /unsafe path "include[^"]*": longer than 4095 bytes/)

  for (const [what, row, mode] of [
    ['setuid file', 1, 0o4644],
    ['setgid directory', 0, 0o2755],
    ['sticky directory', 0, 0o1755],
    ['group-writable file', 1, 0o664],
    ['world-writable file', 1, 0o646],
    ['world-writable directory', 0, 0o777],
  ] as const) {
    const p = row === 0 ? 'include' : 'include/a\\.h'
    bad(
      what,
      (o) => (o.files[row][4] = mode),
      new RegExp(
        `files\\[${row}\\] gives ${p} mode ${mode.toString(8)} \\(setuid, setgid, sticky or writable by others\\)`,
      ),
    )
  }
  good('0755 file, 0555 directory', (o) => ((o.files[1][4] = 0o755), (o.files[0][4] = 0o555)))
  good('a link is 0777', (o) => (o.files[2][4] = 0o777))

  bad(
    'a link target over 4095 bytes',
    (o) => (o.files[2][5] = 'a/'.repeat(2048)),
    /files\[2\] has a bad link target "(a\/)+/,
  )
  bad(
    'a control character in a link target',
    (o) => (o.files[2][5] = 'a\n.h'),
    /files\[2\] has a bad link target "a\\n\.h"/,
  )

  bad(
    'a file that is also a parent',
    (o) => push(o, ['include/a.h/x.h', 'f', 1536, 0, 0o644]),
    /^manifest\.json lists include\/a\.h as a file and as the parent of include\/a\.h\/x\.h$/,
  )
  bad(
    'a link that is also a parent',
    (o) => push(o, ['include/b.h/x.h', 'f', 1536, 0, 0o644]),
    /lists include\/b\.h as a symlink and as the parent of include\/b\.h\/x\.h/,
  )
  bad(
    'a file that is a parent, listed after its child (build order)',
    (o) => {
      o.files.splice(1, 0, ['include/a.h/deep/x.h', 'f', 1024, 0, 0o644])
      o.counts.files++
    },
    /lists include\/a\.h as a file and as the parent of include\/a\.h\/deep\/x\.h/,
  )
  good('a directory listed after its child', (o) => {
    o.files.splice(1, 0, ['include/sub/x.h', 'f', 1024, 0, 0o644])
    push(o, ['include/sub', 'd', 1536, 0, 0o755])
    o.counts.files++
  })

  for (const release of ['..', '.', 'x', '-1', 'x6.1'])
    bad(`release ${JSON.stringify(release)}`, (o) => (o.release = release), /^manifest\.json has a bad release "/)
  for (const release of ['6.1.0-13-amd64', '6.9.0+', '5.10.0~rc1', '4.19.0_x', '6' + '1'.repeat(63)])
    good(`release ${JSON.stringify(release)}`, (o) => (o.release = release))

  const link = (target: string) => (o: ManifestJson) => (o.files[2][5] = target)
  bad(
    'a link to an absolute path',
    link('/etc/passwd'),
    /^manifest\.json has include\/b\.h, a link to \/etc\/passwd that does not resolve inside the archive: an absolute path leads out of the archive$/,
  )
  bad(
    'a link climbing out',
    link('../../etc/passwd'),
    /has include\/b\.h, a link to \.\.\/\.\.\/etc\/passwd that does not resolve inside the archive: it climbs above the archive's root/,
  )
  bad(
    'a link climbing out through another link',
    (o) => {
      o.files[2][5] = 'up/../../etc/passwd'
      push(o, ['include/up', 'l', 1536, 0, 0o777, '..'])
    },
    /has include\/b\.h, a link to up\/\.\.\/\.\.\/etc\/passwd that does not resolve inside the archive: it climbs above the archive's root \(through include\/up\)/,
  )
  bad(
    'a 2-link loop',
    (o) => {
      o.files[2][5] = 'c.h'
      push(o, ['include/c.h', 'l', 1536, 0, 0o777, 'b.h'])
    },
    /has include\/b\.h, a link to c\.h that does not resolve inside the archive: it loops: more than 40 links in a row/,
  )
  good('a dangling link inside the archive', link('../arch/none.h'))
})

t.test('image: a plain tar of manifest.json, config.gz, kheaders.tar.xz, SHA256SUMS', async (t) => {
  const img = await image()
  const img2 = await image()
  t.ok(img.equals(img2), 'deterministic')
  const parsed = parseImage(img, 'x.img')
  t.ok(parsed.headers.equals(headers) && parsed.config.equals(config))
  t.equal(parsed.headers.buffer, img.buffer, 'payloads are views of the image bytes, not copies')
  const w = tmpDir(t)
  const file = path.join(w, 'x.img')
  writeFileSync(file, img)
  t.equal(execFileSync('tar', ['-tf', file]).toString(), 'manifest.json\nconfig.gz\nkheaders.tar.xz\nSHA256SUMS\n')
  t.ok(execFileSync('tar', ['-xOf', file, 'kheaders.tar.xz']).equals(headers), 'tar -xOf recovers the headers')
  execFileSync('tar', ['-xf', file, '-C', w])
  t.match(execFileSync('sha256sum', ['-c', 'SHA256SUMS'], { cwd: w }).toString(), /kheaders\.tar\.xz: OK/)
})

t.test('image: every truncation, bit flip, reorder or extra member is refused with a reason', async (t) => {
  const img = await image()
  for (const len of [100, 511, 512, 1024, img.length - 1024, img.length - 512, img.length - 1]) {
    t.throws(
      () => parseImage(img.subarray(0, len), 'x.img'),
      { exitCode: 4, message: /^Cannot use image x\.img: .*; repack it/ },
      `truncated to ${len}`,
    )
  }
  let caught = 0
  for (let i = 0; i < 200; i++) {
    const pos = (i * 7919) % img.length
    const flipped = Buffer.from(img)
    flipped[pos] ^= 1 << (i % 8)
    try {
      parseImage(flipped, 'x.img')
    } catch (e) {
      if ((e as { exitCode?: number }).exitCode === 4) caught++
    }
  }
  t.equal(caught, 200, 'all 200 single-bit flips rejected')
  t.throws(() => parseImage(Buffer.concat([img, Buffer.from('x')]), 'x.img'), { message: /after the end-of-archive/ })
  // Truncations keep saying so, down to a few bytes of the first header's name.
  for (const len of [3, 13, 300, 511, 600]) {
    t.throws(
      () => parseImage(img.subarray(0, len), 'x.img'),
      { message: /^Cannot use image x\.img: truncated[ :]/ },
      `truncated to ${len}: says truncated`,
    )
  }
})

t.test('a file that is not an image at all says so, with what it looks like and the fix', async (t) => {
  const img = await image()
  const plainTar = execFileSync('tar', ['-cf', '-', '-C', tmpDir(t), '.'])
  const notImage = (bytes: Buffer, what: string): void => {
    const checks: Check[] = []
    t.throws(
      () => parseImage(bytes, 'x.img', { onCheck: (c) => checks.push(c) }),
      {
        exitCode: 4,
        message: `Cannot use image x.img: not a kheadersfs image (${what}); give an image written by "kheadersfs pack"`,
      },
      what,
    )
    t.same(checks, [
      {
        name: 'container',
        ok: false,
        detail: `not a kheadersfs image (${what}); give an image written by "kheadersfs pack"`,
      },
    ])
  }
  notImage(Buffer.alloc(0), 'the file is empty')
  notImage(Buffer.from('hello world\n'), 'it looks like text')
  notImage(Buffer.from('#!/bin/sh\necho hello\n'.repeat(50)), 'it looks like text')
  notImage(gzipSync(Buffer.alloc(1000)), 'it looks like gzip data')
  notImage(headers, 'it looks like xz data')
  notImage(readFileSync(process.execPath).subarray(0, 4096), 'it looks like an ELF program or library')
  notImage(Buffer.from('!<arch>\ndebian-binary   '), 'it looks like an ar archive, such as a .deb package')
  notImage(Buffer.alloc(4096), 'it looks like zero bytes where its first tar header should be')
  notImage(Buffer.from([0x80, 1, 2, 3]), 'it looks like data of another kind')
  notImage(plainTar, 'it is a tar archive whose first member is "./", not manifest.json')

  // Damage is never taken for a foreign file: no single-bit flip of the first header (its name,
  // magic, checksum) gets "not a kheadersfs image". (A few flips are no damage at all: a checksum
  // digit turned into a space, which tar's octal fields allow.)
  let foreign = 0
  for (let bit = 0; bit < 512 * 8; bit++) {
    const b = Buffer.from(img)
    b[bit >> 3] ^= 1 << (bit & 7)
    try {
      parseImage(b, 'x.img')
    } catch (e) {
      if (/not a kheadersfs image/.test((e as Error).message)) foreign++
    }
  }
  t.equal(foreign, 0, 'no flip of the first header reads as a foreign file')
})

t.test('checks are reported as they pass, and the failing one under its name', async (t) => {
  const img = await image()
  const seen = (bytes: Buffer): Array<[string, boolean]> => {
    const checks: Check[] = []
    try {
      parseImage(bytes, 'x.img', { onCheck: (c) => checks.push(c) })
    } catch {
      // the failing check is in the list
    }
    return checks.map((c) => [c.name, c.ok])
  }
  t.same(seen(img), [
    ['container', true],
    ['sha256', true],
    ['manifest', true],
  ])
  t.same(seen(img.subarray(0, 1000)), [['container', false]])
  const badSum = Buffer.from(img)
  badSum[parseImage(img, 'x.img').config.byteOffset - img.byteOffset] ^= 1
  t.same(seen(badSum), [
    ['container', true],
    ['sha256', false],
  ])
})

t.test('atomic write: never a partial file; stale temps from a killed run are removed', async (t) => {
  const w = tmpDir(t)
  const target = path.join(w, 'out.img')
  writeImage(target, Buffer.from('v1'))
  t.equal(readdirSync(w).join(','), 'out.img')
  writeFileSync(tempPathFor(target, 999_999), 'partial')
  writeFileSync(tempPathFor(target, process.ppid), 'a live writer')
  t.same(removeStaleTemps(target), [tempPathFor(target, 999_999)])
  t.ok(existsSync(tempPathFor(target, process.ppid)), 'a temp file of a live process is left alone')
  t.throws(() => writeImage(path.join(w, 'no/such/dir/x.img'), Buffer.from('x')), {
    exitCode: 8,
    message: /Cannot write image .*ENOENT.*pass -o/,
  })
})

t.test(
  'atomic write on a full filesystem: clear ENOSPC, no target, no temp',
  { skip: process.getuid?.() !== 0 && 'needs root to mount a small tmpfs' },
  async (t) => {
    const w = tmpDir(t)
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'kheadersfs-test', w])
    t.teardown(() => execFileSync('umount', [w]))
    const target = path.join(w, 'out.img')
    t.throws(() => writeImage(target, Buffer.alloc(1 << 20)), {
      exitCode: 8,
      message: /Cannot write image .*out\.img: ENOSPC: no space left on device; free some space/,
    })
    t.same(readdirSync(w), [])
  },
)
