// What a mounted image serves, checked through the kernel with real readers: bytes at any offset,
// GNU tar and zcat, stat, the errno of every write-family operation, a non-root reader, 32 readers.
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { randomInt } from 'node:crypto'
import { closeSync, constants, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { gunzipSync } from 'node:zlib'
import t from 'tap'
import { sha256 } from '../../src/image/format'
import { parseImage } from '../../src/image/read'
import { debianTree, packedImage, SKIP_NO_DEBIAN } from '../helpers/debian'
import { errnoCode } from '../helpers/fs-errors'
import { mountImage } from '../helpers/mount'
import { tmpDir } from '../helpers/tmp'
import { treeDigest } from '../helpers/tree-digest'
import { walkTree } from '../helpers/walk'

const tree = debianTree()

t.test('served bytes, readers, stat and errno', { skip: tree === undefined && SKIP_NO_DEBIAN }, async (t) => {
  const imageFile = await packedImage(tree!, 'module-build')
  const image = parseImage(readFileSync(imageFile), imageFile)
  const m = await mountImage(t, imageFile)

  t.test('bytes equal the image payloads, whole and at random offsets and lengths', async (t) => {
    t.equal(sha256(readFileSync(path.join(m.mnt, 'kheaders.txz'))), image.manifest.payloads['kheaders.tar.xz'].sha256)
    t.equal(
      sha256(readFileSync(path.join(m.mnt, 'kheaders.tar.xz'))),
      image.manifest.payloads['kheaders.tar.xz'].sha256,
    )
    t.equal(sha256(readFileSync(path.join(m.mnt, 'config.gz'))), image.manifest.payloads['config.gz'].sha256)
    const fd = openSync(path.join(m.mnt, 'kheaders.txz'), 'r')
    t.teardown(() => closeSync(fd))
    const size = image.headers.length
    let bad = 0
    for (let i = 0; i < 300; i++) {
      const pos = i % 10 === 0 ? size - randomInt(0, 300) : randomInt(0, size)
      const len = [0, 1, 4095, 4096, 131072, 200000][i % 6]
      const buf = Buffer.alloc(len)
      const n = readSync(fd, buf, 0, len, pos)
      const want = image.headers.subarray(pos, Math.min(pos + len, size))
      if (n !== want.length || !buf.subarray(0, n).equals(want)) bad++
    }
    t.equal(bad, 0, '300 random preads match')
    t.equal(readSync(fd, Buffer.alloc(10), 0, 10, size), 0, 'read at EOF returns 0 bytes')
    t.equal(readSync(fd, Buffer.alloc(10), 0, 10, size + 1_000_000), 0, 'read past EOF returns 0 bytes')
  })

  t.test('GNU tar extracts kheaders.txz; zcat config.gz is the .config', async (t) => {
    const w = tmpDir(t)
    execFileSync('tar', ['-xf', path.join(m.mnt, 'kheaders.txz'), '-C', w])
    let n = 0
    walkTree(w, (_, e) => {
      if (!e.isDirectory()) n++
    })
    t.equal(n, image.manifest.counts.files + image.manifest.counts.symlinks, 'every file and link extracted')
    const config = execFileSync('sh', ['-c', `zcat "${path.join(m.mnt, 'config.gz')}"`])
    t.ok(config.equals(readFileSync(path.join(tree!.objtree, '.config'))), 'zcat config.gz == the tree .config')
    t.ok(gunzipSync(image.config).equals(config))
  })

  t.test('readers a board has: busybox tar, bsdtar and busybox zcat give what GNU tar and zcat give', async (t) => {
    const txz = path.join(m.mnt, 'kheaders.txz')
    const extract = (cmd: string, args: string[]): Map<string, string> => {
      const w = tmpDir(t)
      execFileSync(cmd, [...args, w], { stdio: ['ignore', 'ignore', 'pipe'] })
      return treeDigest(w)
    }
    const gnu = extract('tar', ['-xf', txz, '-C'])
    t.equal(gnu.size, image.manifest.files.length, 'GNU tar: every entry of the manifest')
    for (const [name, cmd, args] of [
      ['busybox tar -xJf', 'busybox', ['tar', '-xJf', txz, '-C']],
      ['bsdtar -xf', 'bsdtar', ['-xf', txz, '-C']],
    ] as const) {
      const got = extract(cmd, [...args])
      const diff = [...gnu].filter(([p, d]) => got.get(p) !== d).map(([p]) => p)
      t.equal(got.size, gnu.size, `${name}: same number of entries`)
      t.same(diff.slice(0, 5), [], `${name}: same names, types, modes, bytes and link targets`)
    }
    const zcat = (cmd: string, args: string[]): Buffer =>
      execFileSync(cmd, [...args, path.join(m.mnt, 'config.gz')], { maxBuffer: 1 << 26 })
    t.ok(zcat('busybox', ['zcat']).equals(zcat('zcat', [])), 'busybox zcat config.gz == zcat config.gz')
  })

  t.test('stat: exact sizes, 0444 files, 0555 root, image creation time', async (t) => {
    const root = statSync(m.mnt)
    t.equal(root.mode & 0o7777, 0o555)
    t.ok(root.isDirectory())
    t.same(readdirSync(m.mnt), ['config.gz', 'kheaders', 'kheaders.tar.xz', 'kheaders.txz'])
    for (const [name, data] of [
      ['kheaders.txz', image.headers],
      ['kheaders.tar.xz', image.headers],
      ['config.gz', image.config],
    ] as const) {
      const st = statSync(path.join(m.mnt, name))
      t.equal(st.size, data.length, `${name} size`)
      t.equal(st.mode, constants.S_IFREG | 0o444, `${name} mode`)
      t.equal(st.uid, 0)
      t.equal(st.mtimeMs, image.manifest.epoch * 1000, `${name} mtime`)
    }
    const mountinfo = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .find((l) => l.split(' ')[4] === m.mnt)!
    t.match(
      mountinfo,
      / ro,nosuid,nodev,noatime( \S+)* - fuse\.kheadersfs kheadersfs /,
      'mounted ro,nosuid,nodev as fuse.kheadersfs',
    )
    const py = spawnSync(
      'python3',
      ['-c', `import os; print(os.statvfs(${JSON.stringify(m.mnt)}).f_flag & os.ST_RDONLY)`],
      { encoding: 'utf8' },
    )
    t.equal(py.stdout.trim(), '1', 'statfs reports read-only')
  })

  t.test('errno table: unknown paths and every write-family operation', async (t) => {
    const f = path.join(m.mnt, 'kheaders.txz')
    const table: Array<[string, () => unknown, string]> = [
      ['stat unknown name', () => statSync(path.join(m.mnt, 'nope')), 'ENOENT'],
      ['open unknown name', () => openSync(path.join(m.mnt, 'nope'), 'r'), 'ENOENT'],
      ['path below a file', () => statSync(path.join(f, 'x')), 'ENOTDIR'],
      ['name of 256 bytes', () => statSync(path.join(m.mnt, 'n'.repeat(256))), 'ENAMETOOLONG'],
      ['create with a name of 256 bytes', () => openSync(path.join(m.mnt, 'é'.repeat(128)), 'w'), 'ENAMETOOLONG'],
      ['read a directory', () => fs.readFileSync(m.mnt), 'EISDIR'],
      ['open for write', () => openSync(f, 'r+'), 'EROFS'],
      ['create', () => openSync(path.join(m.mnt, 'new'), 'w'), 'EROFS'],
      ['write (append)', () => fs.appendFileSync(f, 'x'), 'EROFS'],
      ['truncate', () => fs.truncateSync(f, 0), 'EROFS'],
      ['mkdir', () => fs.mkdirSync(path.join(m.mnt, 'd')), 'EROFS'],
      ['unlink', () => fs.unlinkSync(f), 'EROFS'],
      ['rmdir', () => fs.rmdirSync(path.join(m.mnt, 'config.gz')), 'EROFS'],
      ['rename', () => fs.renameSync(f, path.join(m.mnt, 'moved')), 'EROFS'],
      ['chmod', () => fs.chmodSync(f, 0o777), 'EROFS'],
      ['chown', () => fs.chownSync(f, 1, 1), 'EROFS'],
      ['utimens', () => fs.utimesSync(f, 1, 1), 'EROFS'],
      ['symlink', () => fs.symlinkSync('x', path.join(m.mnt, 'l')), 'EROFS'],
      ['link', () => fs.linkSync(f, path.join(m.mnt, 'h')), 'EROFS'],
    ]
    for (const [name, fn, want] of table) t.equal(errnoCode(fn), want, name)
    const fifo = spawnSync(
      'python3',
      [
        '-c',
        `import os\ntry:\n os.mkfifo(${JSON.stringify(path.join(m.mnt, 'fifo'))})\nexcept OSError as e:\n print(e.errno)`,
      ],
      { encoding: 'utf8' },
    )
    t.equal(fifo.stdout.trim(), String(os.constants.errno.EROFS), 'mknod (fifo) → EROFS')
    const xattr = spawnSync(
      'python3',
      [
        '-c',
        `import os\ntry:\n os.setxattr(${JSON.stringify(f)}, 'user.x', b'1')\nexcept OSError as e:\n print(e.errno)`,
      ],
      { encoding: 'utf8' },
    )
    t.equal(xattr.stdout.trim(), String(os.constants.errno.EROFS), 'setxattr → EROFS')
  })

  t.test('a non-root user can read, and cannot write', async (t) => {
    const r = spawnSync('runuser', ['-u', 'nobody', '--', 'sha256sum', path.join(m.mnt, 'config.gz')], {
      encoding: 'utf8',
    })
    t.equal(r.status, 0, r.stderr)
    t.equal(r.stdout.split(' ')[0], image.manifest.payloads['config.gz'].sha256)
    const w = spawnSync('runuser', ['-u', 'nobody', '--', 'sh', '-c', `echo x > ${path.join(m.mnt, 'x')}`], {
      encoding: 'utf8',
    })
    t.not(w.status, 0)
    t.match(w.stderr, /Read-only file system/)
    const u = spawnSync('runuser', ['-u', 'nobody', '--', 'fusermount', '-u', m.mnt], { encoding: 'utf8' })
    t.not(u.status, 0, 'nobody cannot unmount a root mount')
  })

  t.test('32 parallel readers get identical bytes', async (t) => {
    const want = image.manifest.payloads['kheaders.tar.xz'].sha256
    const results = await Promise.all(
      Array.from(
        { length: 32 },
        () =>
          new Promise<string>((resolve) => {
            const c = spawn('sha256sum', [path.join(m.mnt, 'kheaders.txz')])
            let out = ''
            c.stdout.on('data', (d: Buffer) => (out += d.toString()))
            c.on('close', () => resolve(out.split(' ')[0]))
          }),
      ),
    )
    t.equal(results.filter((r) => r === want).length, 32)
  })
})
