// Rebuild a cross-built tree's host programs for the board. `make M=` runs scripts/basic/fixdep,
// scripts/mod/modpost and (with MODVERSIONS) scripts/genksyms/genksyms; in a tree cross-built on an
// x86 host those are x86 programs, and on an arm board the build dies with "Exec format error".
// Like the kernel's scripts/package/install-extmod-build (v6.12+), Kbuild is run over a copy of
// scripts/ with HOSTCC set to the target's C compiler, from a scratch copy of the tree whose own
// (build-host) fixdep still runs here. The user's tree is never written to.
//
// This is the one step of pack that runs code from the tree: make reads the tree's Makefiles (shell
// in every recipe) and runs its fixdep. That is the trust building the tree takes, so it is refused for
// a tree that belongs to another user unless the caller says --trust-tree (git's safe.directory), and
// the compiler a .config names must be a plain name found on PATH (docs/kheadersfs.1.md, SECURITY).
import { spawn, spawnSync } from 'node:child_process'
import {
  accessSync,
  constants,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  lstatSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { HostProgramsError, KernelTreeError } from '../errors'
import { readConfinedSync } from './confine'
import { describeElf, readElfId, sameMachine, type ElfId } from './elf'
import type { SourceEntry } from './entries'
import type { KernelTree } from './kernel-tree'

export interface Compiler {
  /** CROSS_COMPILE prefix, e.g. "aarch64-linux-gnu-". */
  prefix: string
  /** Where the prefix came from, for messages. */
  from: '--cross-compile' | 'CROSS_COMPILE' | '.config'
  /** `gcc --version`'s first line. */
  version: string
}

export interface Rebuild {
  compiler: Compiler
  /** Rebuilt programs: archive path → file in the scratch directory. */
  programs: Map<string, string>
  /** Remove the scratch directory (after the archive is written). */
  cleanup(): void
}

/** Debian's package for a cross compiler prefix: aarch64-linux-gnu- → gcc-aarch64-linux-gnu. */
export function debianCompilerPackage(prefix: string): string {
  return `gcc-${prefix.replace(/-$/, '')}`
}

/**
 * The compiler prefix: --cross-compile, else $CROSS_COMPILE, else the one .config records. It reaches
 * make's command line and the shell of every recipe: characters the shell or make would read as code
 * are refused, and a prefix from .config (the tree's word, not the caller's) must be a plain name
 * whose gcc is on PATH.
 */
export function findCompilerPrefix(
  tree: KernelTree,
  given: string | undefined,
  env: NodeJS.ProcessEnv,
): { prefix: string; from: Compiler['from'] } | undefined {
  const caller =
    given !== undefined
      ? { prefix: given, from: '--cross-compile' as const }
      : env.CROSS_COMPILE
        ? { prefix: env.CROSS_COMPILE, from: 'CROSS_COMPILE' as const }
        : undefined
  if (caller !== undefined) {
    if (!/^[A-Za-z0-9_.+/-]*$/.test(caller.prefix))
      throw new HostProgramsError(
        `Cannot use ${caller.from} ${JSON.stringify(caller.prefix)}: a compiler prefix holds only letters, digits and _ . + / - (e.g. aarch64-linux-gnu-)`,
      )
    return caller
  }
  // CONFIG_CC_VERSION_TEXT="aarch64-linux-gnu-gcc (Debian 12.2.0-14) 12.2.0" (kernels since 5.8).
  const text = /^CONFIG_CC_VERSION_TEXT="([^"]*)"$/m.exec(tree.config?.toString('latin1') ?? '')?.[1]
  const cc = text?.split(' ')[0]
  // gcc or gcc-12: a native compiler, no prefix; a compiler that is not gcc (clang): none to take.
  if (cc === undefined || /^(gcc|cc)(-\d+)?$/.test(cc) || !/gcc(-\d+)?$/.test(cc)) return undefined
  const m = /^([A-Za-z0-9_.+-]+-)gcc(-\d+)?$/.exec(cc)
  if (m === null || onPath(`${m[1]}gcc`, env) === undefined) {
    throw new HostProgramsError(
      `Cannot rebuild the kernel's host programs with the compiler ${tree.configPath ?? '.config'} names (${JSON.stringify(cc.slice(0, 80))}): it is not a plain compiler name found on PATH; pass --cross-compile PREFIX (e.g. aarch64-linux-gnu-)`,
    )
  }
  return { prefix: m[1], from: '.config' }
}

