// Find out what kind of kernel build tree we were given and what it was built for: the object tree,
// the source tree behind it, the release `uname -r` will report, the architecture directory, the
// .config and the build's own timestamp. Handles in-tree builds, O= builds and Debian's split
// linux-headers packages (docs/design.md, "Kernel trees").
import { existsSync, lstatSync, readdirSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { KernelTreeError, reason } from '../errors'
import { readConfig } from './config'
import { buildEpoch, filesIn, kernelRelease, utsRelease, type Kernel, type KernelFiles } from './kernel'
import { namedPath, realpathIn } from './sysroot'

export type TreeLayout = 'in-tree' | 'out-of-tree' | 'split'

export interface KernelTree extends Omit<Kernel, 'config'> {
  /** Build tree (objtree): generated headers, .config, Module.symvers. Wins over srctree. */
  objtree: string
  /** Source tree; equal to objtree for an in-tree build. */
  srctree: string
  layout: TreeLayout
  /** Undefined when the tree has no .config and no --config was given (pack refuses the tree). */
  config: Buffer | undefined
  /** Root file system the tree belongs to: absolute paths it names are looked up inside it. */
  sysroot: string | undefined
}

export interface TreeOptions {
  kernel: string
  source?: string
  release?: string
  config?: string
  sysroot?: string
  env: NodeJS.ProcessEnv
}

export function detectKernelTree(opts: TreeOptions): KernelTree {
  const sysroot = opts.sysroot === undefined ? undefined : realDir(opts.sysroot, '--sysroot', undefined)
  const objtree = realDir(opts.kernel, '--kernel', sysroot)
  const { srctree, layout } = findSrctree(objtree, opts.source, sysroot)
  for (const [dir, what] of [
    [objtree, 'build tree'],
    [srctree, 'source tree'],
  ] as const) {
    if (!existsSync(path.join(dir, 'Makefile')) || !isDir(path.join(dir, 'include'))) {
      throw new KernelTreeError(
        `Cannot pack ${dir}: not a kernel ${what} (no Makefile and include/); pass --kernel the directory you ran make in (or /usr/src/linux-headers-$(uname -r))`,
      )
    }
  }
  if (!isDir(path.join(srctree, 'include', 'linux')) && !isDir(path.join(objtree, 'include', 'linux'))) {
    throw new KernelTreeError(
      `Cannot pack ${objtree}: no include/linux/ in it or its source tree ${srctree}; pass --source the kernel source tree${sysroot === undefined ? ' (or --sysroot ROOT if the tree belongs to another root file system)' : ''}`,
    )
  }
  const files = filesIn(objtree)
  const release = treeRelease(objtree, files, opts.release)
  const arch = readArch(objtree, srctree)
  const { config, configPath } = treeConfig(objtree, opts.config)
  const { epoch, epochSource } = buildEpoch(files, opts.env)
  return { objtree, srctree, layout, release, arch, config, configPath, epoch, epochSource, sysroot }
}

/** --release, else UTS_RELEASE, else include/config/kernel.release. */
function treeRelease(objtree: string, files: KernelFiles, given: string | undefined): string {
  return kernelRelease(
    given,
    () => utsRelease(files) ?? (files('include/config/kernel.release')?.trim() || undefined),
    () =>
      new KernelTreeError(
        `Cannot find the kernel release in ${objtree}: no include/generated/utsrelease.h; run "make modules_prepare" in the tree or pass --release`,
      ),
  )
}

/** --config, else the tree's .config if it has one. */
function treeConfig(
  objtree: string,
  given: string | undefined,
): { config: Buffer | undefined; configPath: string | undefined } {
  const file = given ?? path.join(objtree, '.config')
  const config = readConfig(file, given === undefined)
  return { config, configPath: config === undefined ? undefined : file }
}

function realDir(p: string, flag: string, sysroot: string | undefined): string {
  let real: string
  try {
    real = realpathIn(p, sysroot)
  } catch (e) {
    throw new KernelTreeError(
      `Cannot read ${flag === '--sysroot' ? 'sysroot' : 'kernel tree'} ${p}: ${reason(e)}; pass ${flag} an existing ${flag === '--sysroot' ? 'directory' : 'kernel build directory'}`,
      e,
    )
  }
  if (!isDir(real))
    throw new KernelTreeError(
      `Cannot pack ${p}: not a directory; pass ${flag} ${flag === '--sysroot' ? 'the root directory of the system the tree belongs to' : 'a kernel build directory'}`,
    )
  return real
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory()
  } catch {
    return false
  }
}

