// Walks through the kheaders/ view as people make them (grep -r, cp -r, tar -c, find | xargs cat),
// each on a fresh mount at the default cache, with the real tools: each must read what the archive
// holds and decode each xz block about once (the tiers of pack/build-order.ts are in the order the
// view lists directories). Beside them, the builds the layout is for must not decode more than they
// did when the archive was in build order alone. Counts come from the daemon's own counters
// (SIGUSR1), never from timing.
import { execFileSync, spawnSync } from 'node:child_process'
import { lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t, { type Test } from 'tap'
import { parseImage } from '../../src/image/read'
import { bccPreprocessArgs, SCHED_PROBE } from '../helpers/bcc'
import { buildHello, debianTree, packedImage, SKIP_NO_DEBIAN } from '../helpers/debian'
import { mountImage } from '../helpers/mount'
import { viewStats } from '../helpers/observe'
import { tmpDir } from '../helpers/tmp'
import { digestDiff, treeDigest } from '../helpers/tree-digest'

const tree = debianTree()

/**
 * Decodes a walk may take: every block once, and a few again when a tier's block is pushed out by the
 * others' (measured 40 for 35 blocks with grep -r over the whole view of the Debian image).
 */
const walkBound = (blocks: number): number => Math.ceil(blocks * 1.25)

t.test('walks through the view at the default cache', { skip: tree === undefined && SKIP_NO_DEBIAN }, async (t) => {
  const image = await packedImage(tree!, 'module-build')
  const { manifest } = parseImage(readFileSync(image), image)
  const txz = manifest.payloads['kheaders.tar.xz']
  const blocks = Math.ceil(txz.uncompressedSize / txz.blockSize)
  const includeBlocks = new Set(
    manifest.files
      .filter((f) => f.type === 'file' && f.path.startsWith('include/') && f.size > 0)
      .flatMap((f) => [Math.floor(f.offset / txz.blockSize), Math.floor((f.offset + f.size - 1) / txz.blockSize)]),
  ).size
  t.equal(manifest.layout?.order, 'build-2', 'the image is in tiers')
  const extracted = tmpDir(t)
  const digests = new Map<string, Map<string, string>>()

  /** On a fresh mount: `walk` over MNT/kheaders/`scope`; the blocks it decoded. */
  const walked = async (
    t: Test,
    scope: string,
    walk: (dir: string, out: string) => { status: number | null; stderr: string },
  ): Promise<{ decodes: number; out: string }> => {
    const m = await mountImage(t, image)
    if (!digests.has('')) {
      execFileSync('tar', ['-xf', path.join(m.mnt, 'kheaders.txz'), '-C', extracted])
      digests.set('', treeDigest(extracted))
    }
    const before = await viewStats(m)
    const out = path.join(tmpDir(t), 'out')
    const r = walk(path.join(m.mnt, 'kheaders', scope), out)
    t.equal(r.status, 0, 'the walk succeeds', { stderr: r.stderr.slice(-2000) })
    const after = await viewStats(m)
    return { decodes: after.cache.decodes - before.cache.decodes, out }
  }
  const tool = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 26 })

  t.test('grep -r over the whole view reads every file and decodes each block about once', async (t) => {
    const { decodes } = await walked(t, '', (dir) => {
      // A pattern found in one known header: grep -r must reach it (and read every file on its way).
      const r = tool('grep', ['-rl', 'EXPORT_SYMBOL_GPL', dir])
      t.match(r.stdout, /include\/linux\/export\.h\n/, 'grep -r finds include/linux/export.h')
      return r
    })
    t.ok(decodes >= blocks, `${decodes} decodes: every one of the ${blocks} blocks at least once`)
    t.ok(decodes <= walkBound(blocks), `${decodes} decodes of ${blocks} blocks (at most ${walkBound(blocks)})`)
  })

  t.test('cp -r (which copies in inode order) copies the whole view exactly', async (t) => {
    const { decodes, out } = await walked(t, '', (dir, out) => tool('cp', ['-r', dir, out]))
    t.same(digestDiff(digests.get('')!, treeDigest(out)).slice(0, 10), [], 'the copy equals the extracted archive')
    t.ok(decodes <= walkBound(blocks), `${decodes} decodes of ${blocks} blocks (at most ${walkBound(blocks)})`)
  })

  t.test('tar -c of include/', async (t) => {
    const { decodes, out } = await walked(t, 'include', (dir, out) => tool('tar', ['-cf', out, '-C', dir, '.']))
    const back = tmpDir(t)
    execFileSync('tar', ['-xf', out, '-C', back])
    t.same(
      digestDiff(treeDigest(path.join(extracted, 'include')), treeDigest(back)).slice(0, 10),
      [],
      'the archive of include/ holds what the image does',
    )
    t.ok(
      decodes <= walkBound(includeBlocks),
      `${decodes} decodes; include/'s files lie in ${includeBlocks} blocks (at most ${walkBound(includeBlocks)})`,
    )
  })

  t.test('find -type f | xargs cat', async (t) => {
    const { decodes, out } = await walked(t, '', (dir, out) => {
      const r = tool('sh', ['-c', 'find "$1" -type f -print0 | xargs -0 cat > "$2"', 'sh', dir, out])
      return r
    })
    const bytes = manifest.files.reduce((sum, f) => sum + (f.type === 'file' ? f.size : 0), 0)
    t.equal(lstatSync(out).size, bytes, 'every byte of every file')
    t.ok(decodes <= walkBound(blocks), `${decodes} decodes of ${blocks} blocks (at most ${walkBound(blocks)})`)
  })

  t.test('readdir lists names in byte order and inode numbers follow it (what cp -r sorts by)', async (t) => {
    const m = await mountImage(t, image)
    for (const dir of ['', 'include', 'include/linux', 'arch/x86/include/asm', 'scripts']) {
      const at = path.join(m.mnt, 'kheaders', dir)
      const names = readdirSync(at)
      t.same(
        names,
        [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))),
        `${dir || '/'} in name order`,
      )
      const inodes = names.map((n) => lstatSync(path.join(at, n)).ino)
      t.ok(
        inodes.every((ino, i) => i === 0 || ino > inodes[i - 1]),
        `${dir || '/'}: ${names.length} inodes increasing`,
      )
    }
  })
})

