// kheadersfs install-helpers: put the CLI, the mount(8) helper and the systemd units where the system
// looks for them, so that `mount -t fuse.kheadersfs`, `mount -t kheadersfs`, fstab lines and
// `systemctl` work. mount(8) runs helpers on its own safe PATH and only from /sbin, so a `kheadersfs`
// that is only on the caller's PATH is not found ("kheadersfs: not found"; docs/design.md, "System
// integration").
import { existsSync, mkdirSync, readFileSync, unlinkSync } from 'node:fs'
import path from 'node:path'
import { parseCommand } from '../args'
import type { Command, Output } from '../context'
import { IoError, UsageError, reason } from '../errors'
import { writeFileAtomic } from '../fs-atomic'
import { CLI_PATH } from '../version'
import { completionScript } from '../completion/scripts'
import { completionCommands } from './completion'
import { writableByOthers } from './writable-by'

/** Every installed file carries this line, so uninstall and reinstall never touch a foreign file. */
export const MARK = 'installed by "kheadersfs install-helpers"'
/** The program's root: a checkout, the npm package, or the tree packaging/build.sh compiles. */
const ROOT = path.join(__dirname, '..', '..', '..')
/** The CLI inside such a root (dist/src/cli.js), which --app DIR names on the target system. */
const APP_CLI = path.relative(ROOT, CLI_PATH)
/**
 * The shipped helper and units are templates: each @NAME@ is replaced at install (an explicit
 * placeholder, so rewording a comment can never change what gets installed).
 */
const TEMPLATES = {
  helper: 'mount/mount.kheadersfs',
  units: ['systemd/kheadersfs@.service', 'systemd/proc\\x2dext.mount'],
  kernelHook: 'packaging/debian/kernel/hook.sh',
  kernelHooksConf: 'packaging/debian/kernel/kernel-hooks.conf',
}

/**
 * The kernel hooks (package only: they are conffiles, and dpkg runs the hook directories): each runs
 * `kheadersfs kernel-hook EVENT RELEASE` from the directory the kernel packages run for that event.
 */
export const KERNEL_HOOKS = [
  { path: '/etc/kernel/header_postinst.d/kheadersfs', event: 'headers-installed' },
  { path: '/etc/kernel/postinst.d/kheadersfs', event: 'image-installed' },
  { path: '/etc/kernel/postrm.d/kheadersfs', event: 'image-removed' },
] as const
export const KERNEL_HOOKS_CONF = '/etc/kheadersfs/kernel-hooks.conf'

type Dirs = Record<'bindir' | 'helperdir' | 'unitdir' | 'datadir', string>
export const DEFAULT_DIRS: Readonly<Dirs> = {
  bindir: '/usr/local/bin',
  helperdir: '/sbin',
  unitdir: '/usr/local/lib/systemd/system',
  datadir: '/usr/local/share',
}
/** The manual page a build renders (packaging/man.mjs: `npm run build`, npm's prepare). */
const MAN_PAGE = 'dist/man/kheadersfs.1'
/**
 * The manual pages and completion scripts under DATADIR, where man-db (MANPATH from PATH: bindir's
 * ../share/man), bash-completion, zsh (site-functions) and fish (vendor_completions.d) look. The
 * Debian package installs its own at Debian's paths (packaging/build.sh).
 */
const DATA_FILES = {
  man: 'man/man1/kheadersfs.1',
  helperMan: 'man/man8/mount.kheadersfs.8',
  bash: 'bash-completion/completions/kheadersfs',
  zsh: 'zsh/site-functions/_kheadersfs',
  fish: 'fish/vendor_completions.d/kheadersfs.fish',
} as const

/** What the installed wrapper runs, and who owns the files. */
interface Program {
  /** The node binary on the target system. */
  node: string
  /** The kheadersfs CLI on the target system. */
  cli: string
  /**
   * Files a distribution package owns: no MARK, so install-helpers neither replaces nor removes
   * them (dpkg does), and their comments name the package.
   */
  forPackage: boolean
}
const THIS_PROGRAM: Readonly<Program> = { node: process.execPath, cli: CLI_PATH, forPackage: false }

export interface InstallFile {
  /** Absolute path on the target system (before --destdir). */
  path: string
  content: string
  mode: number
}

