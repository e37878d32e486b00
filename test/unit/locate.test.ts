// Which image a mount loads (src/image/locate.ts), found as modprobe finds a module: an explicit
// path, then $KHEADERSFS_IMAGE, then /lib/modules/RELEASE/kheaders.img, then
// /usr/lib/kheadersfs/RELEASE.img; and the message when none is there.
import { existsSync, mkdirSync, rmdirSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { locateImage, runningRelease, searchPath } from '../../src/image/locate'
import { tmpDir } from '../helpers/tmp'

// A release no kernel has, so that its files under /lib/modules and /usr/lib/kheadersfs are ours.
const release = `0.0.0-kheadersfs-unit-${process.pid}`
const modules = `/lib/modules/${release}/kheaders.img`
const library = `/usr/lib/kheadersfs/${release}.img`

t.test('runningRelease is uname -r', async (t) => {
  t.equal(runningRelease(), os.release())
})

t.test('searchPath: $KHEADERSFS_IMAGE first when set, then the modules directory, then the library', async (t) => {
  t.same(searchPath('6.1.0-1-amd64', {}), [
    { path: '/lib/modules/6.1.0-1-amd64/kheaders.img', from: 'modules directory' },
    { path: '/usr/lib/kheadersfs/6.1.0-1-amd64.img', from: 'kheadersfs library' },
  ])
  t.same(searchPath('6.1.0-1-amd64', { KHEADERSFS_IMAGE: '/srv/k.img' }), [
    { path: '/srv/k.img', from: '$KHEADERSFS_IMAGE' },
    { path: '/lib/modules/6.1.0-1-amd64/kheaders.img', from: 'modules directory' },
    { path: '/usr/lib/kheadersfs/6.1.0-1-amd64.img', from: 'kheadersfs library' },
  ])
  t.equal(searchPath('r', { KHEADERSFS_IMAGE: '' }).length, 2, 'an empty $KHEADERSFS_IMAGE counts as unset')
})

t.test('locateImage: an explicit path is taken as given, even when missing', async (t) => {
  t.same(locateImage({ explicit: '/no/such.img', release, env: { KHEADERSFS_IMAGE: '/x' } }), {
    path: '/no/such.img',
    tried: ['/no/such.img'],
  })
})

t.test('locateImage: nothing anywhere is exit 3 with every place named', async (t) => {
  t.throws(() => locateImage({ release, env: {} }), {
    name: 'ImageNotFoundError',
    exitCode: 3,
    message: `Cannot find a kheadersfs image for ${release}: looked in $KHEADERSFS_IMAGE (unset), ${modules}, ${library}; pack one with "kheadersfs pack" and install it at /lib/modules/${release}/kheaders.img, or pass --image`,
  })
  t.throws(() => locateImage({ release, env: { KHEADERSFS_IMAGE: '/no/such.img' } }), {
    exitCode: 3,
    message: `Cannot find a kheadersfs image for ${release}: looked in /no/such.img, ${modules}, ${library}; pack one with "kheadersfs pack" and install it at /lib/modules/${release}/kheaders.img, or pass --image`,
  })
})

t.test(
  'locateImage: the first that exists wins, in search order',
  { skip: process.getuid?.() !== 0 && 'needs root to write under /lib/modules and /usr/lib' },
  async (t) => {
    const env = { KHEADERSFS_IMAGE: path.join(tmpDir(t), 'env.img') }
    const tried = [env.KHEADERSFS_IMAGE, modules, library]
    const madeLibrary = !existsSync('/usr/lib/kheadersfs')
    t.teardown(() => {
      rmSync(path.dirname(modules), { recursive: true, force: true })
      rmSync(library, { force: true })
      if (madeLibrary) rmdirSync('/usr/lib/kheadersfs')
    })
    mkdirSync(path.dirname(modules))
    mkdirSync('/usr/lib/kheadersfs', { recursive: true })
    writeFileSync(library, '')
    t.same(locateImage({ release, env }), { path: library, tried }, 'only the library has one')
    writeFileSync(modules, '')
    t.same(locateImage({ release, env }), { path: modules, tried }, 'the modules directory before the library')
    writeFileSync(env.KHEADERSFS_IMAGE, '')
    t.same(locateImage({ release, env }), { path: env.KHEADERSFS_IMAGE, tried }, '$KHEADERSFS_IMAGE before both')
    t.same(
      locateImage({ release, env: {} }),
      { path: modules, tried: [modules, library] },
      'unset: the modules directory',
    )
  },
)
