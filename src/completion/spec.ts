// What shell completion knows about the CLI, in one place: every command's options, their values and
// the kinds of its arguments. The bash, zsh and fish scripts are generated from it (./scripts.ts,
// "kheadersfs completion SHELL"); test/unit/completion.test.ts runs each shell and checks this table
// against every command's --help and parser, so an option added to a command and not here fails there.
import { PROFILES } from '../image/format'
import { LEVELS } from '../log'

/** What a value or an argument is completed with. */
export type Kind =
  | 'file' // any file (images, configs, outputs)
  | 'dir' // a directory
  | 'mountpoint' // a mounted kheadersfs (from /proc/self/mountinfo), else a directory
  | 'release' // a kernel release with a /lib/modules directory
  | 'command' // a kheadersfs command
  | 'mount-options' // mount's -o list (MOUNT_OPTIONS), comma-separated
  | 'text' // free text or a number: nothing to offer
  | readonly string[] // exactly these words

export interface OptionSpec {
  /** Long form first, then the short one if any: ['--output', '-o']. */
  names: readonly string[]
  /** The value's kind; none for a flag. */
  value?: Kind
  /** For zsh's and fish's descriptions (one short line). */
  help: string
}

export interface CommandSpec {
  options: readonly OptionSpec[]
  /** The kinds of the positional arguments, in order. */
  args: readonly Kind[]
}

export const LOG_LEVEL: OptionSpec = { names: ['--log-level'], value: LEVELS, help: 'log level' }
/** Before the command: --log-level is taken anywhere, the rest only here. */
export const GLOBAL_OPTIONS: readonly OptionSpec[] = [
  { names: ['--help'], help: 'show the usage' },
  { names: ['--version', '-V', '-v'], help: 'show the version' },
  LOG_LEVEL,
]
export const SHELLS = ['bash', 'zsh', 'fish'] as const
export type Shell = (typeof SHELLS)[number]

const DEB_ARCHS = ['amd64', 'arm64', 'armhf', 'armel', 'i386', 'riscv64']
const HOOK_EVENTS = ['headers-installed', 'image-installed', 'image-removed', 'headers-removed']
const json = (what: string): OptionSpec => ({ names: ['--json'], help: what })

/** Per command name (src/cli.ts COMMANDS, plus "help"). */
export const COMMAND_SPECS: Readonly<Record<string, CommandSpec>> = {
  pack: {
    options: [
      { names: ['--kernel'], value: 'dir', help: 'kernel build tree' },
      { names: ['--from-kheaders'], value: 'file', help: "the kernel's own headers archive" },
      { names: ['--source'], value: 'dir', help: 'kernel source tree' },
      { names: ['--sysroot'], value: 'dir', help: 'root file system the tree belongs to' },
      { names: ['--cross-compile'], value: 'text', help: "CROSS_COMPILE prefix of the board's compiler" },
      { names: ['--no-rebuild'], help: 'refuse a tree whose host programs need rebuilding' },
      { names: ['--trust-tree'], help: 'rebuild even if another user owns the tree' },
      { names: ['--profile'], value: PROFILES, help: 'what to pack' },
      { names: ['--config'], value: 'file', help: '.config or config.gz to use' },
      { names: ['--release'], value: 'text', help: 'kernel release to record' },
      { names: ['--output', '-o'], value: 'file', help: 'where to write' },
      { names: ['--xz-preset'], value: 'text', help: 'xz preset 1-9' },
      { names: ['--block-size'], value: 'text', help: 'xz block size' },
      { names: ['--threads'], value: 'text', help: 'compression threads' },
      { names: ['--json'], help: 'progress as JSON lines' },
      { names: ['--deb'], help: 'write a Debian package of the image' },
      { names: ['--deb-name'], value: 'text', help: 'package name prefix' },
      { names: ['--deb-version'], value: 'text', help: 'package version' },
      { names: ['--deb-arch'], value: DEB_ARCHS, help: 'Debian architecture' },
      { names: ['--deb-maintainer'], value: 'text', help: 'Name <email>' },
    ],
    args: [],
  },
  info: { options: [json('the manifest as JSON')], args: ['file'] },
  verify: { options: [json('the checks as JSON')], args: ['file'] },
  mount: {
    options: [
      { names: ['--image'], value: 'file', help: 'the image to load' },
      { names: ['--release'], value: 'text', help: 'the release to look for' },
      { names: ['--force'], help: 'load an image built for another release' },
      { names: ['--allow-untrusted-image'], help: 'as root, load an image others can write' },
      { names: ['--mkdir', '-m'], help: 'create the mountpoint (and parents) if missing' },
      { names: ['--options', '-o'], value: 'mount-options', help: 'comma-separated mount options' },
      { names: ['--foreground', '-f'], help: 'stay in the foreground' },
    ],
    args: ['dir'],
  },
  umount: { options: [{ names: ['--lazy', '-l'], help: 'detach now' }], args: ['mountpoint'] },
  status: { options: [json('the mounts as JSON')], args: [] },
  'install-helpers': {
    options: [
      { names: ['--uninstall'], help: 'remove the files installed before' },
      { names: ['--destdir'], value: 'dir', help: 'stage the files under DIR' },
      { names: ['--for-package'], help: 'the files belong to a package' },
      { names: ['--bindir'], value: 'dir', help: 'where the CLI goes' },
      { names: ['--helperdir'], value: 'dir', help: 'where mount.kheadersfs goes' },
      { names: ['--unitdir'], value: 'dir', help: 'where the systemd units go' },
      { names: ['--datadir'], value: 'dir', help: 'where the manual page and completion go' },
      { names: ['--node'], value: 'file', help: 'the node the CLI runs' },
      { names: ['--app'], value: 'dir', help: 'the kheadersfs the CLI runs' },
    ],
    args: [],
  },
  'kernel-hook': {
    options: [{ names: ['--strict'], help: "exit with the failure's status" }],
    args: [HOOK_EVENTS, 'release'],
  },
  completion: { options: [], args: [['bash', 'zsh', 'fish']] },
  help: { options: [], args: ['command'] },
}

/** mount -o: kheadersfs's own options (the generic ones are accepted and ignored, so not offered). */
export const MOUNT_OPTIONS: ReadonlyArray<{ name: string; value?: Kind; help: string }> = [
  { name: 'image', value: 'file', help: 'the image to load' },
  { name: 'release', value: 'text', help: 'the release to look for' },
  { name: 'force', help: 'load an image built for another release' },
  { name: 'nonempty', help: 'mount over a non-empty directory' },
  { name: 'log_level', value: LEVELS, help: 'log level' },
  { name: 'allow_untrusted_image', help: 'as root, load an image others can write' },
  { name: 'view', value: ['on', 'off'], help: 'the kheaders/ directory' },
  { name: 'cache_mb', value: 'text', help: 'decoded-block cache in MiB' },
  { name: 'link_build', help: 'point /lib/modules/RELEASE/build at kheaders/' },
  { name: 'X-mount.mkdir', help: 'create the mountpoint if missing' },
]