/** Where the files go, without reading the templates (all that --uninstall needs). */
function installPaths(dirs: Dirs): Array<Omit<InstallFile, 'content'>> {
  return [
    { path: path.join(dirs.bindir, 'kheadersfs'), mode: 0o755 },
    { path: path.join(dirs.helperdir, 'mount.kheadersfs'), mode: 0o755 },
    ...TEMPLATES.units.map((u) => ({ path: path.join(dirs.unitdir, path.basename(u)), mode: 0o644 })),
  ]
}

function dataPaths(dirs: Dirs): Array<Omit<InstallFile, 'content'>> {
  return Object.values(DATA_FILES).map((rel) => ({ path: path.join(dirs.datadir, rel), mode: 0o644 }))
}

/** The manual pages and completion scripts (install-helpers only: the package has its own). */
function dataFiles(dirs: Dirs): Array<InstallFile> {
  const at = (rel: string): string => path.join(dirs.datadir, rel)
  const script = (shell: 'bash' | 'zsh' | 'fish'): InstallFile => ({
    path: at(DATA_FILES[shell]),
    mode: 0o644,
    content: stamp(completionScript(shell, completionCommands())),
  })
  return [
    { path: at(DATA_FILES.man), mode: 0o644, content: stamp(readManPage(), '.\\" ') },
    // mount.kheadersfs(8): the helper is described in kheadersfs(1).
    { path: at(DATA_FILES.helperMan), mode: 0o644, content: stamp('.so man1/kheadersfs.1\n', '.\\" ') },
    script('bash'),
    script('zsh'),
    script('fish'),
  ]
}

function readManPage(): string {
  const file = path.join(ROOT, MAN_PAGE)
  try {
    return readFileSync(file, 'utf8')
  } catch (e) {
    throw new IoError(`Cannot read the manual page ${file}: ${reason(e)}; build it first with "npm run build"`, e)
  }
}

/**
 * The one install plan: what `install-helpers` writes, and what packaging/build.sh stages (with
 * --for-package) into the Debian package: the CLI wrapper, mount.kheadersfs, the units, and for the
 * package only the kernel hooks and their settings.
 */
export function installPlan(dirs: Dirs, program: Program = THIS_PROGRAM): InstallFile[] {
  const [wrapper, helper, ...units] = installPaths(dirs)
  const values: Record<string, string> = {
    KHEADERSFS: wrapper.path,
    INSTALLER: program.forPackage ? 'the kheadersfs package' : '"kheadersfs install-helpers"',
  }
  const render = (rel: string, extra: Record<string, string> = {}): string => {
    const text = readTemplate(rel).replace(/@([A-Z_]+)@/g, (whole, name: string) => {
      const v = extra[name] ?? values[name]
      if (v === undefined) throw new Error(`${rel}: unknown placeholder ${whole}`)
      return v
    })
    return program.forPackage ? text : stamp(text)
  }
  const note = program.forPackage ? 'kernel headers and config over FUSE (see kheadersfs(1))' : MARK
  return [
    // Absolute paths: mount(8)'s PATH may not hold node, and `env node` would then fail.
    {
      ...wrapper,
      content: `#!/bin/sh\n# kheadersfs: ${note}\nexec ${shellWord(program.node)} ${shellWord(program.cli)} "$@"\n`,
    },
    { ...helper, content: render(TEMPLATES.helper) },
    ...units.map((u, i) => ({ ...u, content: render(TEMPLATES.units[i]) })),
    ...(program.forPackage
      ? [
          ...KERNEL_HOOKS.map((h) => ({
            path: h.path,
            mode: 0o755,
            content: render(TEMPLATES.kernelHook, { EVENT: h.event }),
          })),
          { path: KERNEL_HOOKS_CONF, mode: 0o644, content: render(TEMPLATES.kernelHooksConf) },
        ]
      : dataFiles(dirs)),
  ]
}

function readTemplate(rel: string): string {
  const file = path.join(ROOT, rel)
  try {
    return readFileSync(file, 'utf8')
  } catch (e) {
    // The Debian package ships no templates: it has installed the rendered files itself.
    throw new IoError(
      `Cannot read the template ${file}: ${reason(e)}; the kheadersfs package has installed its wrapper, helper and units already (/usr/bin, /sbin, /usr/lib/systemd/system); install-helpers runs from a checkout or the npm package`,
      e,
    )
  }
}

