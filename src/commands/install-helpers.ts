// kheadersfs install-helpers: put the CLI, the mount(8) helper and the systemd units where the system
// looks for them, so that `mount -t fuse.kheadersfs`, `mount -t kheadersfs`, fstab lines and
// `systemctl` work. mount(8) runs helpers on its own safe PATH and only from /sbin, so a `kheadersfs`
// that is only on the caller's PATH is not found ("kheadersfs: not found"; docs/design.md, "System
// integration").
import { existsSync, mkdirSync, readFileSync, unlinkSync } from 'node:fs'
import path from 'node:path'
import { parseCommand } from '../args'
import type { Command } from '../context'
import { IoError, UsageError, reason } from '../errors'
import { writeFileAtomic } from '../fs-atomic'
import { CLI_PATH } from '../version'
import { writableByOthers } from './writable-by'

/** Every installed file carries this line, so uninstall and reinstall never touch a foreign file. */
export const MARK = 'installed by "kheadersfs install-helpers"'
const ROOT = path.join(__dirname, '..', '..', '..')
/** The CLI path the shipped helper and units name; replaced by the real one at install. */
const SHIPPED_BIN = '/usr/local/bin/kheadersfs'

type Dirs = Record<'bindir' | 'helperdir' | 'unitdir', string>
export const DEFAULT_DIRS: Readonly<Dirs> = {
  bindir: '/usr/local/bin',
  helperdir: '/sbin',
  unitdir: '/usr/local/lib/systemd/system',
}

export interface InstallFile {
  /** Absolute path on the target system (before --destdir). */
  path: string
  content: string
  mode: number
}

/** What to install for these directories: the CLI wrapper, mount.kheadersfs, the units. */
export function installPlan(dirs: Dirs, node = process.execPath, cli = CLI_PATH): InstallFile[] {
  const bin = path.join(dirs.bindir, 'kheadersfs')
  const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`
  const files: InstallFile[] = [
    {
      path: bin,
      mode: 0o755,
      // Absolute paths: mount(8)'s PATH may not hold node, and `env node` would then fail.
      content: `#!/bin/sh\n# kheadersfs: ${MARK}\nexec ${q(node)} ${q(cli)} "$@"\n`,
    },
  ]
  const helper = readFileSync(path.join(ROOT, 'mount', 'mount.kheadersfs'), 'utf8')
  files.push({ path: path.join(dirs.helperdir, 'mount.kheadersfs'), mode: 0o755, content: stamp(helper, bin) })
  for (const unit of ['kheadersfs@.service', 'proc\\x2dext.mount']) {
    files.push({
      path: path.join(dirs.unitdir, unit),
      mode: 0o644,
      content: stamp(readFileSync(path.join(ROOT, 'systemd', unit), 'utf8'), bin),
    })
  }
  return files
}