/**
 * The source tree: --source; else the `source` link an O= build leaves in its objtree; else the
 * tree an objtree Makefile stub includes by absolute path (O= builds and Debian's linux-headers-<rel>,
 * whose one-line Makefile includes linux-headers-<ver>-common/Makefile); else the objtree itself.
 */
function findSrctree(
  objtree: string,
  source: string | undefined,
  sysroot: string | undefined,
): { srctree: string; layout: TreeLayout } {
  if (source !== undefined) {
    const srctree = realDir(source, '--source', sysroot)
    return { srctree, layout: srctree === objtree ? 'in-tree' : 'out-of-tree' }
  }
  const link = path.join(objtree, 'source')
  try {
    if (lstatSync(link).isSymbolicLink()) {
      const target = realpathIn(link, sysroot)
      if (target !== objtree && isDir(target)) return { srctree: target, layout: 'out-of-tree' }
    }
  } catch {
    // no source link: not an O= build
  }
  const stub = makefileStubTarget(path.join(objtree, 'Makefile'))
  if (stub !== undefined) {
    const dir = namedPath(path.dirname(stub), sysroot)
    if (!isDir(dir)) throw missingStubTarget(objtree, stub, sysroot)
    const srctree = realpathIn(dir, sysroot)
    if (srctree !== objtree) return { srctree, layout: 'split' }
  }
  return { srctree: objtree, layout: 'in-tree' }
}

/** The error for a stub Makefile whose included tree is not there: name the fix that fits. */
export function missingStubTarget(
  objtree: string,
  stub: string,
  sysroot: string | undefined,
): InstanceType<typeof KernelTreeError> {
  return new KernelTreeError(
    sysroot === undefined
      ? `Cannot pack ${objtree}: its Makefile includes ${stub}, which is not on this machine; if the tree belongs to another root file system (a board's root, an SDK sysroot), pass --sysroot ROOT, else install the source tree it names`
      : `Cannot pack ${objtree}: its Makefile includes ${stub}, which is not in the sysroot ${sysroot}; install that source tree in the sysroot`,
  )
}

/**
 * If a Makefile only includes another Makefile by absolute path (plus comments and blank lines),
 * return that path. Such a stub is what O= builds and Debian's split packages leave in the objtree;
 * an extracted archive must carry the real Makefile instead.
 */
export function makefileStubTarget(makefile: string): string | undefined {
  let text: string
  try {
    const st = statSync(makefile)
    if (!st.isFile() || st.size > 4096) return undefined
    text = readFileSync(makefile, 'utf8')
  } catch {
    return undefined
  }
  let target: string | undefined
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const m = /^-?include\s+(\/\S+\/Makefile)$/.exec(line)
    if (!m || target !== undefined) return undefined
    target = m[1]
  }
  return target
}

/** SRCARCH: the one arch/<dir> holding generated headers, else the arch whose CONFIG_<ARCH>=y is set. */
function readArch(objtree: string, srctree: string): string {
  const candidates = (dir: string): string[] => {
    try {
      return readdirSync(path.join(dir, 'arch')).filter((a) => isDir(path.join(dir, 'arch', a, 'include', 'generated')))
    } catch {
      return []
    }
  }
  const generated = candidates(objtree)
  if (generated.length === 1) return generated[0]
  const autoconf = path.join(objtree, 'include/generated/autoconf.h')
  try {
    const text = readFileSync(autoconf, 'utf8')
    for (const a of isDir(path.join(srctree, 'arch')) ? readdirSync(path.join(srctree, 'arch')) : []) {
      if (new RegExp(`^#define CONFIG_${a.toUpperCase()} 1$`, 'm').test(text)) return a
    }
  } catch {
    // fall through
  }
  throw new KernelTreeError(
    `Cannot find the architecture of ${objtree}: ${generated.length > 1 ? `several arch/*/include/generated (${generated.join(', ')})` : 'no arch/<arch>/include/generated'}; run "make modules_prepare" in the tree`,
  )
}
