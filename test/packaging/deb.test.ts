// The Debian packages from packaging/build.sh (amd64, arm64, armhf, and armhf-time32 = armhf for
// 32-bit time_t systems, kheadersfs_<ver>~deb12_armhf.deb): lintian has no errors, the
// required files are there and nothing else of note (no tests, no source maps, no install-helpers
// MARK outside the app's code), every ELF file is for the package's architecture, no path of the
// build machine is inside, Depends is as specified, the manual page renders without warnings, and a
// second build of every target from cold addon caches gives the same bytes.
// build.sh is run first (its addons and node_modules are cached, so a rerun is cheap); set
// KHEADERSFS_DEB_PREBUILT=1 to test the packages already in build/packages instead. Building and
// lintian take minutes: run it as test/run.sh does, with tap's --timeout=1800
// (bash test/run.sh dist/test/packaging).
import { execFileSync, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { completionCommands } from '../../src/commands/completion'
import { MARK } from '../../src/commands/install-helpers'
import { completionScript } from '../../src/completion/scripts'
import { ROOT, runCli } from '../helpers/cli'
import { checkManPage, manFinds } from '../helpers/man-page'
import { tmpDir } from '../helpers/tmp'

const TARGETS = ['amd64', 'arm64', 'armhf', 'armhf-time32'] as const
type Target = (typeof TARGETS)[number]
type Arch = Exclude<Target, 'armhf-time32'>
const VERSION = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version
/** Debian architecture and Version of a target's package: armhf-time32 is armhf, Version <ver>~deb12. */
const pkgOf = (target: Target): { arch: Arch; version: string } =>
  target === 'armhf-time32' ? { arch: 'armhf', version: `${VERSION}~deb12` } : { arch: target, version: VERSION }
const deb = (target: Target): string =>
  path.join(ROOT, 'build', 'packages', `kheadersfs_${pkgOf(target).version}_${pkgOf(target).arch}.deb`)
/** The Debian packages that provide each shared library the addons may need. */
const LIBRARY_PACKAGES: Record<string, string[]> = {
  'libfuse.so.2': ['libfuse2', 'libfuse2t64'],
  'liblzma.so.5': ['liblzma5'],
  'libc.so.6': ['libc6'],
  'libm.so.6': ['libc6'],
  'libpthread.so.0': ['libc6'],
  'libstdc++.so.6': ['libstdc++6'],
  'libgcc_s.so.1': ['libgcc-s1'],
}

/** Depends' libfuse 2 alternatives: the armhf builds each take only the library of their time_t ABI. */
const FUSE_LIB: Record<Target, { want: string; never?: string }> = {
  amd64: { want: 'libfuse2t64 | libfuse2' },
  arm64: { want: 'libfuse2t64 | libfuse2' },
  armhf: { want: 'libfuse2t64', never: 'libfuse2' },
  'armhf-time32': { want: 'libfuse2', never: 'libfuse2t64' },
}
const APP = 'usr/lib/kheadersfs/app'

/** e_machine and ELF class per architecture; armhf must also carry the hard-float ABI flag. */
const ELF: Record<Arch, { machine: number; cls: number; name: string }> = {
  amd64: { machine: 62, cls: 2, name: 'x86-64' },
  arm64: { machine: 183, cls: 2, name: 'AArch64' },
  armhf: { machine: 40, cls: 1, name: 'ARM' },
}
const EF_ARM_ABI_FLOAT_HARD = 0x400

const REQUIRED = [
  'usr/bin/kheadersfs',
  'sbin/mount.kheadersfs',
  'usr/lib/systemd/system/kheadersfs@.service',
  'usr/lib/systemd/system/proc\\x2dext.mount',
  'usr/lib/kheadersfs/',
  `${APP}/package.json`,
  `${APP}/dist/src/cli.js`,
  `${APP}/src/native/build/Release/kheadersfs_fuse.node`,
  `${APP}/node_modules/lzma-native/build/Release/lzma_native.node`,
  `${APP}/node_modules/cli-progress/package.json`,
  `${APP}/node_modules/tar-stream/package.json`,
  'usr/share/man/man1/kheadersfs.1.gz',
  'usr/share/bash-completion/completions/kheadersfs',
  'usr/share/zsh/vendor-completions/_kheadersfs',
  'usr/share/fish/vendor_completions.d/kheadersfs.fish',
  'usr/share/doc/kheadersfs/image-format.md.gz',
  'usr/share/doc/kheadersfs/design.md.gz',
  'usr/share/doc/kheadersfs/copyright',
  'usr/share/doc/kheadersfs/changelog.gz',
]
/** Strings that would reveal the build machine (the checkout, home, scratch and cache dirs). */
const LEAKS = ['/work/', '/root/', '/tmp/', '/var/cache/', ROOT]

const tools = ['dpkg-deb', 'lintian', 'man'].filter((c) => spawnSync('sh', ['-c', `command -v ${c}`]).status !== 0)

function files(dir: string, rel = ''): string[] {
  const out: string[] = []
  for (const name of readdirSync(path.join(dir, rel)).sort()) {
    const r = rel ? `${rel}/${name}` : name
    const st = lstatSync(path.join(dir, r))
    if (st.isDirectory()) out.push(...files(dir, r))
    else if (st.isFile()) out.push(r)
  }
  return out
}

/** ELF header fields, or undefined for a file that is not ELF. */
function elf(buf: Buffer): { cls: number; machine: number; flags: number } | undefined {
  if (buf.length < 52 || buf.readUInt32BE(0) !== 0x7f454c46) return undefined
  const cls = buf[4]
  const le = buf[5] === 1
  const machine = le ? buf.readUInt16LE(18) : buf.readUInt16BE(18)
  const flagsAt = cls === 2 ? 48 : 36
  const flags = le ? buf.readUInt32LE(flagsAt) : buf.readUInt32BE(flagsAt)
  return { cls, machine, flags }
}

function depends(field: string): string[][] {
  return field.split(',').map((g) => g.split('|').map((d) => d.trim().replace(/\s+/g, ' ')))
}

t.test(
  'Debian packages',
  { skip: tools.length > 0 && `missing ${tools.join(', ')} (bash .ci/setup --boards)` },
  async (t) => {
    if (process.env.KHEADERSFS_DEB_PREBUILT !== '1') {
      const r = spawnSync('bash', [path.join(ROOT, 'packaging', 'build.sh'), ...TARGETS], {
        cwd: ROOT,
        encoding: 'utf8',
        maxBuffer: 64 << 20,
      })
      t.equal(r.status, 0, 'packaging/build.sh succeeds', { stderr: r.stderr.split('\n').slice(-30).join('\n') })
    }
    const packaged = (
      JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }
    ).dependencies

    for (const target of TARGETS) {
      const { arch, version } = pkgOf(target)
      t.test(target, async (t) => {
        const file = deb(target)
        t.ok(existsSync(file), `${path.basename(file)} exists`)
        if (!existsSync(file)) return

        const lint = spawnSync('lintian', ['--tag-display-limit', '0', file], { encoding: 'utf8' })
        const errors = (lint.stdout + lint.stderr).split('\n').filter((l) => l.startsWith('E:'))
        t.same(errors, [], 'lintian reports no errors')

        const field = (name: string): string =>
          execFileSync('dpkg-deb', ['-f', file, name], { encoding: 'utf8' }).trim()
        t.equal(field('Package'), 'kheadersfs')
        t.equal(field('Version'), version, `Version is ${version}`)
        t.equal(field('Architecture'), arch)
        const deps = depends(field('Depends'))
        t.ok(
          deps.some((g) => g.length === 1 && g[0] === 'nodejs (>= 18.19)'),
          'Depends: nodejs (>= 18.19)',
        )
        t.ok(
          deps.some((g) => g.join(' | ') === 'fuse3 | fuse'),
          'Depends: fuse3 | fuse',
        )
        const fuse = FUSE_LIB[target]
        t.ok(
          deps.some((g) => g.join(' | ') === fuse.want),
          `Depends: ${fuse.want}`,
        )
        if (fuse.never !== undefined)
          t.notOk(
            deps.some((g) => g.includes(fuse.never!)),
            `${target} never accepts ${fuse.never} (the other time_t ABI)`,
          )
        t.match(field('Installed-Size'), /^[1-9][0-9]*$/)

        const listing = execFileSync('dpkg-deb', ['--contents', file], { encoding: 'utf8', maxBuffer: 64 << 20 })
        const paths = listing
          .split('\n')
          .filter(Boolean)
          .map((l) =>
            l
              .slice(l.indexOf('./') + 2)
              .replace(/ -> .*$/, '')
              .replace(/\\\\/g, '\\'),
          ) // tar prints "\" as "\\"
        for (const p of REQUIRED) t.ok(paths.includes(p), `contains /${p}`)
        t.same(
          paths.filter((p) => /\.(map|ts)$/.test(p) || p.startsWith(`${APP}/dist/test`) || p.includes('/prebuilds/')),
          [],
          'no tests, sources, maps or foreign prebuilds',
        )
        t.same(
          paths.filter((p) => p.startsWith(`${APP}/mount/`) || p.startsWith(`${APP}/systemd/`)),
          [],
          'no mount/ or systemd/ templates in the app: the package installs the rendered files',
        )
        for (const dep of Object.keys(packaged))
          t.ok(paths.includes(`${APP}/node_modules/${dep}/package.json`), `bundles ${dep}`)
        t.notOk(
          listing.split('\n').some((l) => l.includes('./') && !/^\S+ root\/root /.test(l)),
          'every file is owned by root:root',
        )

        const x = tmpDir(t, 'kheadersfs-deb-')
        execFileSync('dpkg-deb', ['-x', file, x])
        const all = files(x)
        let elfs = 0
        const wrong: string[] = []
        const leaks: string[] = []
        const marked: string[] = []
        for (const rel of all) {
          const buf = readFileSync(path.join(x, rel))
          const e = elf(buf)
          if (e) {
            elfs++
            const want = ELF[arch]
            if (e.machine !== want.machine || e.cls !== want.cls)
              wrong.push(`${rel}: e_machine ${e.machine} class ${e.cls}`)
            else if (arch === 'armhf' && !(e.flags & EF_ARM_ABI_FLOAT_HARD)) wrong.push(`${rel}: not hard-float`)
          }
          for (const s of LEAKS) if (buf.includes(s)) leaks.push(`${rel}: ${s}`)
          if (!rel.startsWith(`${APP}/`) && buf.includes(MARK)) marked.push(rel)
        }
        t.ok(elfs >= 2, `ELF files found (${elfs})`)
        t.same(wrong, [], `every ELF file is ${ELF[arch].name}`)
        t.same(leaks, [], 'no build-machine path in any file')
        t.same(marked, [], 'no install-helpers MARK in packaged files: install-helpers never replaces them')
        if (arch === 'armhf') {
          // The time_t ABI, read from the addons' imports: glibc's 64-bit time_t entry points are
          // __*64 symbols of GLIBC_2.34 (__clock_gettime64, __fcntl_time64, ...).
          const t64 = all
            .filter((rel) => rel.endsWith('.node'))
            .flatMap((rel) =>
              execFileSync('readelf', ['-W', '--dyn-syms', path.join(x, rel)], { encoding: 'utf8' })
                .split('\n')
                .map((l) => l.trim().split(/\s+/))
                .filter((f) => f[6] === 'UND' && /^__\w*64@GLIBC_2\.34$/.test(f[7] ?? ''))
                .map((f) => f[7]),
            )
          if (target === 'armhf') t.ok(t64.length > 0, `the addons use the 64-bit time_t ABI: ${t64.join(' ')}`)
          else t.same(t64, [], 'the addons use the 32-bit time_t ABI (no time64 glibc imports)')
        }
        // Every library the addons load is a package Depends names (a library missing at run time is
        // a mount that fails on the board, not at install).
        const needed = new Set(
          all
            .filter((rel) => rel.endsWith('.node'))
            .flatMap((rel) =>
              [
                ...execFileSync('readelf', ['-d', path.join(x, rel)], { encoding: 'utf8' }).matchAll(
                  /\(NEEDED\).*\[(.+)\]/g,
                ),
              ].map((m) => m[1]),
            ),
        )
        t.ok(needed.has('liblzma.so.5') && needed.has('libfuse.so.2'), 'the addon links liblzma.so.5 and libfuse.so.2')
        const unmet = [...needed].filter((so) => {
          const pkgs = LIBRARY_PACKAGES[so]
          return pkgs === undefined || !deps.some((g) => g.some((d) => pkgs.includes(d.split(' ')[0])))
        })
        t.same(unmet, [], `Depends covers every DT_NEEDED library (${[...needed].join(', ')})`)
        t.match(
          execFileSync(
            'sh',
            ['-c', 'gzip -dc "$1" | head -n 1', 'sh', path.join(x, 'usr/share/doc/kheadersfs/changelog.gz')],
            {
              encoding: 'utf8',
            },
          ),
          `kheadersfs (${version})`,
          'the changelog names the Version',
        )

        const wrapper = readFileSync(path.join(x, 'usr/bin/kheadersfs'), 'utf8')
        t.match(wrapper, /^#!\/bin\/sh\n/)
        t.match(wrapper, /\nexec \/usr\/bin\/node \/usr\/lib\/kheadersfs\/app\/dist\/src\/cli\.js "\$@"\n/)
        t.equal(lstatSync(path.join(x, 'usr/bin/kheadersfs')).mode & 0o777, 0o755)
        const helper = readFileSync(path.join(x, 'sbin/mount.kheadersfs'), 'utf8')
        t.match(
          helper,
          /^KHEADERSFS=\$\{KHEADERSFS_BIN:-\/usr\/bin\/kheadersfs\}$/m,
          'mount.kheadersfs runs /usr/bin/kheadersfs',
        )
        for (const unit of ['kheadersfs@.service', 'proc\\x2dext.mount']) {
          const text = readFileSync(path.join(x, 'usr/lib/systemd/system', unit), 'utf8')
          t.notMatch(text, /\/usr\/local\//, `${unit} names no /usr/local path`)
        }
        t.match(
          readFileSync(path.join(x, 'usr/lib/systemd/system/kheadersfs@.service'), 'utf8'),
          /^ExecStart=\/usr\/bin\/kheadersfs mount %f$/m,
        )
        // One install plan: build.sh staged these with install-helpers --for-package, so this
        // checkout's install-helpers, given the same arguments, writes the same bytes and modes
        // (the package is built from the last commit: commit template changes first).
        const staged = tmpDir(t, 'kheadersfs-deb-plan-')
        const plan = await runCli([
          'install-helpers',
          '--for-package',
          '--destdir',
          staged,
          '--node',
          '/usr/bin/node',
          '--app',
          `/${APP}`,
          '--bindir',
          '/usr/bin',
          '--helperdir',
          '/sbin',
          '--unitdir',
          '/usr/lib/systemd/system',
        ])
        t.equal(plan.code, 0, plan.stderr)
        for (const p of [
          'usr/bin/kheadersfs',
          'sbin/mount.kheadersfs',
          'usr/lib/systemd/system/kheadersfs@.service',
          'usr/lib/systemd/system/proc\\x2dext.mount',
        ]) {
          t.equal(
            readFileSync(path.join(x, p), 'utf8'),
            readFileSync(path.join(staged, p), 'utf8'),
            `/${p}: as install-helpers stages it`,
          )
          t.equal(
            lstatSync(path.join(x, p)).mode & 0o777,
            lstatSync(path.join(staged, p)).mode & 0o777,
            `/${p}: its mode`,
          )
        }
        for (const [shell, p] of [
          ['bash', 'usr/share/bash-completion/completions/kheadersfs'],
          ['zsh', 'usr/share/zsh/vendor-completions/_kheadersfs'],
          ['fish', 'usr/share/fish/vendor_completions.d/kheadersfs.fish'],
        ] as const) {
          t.equal(
            readFileSync(path.join(x, p), 'utf8'),
            completionScript(shell, completionCommands()),
            `the ${shell} completion: "kheadersfs completion ${shell}"`,
          )
          t.equal(lstatSync(path.join(x, p)).mode & 0o777, 0o644)
        }
        t.match(
          readFileSync(path.join(x, 'usr/share/doc/kheadersfs/copyright'), 'utf8'),
          /^Format: https:\/\/www\.debian\.org\/doc\/packaging-manuals\/copyright-format\/1\.0\/$/m,
        )

        const man = spawnSync('man', ['--warnings', '-l', path.join(x, 'usr/share/man/man1/kheadersfs.1.gz')], {
          encoding: 'utf8',
          env: { ...process.env, MANWIDTH: '80', MAN_DISABLE_SECCOMP: '1', PAGER: 'cat', MANPAGER: 'cat' },
        })
        t.equal(man.status, 0, 'man -l succeeds')
        t.equal(man.stderr, '', 'man -l prints no warnings')
        t.match(man.stdout, /KHEADERSFS\(1\)/)
        t.match(man.stdout, /^NAME\n\s+kheadersfs\s+-\s+kernel headers/m)
        // Issue 21: no HTML entities, no groff warnings, every SEE ALSO reference leads somewhere.
        const page = checkManPage(path.join(x, 'usr/share/man/man1/kheadersfs.1.gz'))
        t.same(page.entities, [], 'no HTML entities in the packaged page')
        t.equal(page.warnings, '', 'man --warnings: none')
        const shipped = new Set(files(x).map((f) => '/' + f))
        t.ok(page.seeAlso.paths.length > 0, 'SEE ALSO names installed documents')
        t.same(
          page.seeAlso.paths.filter((p) => !shipped.has(p)),
          [],
          'every SEE ALSO path is in the package',
        )
        t.same(page.seeAlso.sourceFiles, [], 'SEE ALSO names no file of the source tree')
        t.same(
          page.seeAlso.pages.filter((p) => !manFinds(p)),
          [],
          'every SEE ALSO page is found by man',
        )

        if (arch === 'amd64' && process.arch === 'x64') {
          // The host can run this one: the packaged CLI and both addons from the package's own tree.
          const cli = path.join(x, APP, 'dist/src/cli.js')
          const v = spawnSync(process.execPath, [cli, '--version'], { encoding: 'utf8' })
          t.equal(v.status, 0, 'packaged CLI runs')
          t.match(v.stdout, VERSION)
          const nm = path.join(x, APP, 'node_modules')
          const load = spawnSync(
            process.execPath,
            [
              '-e',
              `require(${JSON.stringify(path.join(x, APP, 'dist/src/native/binding.js'))}).loadBinding(); process.stdout.write(require(${JSON.stringify(nm + '/lzma-native')}).versionString())`,
            ],
            { encoding: 'utf8' },
          )
          t.equal(load.status, 0, 'the FUSE binding and lzma-native load from the package', { stderr: load.stderr })
          t.equal(load.stdout, '5.2.3', 'lzma-native is the bundled xz 5.2.3')
          // The packaged CLI has no templates: install-helpers refuses (the package has installed the
          // files), while --uninstall, which needs only the paths, still works.
          const dest = tmpDir(t, 'kheadersfs-deb-helpers-')
          const inst = spawnSync(process.execPath, [cli, 'install-helpers', '--destdir', dest], { encoding: 'utf8' })
          t.equal(inst.status, 8, 'the packaged install-helpers refuses')
          t.match(inst.stderr, /Cannot read the template .*mount\.kheadersfs: .*the kheadersfs package has installed/)
          const un = spawnSync(process.execPath, [cli, 'install-helpers', '--destdir', dest, '--uninstall'], {
            encoding: 'utf8',
          })
          t.equal(un.status, 0, `the packaged install-helpers --uninstall runs: ${un.stderr}`)
        }
      })
    }

    if (process.env.KHEADERSFS_DEB_PREBUILT !== '1')
      t.test('reproducible: a second build with cold addon caches gives the same bytes', async (t) => {
        const sums = (): Record<string, string> =>
          Object.fromEntries(
            TARGETS.filter((a) => existsSync(deb(a))).map((a) => [
              a,
              createHash('sha256')
                .update(readFileSync(deb(a)))
                .digest('hex'),
            ]),
          )
        const first = sums()
        t.equal(Object.keys(first).length, TARGETS.length, 'the first build made every package')
        // New scratch paths and a fresh libfuse2 download: only the packaged commit and the tools remain.
        const cache = tmpDir(t, 'kheadersfs-deb-addons-')
        const r = spawnSync('bash', [path.join(ROOT, 'packaging', 'build.sh'), ...TARGETS], {
          cwd: ROOT,
          encoding: 'utf8',
          maxBuffer: 64 << 20,
          env: { ...process.env, KHEADERSFS_ADDON_CACHE: cache },
        })
        t.equal(r.status, 0, 'packaging/build.sh succeeds again', {
          stderr: r.stderr.split('\n').slice(-30).join('\n'),
        })
        t.same(sums(), first, 'every package has the sha256 of the first build')
      })
  },
)
