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
  t.throws(
    () => parseMountOptions(['ro,bogus']),
    /^Cannot use mount option "bogus": not a kheadersfs or generic mount option; see "kheadersfs mount --help"$/,
    'nothing close: no suggestion',
  )
  t.throws(() => parseMountOptions(['log_level=loud']), /"log_level=loud": choose one of/)
  t.same(parseMountOptions(['image=/path/with=equals.img']).image, '/path/with=equals.img', 'only the first = splits')
})

t.test('mistyped options and values: the one meant is suggested', async (t) => {
  const refused = (opt: string): string => {
    try {
      parseMountOptions([opt])
    } catch (e) {
      return (e as Error).message
    }
    return 'accepted'
  }
  t.equal(
    refused('nonemtpy'),
    'Cannot use mount option "nonemtpy": not a kheadersfs or generic mount option; did you mean "nonempty"? see "kheadersfs mount --help"',
  )
  t.match(refused('noatim'), /did you mean "noatime"\?/, 'a generic option')
  t.match(refused('cache=4'), /did you mean "cache_mb"\?/, 'a prefix, by its key')
  t.match(refused('link-build'), /did you mean "link_build"\?/)
  t.match(refused('X-mount.mkdri'), 'accepted', 'other X- options are for other programs, as before')
  t.equal(refused('view=onn'), 'Cannot use mount option "view=onn": did you mean view=on? choose view=on or view=off')
  t.equal(refused('view=maybe'), 'Cannot use mount option "view=maybe": choose view=on or view=off')
  t.match(
    refused('log_level=wran'),
    /^Cannot use mount option "log_level=wran": did you mean log_level=warn\? choose one of/,
  )
})

t.test('X-mount.mkdir[=MODE], as util-linux mount(8) has it', async (t) => {
  t.equal(parseMountOptions(['ro']).mkdirMode, undefined, 'not asked: no mode')
  t.equal(parseMountOptions(['X-mount.mkdir']).mkdirMode, 0o755, 'default mode 0755')
  t.equal(parseMountOptions(['ro,X-mount.mkdir=0750']).mkdirMode, 0o750)
  t.equal(parseMountOptions(['x-mount.mkdir=700']).mkdirMode, 0o700, "util-linux's old spelling, and 3 digits")
  for (const bad of ['X-mount.mkdir=', 'X-mount.mkdir=0855', 'X-mount.mkdir=rwx', 'X-mount.mkdir=07555'])
    t.throws(() => parseMountOptions([bad]), /give an octal mode such as 0755, or no value/, bad)
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
