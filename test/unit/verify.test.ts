// kheadersfs verify: text and --json output of a whole image and of one whose config.gz is not gzip
// (checksums made consistent, so that only the deep check can tell), with the exit codes.
import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { gzipSync } from 'node:zlib'
import t from 'tap'
import { sha256 } from '../../src/image/format'
import { image, membersOf } from '../helpers/craft-image'
import { errorLines, runCli } from '../helpers/cli'
import { tinyImage } from '../helpers/images'
import { tmpDir } from '../helpers/tmp'

const CHECKS = ['container', 'sha256', 'manifest', 'xz', 'tar', 'gzip']

t.test('verify', async (t) => {
  const good = await tinyImage(t)
  const m = membersOf(readFileSync(good))
  const notGzip = Buffer.from('CONFIG_X86=y\n')
  m.manifest.payloads['config.gz'].size = notGzip.length
  m.manifest.payloads['config.gz'].sha256 = sha256(notGzip)
  const bad = path.join(tmpDir(t), 'bad.img')
  writeFileSync(bad, await image(m.manifest, notGzip, m.headers))

  t.test('a whole image: one ok line per check, then "verified"; exit 0', async (t) => {
    const r = await runCli(['verify', good])
    t.equal(r.code, 0, r.stderr)
    const lines = r.stdout.trimEnd().split('\n')
    t.same(
      lines.slice(0, -1).map((l) => l.slice(0, 15).trimEnd()),
      CHECKS.map((c) => `ok   ${c}`),
    )
    t.equal(lines.at(-1), `${good}: verified`)
  })

  t.test('--json: {filename, verified, checks}; exit 0', async (t) => {
    const r = await runCli(['verify', '--json', good])
    t.equal(r.code, 0, r.stderr)
    t.same(errorLines(r.stderr), [])
    const out = JSON.parse(r.stdout) as {
      filename: string
      verified: boolean
      checks: Array<{ name: string; ok: boolean; detail: string }>
    }
    t.same(Object.keys(out), ['filename', 'verified', 'checks'])
    t.equal(out.filename, good)
    t.equal(out.verified, true)
    t.same(
      out.checks.map((c) => [c.name, c.ok]),
      CHECKS.map((c) => [c, true]),
    )
    t.match(out.checks.find((c) => c.name === 'gzip')!.detail, /^config\.gz gunzips to \d+ bytes$/)
    t.equal(r.stdout, JSON.stringify(out, null, 2) + '\n', 'indented like info --json and status --json')
  })

  t.test('a failed check: FAIL line, the reason on stderr, exit 4; --json says verified: false', async (t) => {
    const text = await runCli(['verify', bad])
    t.equal(text.code, 4)
    t.match(text.stdout, /^FAIL gzip +config\.gz does not gunzip: /m)
    t.notMatch(text.stdout, /verified/)
    t.match(errorLines(text.stderr), [
      new RegExp(
        `^kheadersfs: Cannot use image ${bad}: config\\.gz does not gunzip: .*; repack it with "kheadersfs pack"$`,
      ),
    ])

    const json = await runCli(['verify', '--json', bad])
    t.equal(json.code, 4)
    const out = JSON.parse(json.stdout) as {
      filename: string
      verified: boolean
      checks: Array<{ name: string; ok: boolean; detail: string }>
    }
    t.equal(out.verified, false)
    t.same(
      out.checks.map((c) => [c.name, c.ok]),
      CHECKS.map((c) => [c, c !== 'gzip']),
    )
    t.same(errorLines(json.stderr), errorLines(text.stderr), 'the same one-line reason on stderr')
  })

  t.test(
    'an image that does not even read: the JSON report ends with the failed check; exit 4 (3: no file)',
    async (t) => {
      const dir = tmpDir(t)
      const cases: Array<[string, Buffer | undefined, number, Array<[string, boolean]>, RegExp]> = [
        [
          'truncated.img',
          readFileSync(good).subarray(0, 1000),
          4,
          [['container', false]],
          /^truncated: manifest\.json needs/,
        ],
        [
          'gzip.img',
          gzipSync(Buffer.from('not an image')),
          4,
          [['container', false]],
          /^not a kheadersfs image \(it looks like gzip data\); give an image written by "kheadersfs pack"$/,
        ],
        ['missing.img', undefined, 3, [['file', false]], /^no such file; pass the path of an image made by/],
      ]
      const flipped = Buffer.from(readFileSync(good))
      flipped[membersOf(flipped).config.byteOffset - flipped.byteOffset] ^= 1
      cases.push([
        'sha-mismatch.img',
        flipped,
        4,
        [
          ['container', true],
          ['sha256', false],
        ],
        /^config\.gz does not match its SHA256SUMS line \(corrupted\)$/,
      ])
      for (const [name, bytes, code, checks, detail] of cases) {
        const file = path.join(dir, name)
        if (bytes) writeFileSync(file, bytes)
        const r = await runCli(['verify', '--json', file])
        t.equal(r.code, code, `${name}: exit ${code}`)
        const out = JSON.parse(r.stdout) as {
          filename: string
          verified: boolean
          checks: Array<{ name: string; ok: boolean; detail: string }>
        }
        t.same(Object.keys(out), ['filename', 'verified', 'checks'], name)
        t.equal(out.filename, file)
        t.equal(out.verified, false, `${name}: verified false`)
        t.same(
          out.checks.map((c) => [c.name, c.ok]),
          checks,
          `${name}: the checks that ran, ending with the failed one`,
        )
        t.match(out.checks.at(-1)!.detail, detail, `${name}: the failed check says why`)
        t.match(errorLines(r.stderr), [/^kheadersfs: Cannot (use|read) image .*: /], `${name}: one line on stderr`)
        const text = await runCli(['verify', file])
        t.equal(text.code, code)
        t.match(text.stdout, new RegExp(`^FAIL ${checks.at(-1)![0]} +`, 'm'), `${name}: text says FAIL too`)
      }
    },
  )
})
