// The order of the archive: what module builds read comes first and together, so that a build from
// the kheaders/ view decodes few xz blocks and a small block cache holds them; and every tier is in
// name order, the order the view lists directories in, so that a walk of the view (grep -r, cp -r,
// tar -c, find | xargs) reads each tier front to back and decodes each block about once. Worked out
// from the tree's own contents (include graph, Kbuild files' references), never from a list of files
// one module happens to use. Deterministic: the same files and contents give the same order.
//
// Rule "build-2" (recorded in the manifest as layout.order; docs/image-format.md §3). Tiers, each in
// name order (compareTarPaths: a directory's entries together, after it):
//   0. directories and symbolic links (no data; tar -xf makes parents first);
//   1. the Kbuild files every external build reads: Makefiles and *.include/*.lds under scripts/ and
//      arch/<arch>/, the top Makefile, Module.symvers, include/config/{auto.conf,kernel.release} —
//      and the programs and scripts under scripts/ and tools/ those name (scripts/basic/fixdep,
//      scripts/mod/modpost, …, and siblings NAME.* of a named program, e.g. Debian's
//      modpost.real-lsb-64);
//   2. the include closure of the headers every module starts from (SEEDS: Kbuild's forced
//      -include files, linux/module.h, and linux/sched.h where BPF tools start, plus every
//      `#include <…>` the files of 1 write out, e.g. modpost's NAME.mod.c);
//   3. the headers drivers use most beyond those: the other headers ranked by how many headers of the
//      tree include each, each with the part of its closure not placed yet, up to COMMON_BYTES;
//   4. the rest: every other header, program, .config, ….
// Why tiers and not one build order (build-1, the order before): a walk in name order jumped between
// blocks of a build-ordered archive and decoded 941 blocks of 18 at the default cache; with tiers it
// needs one block per tier in the cache (docs/design.md, "Build order").
import path from 'node:path'
import type { SourceEntry } from './entries'
import { entryBytes } from './tar'
import { compareTarPaths } from './tar-order'

export const LAYOUT_ORDER = 'build-2'

/** The headers every module build starts from (before the files it names itself). */
export const SEEDS = [
  'include/linux/kconfig.h',
  'include/linux/compiler-version.h',
  'include/linux/compiler_types.h',
  'include/linux/module.h',
  'include/linux/sched.h',
]

/** Files of the Kbuild machinery, wherever they sit outside include directories. */
const KBUILD_FILE = /^(Makefile.*|Kbuild.*|.*\.include|.*\.lds|Platform)$/
const ALWAYS = [
  'Makefile',
  'Module.symvers',
  '.kernelvariables',
  'include/config/auto.conf',
  'include/config/kernel.release',
]

/**
 * Tar bytes of tier 3. Chosen with a model of the view's block cache over the Debian 6.1 tree (every
 * block size and cache of docs/design.md): 2 MiB held the headers the larger test module reads beyond
 * the seeds' closure best; more made walks need more cache, less made that module's build decode more.
 */
export const COMMON_BYTES = 2 << 20

const INCLUDE = /^[ \t]*#[ \t]*include[ \t]*([<"])([^>"\n]+)[>"]/gm
/** An #include a program or makefile writes out (strings in a binary are not at a line start). */
const GENERATED_INCLUDE = /#[ \t]*include[ \t]*<([^>"\n\0]+)>/g

/**
 * Order `entries` (name-sorted, from selectFiles) by the rule above; returns their indices in order.
 * `content(i)` is the bytes that will be archived for entry i (comments already stripped): headers are
 * scanned for #include, Kbuild files for the paths they name.
 */
