// Which files go into the archive. The kernel tree is seen as one merged tree: the object tree laid
// over the source tree (objtree wins, as in gen_kheaders.sh's second cpio pass). A profile picks paths
// from it. Nothing is read here except directory listings and lstat; contents are read by the archiver,
// through the same confinement (confine.ts): a link that leads out of the kernel tree is refused here,
// and a link kept in the archive must lead to a path inside the archive (image/links.ts).
import { lstatSync, readdirSync, readlinkSync, realpathSync, type Stats } from 'node:fs'
import path from 'node:path'
import { KernelTreeError, reason } from '../errors'
import type { Profile } from '../image/format'
import { MAX_DEPTH, pathProblem } from '../image/format'
import { resolveInArchive } from '../image/links'
import { Confinement, MAX_FILE_BYTES } from './confine'
import { dataEntry, dirEntry, fileMode, linkEntry, type Selection, type Skipped, type SourceEntry } from './entries'
import { makefileStubTarget, missingStubTarget, type KernelTree } from './kernel-tree'
import { namedPath, realpathIn } from './sysroot'
import { inTarOrder } from './tar-order'

/** A node of the merged tree: a file, kept link, or directory with the real dirs that back it. */
type Node =
  { kind: 'file'; real: string; st: Stats } | { kind: 'symlink'; target: string } | { kind: 'dir'; layers: string[] }

const JUNK = /^\..*\.(cmd|d|tmp)$|\.o$|\.mod\.c$|^\.tmp/
const CONTROL = /[\x00-\x1f\x7f-\x9f]/

/**
 * The entries of `tree` for `profile`. The walk lets the event loop run every few directories (it
 * takes about a second on Debian's tree) so that Ctrl-C, through `signal`, stops it at once.
 */
export async function selectFiles(tree: KernelTree, profile: Profile, signal?: AbortSignal): Promise<Selection> {
  const merged = new MergedTree(tree, signal)
  const picked = new Map<string, SourceEntry>()
  const pick = (rel: string, node: Node, strip: boolean): void => {
    picked.set(rel, entryOf(rel, node, strip, tree, merged.within))
  }
  if (profile === 'headers') await pickHeaders(merged, tree.arch, pick)
  else {
    await pickModuleBuild(merged, tree.arch, pick)
    if (tree.config !== undefined) picked.set('.config', dataEntry('.config', tree.config))
    requireModuleBuildFiles(picked, tree)
  }
  if (picked.size === 0) {
    throw new KernelTreeError(
      `Cannot pack ${tree.objtree}: no headers found under include/ or arch/${tree.arch}/include/; pass --kernel a kernel build tree`,
    )
  }
  const entries = inTarOrder(withParentDirs(picked).values())
  checkArchivable(entries, tree)
  return { entries, skipped: merged.skipped, within: merged.within }
}

type PickEntry = (rel: string, node: Node, strip: boolean) => void

const isHeader = (rel: string): boolean => rel.endsWith('.h')

/** gen_kheaders.sh: `find include/ arch/$SRCARCH/include/ -name "*.h"` in srctree, then objtree. */
async function pickHeaders(merged: MergedTree, arch: string, pick: PickEntry): Promise<void> {
  for (const root of ['include', `arch/${arch}/include`]) {
    await merged.walk(root, (rel, node) => {
      if (isHeader(rel)) pick(rel, node, true)
    })
  }
}

