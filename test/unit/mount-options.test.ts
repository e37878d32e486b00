// -o options and the mount(8) calling form, and the run-directory names (which must equal what
// `systemd-escape --path` makes, so a unit's %i names our pid file).
import { spawnSync } from 'node:child_process'
import t from 'tap'
import { helperForm } from '../../src/commands/mount'
import { DEFAULT_CACHE_MB, parseMountOptions } from '../../src/mounts/mount-options'
import { mountId } from '../../src/protocol/state'

t.test('parseMountOptions: kheadersfs options taken, generic ones tolerated, others refused', async (t) => {
  t.same(
    parseMountOptions(['ro,dev,suid,nofail,force', 'image=/a', 'release=6.1.0-1-amd64,log_level=debug,nonempty']),
    {
      force: true,
      allowUntrusted: false,
      nonempty: true,
      image: '/a',
      release: '6.1.0-1-amd64',
      logLevel: 'debug',
      view: true,
      linkBuild: false,
    },
    'no cache_mb: undefined (the daemon takes DEFAULT_CACHE_MB, or one block if that is larger)',
  )
  t.same(parseMountOptions(['defaults,x-systemd.automount,_netdev,noauto,user,comment=x,,']), {
    force: false,
    allowUntrusted: false,
    nonempty: false,
    view: true,
    linkBuild: false,
  })
  t.equal(DEFAULT_CACHE_MB, 8)
  t.match(parseMountOptions(['view=off,cache_mb=4,allow_untrusted_image']), {
    view: false,
    cacheMb: 4,
    allowUntrusted: true,
  })
  t.match(parseMountOptions(['cache_mb=8,link_build']), { cacheMb: 8, linkBuild: true })
  t.throws(() => parseMountOptions(['view=maybe']), /"view=maybe": choose view=on or view=off/)
  for (const bad of ['cache_mb=0', 'cache_mb=-1', 'cache_mb=1.5', 'cache_mb=99999', 'cache_mb=']) {
    t.throws(
      () => parseMountOptions([bad]),
      /Cannot use mount option "cache_mb=[^"]*": (give a whole number of MiB from 1 to 4096|it needs a value)/,
      bad,
    )
  }
  t.throws(
    () => parseMountOptions(['ro,bogus']),
    /Cannot use mount option "bogus": not a kheadersfs or generic mount option/,
  )
  t.throws(() => parseMountOptions(['image=']), /"image=": it needs a value/)
  t.throws(() => parseMountOptions(['log_level=loud']), /"log_level=loud": choose one of/)
  t.same(parseMountOptions(['image=/path/with=equals.img']).image, '/path/with=equals.img', 'only the first = splits')
})

t.test('helperForm: what mount.fuse runs becomes kheadersfs mount', async (t) => {
  t.same(helperForm(['/x.img', '/proc-ext', '-o', 'ro,force']), [
    'mount',
    '--image',
    '/x.img',
    '-o',
    'ro,force',
    '/proc-ext',
  ])
  t.same(
    helperForm(['auto', '/proc-ext', '-oro,nofail']),
    ['mount', '-o', 'ro,nofail', '/proc-ext'],
    '"auto" searches; -oOPTS joined form',
  )
  t.same(helperForm(['kheadersfs', '/m']), ['mount', '/m'], '"kheadersfs" as source searches too')
  t.same(helperForm(['auto', '/m', '-o', 'image=/y.img']), ['mount', '-o', 'image=/y.img', '/m'])
  t.equal(helperForm(['frob']), undefined, 'one word is an unknown command, not the mount form')
  t.equal(helperForm(['a', 'b', 'c']), undefined, 'three words are not the mount form')
  t.equal(helperForm(['a', 'b', '--lazy']), undefined, 'other flags are not the mount form')
  t.throws(() => helperForm(['/x.img', '/m', '-o', 'image=/y.img']), /the image is given twice/)
  t.throws(() => helperForm(['auto', '/m', '-o']), /-o needs a value/)
})

t.test(
  'mountId equals systemd-escape --path',
  { skip: spawnSync('systemd-escape', ['--version']).status !== 0 && 'systemd-escape is not installed' },
  async (t) => {
    for (const p of [
      '/proc-ext',
      '/a b/c.d',
      '/.hidden/x',
      '/tmp/ü-x',
      '/',
      '/a//b/',
      '/x:y_z',
      '/a\\b',
      '/run/user/0/k.h-1',
      '/tab\there',
    ]) {
      const want = spawnSync('systemd-escape', ['--path', p], { encoding: 'utf8' }).stdout.trim()
      t.equal(mountId(p), want, JSON.stringify(p))
    }
  },
)