export function buildOrder(
  entries: readonly SourceEntry[],
  arch: string,
  content: (i: number) => Buffer | undefined,
): number[] {
  const byPath = new Map<string, number>()
  entries.forEach((e, i) => byPath.set(e.path, i))
  const placed = new Set<number>()
  const out: number[] = []
  let tier: number[] = []
  const place = (i: number): void => {
    if (placed.has(i)) return
    placed.add(i)
    tier.push(i)
  }
  /** The tier placed so far goes out in name order; the next one starts. */
  const endTier = (): void => {
    out.push(...tier.sort((a, b) => compareTarPaths(entries[a].path, entries[b].path)))
    tier = []
  }

  // 0. directories and links
  entries.forEach((e, i) => e.type !== 'file' && place(i))
  endTier()

  // 1. Kbuild files, then what they name
  const isHeader = (p: string): boolean => p.endsWith('.h')
  const inInclude = (p: string): boolean => p.startsWith('include/') || p.startsWith(`arch/${arch}/include/`)
  const kbuild: number[] = []
  entries.forEach((e, i) => {
    if (e.type !== 'file' || isHeader(e.path)) return
    const kbuildDir = e.path.startsWith('scripts/') || (e.path.startsWith(`arch/${arch}/`) && !inInclude(e.path))
    if (ALWAYS.includes(e.path) || (kbuildDir && KBUILD_FILE.test(path.posix.basename(e.path)))) kbuild.push(i)
  })
  const named = namedBy(
    entries,
    kbuild,
    content,
    (e) => e.type === 'file' && !isHeader(e.path) && (e.path.startsWith('scripts/') || e.path.startsWith('tools/')),
  )
  const kbuildFiles = [...kbuild, ...named]
  for (const i of kbuildFiles) place(i)
  endTier()

  // The include graph of the headers.
  const resolve = includeResolver(arch, byPath, entries)
  const includes = new Map<number, number[]>()
  const includedBy = new Map<number, number>()
  entries.forEach((e, i) => {
    if (e.type !== 'file' || !isHeader(e.path)) return
    const deps = scanIncludes(e.path, content(i), resolve)
    includes.set(i, deps)
    for (const d of new Set(deps)) includedBy.set(d, (includedBy.get(d) ?? 0) + 1)
  })
  const rank = (a: number, b: number): number =>
    (includedBy.get(b) ?? 0) - (includedBy.get(a) ?? 0) || compareTarPaths(entries[a].path, entries[b].path)
  const closure = (start: number[]): number[] => {
    const seen = new Set<number>()
    const stack = [...start].reverse()
    const order: number[] = []
    while (stack.length > 0) {
      const i = stack.pop()!
      if (seen.has(i) || placed.has(i)) continue
      seen.add(i)
      order.push(i)
      for (const d of [...(includes.get(i) ?? [])].reverse()) if (!seen.has(d)) stack.push(d)
    }
    return order
  }

  // 2. the seeds' closure. Seeds also include what the Kbuild files and programs write #include
  // lines for (modpost generates every module's NAME.mod.c).
  const generated = kbuildFiles.flatMap((i) =>
    [...(content(i)?.toString('latin1').matchAll(GENERATED_INCLUDE) ?? [])].map((m) => resolve('', false, m[1].trim())),
  )
  const seeds = [...SEEDS.map((p) => byPath.get(p)), ...generated].filter(
    (i): i is number => i !== undefined && includes.has(i),
  )
  for (const i of closure(seeds)) place(i)
  endTier()

  // 3. other headers, most included first, each with its closure, while the tier has room
  let bytes = 0
  for (const i of [...includes.keys()].sort(rank)) {
    if (placed.has(i)) continue
    const group = closure([i])
    bytes += group.reduce((sum, j) => sum + entryBytes(content(j)), 0)
    if (bytes > COMMON_BYTES) break
    for (const j of group) place(j)
  }
  endTier()

  // 4. the rest
  entries.forEach((_, i) => place(i))
  endTier()
  return out
}

/** Files (matching `eligible`) whose paths the Kbuild files mention, and siblings NAME.* of those. */
function namedBy(
  entries: readonly SourceEntry[],
  from: number[],
  content: (i: number) => Buffer | undefined,
  eligible: (e: SourceEntry) => boolean,
): number[] {
  const text = from.map((i) => content(i)?.toString('latin1') ?? '').join('\n')
  const found = new Set<number>()
  const names: string[] = []
  entries.forEach((e, i) => {
    if (!eligible(e) || from.includes(i)) return
    if (mentions(text, e.path)) {
      found.add(i)
      names.push(e.path)
    }
  })
  entries.forEach((e, i) => {
    if (eligible(e) && names.some((n) => e.path.startsWith(`${n}.`))) found.add(i)
  })
  return [...found]
}

/** `text` names `p` as a whole path (not as the prefix of a longer name). */
function mentions(text: string, p: string): boolean {
  for (let at = text.indexOf(p); at !== -1; at = text.indexOf(p, at + 1)) {
    const next = text.charCodeAt(at + p.length)
    if (Number.isNaN(next) || !/[A-Za-z0-9_.-]/.test(String.fromCharCode(next))) return true
  }
  return false
}

type Resolve = (from: string, quoted: boolean, name: string) => number | undefined

/**
 * #include lookup as Kbuild's LINUXINCLUDE orders it (arch first, then generic, then uapi); a quoted
 * name is tried next to the including file first. Links inside the archive are followed.
 */
function includeResolver(arch: string, byPath: Map<string, number>, entries: readonly SourceEntry[]): Resolve {
  const dirs = [
    `arch/${arch}/include`,
    `arch/${arch}/include/generated`,
    'include',
    `arch/${arch}/include/uapi`,
    `arch/${arch}/include/generated/uapi`,
    'include/uapi',
    'include/generated/uapi',
  ]
  const find = (p: string): number | undefined => {
    for (let hops = 0; hops < 8; hops++) {
      const i = byPath.get(p)
      if (i === undefined || entries[i].type !== 'symlink') return i
      const link = entries[i].linkname!
      if (link.startsWith('/')) return undefined
      p = path.posix.normalize(path.posix.join(path.posix.dirname(p), link))
    }
    return undefined
  }
  return (from, quoted, name) => {
    if (quoted) {
      const here = path.posix.normalize(path.posix.join(path.posix.dirname(from), name))
      const i = here.startsWith('../') ? undefined : find(here)
      if (i !== undefined) return i
    }
    for (const d of dirs) {
      const i = find(path.posix.normalize(`${d}/${name}`))
      if (i !== undefined) return i
    }
    return undefined
  }
}

function scanIncludes(from: string, data: Buffer | undefined, resolve: Resolve): number[] {
  if (data === undefined) return []
  const out: number[] = []
  for (const m of data.toString('latin1').matchAll(INCLUDE)) {
    const i = resolve(from, m[1] === '"', m[2].trim())
    if (i !== undefined) out.push(i)
  }
  return out
}
