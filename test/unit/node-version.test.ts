// The Node.js floor: 18.19 (Debian 12, Ubuntu 24.04) runs; anything older is refused in one line.
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { nodeTooOld } from '../../src/node-version'
import { CLI } from '../helpers/cli'
import { tmpDir } from '../helpers/tmp'

t.test('versions at and above the floor pass, older ones get one line naming the fix', async (t) => {
  for (const ok of ['18.19.0', '18.20.4', '20.19.2', '22.0.0', '24.1.0']) t.equal(nodeTooOld(ok), undefined, ok)
  for (const old of ['18.18.2', '16.20.2', '12.22.12']) {
    const msg = nodeTooOld(old)
    t.match(
      msg,
      new RegExp(
        `^kheadersfs: Node\\.js 18\\.19 or newer is required, this is ${old.replace(/\./g, '\\.')}; install a newer nodejs`,
      ),
      old,
    )
    t.notMatch(msg, /\n/)
  }
})

t.test('the CLI refuses before doing anything when node reports an old version', async (t) => {
  // process.versions cannot be set from outside: a preloaded script changes it inside the CLI process.
  const pre = path.join(tmpDir(t), 'old-node.js')
  writeFileSync(pre, "Object.defineProperty(process.versions, 'node', { value: '16.20.2' })\n")
  const r = spawnSync(process.execPath, ['-r', pre, CLI, '--version'], { encoding: 'utf8' })
  t.equal(r.stdout, '', 'nothing ran')
  t.equal(r.status, 1)
  t.match(r.stderr, /^kheadersfs: Node\.js 18\.19 or newer is required, this is 16\.20\.2; install a newer nodejs.*\n$/)
})