/** The absolute path `name` has on PATH (absolute PATH entries only), or undefined. */
function onPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '/usr/bin:/bin').split(':')) {
    if (!path.isAbsolute(dir)) continue
    const p = path.join(dir, name)
    try {
      accessSync(p, constants.X_OK)
      if (statSync(p).isFile()) return p
    } catch {
      // not here
    }
  }
  return undefined
}

/**
 * Refuse to run code from the tree when any of it belongs to a user other than the caller and root,
 * unless `trusted`: pack runs as root on build hosts, and that user's Makefiles (or fixdep) would run
 * as root. Like git's safe.directory, but file by file: `dirs` are the tree's top directories, and
 * `files` what the scratch copy is made of (each file and the directory holding it) — any of them
 * can hold a recipe make runs.
 */
export function checkTreeOwner(dirs: readonly string[], files: readonly string[], trusted: boolean): void {
  if (trusted) return
  const me = process.getuid?.() ?? 0
  const seen = new Set<string>()
  const check = (p: string, what: string): void => {
    if (seen.has(p)) return
    seen.add(p)
    const owner = lstatSync(p).uid
    if (owner === me || owner === 0) return
    throw new KernelTreeError(
      `Cannot rebuild the kernel's host programs from ${dirs[0] ?? p}: that runs its Makefiles and scripts/basic/fixdep as ${me === 0 ? 'root' : `uid ${me}`}, and ${what} ${p} belongs to uid ${owner}; check the tree and pass --trust-tree, or pass --profile headers (nothing is run)`,
    )
  }
  for (const dir of dirs) check(dir, 'the directory')
  for (const f of files) {
    check(path.dirname(f), 'the directory')
    check(f, 'the file')
  }
}

function compilerFor(prefix: string, from: Compiler['from'], target: ElfId): Compiler {
  const gcc = `${prefix}gcc`
  const r = spawnSync(gcc, ['--version'], { encoding: 'utf8' })
  if (r.error !== undefined || r.status !== 0) {
    throw new HostProgramsError(
      `Cannot rebuild the kernel's host programs for ${describeElf(target)}: ${gcc} is not installed; apt-get install ${debianCompilerPackage(prefix)} (or pass --cross-compile PREFIX)`,
    )
  }
  return { prefix, from, version: r.stdout.split('\n')[0].trim() }
}

/**
 * What `make M=` runs from the tree, so a copy for another machine can never ship: fixdep and
 * modpost always, genksyms with MODVERSIONS, recordmcount on arches that use it, objtool on x86.
 */
export const NEEDED_BY_MODULE_BUILDS = [
  'scripts/basic/fixdep',
  'scripts/mod/modpost',
  'scripts/genksyms/genksyms',
  'scripts/recordmcount',
  'tools/objtool/objtool',
]