/** What `make -C tree M=dir modules` reads (cf. the kernel's scripts/package/install-extmod-build). */
async function pickModuleBuild(merged: MergedTree, arch: string, pick: PickEntry): Promise<void> {
  const archDir = `arch/${arch}`
  for (const root of ['include', `${archDir}/include`]) {
    await merged.walk(
      root,
      (rel, node) => pick(rel, node, isHeader(rel)),
      (dir) => dir !== 'include/config',
    )
  }
  for (const f of ['include/config/auto.conf', 'include/config/kernel.release'])
    merged.pick(f, (rel, n) => pick(rel, n, false))
  await merged.walk('scripts', (rel, node) => pick(rel, node, isHeader(rel)))
  await merged.walk(
    archDir,
    (rel, node) => {
      const base = path.posix.basename(rel)
      const top = path.posix.dirname(rel) === archDir
      if (
        (top && base.startsWith('Makefile')) ||
        base === 'module.lds' ||
        base === 'Kbuild.platforms' ||
        base === 'Platform'
      ) {
        pick(rel, node, false)
      }
    },
    (dir) => !dir.startsWith(`${archDir}/include`),
  )
  for (const f of ['Makefile', 'Module.symvers', '.kernelvariables', 'tools/objtool/objtool']) {
    merged.pick(f, (rel, n) => pick(rel, n, false))
  }
}

/** The files no module build works without; the first one missing is named with its fix. */
function requireModuleBuildFiles(picked: ReadonlyMap<string, SourceEntry>, tree: KernelTree): void {
  const missing = [
    ['.config', 'pass --config FILE (a .config or /proc/config.gz)'],
    ['include/config/auto.conf', 'run "make modules_prepare" in the tree'],
    ['Module.symvers', 'run "make modules" in the tree (or pass --profile headers)'],
    ['Makefile', 'the top-level kernel Makefile must be in the tree'],
    ['scripts/Makefile.build', 'the scripts/ directory of the build must be in the tree'],
  ].filter(([p]) => !picked.has(p))
  if (missing.length > 0) {
    const [p, fix] = missing[0]
    throw new KernelTreeError(`Cannot pack ${tree.objtree} for module builds: ${p} is missing; ${fix}`)
  }
}

/** `picked` and the parent directories of everything in it, as cpio -pd creates them. */
function withParentDirs(picked: ReadonlyMap<string, SourceEntry>): Map<string, SourceEntry> {
  const all = new Map(picked)
  for (const rel of picked.keys()) {
    for (let d = path.posix.dirname(rel); d !== '.'; d = path.posix.dirname(d)) {
      if (all.has(d)) break
      all.set(d, dirEntry(d))
    }
  }
  return all
}

/**
 * What the loader will accept: every path a valid archive path (image/format.ts pathProblem), every link
 * kept in the archive a target that resolves inside it, through the archive's own links.
 */
function checkArchivable(entries: readonly SourceEntry[], tree: Pick<KernelTree, 'objtree'>): void {
  const links = new Map<string, string>()
  for (const e of entries) {
    const why = pathProblem(e.path)
    if (why !== undefined)
      throw new KernelTreeError(
        `Cannot pack ${tree.objtree}: ${JSON.stringify(e.path.length > 120 ? e.path.slice(0, 120) + '…' : e.path)} cannot be archived: ${why}; remove it from the tree`,
      )
    if (e.type === 'symlink') links.set(e.path, e.linkname!)
  }
  for (const [from, target] of links) {
    const v = resolveInArchive(from, target, links)
    if (!v.inside) {
      throw new KernelTreeError(
        `Cannot pack ${tree.objtree}: ${from} is a symlink to ${target}, which does not resolve inside the archive: ${v.why}; replace it with the file it should name`,
      )
    }
  }
}

function entryOf(rel: string, node: Node, strip: boolean, tree: KernelTree, within: Confinement): SourceEntry {
  if (node.kind === 'symlink') return linkEntry(rel, node.target)
  if (node.kind === 'dir') return dirEntry(rel)
  let real = node.real
  let st = node.st
  // A Makefile that only includes another tree's Makefile by absolute path is replaced by that file.
  if (path.posix.basename(rel) === 'Makefile') {
    const stub = makefileStubTarget(real)
    if (stub !== undefined) {
      try {
        real = realpathIn(namedPath(stub, tree.sysroot), tree.sysroot)
        st = lstatSync(real)
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw missingStubTarget(tree.objtree, stub, tree.sysroot)
        throw new KernelTreeError(`Cannot read ${stub}, which ${rel} includes: ${reason(e)}; make it readable`, e)
      }
    }
  }
  if (!within.contains(real)) {
    throw new KernelTreeError(
      `Cannot pack ${tree.objtree}: ${rel} would be read from ${real}, outside the kernel tree (${within.describe()})`,
    )
  }
  return { path: rel, type: 'file', mode: fileMode(st.mode), source: real, size: st.size, strip, within }
}

