// `kheadersfs pack --deb`: image packages checked by the real Debian tools. The Debian tree packed
// twice (two temp dirs, byte-identical .debs), read back with dpkg-deb (--info, --contents, --field,
// -x: the image inside is byte for byte a plain `pack -o` of the same tree), md5sums checked with
// md5sum -c, lintian with no E: or W:. A tiny tree for the options, the maintainer from the
// environment, and every bad input: one line, its exit code, no file (nor temp file) left.
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { defaultVersion } from '../../src/deb/names'
import { tempPathFor } from '../../src/fs-atomic'
import { imagePath } from '../../src/deb/package'
import { CLI, errorLines, run, runCli, shellStatus } from '../helpers/cli'
import { debianTree, packedImage, SKIP_NO_DEBIAN } from '../helpers/debian'
import { tmpDir } from '../helpers/tmp'
import { TINY_RELEASE, tinyTree } from '../helpers/tiny-tree'

/** No maintainer from the test runner's environment unless a test sets one. */
const CLEAN = { KHEADERSFS_LOG_LEVEL: 'error', DEBFULLNAME: '', DEBEMAIL: '', NAME: '', EMAIL: '' }
const PROJECT = JSON.parse(readFileSync(path.join(__dirname, '../../../package.json'), 'utf8')) as {
  author: string
  homepage: string
}
const canLint = spawnSync('lintian', ['--version']).status === 0 && spawnSync('dpkg-deb', ['--version']).status === 0
const NO_TOOLS = 'dpkg-deb and lintian are not installed (apt-get install dpkg lintian)'

const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex')
const field = (deb: string, name: string): string => execFileSync('dpkg-deb', ['--field', deb, name]).toString().trim()

/** lintian's E: and W: lines (none allowed), and its I: lines (reported). */
function lintian(deb: string): { bad: string[]; info: string[] } {
  const r = spawnSync('lintian', ['--tag-display-limit', '0', '-I', '-E', '--pedantic', deb], { encoding: 'utf8' })
  const lines = r.stdout.split('\n')
  return { bad: lines.filter((l) => /^[EW]: /.test(l)), info: lines.filter((l) => /^[IPX]: /.test(l)) }
}

/** `pack --deb`: exit code, the stdout's last line (the package's path) and the error lines. */
async function packDeb(args: string[], env: Record<string, string> = {}) {
  const r = await runCli(['pack', ...args, '--deb'], { env: { ...CLEAN, ...env } })
  return { ...r, deb: r.stdout.trim().split('\n').at(-1) ?? '', errors: errorLines(r.stderr) }
}

