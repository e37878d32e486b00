// kheadersfs info IMAGE: what an image holds, like modinfo for a module. Reads, never mounts.
import { parseCommand } from '../args'
import type { Command } from '../context'
import { UsageError } from '../errors'
import { bytes, count } from '../format-bytes'
import { readImage, type Image } from '../image/read'

export const info: Command = {
  usage: `Usage: kheadersfs info [--json] IMAGE

Show an image's kernel release, architecture, profile, creation time, sizes, sha256s and counts.
  --json   print the manifest (without its file table) as JSON`,

  run(args, ctx) {
    const { values, positionals } = parseCommand('info', args, { json: { type: 'boolean' } })
    if (positionals.length !== 1)
      throw new UsageError('kheadersfs info: give exactly one IMAGE; see "kheadersfs info --help"')
    const image = readImage(positionals[0])
    ctx.stdout.write(
      values.json ? JSON.stringify(infoObject(positionals[0], image), null, 2) + '\n' : infoText(positionals[0], image),
    )
    return 0
  },
}

export function infoObject(file: string, image: Image): Record<string, unknown> {
  const { files, ...rest } = image.manifest
  return { filename: file, imageSize: image.bytes, ...rest, entries: files.length }
}

function infoText(file: string, image: Image): string {
  const m = image.manifest
  const h = m.payloads['kheaders.tar.xz']
  const c = m.payloads['config.gz']
  const rows: Array<[string, string]> = [
    ['filename', file],
    ['release', m.release],
    ['arch', m.arch],
    ['profile', m.profile],
    ['created', m.created],
    ['format', `${m.format} ${m.version}`],
    ['generator', m.generator],
    ['image size', `${image.bytes} (${bytes(image.bytes)})`],
    [
      'kheaders.tar.xz',
      `${h.size} (${bytes(h.size)}), tar ${h.uncompressedSize} (${bytes(h.uncompressedSize)}), xz preset ${h.preset}, ${h.check}, blocks of ${h.blockSize}`,
    ],
    ['  sha256', h.sha256],
    ['config.gz', `${c.size} (${bytes(c.size)}), .config ${c.uncompressedSize} (${bytes(c.uncompressedSize)})`],
    ['  sha256', c.sha256],
    [
      'files',
      `${count(m.counts.files)} files, ${count(m.counts.directories)} directories, ${count(m.counts.symlinks)} symlinks`,
    ],
    ['file bytes', `${m.bytes.raw} raw, ${m.bytes.stripped} after comment stripping`],
  ]
  if (m.target !== undefined)
    rows.splice(3, 0, [
      'target',
      `${m.target.name}, from ${m.target.from === 'vmlinux' ? "the kernel's vmlinux" : 'the arch and .config'}`,
    ])
  if (m.hostPrograms !== undefined) {
    const hp = m.hostPrograms
    rows.push(['host programs', `rebuilt for the target with ${hp.compiler}: ${hp.rebuilt.join(' ')}`])
    if (hp.dropped.length > 0)
      rows.push(['  left out', `${hp.dropped.join(' ')} (build-host programs module builds do not run)`])
  }
  rows.push([
    'order',
    m.layout === undefined
      ? 'by name (before format 1.2)'
      : `${m.layout.order} (files module builds read first; docs/image-format.md)`,
  ])
  if (m.source !== undefined) rows.push(['packed from', `the kernel's own kheaders archive, sha256 ${m.source.sha256}`])
  return rows.map(([k, v]) => `${(k + ':').padEnd(17)}${v}\n`).join('')
}
