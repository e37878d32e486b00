// kheadersfs status: like lsmod. Every kheadersfs mount on the system with its daemon's figures.
import { parseCommand } from '../args'
import type { Command } from '../context'
import { UsageError } from '../errors'
import { bytes } from '../format-bytes'
import { health, holders, kheadersMounts, rssBytes, running } from '../serve/mounts'
import { listStates } from '../serve/state'

export interface MountStatus {
  mountpoint: string
  state: 'live' | 'stale' | 'detached'
  pid: number | null
  image: string | null
  release: string | null
  profile: string | null
  imageBytes: number | null
  rssBytes: number | null
  openFiles: number
  uptimeSeconds: number | null
}

export async function collectStatus(env: NodeJS.ProcessEnv): Promise<MountStatus[]> {
  const states = listStates(env)
  const out: MountStatus[] = []
  const seen = new Set<string>()
  for (const m of kheadersMounts()) {
    if (seen.has(m.mountpoint)) continue
    seen.add(m.mountpoint)
    const s = states.find((st) => st.mountpoint === m.mountpoint)
    const alive = s !== undefined && running(s.pid)
    const stale = (await health(m.mountpoint)) === 'stale' || (s !== undefined && !alive)
    out.push(row(m.mountpoint, stale ? 'stale' : 'live', s, alive))
  }
  // Lazily detached mounts still serving their last readers: no mount entry, a running daemon.
  for (const s of states) {
    if (!seen.has(s.mountpoint) && running(s.pid)) out.push(row(s.mountpoint, 'detached', s, true))
  }
  return out
}

function row(mountpoint: string, state: MountStatus['state'], s: ReturnType<typeof listStates>[number] | undefined, alive: boolean): MountStatus {
  return {
    mountpoint,
    state,
    pid: s?.pid ?? null,
    image: s?.image ?? null,
    release: s?.release ?? null,
    profile: s?.profile ?? null,
    imageBytes: s?.imageBytes ?? null,
    rssBytes: alive && s ? (rssBytes(s.pid) ?? null) : null,
    openFiles: state === 'live' ? holders(mountpoint).reduce((n, h) => n + h.files, 0) : 0,
    uptimeSeconds: alive && s ? Math.round((Date.now() - s.started) / 1000) : null,
  }
}

export const status: Command = {
  usage: `Usage: kheadersfs status [--json]

List every kheadersfs mount on the system: mountpoint, daemon pid, release, profile, image size,
daemon memory (RSS), open files, uptime and image path. A mount whose daemon died is flagged stale
("kheadersfs umount" or the next "kheadersfs mount" cleans it).`,

  async run(args, ctx) {
    const { values, positionals } = parseCommand('status', args, { json: { type: 'boolean' } })
    if (values.help) {
      ctx.stdout.write(status.usage + '\n')
      return 0
    }
    if (positionals.length > 0) throw new UsageError('kheadersfs status: takes no arguments; see "kheadersfs status --help"')
    const rows = await collectStatus(ctx.env)
    if (values.json) {
      ctx.stdout.write(JSON.stringify(rows, null, 2) + '\n')
      return 0
    }
    const table = [
      ['MOUNTPOINT', 'STATE', 'PID', 'RELEASE', 'PROFILE', 'IMAGE', 'RSS', 'OPEN', 'UPTIME', 'IMAGE FILE'],
      ...rows.map((r) => [
        r.mountpoint,
        r.state,
        r.pid === null ? '-' : String(r.pid),
        r.release ?? '-',
        r.profile ?? '-',
        r.imageBytes === null ? '-' : bytes(r.imageBytes),
        r.rssBytes === null ? '-' : bytes(r.rssBytes),
        String(r.openFiles),
        r.uptimeSeconds === null ? '-' : `${r.uptimeSeconds}s`,
        r.image ?? '-',
      ]),
    ]
    const widths = table[0].map((_, i) => Math.max(...table.map((r) => r[i].length)))
    for (const r of table) ctx.stdout.write(r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ') + '\n')
    return 0
  },
}
