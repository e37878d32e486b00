// The install hint names the packages of the system at hand (os-release fixtures of real releases).
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { fuseInstallHint, readOsRelease } from '../../src/native/fuse-packages'
import { tmpDir } from '../helpers/tmp'

const both = { library: true, fusermount: true }

t.test('os-release is parsed as systemd documents it (quotes optional)', async (t) => {
  const file = path.join(tmpDir(t), 'os-release')
  writeFileSync(
    file,
    'PRETTY_NAME="Ubuntu 24.04.1 LTS"\nNAME="Ubuntu"\nVERSION_ID="24.04"\nID=ubuntu\nID_LIKE=debian\n',
  )
  t.same(readOsRelease(file), { id: 'ubuntu', idLike: ['debian'], versionId: '24.04' })
  t.equal(readOsRelease(path.join(tmpDir(t), 'missing')), undefined)
})

t.test('Debian and Ubuntu: libfuse2t64 from Debian 13 / Ubuntu 24.04 on, fusermount from fuse3', async (t) => {
  const os = (id: string, versionId: string, idLike: string[] = []): Parameters<typeof fuseInstallHint>[1] => ({
    id,
    versionId,
    idLike,
  })
  t.equal(fuseInstallHint(both, os('debian', '12')), 'apt-get install libfuse2 fuse3')
  t.equal(fuseInstallHint(both, os('debian', '13')), 'apt-get install libfuse2t64 fuse3')
  t.equal(fuseInstallHint(both, os('debian', '')), 'apt-get install libfuse2t64 fuse3', 'testing/sid has no VERSION_ID')
  t.equal(fuseInstallHint(both, os('ubuntu', '22.04', ['debian'])), 'apt-get install libfuse2 fuse3')
  t.equal(fuseInstallHint(both, os('ubuntu', '24.04', ['debian'])), 'apt-get install libfuse2t64 fuse3')
  t.equal(fuseInstallHint(both, os('raspbian', '12', ['debian'])), 'apt-get install libfuse2 fuse3')
  t.match(
    fuseInstallHint(both, os('linuxmint', '22', ['ubuntu', 'debian'])),
    /^apt-get install libfuse2t64 \(libfuse2 on releases before 2024\) fuse3$/,
  )
  t.equal(fuseInstallHint({ library: false, fusermount: true }, os('debian', '12')), 'apt-get install fuse3')
})

t.test('other families, and systems without a package manager', async (t) => {
  t.equal(fuseInstallHint(both, { id: 'fedora', versionId: '41', idLike: [] }), 'dnf install fuse-libs fuse')
  t.equal(fuseInstallHint(both, { id: 'alpine', versionId: '3.20.3', idLike: [] }), 'apk add fuse')
  t.match(
    fuseInstallHint(both, { id: 'poky', versionId: '5.0', idLike: [] }),
    /libfuse\.so\.2.*fusermount.*Yocto.*Buildroot/,
  )
  t.match(fuseInstallHint(both, { id: '', versionId: '', idLike: [] }), /libfuse\.so\.2/, 'no os-release')
})