/** Debian's kbuild directories, which a split tree's top-level scripts and tools links name. */
const KBUILD_LINK = /\/linux-kbuild-[^/]+\/(scripts|tools)$/

/** objtree over srctree, following the split-tree links at the top (Debian's scripts, tools). */
class MergedTree {
  readonly skipped: Skipped[] = []
  private readonly roots: string[]
  /** What may be read: objtree, srctree, --sysroot, and the kbuild directories met on the way. */
  readonly within: Confinement
  private readonly sysroot: string | undefined
  private readonly objtree: string

  private readonly signal: AbortSignal | undefined
  /** Names looked at, for the walk's turns of the event loop. */
  private seen = 0

  constructor(tree: KernelTree, signal?: AbortSignal) {
    this.signal = signal
    this.roots = tree.objtree === tree.srctree ? [tree.objtree] : [tree.objtree, tree.srctree]
    this.within = new Confinement(tree.sysroot === undefined ? this.roots : [...this.roots, tree.sysroot])
    this.sysroot = tree.sysroot
    this.objtree = tree.objtree
  }

  /** Resolve a relative path to a node, or undefined when absent or skipped. */
  private resolve(rel: string): Node | undefined {
    let node: Node | undefined = { kind: 'dir', layers: this.roots }
    let at = ''
    for (const name of rel.split('/')) {
      if (node === undefined || node.kind !== 'dir') return undefined
      at = at === '' ? name : `${at}/${name}`
      node = this.child(at, node.layers, name)
    }
    return node
  }

  pick(rel: string, visit: (rel: string, node: Node) => void): void {
    const node = this.resolve(rel)
    if (node !== undefined && node.kind !== 'dir') visit(rel, node)
  }

  /** Depth-first over a subtree: visit non-directories; descend into dirs for which `enter` is true. */
  async walk(
    rel: string,
    visit: (rel: string, node: Node) => void,
    enter: (dir: string) => boolean = () => true,
    above: ReadonlySet<string> = new Set(),
  ): Promise<void> {
    const node = this.resolve(rel)
    if (node === undefined) return
    if (node.kind !== 'dir') return visit(rel, node)

    // Kernel trees are about 10 deep; a deeper one is made to exhaust something (this walk recurses).
    // A directory MAX_DEPTH deep could only hold paths the loader refuses.
    if (rel.split('/').length >= MAX_DEPTH) {
      throw new KernelTreeError(
        `Cannot pack ${this.objtree}: ${rel.split('/').slice(0, 3).join('/')}/... is nested ${MAX_DEPTH} or more directories deep; no kernel tree is, remove it`,
      )
    }
    // A followed link back to a directory being walked would make the walk endless.
    const here = node.layers.map((l) => realpathSync(l))
    if (here.some((l) => above.has(l))) {
      this.skip(rel, 'symlink loop: it leads back to a directory that contains it')
      return
    }
    const path_ = new Set([...above, ...here])
    const names = new Set<string>()
    for (const layer of node.layers) {
      for (const raw of readdirSync(layer, { encoding: 'buffer' })) {
        const name = raw.toString('utf8')
        // A name that is not valid UTF-8 or holds control characters cannot round-trip through the
        // manifest (JSON) and breaks Makefiles; skip it by name rather than archive a mangled copy.
        if (!Buffer.from(name, 'utf8').equals(raw) || CONTROL.test(name)) {
          this.skip(`${rel}/${JSON.stringify(raw.toString('latin1')).slice(1, -1)}`, 'name is not printable UTF-8')
        } else if (!JUNK.test(name)) {
          names.add(name)
        }
      }
    }
    for (const name of [...names].sort()) {
      if (++this.seen % 128 === 0) {
        await new Promise(setImmediate)
        this.signal?.throwIfAborted()
      }
      const childRel = `${rel}/${name}`
      const child = this.child(childRel, node.layers, name)
      if (child === undefined) continue
      if (child.kind === 'dir') {
        if (enter(childRel)) await this.walk(childRel, visit, enter, path_)
      } else {
        visit(childRel, child)
      }
    }
  }

