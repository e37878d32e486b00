import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { removeStaleTemps, tempPathFor } from '../../src/fs-atomic'
import { FORMAT_ID, sha256, type Manifest } from '../../src/image/format'
import { parseManifest, serializeManifest } from '../../src/image/manifest'
import { parseImage } from '../../src/image/read'
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
  for (const len of [0, 100, 511, 512, 1024, img.length - 1024, img.length - 512, img.length - 1]) {
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
  t.throws(() => parseImage(Buffer.alloc(4096), 'x.img'), { message: /missing member manifest\.json/ })
  t.throws(() => parseImage(Buffer.from('hello world'.repeat(100)), 'x.img'), { message: /bad checksum/ })
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
