// writableByOthers (src/commands/writable-by.ts), which install-helpers asks before it makes root run
// node and this checkout at boot: who besides root could change a program or a tree of them. Each
// case builds a small checkout under a temp directory (its ancestors: /tmp, root's and sticky, and /)
// and gives one piece of it to another user, group or everyone.
import { chmodSync, chownSync, mkdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { writableByOthers } from '../../src/commands/writable-by'
import { tmpDir } from '../helpers/tmp'

const NOBODY = 65534
const NOGROUP = 65534

/** A root-owned checkout, 0755 directories and 0644 files (0755 for the CLI): dist/, node_modules/. */
function checkout(base: string): { root: string; cli: string; trees: string[] } {
  const root = path.join(base, 'checkout')
  const files = {
    'dist/src/cli.js': '#!/usr/bin/env node\n',
    'dist/src/pack/pack.js': 'module.exports = {}\n',
    'node_modules/pino/index.js': 'module.exports = {}\n',
    'node_modules/pino/lib/tools.js': 'module.exports = {}\n',
  }
  for (const [rel, text] of Object.entries(files)) {
    const p = path.join(root, rel)
    mkdirSync(path.dirname(p), { recursive: true, mode: 0o755 })
    writeFileSync(p, text, { mode: 0o644 })
  }
  const cli = path.join(root, 'dist/src/cli.js')
  chmodSync(cli, 0o755)
  // mkdir's mode went through the umask: make every directory exactly 0755.
  for (const d of [
    '',
    'dist',
    'dist/src',
    'dist/src/pack',
    'node_modules',
    'node_modules/pino',
    'node_modules/pino/lib',
  ])
    chmodSync(path.join(root, d), 0o755)
  return { root, cli, trees: [path.join(root, 'dist'), path.join(root, 'node_modules')] }
}

const skip = process.getuid?.() !== 0 ? 'needs root (files are given to other users)' : false

t.test('writableByOthers', { skip }, async (t) => {
  // The premise of every case: the temp directories' parent is root's and sticky, like /tmp.
  const tmp = statSync(path.dirname(tmpDir(t)))
  t.ok(tmp.uid === 0 && (tmp.mode & 0o1000) !== 0, 'the temp directories are made in a root-owned sticky directory')

  t.test('a root-owned 0755 checkout: nothing to report', async (t) => {
    const c = checkout(tmpDir(t))
    t.equal(writableByOthers(c.cli, c.trees), undefined, 'the program and its trees')
    t.equal(writableByOthers(c.cli), undefined, 'the program alone')
    t.equal(writableByOthers(process.execPath), undefined, "this machine's node")
  })

  t.test("a root-owned sticky 1777 ancestor (like /tmp): fine, only a file's owner may replace it", async (t) => {
    const shared = path.join(tmpDir(t), 'shared')
    mkdirSync(shared)
    chmodSync(shared, 0o1777)
    const c = checkout(shared)
    t.equal(writableByOthers(c.cli, c.trees), undefined, 'the program and its trees')
  })

  t.test('a world-writable ancestor without the sticky bit: named', async (t) => {
    const shared = path.join(tmpDir(t), 'shared')
    mkdirSync(shared)
    chmodSync(shared, 0o777)
    const c = checkout(shared)
    t.equal(writableByOthers(c.cli, c.trees), `anyone can write ${shared}`, 'the ancestor named')
  })

  t.test('a sticky directory that is not root-owned: named (its owner may replace any file)', async (t) => {
    const shared = path.join(tmpDir(t), 'shared')
    mkdirSync(shared)
    chmodSync(shared, 0o1777)
    chownSync(shared, NOBODY, NOGROUP)
    const c = checkout(shared)
    t.equal(writableByOthers(c.cli, c.trees), `${shared} belongs to uid ${NOBODY}`, 'its owner named')
  })

  t.test('a world-writable directory inside a tree, without the sticky bit: named', async (t) => {
    const c = checkout(tmpDir(t))
    const lib = path.join(c.root, 'node_modules/pino/lib')
    chmodSync(lib, 0o777)
    t.equal(writableByOthers(c.cli, c.trees), `anyone can write ${lib}`, 'the directory named')
    t.equal(writableByOthers(c.cli), undefined, 'not an ancestor of the program: only the walk finds it')
  })

  t.test('a group-writable directory whose group is not root: named; root group: fine', async (t) => {
    const c = checkout(tmpDir(t))
    const pack = path.join(c.root, 'dist/src/pack')
    chmodSync(pack, 0o775)
    t.equal(writableByOthers(c.cli, c.trees), undefined, 'group-writable, group root')
    chownSync(pack, 0, NOGROUP)
    t.equal(writableByOthers(c.cli, c.trees), `group ${NOGROUP} can write ${pack}`, 'the group and the directory named')
    chmodSync(pack, 0o755)
    t.equal(writableByOthers(c.cli, c.trees), undefined, 'the same group without write: fine')
  })

  t.test('a group-writable ancestor of the program: named', async (t) => {
    const c = checkout(tmpDir(t))
    const src = path.join(c.root, 'dist/src')
    chownSync(src, 0, NOGROUP)
    chmodSync(src, 0o775)
    t.equal(writableByOthers(c.cli), `group ${NOGROUP} can write ${src}`, 'the group and the directory named')
  })

  t.test('a file owned by nobody: named, in a tree or as the program', async (t) => {
    const c = checkout(tmpDir(t))
    const tools = path.join(c.root, 'node_modules/pino/lib/tools.js')
    chownSync(tools, NOBODY, NOGROUP)
    t.equal(writableByOthers(c.cli, c.trees), `${tools} belongs to uid ${NOBODY}`, 'a file in a tree')
    const d = checkout(tmpDir(t))
    chownSync(d.cli, NOBODY, NOGROUP)
    t.equal(writableByOthers(d.cli), `${d.cli} belongs to uid ${NOBODY}`, 'the program')
  })

  t.test('a world-writable file in a tree: named', async (t) => {
    const c = checkout(tmpDir(t))
    const f = path.join(c.root, 'dist/src/pack/pack.js')
    chmodSync(f, 0o666)
    t.equal(writableByOthers(c.cli, c.trees), `anyone can write ${f}`, 'the file named')
  })

  t.test('a directory owned by nobody, ancestor of the program: named', async (t) => {
    const c = checkout(tmpDir(t))
    chownSync(c.root, NOBODY, NOGROUP)
    t.equal(writableByOthers(c.cli), `${c.root} belongs to uid ${NOBODY}`, "the checkout's top named")
  })

  t.test('the program reached through a link: judged where it really is', async (t) => {
    const base = tmpDir(t)
    const c = checkout(base)
    chownSync(c.cli, NOBODY, NOGROUP)
    const link = path.join(base, 'kheadersfs')
    symlinkSync(c.cli, link)
    t.equal(writableByOthers(link), `${c.cli} belongs to uid ${NOBODY}`, "the program's real path named")
  })

  t.test('a link inside a tree is not followed', async (t) => {
    const base = tmpDir(t)
    const c = checkout(base)
    // Where the links lead, everything is another user's or everyone's.
    const theirs = path.join(base, 'theirs')
    mkdirSync(theirs)
    writeFileSync(path.join(theirs, 'evil.js'), 'x\n')
    chownSync(path.join(theirs, 'evil.js'), NOBODY, NOGROUP)
    chmodSync(theirs, 0o777)
    chownSync(theirs, NOBODY, NOGROUP)
    symlinkSync(theirs, path.join(c.root, 'node_modules/evil-dir'))
    symlinkSync(path.join(theirs, 'evil.js'), path.join(c.root, 'dist/src/evil.js'))
    symlinkSync('../../../../..', path.join(c.root, 'node_modules/pino/lib/up'))
    t.equal(writableByOthers(c.cli, c.trees), undefined, 'links (root-owned) are judged as links')
    t.equal(
      writableByOthers(path.join(c.root, 'node_modules/evil-dir/evil.js')),
      `${path.join(theirs, 'evil.js')} belongs to uid ${NOBODY}`,
      'while the program itself is followed to where it is',
    )
  })

  t.test('a directory above a tree (not above the program) that another user owns: named', async (t) => {
    // install-helpers passes src/native/build (the FUSE addon root loads) as a tree: its parents src/
    // and src/native/ are not above dist/src/cli.js, and their owner could put another build/ in place.
    const c = checkout(tmpDir(t))
    const build = path.join(c.root, 'src/native/build/Release')
    mkdirSync(build, { recursive: true })
    for (const d of ['src', 'src/native', 'src/native/build', 'src/native/build/Release'])
      chmodSync(path.join(c.root, d), 0o755)
    writeFileSync(path.join(build, 'kheadersfs_fuse.node'), 'addon\n', { mode: 0o644 })
    const trees = [path.join(c.root, 'src/native/build')]
    t.equal(writableByOthers(c.cli, trees), undefined, 'all root: fine')
    chownSync(path.join(c.root, 'src/native'), 0, NOGROUP)
    chmodSync(path.join(c.root, 'src/native'), 0o775)
    t.equal(
      writableByOthers(c.cli, trees),
      `group ${NOGROUP} can write ${path.join(c.root, 'src/native')}`,
      'the parent',
    )
    chmodSync(path.join(c.root, 'src/native'), 0o755)
    chownSync(path.join(c.root, 'src'), NOBODY, NOGROUP)
    t.equal(writableByOthers(c.cli, trees), `${path.join(c.root, 'src')} belongs to uid ${NOBODY}`, 'the grandparent')
  })
})