/** A path as one sh word: as is when it needs no quoting (the packaged wrapper's form), else quoted. */
function shellWord(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`
}

/** Mark a rendered file as ours, in a COMMENT line (after the shebang or zsh's #compdef line, if any). */
function stamp(text: string, comment = '# '): string {
  const nl = text.indexOf('\n') + 1
  return /^#!|^#compdef /.test(text)
    ? `${text.slice(0, nl)}${comment}${MARK}\n${text.slice(nl)}`
    : `${comment}${MARK}\n${text}`
}

function isOurs(file: string): boolean {
  try {
    return readFileSync(file, 'utf8')
      .split('\n', 3)
      .some((l) => l.includes(MARK))
  } catch {
    return false
  }
}

export const installHelpers: Command = {
  usage: `Usage: kheadersfs install-helpers [--uninstall] [--destdir DIR [--for-package]] [--bindir DIR] [--helperdir DIR] [--unitdir DIR] [--datadir DIR] [--node PATH] [--app DIR]

Install what mount(8), /etc/fstab and systemd need (as root):
  BINDIR/kheadersfs          the CLI (mount.fuse runs it for "mount -t fuse.kheadersfs")  [${DEFAULT_DIRS.bindir}]
  HELPERDIR/mount.kheadersfs the helper for "mount -t kheadersfs" (mount(8) looks in /sbin)  [${DEFAULT_DIRS.helperdir}]
  UNITDIR/kheadersfs@.service, proc\\x2dext.mount   systemd units, not enabled  [${DEFAULT_DIRS.unitdir}]
  DATADIR/man/, DATADIR/{bash-completion,zsh,fish}/...  the manual pages (kheadersfs(1), mount.kheadersfs(8),
                             named by the units) and bash, zsh and fish completion  [${DEFAULT_DIRS.datadir}]
With --for-package also the kernel hooks (/etc/kernel/*/kheadersfs) and ${KERNEL_HOOKS_CONF}, and no DATADIR files.
Files another program installed are never replaced; --uninstall removes only kheadersfs's own.

  --destdir DIR   stage the files under DIR (for packaging); paths inside them stay unprefixed
  --node PATH     the node the CLI wrapper runs  [the node running this]
  --app DIR       the kheadersfs the CLI wrapper runs, DIR/${APP_CLI}  [this one]
  --for-package   the files belong to a package (needs --destdir): no install-helpers mark, so
                  install-helpers never replaces or removes them
  --uninstall     remove the files installed before`,

  run(args, ctx) {
    const opts = parseOptions(args)
    if (opts.uninstall) uninstall(opts, ctx.stdout)
    else {
      const program = checkedProgram(opts)
      const plan = installPlan(opts.dirs, program)
      checkTargets(plan, opts)
      for (const f of plan) {
        const target = opts.where(f.path)
        try {
          mkdirSync(path.dirname(target), { recursive: true })
          writeFileAtomic(target, f.content, { mode: f.mode, exactMode: true })
        } catch (e) {
          throw new IoError(`Cannot install ${target}: ${reason(e)}; run as root or pass --destdir`, e)
        }
        ctx.stdout.write(`installed ${target}\n`)
      }
      if (!opts.forPackage)
        ctx.stdout.write(
          `Next: "mount -t fuse.kheadersfs auto /proc-ext", an fstab line "auto /proc-ext fuse.kheadersfs ro,nofail 0 0", or\n` +
            `  systemctl daemon-reload && systemctl enable --now "kheadersfs@$(systemd-escape --path /proc-ext).service"\n`,
        )
    }
    return 0
  },
}

interface Options {
  uninstall: boolean
  forPackage: boolean
  dirs: Dirs
  destdir?: string
  node?: string
  app?: string
  /** Where a file of the plan is written: under --destdir when given. */
  where(file: string): string
}

function parseOptions(args: string[]): Options {
  const { values, positionals } = parseCommand('install-helpers', args, {
    uninstall: { type: 'boolean' },
    destdir: { type: 'string' },
    bindir: { type: 'string' },
    helperdir: { type: 'string' },
    unitdir: { type: 'string' },
    datadir: { type: 'string' },
    node: { type: 'string' },
    app: { type: 'string' },
    'for-package': { type: 'boolean' },
  })
  if (positionals.length > 0)
    throw new UsageError(
      `kheadersfs install-helpers: unexpected argument ${JSON.stringify(positionals[0])}; see "kheadersfs install-helpers --help"`,
    )
  for (const k of ['bindir', 'helperdir', 'unitdir', 'datadir', 'destdir', 'node', 'app'] as const) {
    const v = values[k]
    if (v !== undefined && !path.isAbsolute(v))
      throw new UsageError(`Cannot use --${k} ${JSON.stringify(v)}: give an absolute path`)
  }
  const dirs: Dirs = { ...DEFAULT_DIRS }
  for (const k of ['bindir', 'helperdir', 'unitdir', 'datadir'] as const) {
    const v = values[k]
    if (v !== undefined) dirs[k] = path.normalize(v)
  }
  const forPackage = values['for-package'] === true
  // Installed live, unmarked files could never be replaced or removed by install-helpers again.
  if (forPackage && values.destdir === undefined)
    throw new UsageError('Cannot use --for-package without --destdir: a package is staged, then installed by dpkg')
  const destdir = values.destdir
  return {
    uninstall: values.uninstall === true,
    forPackage,
    dirs,
    destdir,
    node: values.node,
    app: values.app,
    where: (p) => (destdir ? path.join(destdir, p) : p),
  }
}

function uninstall(opts: Options, out: Output): void {
  for (const f of [...installPaths(opts.dirs), ...dataPaths(opts.dirs)]) {
    const target = opts.where(f.path)
    if (!existsSync(target)) continue
    if (!isOurs(target)) {
      out.write(`kept ${target}: not installed by kheadersfs\n`)
      continue
    }
    try {
      unlinkSync(target)
    } catch (e) {
      throw new IoError(`Cannot remove ${target}: ${reason(e)}; run as root`, e)
    }
    out.write(`removed ${target}\n`)
  }
}

/**
 * What the wrapper runs. The installed files run it as root at boot (mount(8), systemd): node and the
 * program must be root's alone, or any user who can change them gets root. A --node or --app given
 * with --destdir names a file of the system DIR is staged for, not of this one: nothing here to check.
 */
function checkedProgram(opts: Options): Program {
  const app = opts.app === undefined ? ROOT : path.normalize(opts.app)
  const program: Program = {
    node: opts.node === undefined ? process.execPath : path.normalize(opts.node),
    cli: path.join(app, APP_CLI),
    forPackage: opts.forPackage,
  }
  const check = (given: string | undefined): boolean => given === undefined || opts.destdir === undefined
  if (check(opts.node) && !existsSync(program.node))
    throw new IoError(`Cannot install the helpers: there is no ${program.node}; give --node the path of node`)
  if (check(opts.app) && !existsSync(program.cli))
    throw new IoError(
      `Cannot install the helpers: there is no ${program.cli}; give --app the directory of a kheadersfs`,
    )
  const trees = ['dist', 'node_modules', path.join('src', 'native', 'build')].map((d) => path.join(app, d))
  const why =
    (check(opts.node) ? writableByOthers(program.node) : undefined) ??
    (check(opts.app) ? writableByOthers(program.cli, trees.filter(existsSync)) : undefined)
  if (why !== undefined) {
    throw new IoError(
      `Cannot install the helpers: they run ${program.cli} as root, and ${why}; install from a checkout that only root can change (e.g. cloned as root under /opt), or install the kheadersfs package`,
    )
  }
  return program
}

/** Every target is checked before anything is written: a refusal leaves nothing half-installed. */
function checkTargets(plan: Array<{ path: string }>, opts: Options): void {
  for (const f of plan) {
    const target = opts.where(f.path)
    if (existsSync(target) && !isOurs(target)) {
      throw new IoError(
        `Cannot install ${target}: a file not installed by kheadersfs is there; remove it first or pass --${dirOption(f.path, opts.dirs)} another directory`,
      )
    }
  }
}

function dirOption(file: string, dirs: Dirs): string {
  if (dataPaths(dirs).some((f) => f.path === file)) return 'datadir'
  return (Object.keys(dirs) as Array<keyof Dirs>).find((k) => path.dirname(file) === dirs[k]) ?? 'destdir'
}