/** Rebuild the host programs for `target` in a scratch copy of the selected tree. */
export async function rebuildHostPrograms(
  tree: KernelTree,
  entries: SourceEntry[],
  target: ElfId,
  foreign: readonly string[],
  opts: { crossCompile?: string; env: NodeJS.ProcessEnv; onRun?: (compiler: string) => void; signal?: AbortSignal },
): Promise<Rebuild> {
  const found = findCompilerPrefix(tree, opts.crossCompile, opts.env)
  if (found === undefined) {
    throw new HostProgramsError(
      `Cannot rebuild the kernel's host programs for ${describeElf(target)}: no cross compiler named; pass --cross-compile PREFIX (e.g. aarch64-linux-gnu-) or set CROSS_COMPILE`,
    )
  }
  const compiler = compilerFor(found.prefix, found.from, target)
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'kheadersfs-hostprogs-'))
  // Removing the scratch copy of the tree takes seconds on a slow disk: after Ctrl-C or SIGTERM a
  // remover started now (a fork once pack is large took 0.4 s) finishes it, so that pack still exits
  // within a second.
  const remover = removerFor(scratch)
  const cleanup = (): void => {
    if (opts.signal?.aborted === true) return remover.remove()
    rmSync(scratch, { recursive: true, force: true })
    remover.cancel()
  }
  try {
    const tree_ = path.join(scratch, 'tree')
    const out = path.join(scratch, 'out')
    materialize(entries, tree_, tree.epoch)
    cpSync(path.join(tree_, 'scripts'), path.join(out, 'scripts'), {
      recursive: true,
      preserveTimestamps: true,
      verbatimSymlinks: true,
    })
    // Sources reach the tree's headers by relative paths (modpost.c: "../../include/linux/license.h").
    for (const dir of ['include', 'arch', 'tools']) {
      if (existsSync(path.join(tree_, dir))) symlinkSync(path.join(tree_, dir), path.join(out, dir))
    }
    writeFileSync(path.join(out, 'scripts', 'Kbuild'), kbuildFor(tree_, foreign))
    opts.onRun?.(`${compiler.prefix}gcc`)
    await runKbuild(tree_, out, tree.arch, compiler, opts.signal)
    return { compiler, programs: collect(out, foreign, target), cleanup }
  } catch (e) {
    cleanup()
    throw e
  }
}

/**
 * A process of its own, outliving ours, that removes `dir` when told to and otherwise exits: it waits
 * for one line on its stdin. The directory is an argument, never part of the script.
 */
function removerFor(dir: string): { remove(): void; cancel(): void } {
  const child = spawn(
    'sh',
    ['-c', 'read -r what && [ "$what" = remove ] && exec rm -rf --one-file-system -- "$0"', dir],
    {
      detached: true,
      stdio: ['pipe', 'ignore', 'ignore'],
    },
  )
  child.on('error', () => undefined)
  child.stdin.on('error', () => undefined)
  child.unref()
  ;(child.stdin as unknown as { unref?(): void }).unref?.()
  return { remove: () => void child.stdin.end('remove\n'), cancel: () => void child.stdin.end() }
}

/** Write the selected tree into `dir`: the same files the archive gets, the real top Makefile. */
function materialize(entries: SourceEntry[], dir: string, epoch: number): void {
  // One mtime for every file, so make sees nothing out of date and regenerates nothing (bison's
  // parsers, elfconfig.h): only what is missing, the host programs' objects, gets built.
  const when = new Date(Math.max(epoch, 1) * 1000)
  for (const e of entries) {
    const p = path.join(dir, e.path)
    if (e.type === 'directory') mkdirSync(p, { recursive: true })
    else {
      mkdirSync(path.dirname(p), { recursive: true })
      if (e.type === 'symlink') symlinkSync(e.linkname!, p)
      else if (e.data !== undefined) writeFileSync(p, e.data, { mode: e.mode })
      else writeFileSync(p, readConfinedSync(e.source!, e.path, e.within), { mode: e.mode })
    }
    if (e.type !== 'symlink') utimesSync(p, when, when)
  }
}

/**
 * scripts/Kbuild for the rebuild: only what module builds run and the tree holds for another
 * machine (the whole scripts/Makefile would also build sorttable and friends, which need tools/
 * sources a module-build tree does not carry). modpost's objects come from the tree's own
 * scripts/mod/Makefile: they changed across releases.
 */
function kbuildFor(tree: string, foreign: readonly string[]): string {
  const lines = ['# kheadersfs: the host programs an external module build runs, for the board']
  if (foreign.includes('scripts/basic/fixdep')) lines.push('subdir-y += basic')
  if (foreign.includes('scripts/genksyms/genksyms')) lines.push('subdir-y += genksyms')
  if (foreign.includes('scripts/mod/modpost')) {
    const mod = readFileSync(path.join(tree, 'scripts', 'mod', 'Makefile'), 'utf8')
    const objs = /^modpost-objs\s*:?=\s*(.+)$/m.exec(mod)?.[1].trim() ?? 'modpost.o file2alias.o sumversion.o'
    lines.push(
      'hostprogs-always-y += mod/modpost',
      `mod/modpost-objs := ${objs
        .split(/\s+/)
        .map((o) => `mod/${o}`)
        .join(' ')}`,
    )
  }
  if (foreign.includes('scripts/recordmcount')) {
    const makefile = readFileSync(path.join(tree, 'scripts', 'Makefile'), 'utf8')
    lines.push(
      'hostprogs-always-y += recordmcount',
      ...makefile.split('\n').filter((l) => l.startsWith('HOSTCFLAGS_recordmcount.o')),
    )
  }
  return lines.join('\n') + '\n'
}

