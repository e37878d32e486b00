// Every way `kheadersfs mount` can be refused: one clear line, its documented exit code, and nothing
// left behind (no mount, no daemon).
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t, { type Test } from 'tap'
import { CLI, errorLines, run, runCli } from '../helpers/cli'
import { tinyImage } from '../helpers/images'
import { daemonPids, isMounted, mountDirs } from '../helpers/mount'

/** Processes whose command line mentions `needle` (a daemon serving our mountpoint). */
function processesFor(needle: string): number[] {
  const out: number[] = []
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue
    try {
      if (readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').includes(needle)) out.push(Number(p))
    } catch {
      // gone
    }
  }
  return out
}

t.test('refusals', async (t) => {
  const image = await tinyImage(t)
  const otherRelease = await tinyImage(t, '1.2.3-other')

  const refuse = async (
    t: Test,
    name: string,
    args: (mnt: string) => string[],
    code: number,
    re: RegExp,
    prepare?: (mnt: string) => void,
  ): Promise<void> => {
    const { mnt, env, runDir } = mountDirs(t)
    prepare?.(mnt)
    const r = await runCli(args(mnt), { env })
    t.equal(r.code, code, `${name}: exit ${code}`)
    const lines = errorLines(r.stderr)
    t.equal(lines.length, 1, `${name}: one line (${lines.join(' | ')})`)
    t.match(lines[0] ?? '', re, name)
    t.notOk(isMounted(mnt), `${name}: nothing mounted`)
    t.same(daemonPids(runDir), [], `${name}: no daemon state`)
    t.same(processesFor(mnt), [], `${name}: no daemon process`)
  }

  t.test('mountpoint problems', async (t) => {
    await refuse(
      t,
      'missing mountpoint',
      (mnt) => ['mount', '--image', image, path.join(mnt, 'nope')],
      9,
      /Cannot mount at .*nope: no such directory; pass --mkdir \(-o X-mount.mkdir\) or create it first/,
    )
    await refuse(
      t,
      'file as mountpoint',
      (mnt) => ['mount', '--image', image, path.join(mnt, 'f')],
      9,
      /Cannot mount at .*\/f: not a directory/,
      (mnt) => writeFileSync(path.join(mnt, 'f'), ''),
    )
    await refuse(
      t,
      'non-empty directory',
      (mnt) => ['mount', '--image', image, mnt],
      9,
      /the directory is not empty; use an empty directory or pass -o nonempty/,
      (mnt) => writeFileSync(path.join(mnt, 'x'), ''),
    )
    const { mnt, env } = mountDirs(t)
    writeFileSync(path.join(mnt, 'x'), '')
    const ok = await runCli(['mount', '--image', image, '-o', 'nonempty', mnt], { env })
    t.equal(ok.code, 0, `-o nonempty mounts over a non-empty directory: ${ok.stderr}`)
    t.ok(readdirSync(mnt).includes('kheaders.txz'))
  })

  t.test('image problems', async (t) => {
    await refuse(
      t,
      'no image for the release',
      (mnt) => ['mount', '--release', '0.0.0-none', mnt],
      3,
      /Cannot find a kheadersfs image for 0\.0\.0-none: looked in \$KHEADERSFS_IMAGE \(unset\), \/lib\/modules\/0\.0\.0-none\/kheaders\.img, \/usr\/lib\/kheadersfs\/0\.0\.0-none\.img; pack one/,
    )
    await refuse(
      t,
      'missing --image file',
      (mnt) => ['mount', '--image', '/nonexistent/x.img', mnt],
      3,
      /Cannot read image \/nonexistent\/x\.img: no such file/,
    )
    await refuse(
      t,
      'wrong release without --force',
      (mnt) => ['mount', '--image', otherRelease, mnt],
      4,
      new RegExp(`it is for kernel 1\\.2\\.3-other, not ${os.release().replace(/\./g, '\\.')}; .*pass --force`),
    )
    const corrupt = path.join(path.dirname(image), 'corrupt.img')
    const bytes = readFileSync(image)
    bytes[bytes.length - 2000] ^= 0x10
    writeFileSync(corrupt, bytes)
    await refuse(
      t,
      'corrupted image',
      (mnt) => ['mount', '--image', corrupt, mnt],
      4,
      /Cannot use image .*corrupt\.img: .*(SHA256SUMS|checksum|padding)/,
    )
  })

  t.test('option problems', async (t) => {
    await refuse(
      t,
      'unknown -o option',
      (mnt) => ['mount', '--image', image, '-o', 'ro,bogus=1', mnt],
      2,
      /Cannot use mount option "bogus=1": not a kheadersfs or generic mount option/,
    )
    await refuse(
      t,
      'image= without a value',
      (mnt) => ['mount', '-o', 'image=', mnt],
      2,
      /Cannot use mount option "image=": it needs a value/,
    )
    await refuse(t, 'two mountpoints', (mnt) => ['mount', '--image', image, mnt, mnt], 2, /give exactly one MOUNTPOINT/)
    await refuse(
      t,
      'unknown flag',
      (mnt) => ['mount', '--imgae', image, mnt],
      2,
      /kheadersfs mount: Unknown option '--imgae'/,
    )
  })

  t.test(
    'FUSE not available',
    { skip: process.getuid?.() !== 0 && 'needs root for a private mount namespace' },
    async (t) => {
      const { mnt, env, runDir } = mountDirs(t)
      /** kheadersfs mount, run after `setup` (sh) in a private mount namespace that undoes it on exit. */
      const mountAfter = (setup: string): ReturnType<typeof run> => {
        const inNamespace = ['--mount', '--propagation', 'private', 'sh', '-c', `${setup} && exec "$@"`, 'sh']
        return run('unshare', [...inNamespace, process.execPath, CLI, 'mount', '--image', image, mnt], { env })
      }
      // No /dev/fuse: a private mount namespace with an empty /dev (only /dev/null, which node needs).
      const noDev = await mountAfter('mount -t tmpfs none /dev && mknod -m 666 /dev/null c 1 3')
      t.equal(noDev.code, 6, noDev.stderr)
      t.match(errorLines(noDev.stderr)[0], /Cannot mount: \/dev\/fuse does not exist; load the fuse module/)
      t.same(daemonPids(runDir), [])
      // No libfuse2: the library replaced by an empty file in a private mount namespace.
      const lib = /=> (\S+libfuse\.so\.2)$/m.exec(spawnSync('ldconfig', ['-p'], { encoding: 'utf8' }).stdout)?.[1]
      if (lib === undefined) return t.fail('libfuse.so.2 not found by ldconfig')
      const noLib = await mountAfter(`mount --bind /dev/null ${lib}`)
      t.equal(noLib.code, 6, noLib.stderr)
      // The hint names this system's packages: Debian 12 here (libfuse2; fusermount from fuse3).
      t.match(errorLines(noLib.stderr)[0], /Cannot load FUSE support: .*; apt-get install libfuse2 fuse3$/)
      t.notOk(isMounted(mnt))
      // No fusermount: /dev/null over it (fuse3's /usr/bin/fusermount -> fusermount3 is followed).
      const noFusermount = await mountAfter('mount --bind /dev/null "$(command -v fusermount)"')
      t.equal(noFusermount.code, 6, noFusermount.stderr)
      t.match(errorLines(noFusermount.stderr)[0], /Cannot mount: fusermount is not installed; apt-get install fuse3$/)
      t.same(daemonPids(runDir), [])
    },
  )
})
