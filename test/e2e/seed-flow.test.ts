// The flow CONFIG_IKHEADERS was tested with, end to end, on real parts: an image from Debian's
// linux-headers → kheadersfs mount → tar -xf MNT/kheaders.txz -C $HOME/headers →
// make -C $HOME/headers M=$PWD modules → hello.ko → umount → no daemon left.
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { parseImage } from '../../src/image/read'
import { buildHello, debianTree, packedImage, SKIP_NO_DEBIAN } from '../helpers/debian'
import { isMounted, mountImage, waitGone } from '../helpers/mount'
import { tmpDir } from '../helpers/tmp'

const tree = debianTree()

t.test(
  'seed flow: mount → tar -xf → make modules → hello.ko → umount',
  { skip: tree === undefined && SKIP_NO_DEBIAN },
  async (t) => {
    const image = await packedImage(tree!, 'module-build')
    const release = parseImage(readFileSync(image), image).manifest.release
    const m = await mountImage(t, image) // --force: the running kernel is not the Debian tree's
    const home = tmpDir(t)
    const headers = path.join(home, 'headers')
    mkdirSync(headers)
    execFileSync('tar', ['-xf', path.join(m.mnt, 'kheaders.txz'), '-C', headers])
    const b = await buildHello(headers, home, true)
    t.equal(b.code, 0, b.output.slice(-3000))
    t.match(b.vermagic, new RegExp(`^${release.replace(/\./g, '\\.')} SMP`), `vermagic ${b.vermagic}`)
    const versions = execFileSync('sh', [
      '-c',
      `objcopy -O binary --only-section=__versions "${b.ko}" /dev/stdout | wc -c`,
    ])
      .toString()
      .trim()
    t.ok(Number(versions) > 0, `modversions CRCs present (${versions} bytes of __versions)`)
    execFileSync('umount', [m.mnt])
    t.ok(await waitGone(m.pid, 10000), 'no daemon left after umount')
    t.notOk(isMounted(m.mnt))
  },
)
