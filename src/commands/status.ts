// kheadersfs status: like lsmod. Every kheadersfs mount on the system with its daemon's figures.
import { parseCommand } from '../args'
import type { Command } from '../context'
import { UsageError } from '../errors'
import { bytes } from '../format-bytes'
import { collectStatus } from '../mounts/status'

export const status: Command = {
  usage: `Usage: kheadersfs status [--json]

List every kheadersfs mount on the system: mountpoint, daemon pid, release, profile, image size,
memory, open files, uptime and image path. A mount whose daemon died is flagged stale
("kheadersfs umount" or the next "kheadersfs mount" cleans it).

MEMORY is what unmounting frees: the daemon's own memory (RssAnon + VmSwap in /proc/PID/status),
holding the image, its file tree and the decoded-block cache. RSS beside it adds the pages of the
node binary and its libraries (RssFile), which stay in the page cache for other programs.
--json adds each figure in bytes: memoryBytes, rssBytes, anonBytes, fileBytes, shmemBytes, swapBytes.`,

  async run(args, ctx) {
    const { values, positionals } = parseCommand('status', args, { json: { type: 'boolean' } })
    if (positionals.length > 0)
      throw new UsageError('kheadersfs status: takes no arguments; see "kheadersfs status --help"')
    const rows = await collectStatus(ctx.env)
    if (values.json) {
      ctx.stdout.write(JSON.stringify(rows, null, 2) + '\n')
      return 0
    }
    const table = [
      ['MOUNTPOINT', 'STATE', 'PID', 'RELEASE', 'PROFILE', 'IMAGE', 'MEMORY', 'RSS', 'OPEN', 'UPTIME', 'IMAGE FILE'],
      ...rows.map((r) => [
        r.mountpoint,
        r.state,
        r.pid === null ? '-' : String(r.pid),
        r.release ?? '-',
        r.profile ?? '-',
        r.imageBytes === null ? '-' : bytes(r.imageBytes),
        r.memoryBytes === null ? '-' : bytes(r.memoryBytes),
        r.rssBytes === null ? '-' : bytes(r.rssBytes),
        String(r.openFiles),
        r.uptimeSeconds === null ? '-' : `${r.uptimeSeconds}s`,
        r.image ?? '-',
      ]),
    ]
    const widths = table[0].map((_, i) => Math.max(...table.map((r) => r[i].length)))
    for (const r of table)
      ctx.stdout.write(r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ') + '\n')
    return 0
  },
}