  private child(rel: string, layers: string[], name: string): Node | undefined {
    const dirs: string[] = []
    let first: Node | undefined
    for (const layer of layers) {
      const p = path.join(layer, name)
      let st: Stats
      try {
        st = lstatSync(p)
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') continue
        throw new KernelTreeError(`Cannot read ${p}: ${reason(e)}; make the kernel tree readable`, e)
      }
      let node: Node | undefined
      if (st.isSymbolicLink()) node = this.link(rel, p)
      else if (st.isDirectory()) node = { kind: 'dir', layers: [p] }
      else if (st.isFile()) node = this.file(rel, p, st)
      else {
        this.skip(rel, `${kindOf(st)}, not a regular file`)
        node = undefined
      }
      if (node === undefined) continue
      if (first === undefined) first = node
      if (node.kind === 'dir') dirs.push(...node.layers)
      if (first.kind !== 'dir') break // a file or link in a higher layer hides everything below
    }
    if (first?.kind === 'dir') return { kind: 'dir', layers: [...new Set(dirs)] }
    return first
  }

  /**
   * A relative link whose target stays inside the merged tree is archived as a link (checked again,
   * through the archive's other links, by checkKeptLinks). Any other is followed, physically, and must
   * land inside the kernel tree or --sysroot; the one exception is what Debian's split trees have at
   * their top, scripts and tools linking to /usr/lib/linux-kbuild-<version>/, which then becomes part
   * of the tree. A link that leads elsewhere is refused: its file would be archived for every mount.
   */
  private link(rel: string, p: string): Node | undefined {
    const target = readlinkSync(p)
    if (!path.isAbsolute(target)) {
      const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(rel), target))
      if (resolved !== '..' && !resolved.startsWith('../')) return { kind: 'symlink', target }
    }
    let real: string
    try {
      real = realpathIn(p, this.sysroot)
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code
      this.skip(
        rel,
        code === 'ELOOP' ? `symlink to ${target}: a symlink loop` : `symlink to ${target}, which does not exist`,
      )
      return undefined
    }
    const st = lstatSync(real)
    if (!this.within.contains(real)) {
      if (!rel.includes('/') && st.isDirectory() && KBUILD_LINK.test(real) && real.endsWith(`/${rel}`)) {
        this.within.add(real)
      } else {
        throw new KernelTreeError(
          `Cannot pack ${this.objtree}: ${rel} is a symlink to ${target}, which leads to ${real}, outside the kernel tree (${this.within.describe()}); replace the link with what it points at${this.sysroot === undefined ? ', or pass --sysroot ROOT if the tree belongs to another root file system' : ''}`,
        )
      }
    }
    if (st.isDirectory()) return { kind: 'dir', layers: [real] }
    if (st.isFile()) return this.file(rel, real, st)
    this.skip(rel, `symlink to a ${kindOf(st)}`)
    return undefined
  }

  private file(rel: string, real: string, st: Stats): Node | undefined {
    if (st.size <= MAX_FILE_BYTES) return { kind: 'file', real, st }
    this.skip(
      rel,
      `${(st.size / 2 ** 20).toFixed(0)} MiB, larger than any file a kernel build needs (${MAX_FILE_BYTES / 2 ** 20} MiB)`,
    )
    return undefined
  }

  private skip(rel: string, why: string): void {
    this.skipped.push({ path: rel, reason: why })
  }
}

function kindOf(st: Stats): string {
  if (st.isFIFO()) return 'FIFO'
  if (st.isSocket()) return 'socket'
  if (st.isBlockDevice()) return 'block device'
  if (st.isCharacterDevice()) return 'character device'
  if (st.isDirectory()) return 'directory'
  return 'special file'
}
