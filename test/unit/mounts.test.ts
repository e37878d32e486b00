// Mount table and process helpers (src/mounts/mountinfo.ts, src/procfs.ts): mountinfo parsing with its escapes, the
// busy/ok/error decision of unmount (also under a translated util-linux), who holds files open,
// whether a pid runs, and the health probe of a plain directory.
import { spawn, spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { FSTYPE, health, kheadersMounts, mounts, parseMountinfo, unmount } from '../../src/mounts/mountinfo'
import { holders, rssBytes, running } from '../../src/procfs'
import { tmpDir } from '../helpers/tmp'

const root = process.getuid?.() === 0

t.test('parseMountinfo: fields, optional fields, \\ooo escapes; malformed lines skipped', async (t) => {
  const text = [
    '36 35 98:0 /mnt1 /mnt/parent ro,noatime master:1 - ext3 /dev/root rw,errors=continue',
    '620 29 0:62 / /tmp/a\\040b\\011c\\134d rw,nosuid,nodev,relatime shared:338 master:7 - fuse.kheadersfs kheadersfs,ro rw,user_id=0,group_id=0,allow_other',
    '621 29 0:63 / /proc-ext rw,relatime - fuse.kheadersfs kheadersfs rw,user_id=0',
    '',
    'garbage',
    '1 2 3:4 / /x rw shared:1 no-separator-here ext4 /dev/sda rw',
    '5 6 7:8 / /y rw - ext4',
  ].join('\n')
  t.same(parseMountinfo(text), [
    {
      id: 36,
      mountpoint: '/mnt/parent',
      options: 'ro,noatime',
      fstype: 'ext3',
      source: '/dev/root',
      superOptions: 'rw,errors=continue',
    },
    {
      id: 620,
      mountpoint: '/tmp/a b\tc\\d',
      options: 'rw,nosuid,nodev,relatime',
      fstype: 'fuse.kheadersfs',
      source: 'kheadersfs,ro',
      superOptions: 'rw,user_id=0,group_id=0,allow_other',
    },
    {
      id: 621,
      mountpoint: '/proc-ext',
      options: 'rw,relatime',
      fstype: 'fuse.kheadersfs',
      source: 'kheadersfs',
      superOptions: 'rw,user_id=0',
    },
  ])
  t.equal(FSTYPE, 'fuse.kheadersfs')
  t.same(
    parseMountinfo('9 8 0:1 / /a\\012b rw - tmpfs x\\040y rw\n')[0],
    { id: 9, mountpoint: '/a\nb', options: 'rw', fstype: 'tmpfs', source: 'x y', superOptions: 'rw' },
    'newline and space escapes',
  )
})

t.test("mounts(): this process's table; kheadersMounts() only fuse.kheadersfs", async (t) => {
  const all = mounts()
  t.ok(
    all.some((m) => m.mountpoint === '/'),
    'the root is mounted',
  )
  t.ok(
    all.some((m) => m.mountpoint === '/proc' && m.fstype === 'proc'),
    '/proc is proc',
  )
  t.ok(kheadersMounts().every((m) => m.fstype === 'fuse.kheadersfs'))
})

t.test(
  'unmount of a tmpfs: ok, busy while a file is open, an error for what is not mounted',
  { skip: !root && 'needs root to mount a tmpfs' },
  async (t) => {
    const dir = tmpDir(t)
    const mnt = path.join(dir, 'mnt')
    mkdirSync(mnt)
    const mounted = (): boolean => mounts().some((m) => m.mountpoint === mnt)
    t.teardown(() => {
      if (mounted()) spawnSync('umount', ['-l', mnt])
    })
    const mountTmpfs = (): void => {
      const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'kheadersfs-test', mnt], { encoding: 'utf8' })
      if (r.status !== 0) throw new Error(`mount: ${r.stderr}`)
      writeFileSync(path.join(mnt, 'f'), 'x')
    }
    /** A process holding `mnt`/f open until killed. */
    const hold = async (): Promise<ReturnType<typeof spawn>> => {
      const p = spawn('sh', ['-c', `exec 7<"${mnt}/f"; echo held; exec sleep 60`])
      t.teardown(() => p.kill('SIGKILL'))
      await new Promise((r) => p.stdout.once('data', r))
      return p
    }
    const release = async (p: ReturnType<typeof spawn>): Promise<void> => {
      p.kill('SIGKILL')
      await new Promise((r) => p.once('exit', r))
    }

    mountTmpfs()
    let holder = await hold()
    // sh execs sleep right after saying "held": either name may be current.
    t.match(
      holders(mnt),
      [{ pid: holder.pid, command: /^(sh|sleep)$/, files: 1 }],
      'holders names the process and its open file',
    )
    t.equal(holders(mnt).length, 1, 'and nobody else')
    t.equal(unmount(mnt, false), 'busy', 'busy while the file is open')
    t.ok(mounted(), 'still mounted')
    await release(holder)
    t.same(holders(mnt), [])
    t.equal(unmount(mnt, false), 'ok')
    t.notOk(mounted(), 'unmounted')

    mountTmpfs()
    holder = await hold()
    t.equal(unmount(mnt, true), 'ok', 'lazy: ok even while a file is open')
    t.notOk(mounted(), 'detached at once')
    await release(holder)

    const r = unmount(mnt, false)
    t.match(r, { error: /not mounted/ }, 'not mounted: an error naming why, in English')

    t.test('under a German locale: "busy" is still busy and errors read in English', async (t) => {
      const saved = { LANG: process.env.LANG, LC_ALL: process.env.LC_ALL, LANGUAGE: process.env.LANGUAGE }
      t.teardown(() => {
        for (const [k, v] of Object.entries(saved)) {
          if (v === undefined) delete process.env[k]
          else process.env[k] = v
        }
      })
      Object.assign(process.env, { LANG: 'de_DE.UTF-8', LC_ALL: 'de_DE.UTF-8', LANGUAGE: 'de' })
      mountTmpfs()
      const holder = await hold()
      // Without German messages this case proves nothing: .ci/setup installs and generates them.
      const plain = spawnSync('umount', [mnt], { encoding: 'utf8' })
      t.not(plain.status, 0)
      t.match(
        plain.stderr,
        /das Ziel wird gerade benutzt/,
        'umount(8) itself answers in German here (util-linux-locales, de_DE.UTF-8)',
      )
      t.equal(unmount(mnt, false), 'busy', 'busy: an errno, not a message to translate')
      t.ok(mounted())
      await release(holder)
      t.equal(unmount(mnt, false), 'ok')
      t.notOk(mounted())
      t.match(unmount(mnt, false), { error: 'not mounted' }, 'its error reads in English')
    })
  },
)

t.test('running, rssBytes, health of a plain directory', async (t) => {
  t.equal(running(process.pid), true)
  t.ok((rssBytes(process.pid) ?? 0) > 1 << 20, 'this process has over 1 MiB resident')
  const child = spawn('true')
  const pid = child.pid!
  await new Promise((r) => child.once('exit', r))
  t.equal(running(pid), false, 'an exited, reaped child')
  t.equal(rssBytes(pid), undefined)
  t.equal(running(2 ** 22 + 1), false, 'a pid above pid_max')
  const dir = tmpDir(t)
  writeFileSync(path.join(dir, 'f'), '')
  t.equal(await health(dir), 'live')
  t.equal(await health(path.join(dir, 'nope')), 'live', 'ENOENT is not a dead daemon')
  t.same(holders(dir), [], 'nobody holds a file in a fresh directory')
})