t.test(
  'tiny tree: the options, and the control fields dpkg-deb reads back',
  { skip: !canLint && NO_TOOLS },
  async (t) => {
    const w = tmpDir(t)
    const tree = tinyTree(path.join(w, 'k'))
    const out = path.join(w, 'out')
    mkdirSync(out)
    const r = await packDeb([
      '--kernel',
      tree,
      '-o',
      out,
      '--deb-name',
      'vendor-kheaders',
      '--deb-version',
      '1:6.9.0-1',
      '--deb-arch',
      'arm64',
      '--deb-maintainer',
      'Jane Doe <jane@vendor.example>',
    ])
    t.equal(r.code, 0, r.stderr)
    t.equal(
      r.deb,
      path.join(out, `vendor-kheaders-${TINY_RELEASE}_6.9.0-1_arm64.deb`),
      'the path, alone on the last line',
    )
    t.same(readdirSync(out), [path.basename(r.deb)], 'one file written, no temp file left')
    t.equal(field(r.deb, 'Package'), `vendor-kheaders-${TINY_RELEASE}`)
    t.equal(field(r.deb, 'Version'), '1:6.9.0-1')
    t.equal(field(r.deb, 'Architecture'), 'arm64')
    t.equal(field(r.deb, 'Maintainer'), 'Jane Doe <jane@vendor.example>')
    t.equal(field(r.deb, 'Enhances'), `linux-image-${TINY_RELEASE}`)
    t.equal(field(r.deb, 'Homepage'), PROJECT.homepage, 'Homepage from package.json')
    const contents = execFileSync('dpkg-deb', ['--contents', r.deb]).toString()
    t.match(
      contents,
      `./usr/share/doc/vendor-kheaders-${TINY_RELEASE}/changelog.Debian.gz`,
      'a revision: changelog.Debian.gz',
    )
    t.match(
      contents,
      `./usr/share/lintian/overrides/vendor-kheaders-${TINY_RELEASE}`,
      '-1: the override for the ITP tag',
    )
    const l = lintian(r.deb)
    t.same(l.bad, [], 'lintian: no E: or W:')
    if (l.info.length > 0) t.comment(`lintian I:/P: left: ${l.info.join(' | ')}`)

    // The maintainer: DEBFULLNAME + DEBEMAIL, DEBEMAIL alone as "Name <email>", else package.json's author.
    const cases: Array<[Record<string, string>, string]> = [
      [{ DEBFULLNAME: 'Ann Vendor', DEBEMAIL: 'ann@vendor.example' }, 'Ann Vendor <ann@vendor.example>'],
      [{ DEBEMAIL: 'Bo Vendor <bo@vendor.example>' }, 'Bo Vendor <bo@vendor.example>'],
      [{ DEBFULLNAME: 'No Mail' }, PROJECT.author],
      [{}, PROJECT.author],
    ]
    for (const [i, [env, want]] of cases.entries()) {
      const dir = path.join(w, `m${i}`)
      mkdirSync(dir)
      const m = await packDeb(['--kernel', tree, '-o', dir, '--deb-version', '1'], env)
      t.equal(m.code, 0, m.stderr)
      t.equal(field(m.deb, 'Maintainer'), want, `Maintainer with ${JSON.stringify(env)}`)
    }

    // The default version: 0~ and the image's time (SOURCE_DATE_EPOCH here), a native version.
    const dir = path.join(w, 'v')
    mkdirSync(dir)
    const v = await packDeb(['--kernel', tree, '-o', dir], { SOURCE_DATE_EPOCH: '1796000000' })
    t.equal(v.code, 0, v.stderr)
    t.equal(field(v.deb, 'Version'), defaultVersion(1796000000))
    t.match(field(v.deb, 'Version'), /^0~20261130\.\d{6}$/)
    t.equal(field(v.deb, 'Architecture'), 'i386', 'a 32-bit x86 .config: i386')
    t.match(execFileSync('dpkg-deb', ['--contents', v.deb]).toString(), /\/changelog\.gz\n/, 'native: changelog.gz')
    t.same(lintian(v.deb).bad, [], 'lintian: no E: or W: for the default version either')
  },
)

t.test('bad inputs: one line naming the fix, the exit code, no file left', async (t) => {
  const w = tmpDir(t)
  const tree = tinyTree(path.join(w, 'k'))
  const sparc = tinyTree(path.join(w, 'sparc'), {
    omit: ['arch/x86/include/generated/asm/unistd.h'],
    extra: { 'arch/sparc/include/generated/asm/unistd.h': '#define NR 1\n', 'include/generated/autoconf.h': '' },
  })
  const out = path.join(w, 'out')
  mkdirSync(out)
  writeFileSync(path.join(w, 'file'), '')
  const cases: Array<[string, string[], number, RegExp]> = [
    [
      'bad name',
      ['--kernel', tree, '-o', out, '--deb-name', 'Vendor_Image'],
      2,
      /--deb-name "Vendor_Image": .*lower-case/,
    ],
    [
      'bad version',
      ['--kernel', tree, '-o', out, '--deb-version', 'v1.0'],
      2,
      /--deb-version "v1\.0": .*starts with a digit/,
    ],
    ['bad maintainer', ['--kernel', tree, '-o', out, '--deb-maintainer', 'me'], 2, /"Name <email>"/],
    ['bad arch', ['--kernel', tree, '-o', out, '--deb-arch', 'ARM'], 2, /--deb-arch "ARM": give a Debian architecture/],
    ['unknown arch', ['--kernel', sparc, '-o', out], 2, /Debian architecture of a sparc kernel; pass --deb-arch/],
    ['output dir missing', ['--kernel', tree, '-o', path.join(w, 'nope')], 8, /nope: ENOENT.*create it or pass -o/],
    [
      'output is a file',
      ['--kernel', tree, '-o', path.join(w, 'file')],
      8,
      /file: not a directory; with --deb, -o names a directory/,
    ],
    ['inside the tree', ['--kernel', tree, '-o', tree], 2, /inside the kernel tree .* pass -o a path outside it/],
  ]
  for (const [what, args, code, re] of cases) {
    const r = await packDeb(args)
    t.equal(r.code, code, `${what}: exit ${code}: ${r.stderr}`)
    t.equal(r.errors.length, 1, `${what}: one line: ${JSON.stringify(r.errors)}`)
    t.match(r.errors[0] ?? '', re, what)
  }
  const opt = await runCli(['pack', '--kernel', tree, '-o', out, '--deb-version', '1'], { env: CLEAN })
  t.equal(opt.code, 2, '--deb-version without --deb')
  t.match(errorLines(opt.stderr), [/--deb-version is for image packages: add --deb/])
  t.same(readdirSync(out), [], 'no file in the output directory')
  t.same(
    readdirSync(tree).filter((n) => n.endsWith('.deb') || n.includes('kheadersfs-tmp')),
    [],
    'none in the tree',
  )

  if (process.getuid?.() !== 0) return
  // Not writable even for root: a read-only mount.
  const ro = path.join(w, 'ro')
  mkdirSync(ro)
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro', 'kheadersfs-test-ro', ro])
  t.teardown(() => spawnSync('umount', [ro]))
  const r = await packDeb(['--kernel', tree, '-o', ro])
  t.equal(r.code, 8, `read-only output dir: ${r.stderr}`)
  t.match(r.errors, [/ro: EROFS.*pass -o a writable directory/])
  t.same(readdirSync(ro), [], 'nothing written')
})

