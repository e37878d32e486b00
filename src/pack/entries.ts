// The unit every stage of pack passes on: one archive entry, what it is and where its bytes come
// from. Both sources make them (select.ts from a kernel tree, from-kheaders.ts from the kernel's own
// archive), normalized the same way (gen_kheaders.sh's --mode=u=rw,go=r,a+X).
import type { Confinement } from './confine'

export interface SourceEntry {
  /** Relative path in the archive, '/'-separated, no trailing slash. */
  path: string
  type: 'file' | 'directory' | 'symlink'
  /** Normalized permission bits: 0644/0755 files, 0755 dirs, 0777 links. */
  mode: number
  /** Absolute path to read the content from (files). */
  source?: string
  /** Where `source` must lie when it is read (undefined: a file kheadersfs made itself). */
  within?: Confinement
  /** Content given directly (the .config from --config, a file of the kernel's archive). */
  data?: Buffer
  linkname?: string
  /** Size seen by lstat; the archiver uses the size it actually reads. */
  size: number
  /** C header: comments are stripped. */
  strip: boolean
}

export interface Skipped {
  path: string
  reason: string
}

export interface Selection {
  entries: SourceEntry[]
  skipped: Skipped[]
  /** The directories the files come from (the tree, its kbuild directories, --sysroot). */
  within?: Confinement
}

/** A file's normalized mode: executable by anyone, 0755; else 0644. */
export function fileMode(mode: number): number {
  return (mode & 0o111) !== 0 ? 0o755 : 0o644
}

/** A file whose bytes are given (the .config from --config, a file of the kernel's archive). */
export function dataEntry(path: string, data: Buffer, mode = 0o644): SourceEntry {
  return { path, type: 'file', mode, data, size: data.length, strip: false }
}

export function dirEntry(path: string): SourceEntry {
  return { path, type: 'directory', mode: 0o755, size: 0, strip: false }
}

export function linkEntry(path: string, linkname: string): SourceEntry {
  return { path, type: 'symlink', mode: 0o777, linkname, size: 0, strip: false }
}
