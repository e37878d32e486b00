// The hardened unit under a real systemd (test/helpers/nspawn.ts: systemd 252 as PID 1 of a booted
// bookworm container, the kheadersfs .deb installed): systemd-analyze rates it and verifies it; it
// starts, serves and stops; its daemon runs with only CAP_SYS_ADMIN, seccomp and no new privileges,
// yet in the host's mount namespace (the mount is visible to everyone, not only inside the service);
// the service and the mount unit for the same path each work alone and never adopt each other's
// daemon; a killed daemon is restarted; and a mountpoint with a hostile name starts and stops too.
import { spawnSync } from 'node:child_process'
import { copyFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { sha256 } from '../../src/image/format'
import { readImage } from '../../src/image/read'
import { debFor } from '../helpers/board'
import { ROOT } from '../helpers/cli'
import { tinyImage } from '../helpers/images'
import { Container, nspawnSkipReason } from '../helpers/nspawn'
import { record } from '../helpers/stress'
import { tmpDir } from '../helpers/tmp'

const SERVICE = 'kheadersfs@proc\\x2dext.service'
const MOUNT = 'proc\\x2dext.mount'
const CAP_SYS_ADMIN = 1n << 21n

/** "Overall exposure level for X: 2.9 OK" → 2.9 */
function exposure(text: string): number {
  const m = /Overall exposure level for \S+: ([\d.]+)/.exec(text)
  return m ? Number(m[1]) : NaN
}

t.test('the systemd units under a real systemd', { skip: nspawnSkipReason() }, async (t) => {
  const deb = debFor(ROOT, 'amd64')
  if (deb === undefined) return t.fail('no build/packages/kheadersfs_*_amd64.deb: run packaging/build.sh amd64 first')
  const image = await tinyImage(t) // for this kernel's release, which the container shares
  const config = readImage(image).config
  const c = await Container.boot(t, deb, [[image, `/lib/modules/${os.release()}/kheaders.img`]])
  const sh = async (cmd: string): Promise<string> => {
    const r = await c.exec(cmd)
    if (r.code !== 0) throw new Error(`\`${cmd}\` exited ${r.code}: ${r.stdout}${r.stderr}`)
    return r.stdout.trim()
  }
  const checks: boolean[] = []
  const check = (ok: boolean): boolean => (checks.push(ok), ok)
  const mainPid = async (unit: string): Promise<number> =>
    Number(await sh(`systemctl show -p MainPID --value '${unit}'`))
  const served = async (mp = '/proc-ext'): Promise<string> =>
    (await c.exec(`sha256sum "${mp}/config.gz" | cut -d' ' -f1`)).stdout.trim()
  const daemonPid = async (): Promise<number> => Number(await sh("cat '/run/kheadersfs/proc\\x2dext.pid'"))
  const cgroupOf = async (pid: number): Promise<string> => sh(`sed -n 's/^0:://p' /proc/${pid}/cgroup`)
  /** The mount went and its daemon exited (within 5 s). */
  const gone = async (mp = '/proc-ext'): Promise<boolean> => {
    for (let i = 0; i < 50; i++) {
      const r = await c.exec(`! findmnt -n '${mp}' >/dev/null && ! pgrep -f 'cli[.]js mount' >/dev/null`)
      if (r.code === 0) return true
      await new Promise((r2) => setTimeout(r2, 100))
    }
    return false
  }

  // --- systemd-analyze: exposure before and after, verify -----------------------------------------
  const before = path.join(tmpDir(t), 'kheadersfs@.service')
  copyFileSync(path.join(ROOT, 'test/fixtures/systemd-before/kheadersfs@.service'), before)
  const beforeScore = exposure(
    spawnSync('systemd-analyze', ['security', '--offline=yes', before], { encoding: 'utf8' }).stdout,
  )
  const after = await c.exec(`systemd-analyze security '${SERVICE}'`)
  const afterScore = exposure(after.stdout)
  check(t.ok(afterScore <= 3.0, `exposure ${afterScore} (was ${beforeScore} before the hardening)`))
  const verify = await c.exec(
    `systemd-analyze verify --man=no '/lib/systemd/system/${SERVICE}' '/lib/systemd/system/${MOUNT}'`,
  )
  check(
    t.equal(verify.code, 0, 'systemd-analyze verify of both units succeeds') &&
      t.equal(verify.stdout + verify.stderr, '', 'and says nothing'),
  )

  // --- the service alone --------------------------------------------------------------------------
  check(t.equal((await c.exec(`systemctl start '${SERVICE}'`)).code, 0, 'the service starts'))
  const pid = await mainPid(SERVICE)
  check(t.equal(await served(), sha256(config), 'config.gz is served'))
  check(t.match(await cgroupOf(pid), /kheadersfs@proc\\x2dext\.service$/, 'the daemon lives in the service'))
  const ns = await sh(`readlink /proc/1/ns/mnt /proc/${pid}/ns/mnt`)
  check(
    t.equal(ns.split('\n')[0], ns.split('\n')[1], "the daemon is in PID 1's mount namespace: the mount is everyone's"),
  )
  const status = await sh(`cat /proc/${pid}/status`)
  check(
    t.equal(
      BigInt('0x' + /^CapBnd:\s+(\w+)/m.exec(status)![1]),
      CAP_SYS_ADMIN,
      'capability bounding set: CAP_SYS_ADMIN only',
    ),
  )
  check(t.match(status, /^NoNewPrivs:\s+1$/m, 'no new privileges'))
  check(t.match(status, /^Seccomp:\s+2$/m, 'a seccomp filter'))
  check(t.equal((await c.exec(`systemctl stop '${SERVICE}'`)).code, 0, 'the service stops'))
  check(t.ok(await gone(), 'stopped: unmounted, no daemon'))
  check(t.equal(await sh('ls /run/kheadersfs | grep -c proc || true'), '0', 'no state file left'))

  // --- the mount unit alone -----------------------------------------------------------------------
  check(t.equal((await c.exec(`systemctl start '${MOUNT}'`)).code, 0, 'the mount unit starts'))
  check(t.equal(await served(), sha256(config), 'config.gz is served by the mount unit'))
  const mpid = await daemonPid()
  check(t.match(await cgroupOf(mpid), /proc\\x2dext\.mount$/, "the daemon lives in the mount unit's cgroup"))

  // --- the service while the mount unit serves the path: fails, naming it; nothing adopted ---------
  const refused = await c.exec(`systemctl start '${SERVICE}'`)
  check(t.not(refused.code, 0, 'the service refuses to start while the mount unit serves the path'))
  const journal = await sh(`journalctl -u '${SERVICE}' --no-pager -o cat`)
  check(t.match(journal, /already serves it \(pid \d+, proc\\x2dext\.mount\); stop that first/, 'and says which unit'))
  check(t.equal(await daemonPid(), mpid, "the mount unit's daemon goes on serving"))
  check(t.equal(await served(), sha256(config)))
  check(t.equal((await c.exec(`systemctl stop '${MOUNT}'`)).code, 0, 'the mount unit stops'))
  check(t.ok(await gone(), 'unmounted, no daemon'))
  await c.exec(`systemctl reset-failed '${SERVICE}'`)

  // --- the mount unit while the service serves the path: already there, the daemon stays put ------
  check(t.equal((await c.exec(`systemctl start '${SERVICE}'`)).code, 0))
  const spid = await mainPid(SERVICE)
  await c.exec(`systemctl start '${MOUNT}'`)
  check(t.equal(await mainPid(SERVICE), spid, 'the service keeps its daemon'))
  check(t.match(await cgroupOf(spid), /kheadersfs@proc\\x2dext\.service$/, 'which stays in the service'))
  check(t.equal((await c.exec(`systemctl stop '${SERVICE}'`)).code, 0))
  check(t.ok(await gone(), 'stopped: unmounted, no daemon'))
  check(t.equal(await sh(`systemctl is-active '${MOUNT}' || true`), 'inactive', 'and the mount unit is inactive'))

  // --- a crash: Restart=on-failure mounts again over the stale mountpoint ---------------------------
  check(t.equal((await c.exec(`systemctl start '${SERVICE}'`)).code, 0))
  const crashed = await mainPid(SERVICE)
  await sh(`kill -9 ${crashed}`)
  let restarted = 0
  for (let i = 0; i < 100 && (restarted === 0 || restarted === crashed); i++) {
    await new Promise((r) => setTimeout(r, 100))
    if ((await c.exec(`systemctl is-active '${SERVICE}'`)).stdout.trim() === 'active')
      restarted = await mainPid(SERVICE)
  }
  check(t.ok(restarted !== 0 && restarted !== crashed, `restarted after kill -9 (pid ${crashed} → ${restarted})`))
  check(t.equal(await served(), sha256(config), 'and serves again'))
  check(t.equal((await c.exec(`systemctl stop '${SERVICE}'`)).code, 0))
  check(t.ok(await gone(), 'stopped'))

  // --- a hostile mountpoint name, as an instance: starts, serves, stops; nothing runs from the name -
  // printf's format (dash: octal escapes): a space, $(), backquotes, a quote, a tab and a 0xff byte.
  const odd = "'/srv/k $(touch /tmp/pwned) `touch /tmp/pwned2` '\\''q\\011\\377'"
  const unit = await sh(`printf 'kheadersfs@%s.service' "$(systemd-escape --path "$(printf ${odd})")"`)
  check(t.equal((await c.exec(`systemctl start '${unit}'`)).code, 0, `${unit} starts`))
  const oddServed = await c.exec(`sha256sum "$(printf ${odd})/config.gz" | cut -d' ' -f1`)
  check(
    t.equal(oddServed.stdout.trim(), sha256(config), 'and serves at the path with a tab, quotes, $() and a 0xff byte'),
  )
  check(t.equal((await c.exec(`systemctl stop '${unit}'`)).code, 0, 'and stops'))
  check(t.equal((await c.exec(`findmnt -rn -o TARGET | grep -c '^/srv/k' || true`)).stdout.trim(), '0', 'unmounted'))
  check(
    t.equal(
      (await c.exec('ls /tmp/pwned /tmp/pwned2 2>/dev/null | wc -l')).stdout.trim(),
      '0',
      'nothing ran from the name',
    ),
  )

  record({
    area: 'systemd unit',
    name: 'kheadersfs@.service and proc\\x2dext.mount under systemd 252 (systemd-nspawn -b, bookworm)',
    tried: checks.length,
    passed: checks.filter(Boolean).length,
    detail: `systemd-analyze security: ${beforeScore} before, ${afterScore} after; verify clean; daemon in PID 1's mount namespace with CapBnd CAP_SYS_ADMIN, NoNewPrivs, seccomp; service alone, mount unit alone, each refused or left alone while the other serves; restarted after kill -9; an instance for a path with a tab, quotes, $(), backquotes and 0xff started and stopped with nothing run`,
  })
})