t.test(
  'the builds the layout is for decode no more than in build order alone',
  { skip: tree === undefined && SKIP_NO_DEBIAN },
  async (t) => {
    const image = await packedImage(tree!, 'module-build')
    const { manifest } = parseImage(readFileSync(image), image)
    const blockSize = manifest.payloads['kheaders.tar.xz'].blockSize
    const MiB = 2 ** 20

    t.test('a cold hello build: the 6 MiB that 3 blocks of 2 MiB were', async (t) => {
      const m = await mountImage(t, image)
      const w = tmpDir(t)
      const built = await buildHello(path.join(m.mnt, 'kheaders'), w, false)
      t.equal(built.code, 0, built.output.slice(-2000))
      const { decodes } = (await viewStats(m)).cache
      t.ok(decodes * blockSize <= 6 * MiB, `${decodes} blocks of ${blockSize / MiB} MiB decoded`)
    })

    t.test("BCC's gcc -E of linux/sched.h: the 4 MiB that 2 blocks of 2 MiB were", async (t) => {
      const m = await mountImage(t, image)
      const T = path.join(m.mnt, 'kheaders')
      const w = tmpDir(t)
      mkdirSync(w, { recursive: true })
      writeFileSync(path.join(w, 'probe.c'), SCHED_PROBE)
      const gccInclude = execFileSync('gcc', ['-print-file-name=include'], { encoding: 'utf8' }).trim()
      const r = spawnSync('gcc', bccPreprocessArgs(T, 'x86', path.join(w, 'probe.c'), gccInclude), {
        encoding: 'utf8',
        maxBuffer: 1 << 28,
      })
      t.equal(r.status, 0, r.stderr.slice(-2000))
      t.match(r.stdout, /struct task_struct \{/, 'task_struct preprocessed')
      const { decodes } = (await viewStats(m)).cache
      t.ok(decodes * blockSize <= 4 * MiB, `${decodes} blocks of ${blockSize / MiB} MiB decoded`)
    })
  },
)
