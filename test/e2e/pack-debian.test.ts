// The real thing: Debian's linux-headers tree → image → verify → GNU tar → a module build that sees
// no file of the installed packages. Plus in-tree and O= layouts derived from the same files.
import { execFileSync } from 'node:child_process'
import {
  cpSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { parseImage } from '../../src/image/read'
import { runCli } from '../helpers/cli'
import { buildHello, debianTree, packedImage, SKIP_NO_DEBIAN } from '../helpers/debian'
import { tmpDir } from '../helpers/tmp'

const tree = debianTree()
if (tree === undefined) {
  t.test('Debian kernel tree', { skip: SKIP_NO_DEBIAN }, async () => undefined)
} else {
  const image = (file: string) => parseImage(readFileSync(file), file)

  t.test('module-build image: verify, extract with GNU tar, build hello.ko with nothing else reachable', async (t) => {
    const img = await packedImage(tree, 'module-build')
    const v = await runCli(['verify', img])
    t.equal(v.code, 0, v.stderr)
    t.match(v.stdout, /^ok {3}xz .*\nok {3}tar .* entries match the manifest/m)
    const info = await runCli(['info', img])
    t.match(info.stdout, new RegExp(`^release: +${tree.release.replace(/\./g, '\\.')}$`, 'm'))
    t.match(info.stdout, /^profile: +module-build$/m)

    const w = tmpDir(t)
    const h = path.join(w, 'headers')
    mkdirSync(h)
    execFileSync('sh', ['-c', `tar -xOf "${img}" kheaders.tar.xz | tar -xJf - -C "${h}"`])
    // Self-contained: no link leaves the tree, and the top Makefile is the real one.
    const escaping: string[] = []
    const walk = (d: string): void => {
      for (const n of readdirSync(d)) {
        const p = path.join(d, n)
        const st = lstatSync(p)
        if (st.isSymbolicLink()) {
          const target = readlinkSync(p)
          if (path.isAbsolute(target) || path.relative(h, path.resolve(d, target)).startsWith('..')) escaping.push(p)
        } else if (st.isDirectory()) walk(p)
      }
    }
    walk(h)
    t.same(escaping, [], 'no symlink points outside the extracted tree')
    t.ok(
      readFileSync(path.join(h, 'Makefile'), 'utf8').length > 10_000,
      'top Makefile is the real one, not the one-line stub',
    )

    const b = await buildHello(h, w, true)
    t.equal(b.code, 0, b.output.slice(-3000))
    t.match(b.vermagic, new RegExp(`^${tree.release.replace(/\./g, '\\.')} `), `vermagic "${b.vermagic}"`)
  })

  t.test('headers profile: exactly the files gen_kheaders.sh selects (find -name "*.h" in both trees)', async (t) => {
    const img = await packedImage(tree, 'headers')
    const m = image(img).manifest
    const arch = m.arch
    const want = new Set<string>()
    for (const root of [tree.srctree, tree.objtree]) {
      const out = execFileSync('sh', [
        '-c',
        `cd "${root}" && for d in include/ arch/${arch}/include/; do [ -d "$d" ] && find "$d" -name '*.h'; done; true`,
      ]).toString()
      for (const line of out.split('\n')) if (line) want.add(path.posix.normalize(line))
    }
    const got = m.files.filter((f) => f.type !== 'directory').map((f) => f.path)
    t.same([...got].sort(), [...want].sort(), `${got.length} headers`)
    t.equal(m.counts.symlinks, 3, 'the three in-tree header symlinks stay links')
    t.ok(m.bytes.stripped < m.bytes.raw * 0.8, `comments stripped: ${m.bytes.raw} → ${m.bytes.stripped}`)
  })

  t.test('in-tree and O= layouts of the same files pack to the same archive as the Debian split tree', async (t) => {
    const w = tmpDir(t)
    // In-tree: one directory holding the source, the build output and scripts/.
    const inTree = path.join(w, 'in-tree')
    cpSync(tree.srctree, inTree, { recursive: true, verbatimSymlinks: true })
    for (const d of ['scripts', 'tools']) rmSync(path.join(inTree, d), { force: true })
    cpSync(tree.objtree, inTree, {
      recursive: true,
      verbatimSymlinks: true,
      force: true,
      filter: (s) => !['scripts', 'tools', 'Makefile'].includes(path.relative(tree.objtree, s)),
    })
    cpSync(path.join(tree.kbuild, 'scripts'), path.join(inTree, 'scripts'), { recursive: true })
    mkdirSync(path.join(inTree, 'tools'))
    cpSync(path.join(tree.kbuild, 'tools', 'objtool'), path.join(inTree, 'tools', 'objtool'), { recursive: true })
    // O=: srctree without build output; objtree with the generated files, built scripts/, a stub
    // Makefile including the srctree by absolute path and the `source` link, as kbuild writes them.
    const src = path.join(w, 'src')
    const obj = path.join(w, 'obj')
    cpSync(tree.srctree, src, {
      recursive: true,
      verbatimSymlinks: true,
      filter: (s) => !['scripts', 'tools'].includes(path.relative(tree.srctree, s)),
    })
    cpSync(tree.objtree, obj, {
      recursive: true,
      verbatimSymlinks: true,
      filter: (s) => !['scripts', 'tools', 'Makefile'].includes(path.relative(tree.objtree, s)),
    })
    cpSync(path.join(tree.kbuild, 'scripts'), path.join(obj, 'scripts'), { recursive: true })
    cpSync(path.join(tree.kbuild, 'tools'), path.join(obj, 'tools'), { recursive: true })
    writeFileSync(
      path.join(obj, 'Makefile'),
      `# Automatically generated by ${src}/Makefile: don't edit\ninclude ${src}/Makefile\n`,
    )
    symlinkSync(src, path.join(obj, 'source'))

    const reference = image(await packedImage(tree, 'module-build'))
    for (const [name, dir] of [
      ['in-tree', inTree],
      ['O=', obj],
    ] as const) {
      const out = path.join(w, `${name}.img`)
      const r = await runCli(['pack', '--kernel', dir, '-o', out], { env: { KHEADERSFS_LOG_LEVEL: 'warn' } })
      t.equal(r.code, 0, r.stderr)
      const m = image(out).manifest
      t.same(
        m.files.map((f) => [f.path, f.type, f.size, f.mode, f.link]),
        reference.manifest.files.map((f) => [f.path, f.type, f.size, f.mode, f.link]),
        `${name}: same file table`,
      )
      t.equal(
        m.payloads['kheaders.tar.xz'].sha256,
        reference.manifest.payloads['kheaders.tar.xz'].sha256,
        `${name}: byte-identical kheaders.tar.xz`,
      )
    }
  })

  t.test('reproducible: --threads 1 vs 2 and touched input mtimes give the same image bytes', async (t) => {
    const w = tmpDir(t)
    const copy = path.join(w, 'tree')
    cpSync(tree.objtree, copy, { recursive: true, verbatimSymlinks: true })
    const a = path.join(w, 'a.img')
    const b = path.join(w, 'b.img')
    const r1 = await runCli(['pack', '--kernel', copy, '--profile', 'headers', '--threads', '1', '-o', a], {
      env: { KHEADERSFS_LOG_LEVEL: 'warn' },
    })
    t.equal(r1.code, 0, r1.stderr)
    execFileSync('sh', ['-c', `find "${copy}" -exec touch -h -d @1 {} +`])
    const r2 = await runCli(['pack', '--kernel', copy, '--profile', 'headers', '--threads', '2', '-o', b], {
      env: { KHEADERSFS_LOG_LEVEL: 'warn' },
    })
    t.equal(r2.code, 0, r2.stderr)
    t.ok(readFileSync(a).equals(readFileSync(b)), 'byte-identical images')
    const m = image(a).manifest
    t.equal(m.created, new Date(m.epoch * 1000).toISOString())
    t.not(m.epoch, 0, 'mtime comes from the kernel build timestamp')
    const c = path.join(w, 'c.img')
    const r3 = await runCli(['pack', '--kernel', copy, '--profile', 'headers', '-o', c], {
      env: { KHEADERSFS_LOG_LEVEL: 'warn', SOURCE_DATE_EPOCH: '1000000000' },
    })
    t.equal(r3.code, 0, r3.stderr)
    t.equal(image(c).manifest.created, '2001-09-09T01:46:40.000Z', 'SOURCE_DATE_EPOCH wins')
  })
}
