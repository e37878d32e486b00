// `npm run release` (packaging/release.sh): the release of the last commit, made twice — in this checkout
// and in a fresh clone of it at another path — must be the same bytes (SHA256SUMS equal, each file checks).
// The set is complete (a .deb per Debian target, the npm tarball, notes, sums), the notes carry
// CHANGELOG.md's section and describe every file, and a distributor's metadata override reaches the
// package's control file, copyright and app. A version with no CHANGELOG.md section is refused with
// one line, and nothing is left in the release directory.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { ROOT } from '../helpers/cli'
import { tmpDir } from '../helpers/tmp'

const VERSION = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version
const tools = ['dpkg-deb', 'lintian', 'git', 'npm'].filter(
  (c) => spawnSync('sh', ['-c', `command -v ${c}`]).status !== 0,
)
const head = spawnSync('git', ['-C', ROOT, 'rev-parse', 'HEAD'], { encoding: 'utf8' })
const skip =
  (tools.length > 0 && `missing ${tools.join(', ')} (bash .ci/setup --boards)`) ||
  (head.status !== 0 && 'not a git checkout')

function run(cmd: string, args: string[], cwd: string, env: Record<string, string> = {}): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 64 << 20, env: { ...process.env, ...env } })
}

const tail = (s: string): string => s.split('\n').slice(-25).join('\n')

/** A clone of this checkout's HEAD at another path, sharing node_modules (the dev tools build.sh runs). */
function clone(dir: string): string {
  const c = path.join(dir, 'clone')
  const r = run('git', ['clone', '-q', '--no-hardlinks', ROOT, c], dir)
  if (r.status !== 0) throw new Error(`git clone: ${r.stderr}`)
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(c, 'node_modules'))
  return c
}

