// Where a mount's log goes, through real mounts. Under systemd (stderr is the stream JOURNAL_STREAM
// names: here a file given that device:inode, the very condition the daemon checks) the command and
// its daemon write plain lines with sd-daemon priority prefixes; otherwise the daemon's .log file
// holds one JSON record per line and nothing else, also what others write to its stderr.
import { spawn, spawnSync } from 'node:child_process'
import { closeSync, openSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { gzipSync } from 'node:zlib'
import t from 'tap'
import { CLI, runCli } from '../helpers/cli'
import { daemonPids, isMounted, mountDirs } from '../helpers/mount'
import { tinyTree } from '../helpers/tiny-tree'
import { tmpDir } from '../helpers/tmp'
import os from 'node:os'

/**
 * The CLI with its stderr appended to `file` (stdout ignored); resolves with the exit code. The steps
 * a slow mount says (mount-steps.test.ts) are off: a loaded machine may take a second, and these
 * tests compare the lines.
 */
function cliToFile(args: string[], file: string, env: Record<string, string>): Promise<number | null> {
  const fd = openSync(file, 'a')
  const child = spawn(process.execPath, [CLI, ...args], {
    stdio: ['ignore', 'ignore', fd],
    env: { ...process.env, KHEADERSFS_STEPS_AFTER_MS: '9999999', ...env },
  })
  closeSync(fd)
  return new Promise((resolve, reject) => {
    child.on('error', reject)
    child.on('exit', (code) => resolve(code))
  })
}

/** Wait (bounded) until `ok()`: for the daemon's last line, written as it exits after the unmount. */
async function until(ok: () => boolean, ms = 20000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 50))) if (ok()) return true
  return ok()
}

/** An image whose xz block (16 MiB) is larger than the default cache: the daemon warns as it loads. */
async function bigBlockImage(dir: string): Promise<string> {
  const out = path.join(dir, 'big-block.img')
  const tree = tinyTree(path.join(dir, 'tree'))
  const r = await runCli(['pack', '--kernel', tree, '--release', os.release(), '--block-size', '16M', '-o', out], {
    env: { KHEADERSFS_LOG_LEVEL: 'warn' },
  })
  if (r.code !== 0) throw new Error(`pack failed: ${r.stderr}`)
  return out
}