/** Point a shipped file at the installed CLI and mark it as ours (after the shebang, if any). */
function stamp(text: string, bin: string): string {
  const body = text.split(SHIPPED_BIN).join(bin)
  const nl = body.indexOf('\n') + 1
  return body.startsWith('#!') ? `${body.slice(0, nl)}# ${MARK}\n${body.slice(nl)}` : `# ${MARK}\n${body}`
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
  usage: `Usage: kheadersfs install-helpers [--uninstall] [--destdir DIR] [--bindir DIR] [--helperdir DIR] [--unitdir DIR]

Install what mount(8), /etc/fstab and systemd need (as root):
  BINDIR/kheadersfs          the CLI (mount.fuse runs it for "mount -t fuse.kheadersfs")  [${DEFAULT_DIRS.bindir}]
  HELPERDIR/mount.kheadersfs the helper for "mount -t kheadersfs" (mount(8) looks in /sbin)  [${DEFAULT_DIRS.helperdir}]
  UNITDIR/kheadersfs@.service, proc\\x2dext.mount   systemd units, not enabled  [${DEFAULT_DIRS.unitdir}]
Files another program installed are never replaced; --uninstall removes only kheadersfs's own.

  --destdir DIR   stage the files under DIR (for packaging); paths inside them stay unprefixed
  --uninstall     remove the files installed before`,

  run(args, ctx) {
    const { values, positionals } = parseCommand('install-helpers', args, {
      uninstall: { type: 'boolean' },
      destdir: { type: 'string' },
      bindir: { type: 'string' },
      helperdir: { type: 'string' },
      unitdir: { type: 'string' },
    })
    if (positionals.length > 0)
      throw new UsageError(
        `kheadersfs install-helpers: unexpected argument ${JSON.stringify(positionals[0])}; see "kheadersfs install-helpers --help"`,
      )
    const dirs: Dirs = { ...DEFAULT_DIRS }
    for (const k of ['bindir', 'helperdir', 'unitdir'] as const) {
      const v = values[k]
      if (v === undefined) continue
      if (!path.isAbsolute(v)) throw new UsageError(`Cannot use --${k} ${JSON.stringify(v)}: give an absolute path`)
      dirs[k] = path.normalize(v)
    }
    if (values.destdir !== undefined && !path.isAbsolute(values.destdir))
      throw new UsageError(`Cannot use --destdir ${JSON.stringify(values.destdir)}: give an absolute path`)
    const where = (p: string): string => (values.destdir ? path.join(values.destdir, p) : p)
    const plan = installPlan(dirs)

    if (values.uninstall) {
      for (const f of plan) {
        const target = where(f.path)
        if (!existsSync(target)) continue
        if (!isOurs(target)) {
          ctx.stdout.write(`kept ${target}: not installed by kheadersfs\n`)
          continue
        }
        try {
          unlinkSync(target)
        } catch (e) {
          throw new IoError(`Cannot remove ${target}: ${reason(e)}; run as root`, e)
        }
        ctx.stdout.write(`removed ${target}\n`)
      }
      return 0
    }
    // What the installed files run is root's code at boot (mount(8), systemd): node and this checkout
    // must be root's alone, or any user who can change them gets root.
    const why =
      writableByOthers(process.execPath) ??
      writableByOthers(
        CLI_PATH,
        [path.join(ROOT, 'dist'), path.join(ROOT, 'node_modules'), path.join(ROOT, 'src', 'native', 'build')].filter(
          existsSync,
        ),
      )
    if (why !== undefined) {
      throw new IoError(
        `Cannot install the helpers: they run ${CLI_PATH} as root, and ${why}; install from a checkout that only root can change (e.g. cloned as root under /opt), or install the kheadersfs package`,
      )
    }
    // Check every target first: refuse before writing anything.
    for (const f of plan) {
      const target = where(f.path)
      if (existsSync(target) && !isOurs(target)) {
        throw new IoError(
          `Cannot install ${target}: a file not installed by kheadersfs is there; remove it first or pass --${dirOption(f.path, dirs)} another directory`,
        )
      }
    }
    for (const f of plan) {
      const target = where(f.path)
      try {
        mkdirSync(path.dirname(target), { recursive: true })
        writeFileAtomic(target, f.content, { mode: f.mode, exactMode: true })
      } catch (e) {
        throw new IoError(`Cannot install ${target}: ${reason(e)}; run as root or pass --destdir`, e)
      }
      ctx.stdout.write(`installed ${target}\n`)
    }
    ctx.stdout.write(
      `Next: "mount -t fuse.kheadersfs auto /proc-ext", an fstab line "auto /proc-ext fuse.kheadersfs ro,nofail 0 0", or\n` +
        `  systemctl daemon-reload && systemctl enable --now "kheadersfs@$(systemd-escape --path /proc-ext).service"\n`,
    )
    return 0
  },
}

function dirOption(file: string, dirs: Dirs): string {
  return (Object.keys(dirs) as Array<keyof Dirs>).find((k) => path.dirname(file) === dirs[k]) ?? 'destdir'
}
