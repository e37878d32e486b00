// control.tar's two files: DEBIAN/control (deb-control(5)) and DEBIAN/md5sums (deb-md5sums(5)).
import { createHash } from 'node:crypto'
import path from 'node:path'
import type { DebFile } from './tar'

export interface ControlFields {
  package: string
  version: string
  architecture: string
  maintainer: string
  depends: string
  enhances: string
  section: string
  homepage?: string
  /** The synopsis (first line) and the paragraphs of the extended description. */
  synopsis: string
  description: string[]
}

/** The control file: fields in the order dpkg-gencontrol writes them; Installed-Size from `files`. */
export function controlFile(f: ControlFields, files: readonly DebFile[]): string {
  const fields: Array<[string, string | undefined]> = [
    ['Package', f.package],
    ['Version', f.version],
    ['Architecture', f.architecture],
    ['Maintainer', f.maintainer],
    ['Installed-Size', String(installedSize(files))],
    ['Depends', f.depends],
    ['Enhances', f.enhances],
    ['Section', f.section],
    ['Priority', 'optional'],
    ['Homepage', f.homepage],
    ['Description', `${f.synopsis}\n${f.description.map((p) => wrap(p)).join('\n .\n')}`],
  ]
  return fields
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}: ${v}\n`)
    .join('')
}

/** `md5sum` lines of the files, paths without "./", as dpkg-deb expects them. */
export function md5sums(files: readonly DebFile[]): string {
  return files.map((f) => `${createHash('md5').update(f.data).digest('hex')}  ${f.path}\n`).join('')
}

/** KiB, as dpkg-gencontrol counts it: each file rounded up, 1 for every directory (the root not counted). */
function installedSize(files: readonly DebFile[]): number {
  const dirs = new Set<string>()
  for (const f of files) for (let d = path.posix.dirname(f.path); d !== '.'; d = path.posix.dirname(d)) dirs.add(d)
  return files.reduce((kib, f) => kib + Math.ceil(f.data.length / 1024), dirs.size)
}

/** One paragraph of an extended description: lines of at most 79 columns, each starting with a space. */
export function wrap(paragraph: string, width = 79): string {
  const lines: string[] = []
  let line = ''
  // A line starting with "." is a control statement (" ." is an empty line): such a word stays with the one before.
  const words = paragraph.split(/\s+/).filter(Boolean)
  for (let i = words.length - 1; i > 0; i--)
    if (words[i].startsWith('.')) words.splice(i - 1, 2, `${words[i - 1]} ${words[i]}`)
  for (const word of words) {
    if (line !== '' && line.length + 1 + word.length > width - 1) {
      lines.push(line)
      line = word
    } else line = line === '' ? word : `${line} ${word}`
  }
  if (line !== '') lines.push(line)
  return lines.map((l) => ` ${l}`).join('\n')
}
