// Per-mount state files (src/protocol/state.ts): names, the run directory's ownership and mode, the
// state and pid files written through a rename (never through what was there), reads that refuse
// another mountpoint's state, and removal that spares a newer daemon's state.
import {
  chmodSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
  writeSync,
  closeSync,
} from 'node:fs'
import { execFileSync } from 'node:child_process'
import path from 'node:path'
import t from 'tap'
import {
  ensureRunDir,
  listStates,
  logPath,
  mountId,
  openPrivateAppend,
  pidPath,
  readState,
  removeState,
  runDir,
  statePath,
  writeState,
} from '../../src/protocol/state'
import { daemonState as state } from '../helpers/daemon-state'
import { tmpDir } from '../helpers/tmp'

const mode = (p: string): number => lstatSync(p).mode & 0o7777

t.test('names: systemd-escape --path of the mountpoint, in the run directory', async (t) => {
  t.equal(mountId('/proc-ext'), 'proc\\x2dext')
  t.equal(mountId('/a b/c.d'), 'a\\x20b-c.d')
  t.equal(mountId('/.hidden/x'), '\\x2ehidden-x', 'a leading dot is escaped')
  t.equal(mountId('/a/.b'), 'a-\\x2eb')
  t.equal(mountId('/x/a.b'), 'x-a.b', 'a dot inside a name is kept')
  t.equal(mountId('/'), '-')
  t.equal(mountId('/a//b/'), 'a-b', 'empty components and a trailing slash are dropped')
  t.equal(mountId('/tmp/ü'), 'tmp-\\xc3\\xbc', 'UTF-8 bytes one by one')
  t.equal(mountId('/x:y_z'), 'x:y_z')
  const env = { KHEADERSFS_RUN_DIR: '/r' }
  t.equal(runDir(env), '/r')
  t.equal(statePath(env, '/proc-ext'), '/r/proc\\x2dext.json')
  t.equal(pidPath(env, '/proc-ext'), '/r/proc\\x2dext.pid')
  t.equal(logPath(env, '/proc-ext'), '/r/proc\\x2dext.log')
  if (process.getuid?.() === 0) t.equal(runDir({}), '/run/kheadersfs', 'root: /run/kheadersfs')
  else t.equal(runDir({ XDG_RUNTIME_DIR: '/run/user/1000' }), '/run/user/1000/kheadersfs')
})

t.test('ensureRunDir: made 0700, a looser mode tightened, a link refused', async (t) => {
  const base = tmpDir(t)
  const dir = path.join(base, 'run', 'deeper')
  t.equal(ensureRunDir({ KHEADERSFS_RUN_DIR: dir }), dir)
  t.equal(mode(dir), 0o700)
  chmodSync(dir, 0o777)
  ensureRunDir({ KHEADERSFS_RUN_DIR: dir })
  t.equal(mode(dir), 0o700, "someone else's 0777 made ours again")
  const link = path.join(base, 'link')
  symlinkSync(dir, link)
  t.throws(() => ensureRunDir({ KHEADERSFS_RUN_DIR: link }), {
    exitCode: 8,
    message: `Cannot use run directory ${link}: it is not a directory (a link?); remove it`,
  })
  const file = path.join(base, 'file')
  writeFileSync(file, '')
  t.throws(() => ensureRunDir({ KHEADERSFS_RUN_DIR: file }), { code: 'EEXIST' }, 'a file in the way: mkdir fails')
})