t.test('a temp .deb left by a killed pack is removed by the next pack', async (t) => {
  const w = tmpDir(t)
  const tree = tinyTree(path.join(w, 'k'))
  const out = path.join(w, 'out')
  mkdirSync(out)
  const deb = path.join(out, `kheadersfs-image-${TINY_RELEASE}_1_i386.deb`)
  writeFileSync(tempPathFor(deb, 999_999_999), 'half a package')
  const r = await packDeb(['--kernel', tree, '-o', out, '--deb-version', '1'], { KHEADERSFS_LOG_LEVEL: 'warn' })
  t.equal(r.code, 0, r.stderr)
  t.match(r.stderr, /removed a temp file left by an interrupted pack/)
  t.same(readdirSync(out), [path.basename(deb)])
})

const tree = debianTree()
if (tree === undefined) t.test('Debian kernel tree', { skip: SKIP_NO_DEBIAN }, async () => undefined)
else {
  t.test(
    "Debian's tree: reproducible, read back by dpkg-deb, the image a plain pack's, lintian-clean",
    { skip: !canLint && NO_TOOLS },
    async (t) => {
      const debs: string[] = []
      for (const n of [1, 2]) {
        const dir = tmpDir(t)
        const t0 = Date.now()
        const r = await packDeb(['--kernel', tree.objtree, '-o', dir])
        t.equal(r.code, 0, `pack --deb #${n}: ${r.stderr.slice(-2000)}`)
        t.comment(`pack --deb #${n}: ${((Date.now() - t0) / 1000).toFixed(1)} s`)
        debs.push(r.deb)
      }
      const [deb] = debs
      const pkg = `kheadersfs-image-${tree.release}`
      t.equal(path.basename(debs[1]), path.basename(deb), 'the same file name')
      t.equal(sha256(debs[1]), sha256(deb), 'two packs in two directories: byte-identical .debs')
      const version = field(deb, 'Version')
      t.equal(path.basename(deb), `${pkg}_${version}_amd64.deb`)

      // What dpkg-deb reads.
      const info = execFileSync('dpkg-deb', ['--info', deb]).toString()
      t.match(info, /^ new Debian package, version 2\.0\.$/m)
      t.match(info, /^ +\d+ bytes, +\d+ lines +control +$/m)
      t.match(info, /^ +\d+ bytes, +\d+ lines +md5sums +$/m)
      const want: Record<string, string | RegExp> = {
        Package: pkg,
        Architecture: 'amd64',
        Maintainer: PROJECT.author,
        Depends: 'kheadersfs (>= 0.1.0)',
        Enhances: `linux-image-${tree.release}`,
        Section: 'kernel',
        Priority: 'optional',
        Version: /^0~\d{8}\.\d{6}$/,
        Description: new RegExp(
          `^Linux ${tree.release} headers and config for kheadersfs\\n .*/usr/lib/kheadersfs/`,
          's',
        ),
      }
      for (const [k, v] of Object.entries(want)) {
        t.match(info, new RegExp(`^ ${k}: `, 'm'), `--info shows ${k}`)
        if (typeof v === 'string') t.equal(field(deb, k), v, k)
        else t.match(field(deb, k), v, k)
      }
      const contents = execFileSync('dpkg-deb', ['--contents', deb])
        .toString()
        .trim()
        .split('\n')
        .map((l) => l.split(/\s+/))
      const doc = `./usr/share/doc/${pkg}/`
      t.same(
        contents.map((c) => `${c[0]} ${c[1]} ${c[5]}`),
        [
          'drwxr-xr-x root/root ./',
          'drwxr-xr-x root/root ./usr/',
          'drwxr-xr-x root/root ./usr/lib/',
          'drwxr-xr-x root/root ./usr/lib/kheadersfs/',
          `-rw-r--r-- root/root ./${imagePath(tree.release)}`,
          'drwxr-xr-x root/root ./usr/share/',
          'drwxr-xr-x root/root ./usr/share/doc/',
          `drwxr-xr-x root/root ${doc}`,
          `-rw-r--r-- root/root ${doc}changelog.gz`,
          `-rw-r--r-- root/root ${doc}copyright`,
        ],
        'the members, sorted, root/root, fixed modes',
      )
      t.equal(new Set(contents.map((c) => `${c[3]} ${c[4]}`)).size, 1, 'one mtime for every member')

      // The image inside is a plain `pack -o` of the same tree, byte for byte; md5sums agree.
      const x = tmpDir(t)
      execFileSync('dpkg-deb', ['-x', deb, x])
      execFileSync('dpkg-deb', ['-e', deb, path.join(x, 'DEBIAN')])
      const plain = await packedImage(tree)
      t.equal(sha256(path.join(x, imagePath(tree.release))), sha256(plain), 'dpkg-deb -x: the image of `pack -o`')
      const md5 = await run('md5sum', ['--check', '--strict', path.join(x, 'DEBIAN/md5sums')], { cwd: x })
      t.equal(md5.code, 0, `md5sum -c DEBIAN/md5sums: ${md5.stdout}${md5.stderr}`)
      t.equal(md5.stdout.trim().split('\n').length, 3, 'md5sums lists the three files')
      const log = execFileSync('zcat', [path.join(x, doc, 'changelog.gz')]).toString()
      t.match(log, new RegExp(`^${pkg} \\(${version.replace(/[.~]/g, '\\$&')}\\) unstable; urgency=medium\n`))
      const copyright = readFileSync(path.join(x, doc, 'copyright'), 'utf8')
      t.match(copyright, /^License: GPL-2\.0-only WITH Linux-syscall-note$/m)
      t.match(copyright, new RegExp(`Upstream-Name: linux .*${tree.release}`))
      t.ok(existsSync(path.join(x, 'DEBIAN/control')))

      const l = lintian(deb)
      t.same(l.bad, [], 'lintian: no E: or W:')
      t.comment(`lintian -I --pedantic left: ${l.info.length === 0 ? 'nothing' : l.info.join(' | ')}`)
      t.comment(`sizes: image ${readFileSync(plain).length} bytes, .deb ${readFileSync(deb).length} bytes`)
    },
  )

  t.test('SIGINT while the package is built: exit 130, no .deb, no temp file', async (t) => {
    const w = tmpDir(t)
    const child = spawn(process.execPath, [CLI, 'pack', '--kernel', tree.objtree, '--deb', '-o', w], {
      env: { ...process.env, ...CLEAN, KHEADERSFS_LOG_LEVEL: 'info' },
    })
    let err = ''
    let sent = false
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString()
      if (!sent && err.includes('building the image package')) sent = child.kill('SIGINT')
    })
    const code = await new Promise<number | null>((r) => child.on('exit', (c, sig) => r(shellStatus(c, sig))))
    t.ok(sent, 'interrupted after the image was packed, while the package was built')
    t.equal(code, 130)
    t.match(err, /^kheadersfs pack: interrupted by SIGINT; no image was written$/m)
    t.same(readdirSync(w), [], 'nothing in the output directory')
  })
}