/**
 * make, in the scratch tree, building `out/scripts` with HOSTCC = the target compiler. Kernels since
 * 6.12 have `make run-command`; older ones get the same through an extra makefile. M= keeps the
 * top Makefile from re-running Kconfig (it never syncs the config of an external module build).
 */
async function runKbuild(
  tree: string,
  out: string,
  arch: string,
  compiler: Compiler,
  signal: AbortSignal | undefined,
): Promise<void> {
  const extra = path.join(out, 'kheadersfs-hostprogs.mk')
  writeFileSync(
    extra,
    'kheadersfs-hostprogs:\n\t+$(Q)$(MAKE) HOSTCC=$(KHEADERSFS_HOSTCC) VPATH= srcroot=. $(build)=$(KHEADERSFS_OUT)/scripts\n.PHONY: kheadersfs-hostprogs\n',
  )
  const args = [
    '-C',
    tree,
    '-f',
    'Makefile',
    '-f',
    extra,
    `ARCH=${arch}`,
    `CROSS_COMPILE=${compiler.prefix}`,
    `M=${path.join(out, 'scripts')}`,
    `KHEADERSFS_HOSTCC=${compiler.prefix}gcc`,
    `KHEADERSFS_OUT=${out}`,
    `-j${Math.max(1, os.availableParallelism())}`,
    'kheadersfs-hostprogs',
  ]
  const r = await make(args, signal)
  if (r.error !== undefined || r.status !== 0) {
    const tail =
      `${r.stderr}${r.error?.message ?? ''}`.trim().split('\n').filter(Boolean).slice(-1)[0] ??
      `make exited with ${r.status}`
    throw new HostProgramsError(
      `Cannot rebuild the kernel's host programs with ${compiler.prefix}gcc: ${tail}; see "make ${args.join(' ')}"`,
    )
  }
}

/**
 * make in a process group of its own, so that an abort (Ctrl-C, SIGTERM to pack alone) kills make and
 * every compiler it started at once instead of waiting for the build. stdout is discarded; the last
 * 64 KiB of stderr name what failed.
 */
function make(
  args: string[],
  signal: AbortSignal | undefined,
): Promise<{ status: number | null; stderr: string; error?: Error }> {
  signal?.throwIfAborted()
  return new Promise((resolve, reject) => {
    const child = spawn('make', args, {
      env: { ...process.env, LC_ALL: 'C' },
      stdio: ['ignore', 'ignore', 'pipe'],
      detached: true,
    })
    let stderr = ''
    child.stderr.setEncoding('utf8')
    child.stderr.on('data', (c: string) => (stderr = (stderr + c).slice(-65536)))
    const abort = (): void => {
      try {
        process.kill(-child.pid!, 'SIGKILL')
      } catch {
        // Already gone.
      }
    }
    signal?.addEventListener('abort', abort, { once: true })
    child.on('error', (error) => resolve({ status: null, stderr, error }))
    // After close, make and its compilers are gone (the pipe's last writer closed): the caller may
    // remove the scratch tree they wrote in.
    child.on('close', (status) => {
      signal?.removeEventListener('abort', abort)
      if (signal?.aborted === true) reject(signal.reason as Error)
      else resolve({ status, stderr })
    })
  })
}

/** The rebuilt programs among `wanted` (archive paths): those now built for `target`. */
function collect(out: string, wanted: readonly string[], target: ElfId): Map<string, string> {
  const found = new Map<string, string>()
  for (const rel of wanted) {
    const p = path.join(out, rel)
    const elf = existsSync(p) ? readElfId(p) : undefined
    if (elf !== undefined && sameMachine(elf, target)) found.set(rel, p)
  }
  return found
}
