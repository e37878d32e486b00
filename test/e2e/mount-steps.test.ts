// What a slow `kheadersfs mount` says while it works (mounts/mount-progress.ts), through real mounts.
// A mount here takes well under a second, so the tests set $KHEADERSFS_STEPS_AFTER_MS=0 ("say the
// steps at once"): the lines and their order are what is checked, never how long anything took.
import { spawnSync } from 'node:child_process'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { bytes } from '../../src/format-bytes'
import { runCli } from '../helpers/cli'
import { isMounted, mountDirs } from '../helpers/mount'
import { tinyTree } from '../helpers/tiny-tree'
import { tmpDir } from '../helpers/tmp'
import { statSync } from 'node:fs'

const NOW = { KHEADERSFS_STEPS_AFTER_MS: '0' }

t.test('mount steps', async (t) => {
  const dir = tmpDir(t)
  const image = path.join(dir, 'k.img')
  const packed = await runCli([
    'pack',
    '--kernel',
    tinyTree(path.join(dir, 'tree')),
    '--release',
    os.release(),
    '-o',
    image,
  ])
  t.equal(packed.code, 0, packed.stderr)
  const size = bytes(statSync(image).size)

  t.test('each step on its own plain line, then the time it took', async (t) => {
    const { mnt, env } = mountDirs(t)
    const r = await runCli(['mount', '--image', image, mnt], { env: { ...env, ...NOW } })
    t.equal(r.code, 0, r.stderr)
    const lines = r.stderr.trimEnd().split('\n')
    t.same(lines.slice(0, -1), [
      'kheadersfs: starting the daemon...',
      `kheadersfs: loading ${image} (${size})...`,
      `kheadersfs: mounting at ${mnt}...`,
    ])
    t.match(lines.at(-1), new RegExp(`^kheadersfs: mounted at ${mnt} in \\d+\\.\\d s$`))
    t.notOk(/[{}]/.test(r.stderr), 'no JSON')
    t.equal(r.stdout, '', 'nothing on stdout')
    t.ok(isMounted(mnt))
    spawnSync('umount', [mnt])
  })

  t.test('-o link_build adds its step', async (t) => {
    const { mnt, env } = mountDirs(t)
    const r = await runCli(['mount', '--image', image, '-o', 'link_build', mnt], { env: { ...env, ...NOW } })
    t.equal(r.code, 0, r.stderr)
    t.ok(r.stderr.includes(`kheadersfs: linking /lib/modules/${os.release()}/build to the view...\n`), r.stderr)
    spawnSync('umount', [mnt])
  })

  t.test('below --log-level info: nothing but errors', async (t) => {
    const { mnt, env } = mountDirs(t)
    const r = await runCli(['--log-level', 'warn', 'mount', '--image', image, mnt], { env: { ...env, ...NOW } })
    t.equal(r.code, 0, r.stderr)
    t.equal(r.stderr, '')
    spawnSync('umount', [mnt])
  })

  t.test('a start that fails: the steps it reached, then the one error line', async (t) => {
    const { mnt, env } = mountDirs(t)
    const r = await runCli(['mount', '--image', image, '--release', '0.0.0-other', mnt], { env: { ...env, ...NOW } })
    t.equal(r.code, 4, r.stderr)
    const lines = r.stderr.trimEnd().split('\n')
    t.same(lines.slice(0, 2), ['kheadersfs: starting the daemon...', `kheadersfs: loading ${image} (${size})...`])
    t.equal(lines.filter((l) => !l.endsWith('...')).length, 1, 'one error line')
    t.match(lines.at(-1), /it is for kernel .*, not 0\.0\.0-other/)
    t.notOk(r.stderr.includes('mounted at'), 'no "mounted" line')
    t.notOk(isMounted(mnt))
  })
})