t.test('logs', async (t) => {
  const dir = tmpDir(t)
  const image = await bigBlockImage(dir)
  const notImage = path.join(dir, 'x.gz')
  writeFileSync(notImage, gzipSync(Buffer.from('not an image')))

  t.test('under systemd: plain lines with sd-daemon priority prefixes', async (t) => {
    const { mnt, env, runDir } = mountDirs(t)
    const journal = path.join(tmpDir(t), 'journal')
    writeFileSync(journal, '')
    const st = statSync(journal, { bigint: true })
    const jenv = { ...env, JOURNAL_STREAM: `${st.dev}:${st.ino}` }

    t.equal(await cliToFile(['mount', '--image', notImage, mnt], journal, jenv), 4, 'a failed start exits 4')
    t.equal(await cliToFile(['mount', '--image', image, mnt], journal, jenv), 0, 'mounted')
    t.ok(isMounted(mnt))
    t.ok(readFileSync(path.join(mnt, 'config.gz')).length > 0)
    t.equal(await cliToFile(['umount', mnt], journal, jenv), 0, 'unmounted')
    t.ok(await until(() => readFileSync(journal, 'utf8').includes('unmounted; exiting')), 'the daemon logged its exit')
    t.same(daemonPids(runDir), [])
    t.same(
      readdirSync(runDir).filter((f) => f.endsWith('.log')),
      [],
      'no log file: the journal has it',
    )

    const lines = readFileSync(journal, 'utf8').split('\n')
    t.equal(lines.pop(), '', 'whole lines')
    t.same(
      lines.filter((l) => !/^<[0-7]>[^<{]/.test(l)),
      [],
      'every line starts with a priority prefix and is no JSON record',
    )
    const at = (p: number, re: RegExp): void => {
      t.ok(
        lines.some((l) => l.startsWith(`<${p}>`) && re.test(l)),
        `<${p}> ${re.source}\n${lines.join('\n')}`,
      )
    }
    at(3, /^<3>failed to start \(component=daemon, .*err=Cannot use image .*x\.gz: not a kheadersfs image/)
    at(3, /^<3>kheadersfs: Cannot use image .*x\.gz: not a kheadersfs image/) // the command's own error line
    at(4, /^<4>the default cache is smaller than one xz block: raised to 16 MiB/)
    at(6, /^<6>image loaded \(/)
    at(6, /^<6>mounted \(/)
    at(6, /^<6>unmounted; exiting \(/)
    t.equal(
      lines.filter((l) => l.startsWith('<3>')).length,
      2,
      'the failure once from the daemon, once from the command',
    )

    // journalctl -p err: what journald files at priority 3 or more urgent.
    const errors = lines.filter((l) => /^<[0-3]>/.test(l))
    t.equal(errors.length, 2, 'only the failed start is at err or above')
  })

  t.test('the variable alone is not the journal: stderr elsewhere gets no prefixes', async (t) => {
    const { mnt, env, runDir } = mountDirs(t)
    const stderr = path.join(tmpDir(t), 'stderr')
    const other = tmpDir(t)
    const st = statSync(other, { bigint: true })
    const jenv = { ...env, JOURNAL_STREAM: `${st.dev}:${st.ino}` }
    t.equal(await cliToFile(['mount', '--image', notImage, mnt], stderr, jenv), 4)
    t.equal(
      readFileSync(stderr, 'utf8'),
      `kheadersfs: Cannot use image ${notImage}: not a kheadersfs image (it looks like gzip data); give an image written by "kheadersfs pack"\n`,
    )
    t.same(readdirSync(runDir).filter((f) => f.endsWith('.log')).length, 1, 'the daemon logged to its file')
  })

  t.test('the .log file: one JSON record per line and nothing else', async (t) => {
    const { mnt, env, runDir } = mountDirs(t)
    // NODE_DEBUG makes Node itself write lines to the daemon's stderr, before ready and after.
    const noisy = { ...env, NODE_DEBUG: 'module' }
    const fail = await runCli(['mount', '--image', notImage, mnt], { env: noisy })
    t.equal(fail.code, 4, 'a failed start')
    const ok = await runCli(['mount', '--image', image, mnt], { env: noisy })
    t.equal(ok.code, 0, 'mounted')
    t.ok(readFileSync(path.join(mnt, 'config.gz')).length > 0, 'serves after ready, its stderr closed')
    const off = await runCli(['umount', mnt], { env })
    t.equal(off.code, 0, off.stderr)
    const [log] = readdirSync(runDir).filter((f) => f.endsWith('.log'))
    const file = path.join(runDir, log)
    t.ok(await until(() => readFileSync(file, 'utf8').includes('unmounted; exiting')), 'the daemon logged its exit')

    const text = readFileSync(file, 'utf8')
    t.ok(text.endsWith('\n'), 'whole lines')
    const lines = text.slice(0, -1).split('\n')
    const bad: string[] = []
    const records = lines.flatMap((l) => {
      try {
        const r = JSON.parse(l) as Record<string, unknown>
        if (typeof r !== 'object' || r === null || Array.isArray(r)) throw new Error('not an object')
        return [r]
      } catch {
        bad.push(l)
        return []
      }
    })
    t.same(bad, [], 'every line is a JSON object')
    const jq = spawnSync('jq', ['-c', '.', file])
    if (jq.error === undefined) t.equal(jq.status, 0, `jq -c . reads the file: ${String(jq.stderr)}`)
    else t.comment('jq not installed: JSON.parse per line only')
    const has = (level: number, re: RegExp): boolean =>
      records.some((r) => r.level === level && re.test(String(r.msg)) && typeof r.time === 'number')
    t.ok(has(50, /^failed to start$/), 'the failed start, at error')
    t.ok(has(40, /^the default cache is smaller than one xz block/), 'the warning')
    t.ok(has(30, /^mounted$/) && has(30, /^unmounted; exiting$/))
    const stray = records.filter((r) => r.component === 'stderr')
    t.ok(stray.length > 0, `what Node wrote to the daemon's stderr is there as records (${stray.length})`)
    t.ok(
      stray.every((r) => r.level === 40 && /^MODULE \d+: /.test(String(r.msg))),
      'each a warning holding the line',
    )
    t.same(
      records.filter((r) => r.level === 50 && r.msg !== 'failed to start'),
      [],
      'no other error: the closed stderr after ready is no failure',
    )
  })
})
