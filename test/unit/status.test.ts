// What is mounted, as data (src/mounts/status.ts): the mount table merged with the state files. A
// state whose daemon runs but whose mount is gone is a lazily detached mount still serving; a state
// whose daemon is gone and that is not mounted is no mount at all. (Live and stale mounts are in
// test/e2e, where real mounts are made.)
import { readFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { writeState, type DaemonState } from '../../src/protocol/state'
import { collectStatus } from '../../src/mounts/status'
import { freedByExit, memoryOf } from '../../src/procfs'
import { daemonState } from '../helpers/daemon-state'
import { tmpDir } from '../helpers/tmp'

const state = (mountpoint: string, pid: number, started = Date.now() - 5000): DaemonState =>
  daemonState(mountpoint, pid, started)

t.test("a running daemon without its mount: detached, with the daemon's figures; a dead one: nothing", async (t) => {
  const base = tmpDir(t)
  const env = { KHEADERSFS_RUN_DIR: path.join(base, 'run') }
  t.same(
    (await collectStatus(env)).filter((r) => r.mountpoint.startsWith(base)),
    [],
    'no state files: nothing of ours',
  )
  const detached = path.join(base, 'detached')
  const gone = path.join(base, 'gone')
  writeState(env, state(detached, process.pid)) // this process stands in for a running daemon
  writeState(env, state(gone, 2 ** 22 + 1)) // above pid_max's default: never a running process
  const rows = (await collectStatus(env)).filter((r) => r.mountpoint.startsWith(base))
  t.equal(rows.length, 1, 'only the running daemon')
  t.match(rows[0], {
    mountpoint: detached,
    state: 'detached',
    pid: process.pid,
    image: '/x.img',
    release: '6.1.0-test',
    profile: 'module-build',
    imageBytes: 1234,
    openFiles: 0,
  })
  t.ok(rows[0].rssBytes !== null && rows[0].rssBytes > 0, 'its RSS, from /proc')
  const r = rows[0]
  t.equal(r.memoryBytes, r.anonBytes! + r.swapBytes!, 'what umount frees: anonymous memory, resident or swapped')
  t.ok(r.anonBytes! > 0 && r.fileBytes! > 0, 'anonymous and file pages both counted')
  t.ok(r.memoryBytes! < r.rssBytes! + r.swapBytes!, 'less than RSS: the file pages stay')
  t.ok(r.shmemBytes! >= 0)
  t.ok(rows[0].uptimeSeconds !== null && rows[0].uptimeSeconds >= 4, 'its uptime, from the state')
})

t.test("memoryOf: the kernel's counters in bytes; a gone process: undefined", async (t) => {
  const m = memoryOf(process.pid)!
  const kB = (f: string): number =>
    Number(new RegExp(`^${f}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'))![1]) * 1024
  // Read the kernel's own figures around ours: they change as this process allocates.
  t.ok(Math.abs(m.anon - kB('RssAnon')) < 4 << 20, `RssAnon ${m.anon} ≈ ${kB('RssAnon')}`)
  t.ok(Math.abs(m.file - kB('RssFile')) < 4 << 20, `RssFile ${m.file} ≈ ${kB('RssFile')}`)
  t.equal(m.swap % 1024, 0)
  t.ok(m.rss >= m.anon && m.rss >= m.file, 'RSS holds both')
  t.equal(freedByExit({ rss: 10, anon: 3, file: 7, shmem: 0, swap: 2 }), 5, 'anonymous + swap')
  t.equal(memoryOf(2 ** 22 + 1), undefined)
})