t.test('writeState/readState/listStates/removeState', async (t) => {
  const dir = path.join(tmpDir(t), 'run')
  const env = { KHEADERSFS_RUN_DIR: dir }
  t.equal(readState(env, '/m'), undefined, 'nothing yet')
  t.same(listStates(env), [], 'no run directory: no states')
  writeState(env, state('/m', 100))
  writeState(env, state('/proc-ext', 200))
  t.same(readState(env, '/m'), state('/m', 100))
  t.equal(readFileSync(pidPath(env, '/m'), 'utf8'), '100\n', 'a plain pid file beside it')
  t.equal(mode(statePath(env, '/m')), 0o600)
  t.equal(mode(pidPath(env, '/m')), 0o600)
  t.same(readdirSync(dir).sort(), ['m.json', 'm.pid', 'proc\\x2dext.json', 'proc\\x2dext.pid'], 'no temp files left')
  t.same(
    listStates(env)
      .map((s) => s.pid)
      .sort(),
    [100, 200],
  )

  // A state file that names another mountpoint (two mountpoints cannot share a name, but a file
  // copied or edited by hand can lie) is not this mountpoint's.
  writeFileSync(statePath(env, '/other'), JSON.stringify(state('/elsewhere', 300)))
  t.equal(readState(env, '/other'), undefined, 'a state naming another mountpoint is not read')
  writeFileSync(statePath(env, '/corrupt'), '{"pid": 4')
  t.equal(readState(env, '/corrupt'), undefined, 'a partial file is no state')
  writeFileSync(path.join(dir, 'junk.txt'), '{}')
  t.same(
    listStates(env)
      .map((s) => s.pid)
      .sort(),
    [100, 200, 300],
    'listStates: every parseable .json, nothing else',
  )

  removeState(env, '/m', 999)
  t.same(readState(env, '/m'), state('/m', 100), "another pid's state is left alone")
  t.equal(readFileSync(pidPath(env, '/m'), 'utf8'), '100\n')
  removeState(env, '/m', 100)
  t.equal(readState(env, '/m'), undefined, 'its own pid: removed')
  t.notOk(readdirSync(dir).includes('m.pid'), 'with the pid file')
  removeState(env, '/proc-ext')
  t.notOk(
    readdirSync(dir).some((n) => n.startsWith('proc')),
    'no pid given: removed',
  )
  removeState(env, '/never')
  t.pass('removing what is not there is quiet')
})

t.test('writeState replaces a link at the state path instead of writing through it', async (t) => {
  const base = tmpDir(t)
  const dir = path.join(base, 'run')
  const env = { KHEADERSFS_RUN_DIR: dir }
  ensureRunDir(env)
  const victim = path.join(base, 'victim')
  writeFileSync(victim, 'precious')
  symlinkSync(victim, statePath(env, '/m'))
  symlinkSync(victim, pidPath(env, '/m'))
  writeState(env, state('/m', 7))
  t.equal(readFileSync(victim, 'utf8'), 'precious', 'the link target is untouched')
  t.ok(lstatSync(statePath(env, '/m')).isFile(), 'the state is a regular file now')
  t.ok(lstatSync(pidPath(env, '/m')).isFile(), 'the pid file too')
  t.same(readState(env, '/m'), state('/m', 7))
})

t.test('openPrivateAppend: our own file is appended to; a link, a FIFO, a hard link are replaced', async (t) => {
  const base = tmpDir(t)
  const append = (file: string, text: string): void => {
    const fd = openPrivateAppend(file)
    writeSync(fd, text)
    closeSync(fd)
  }
  const own = path.join(base, 'own.log')
  append(own, 'one\n')
  t.equal(mode(own), 0o600)
  chmodSync(own, 0o644)
  append(own, 'two\n')
  t.equal(readFileSync(own, 'utf8'), 'one\ntwo\n', 'appended')
  t.equal(mode(own), 0o600, 'and made 0600 again')

  const victim = path.join(base, 'victim')
  writeFileSync(victim, 'precious')
  const link = path.join(base, 'link.log')
  symlinkSync(victim, link)
  append(link, 'x\n')
  t.equal(readFileSync(victim, 'utf8'), 'precious', 'a link is not followed')
  t.ok(lstatSync(link).isFile() && readFileSync(link, 'utf8') === 'x\n', 'it is replaced by a file of ours')

  const hard = path.join(base, 'hard.log')
  linkSync(victim, hard)
  append(hard, 'y\n')
  t.equal(readFileSync(victim, 'utf8'), 'precious', 'a hard link is not written into')
  t.equal(statSync(hard).nlink, 1)
  t.equal(readFileSync(hard, 'utf8'), 'y\n')

  const fifo = path.join(base, 'fifo.log')
  execFileSync('mkfifo', [fifo])
  append(fifo, 'z\n')
  t.ok(lstatSync(fifo).isFile(), 'a FIFO (no reader) is replaced, without blocking')
  t.equal(readFileSync(fifo, 'utf8'), 'z\n')
  t.equal(mode(fifo), 0o600)

  const sub = path.join(base, 'dir.log')
  mkdirSync(sub)
  t.throws(() => openPrivateAppend(sub), { code: 'ERR_FS_EISDIR' }, 'a directory in the way is an error')
  t.ok(lstatSync(sub).isDirectory(), 'and is not removed')
})