t.test('npm run release is complete and reproducible from the commit', { skip }, (t) => {
  const dir = tmpDir(t)
  const here = path.join(dir, 'release-here')
  const there = path.join(dir, 'release-clone')
  const a = run('bash', ['packaging/release.sh'], ROOT, { KHEADERSFS_RELEASE_DIR: here })
  t.equal(a.status, 0, 'release.sh in this checkout', { stderr: tail(a.stderr) })
  const c = clone(dir)
  const b = run('bash', ['packaging/release.sh'], c, { KHEADERSFS_RELEASE_DIR: there })
  t.equal(b.status, 0, 'release.sh in a fresh clone at another path', { stderr: tail(b.stderr) })
  if (a.status !== 0 || b.status !== 0) return t.end()

  const files = readdirSync(here).sort()
  for (const want of [
    `kheadersfs_${VERSION}_amd64.deb`,
    `kheadersfs_${VERSION}_arm64.deb`,
    `kheadersfs_${VERSION}_armhf.deb`,
    `kheadersfs_${VERSION}~deb12_armhf.deb`,
    ...['amd64', 'arm64', 'armhf', 'armhf-time32'].map((a) => `kheadersfs-${VERSION}-${a}.tar.gz`),
    `kheadersfs-${VERSION}.tgz`,
    'RELEASE-NOTES.md',
    'SHA256SUMS',
  ])
    t.ok(files.includes(want), `the release has ${want}`)
  t.same(readdirSync(there).sort(), files, 'both releases hold the same files')
  const sums = readFileSync(path.join(here, 'SHA256SUMS'), 'utf8')
  t.equal(readFileSync(path.join(there, 'SHA256SUMS'), 'utf8'), sums, 'SHA256SUMS are equal: the same bytes')
  const listed = sums
    .trim()
    .split('\n')
    .map((l) => l.split(/\s+/)[1])
    .sort()
  t.same(
    listed,
    files.filter((f) => f !== 'SHA256SUMS'),
    'SHA256SUMS covers every other file',
  )
  for (const d of [here, there]) {
    const check = run('sha256sum', ['-c', '--strict', 'SHA256SUMS'], d)
    t.equal(check.status, 0, `sha256sum -c SHA256SUMS in ${path.basename(d)}`, { out: check.stdout + check.stderr })
  }

  const notes = readFileSync(path.join(here, 'RELEASE-NOTES.md'), 'utf8')
  const changelog = readFileSync(path.join(ROOT, 'CHANGELOG.md'), 'utf8')
  // The released version's section, not the first one: an [Unreleased] section sits above it between releases.
  const section = new RegExp(`^## \\[${VERSION.replace(/\./g, '\\.')}\\][^\\n]*\\n[\\s\\S]*?^(- [^\\n]+)`, 'm')
  const firstItem = section.exec(changelog)?.[1]
  t.ok(firstItem !== undefined && notes.includes(firstItem), "the notes carry CHANGELOG.md's section", { firstItem })
  t.match(notes, `# kheadersfs ${VERSION}`, 'the notes name the version')
  for (const f of files.filter((x) => x !== 'SHA256SUMS' && x !== 'RELEASE-NOTES.md'))
    t.match(
      notes,
      new RegExp(`\\| \`${f.replace(/[.~]/g, '\\$&')}\` \\| [^|]+ \\| \\S[^|]* \\|`),
      `the notes describe ${f}`,
    )

  // The npm tarball installs the CLI: its package.json and compiled entry point are inside.
  const tgz = run('tar', ['-tzf', path.join(here, `kheadersfs-${VERSION}.tgz`)], dir)
  for (const f of ['package/package.json', 'package/dist/src/cli.js', 'package/LICENSE', 'package/CHANGELOG.md'])
    t.ok(tgz.stdout.split('\n').includes(f), `the npm tarball has ${f}`)
  t.notMatch(tgz.stdout, /\.map\n|\/test\//, 'no source maps or tests in the npm tarball')
  t.end()
})

t.test("a distributor's metadata reaches the package", { skip }, (t) => {
  const c = clone(tmpDir(t))
  const jane = 'Jane Vendor <jane@vendor.example>'
  const r = run('bash', ['packaging/build.sh', 'amd64'], c, {
    KHEADERSFS_MAINTAINER: jane,
    KHEADERSFS_HOMEPAGE: 'https://vendor.example/kheadersfs',
  })
  t.equal(r.status, 0, 'build.sh with KHEADERSFS_MAINTAINER and KHEADERSFS_HOMEPAGE', { stderr: tail(r.stderr) })
  const deb = path.join(c, 'build', 'packages', `kheadersfs_${VERSION}_amd64.deb`)
  if (r.status !== 0 || !existsSync(deb)) return t.end()
  const field = (f: string): string => run('dpkg-deb', ['-f', deb, f], c).stdout.trim()
  t.equal(field('Maintainer'), jane, 'Maintainer is the override')
  t.equal(field('Homepage'), 'https://vendor.example/kheadersfs', 'Homepage is the override')
  const x = path.join(c, 'x')
  t.equal(run('dpkg-deb', ['-x', deb, x], c).status, 0, 'dpkg-deb -x')
  const copyright = readFileSync(path.join(x, 'usr/share/doc/kheadersfs/copyright'), 'utf8')
  t.match(copyright, `Upstream-Contact: ${jane}`, 'the copyright file names the override')
  const app = JSON.parse(readFileSync(path.join(x, 'usr/lib/kheadersfs/app/package.json'), 'utf8')) as {
    author: string
  }
  t.equal(app.author, jane, "the packaged app's package.json carries the override")
  const changelog = run('sh', ['-c', `zcat '${x}/usr/share/doc/kheadersfs/changelog.gz'`], c).stdout
  t.match(changelog, `-- ${jane}  `, 'the Debian changelog is signed with the override')
  t.match(changelog, new RegExp(`^kheadersfs \\(${VERSION}\\) unstable`), 'the changelog starts at this version')

  const bad = run('bash', ['packaging/build.sh', 'amd64'], c, { KHEADERSFS_MAINTAINER: 'nobody' })
  t.not(bad.status, 0, 'a maintainer that is not "Name <email>" is refused')
  t.match(bad.stderr, /KHEADERSFS_MAINTAINER/, `the error names the variable: ${bad.stderr.trim().split('\n').pop()}`)
  t.end()
})

t.test('a version with no CHANGELOG.md section is not released', { skip }, (t) => {
  const c = clone(tmpDir(t))
  const pj = path.join(c, 'package.json')
  writeFileSync(pj, readFileSync(pj, 'utf8').replace(`"version": "${VERSION}"`, '"version": "99.0.0"'))
  const commit = run('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qam', 'bump'], c)
  t.equal(commit.status, 0, 'version bumped in the clone')
  const out = path.join(c, 'build', 'rel')
  const r = run('bash', ['packaging/release.sh'], c, { KHEADERSFS_RELEASE_DIR: out })
  t.not(r.status, 0, 'release.sh fails')
  t.equal(
    r.stderr
      .trim()
      .split('\n')
      .filter((l) => !l.includes('nothing left')).length,
    1,
    'one line',
  )
  t.match(r.stderr.trim(), /CHANGELOG\.md .*"## \[99\.0\.0\] - YYYY-MM-DD".*add one/, r.stderr.trim())
  t.notOk(existsSync(out), 'no release directory is left')
  t.end()
})
