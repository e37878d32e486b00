// kheadersfs kernel-hook: the work behind the package's kernel hooks (/etc/kernel/*/kheadersfs) and its
// dpkg trigger on /usr/src. It runs inside apt: whatever goes wrong, it prints one warning line and
// exits 0, so a kernel upgrade never fails or stops because of kheadersfs (only a usage error, which
// the shipped hooks never make, exits non-zero).
import { parseCommand } from '../args'
import type { Command, Context } from '../context'
import { ExitCode, KheadersError, UsageError } from '../errors'
import { CONFIG_FILE, ENV_SWITCH, readConfig, switchedOff } from '../kernel-hooks/config'
import {
  packRelease,
  removeRelease,
  SYSTEM_PATHS,
  sweepRemovedHeaders,
  type Done,
  type HookPaths,
} from '../kernel-hooks/hooks'

const EVENTS = ['headers-installed', 'image-installed', 'image-removed', 'headers-removed'] as const
type Event = (typeof EVENTS)[number]

export const kernelHook: Command = {
  usage: `Usage: kheadersfs kernel-hook [--strict] EVENT [RELEASE]

What the kheadersfs package's kernel hooks run (as root), as dkms does for modules:
  headers-installed RELEASE  pack /lib/modules/RELEASE/kheaders.img from /usr/src/linux-headers-RELEASE
                             (from /etc/kernel/header_postinst.d/kheadersfs; run it by hand to pack
                             for a kernel whose headers were installed before kheadersfs)
  image-installed RELEASE    the same, if that kernel's headers are installed already
                             (/etc/kernel/postinst.d/kheadersfs)
  image-removed RELEASE      remove the image the hooks packed for RELEASE (/etc/kernel/postrm.d/kheadersfs)
  headers-removed            remove the images whose headers tree is gone (the package's dpkg trigger
                             on /usr/src: a headers package has no removal hook of its own)

Only images the hooks packed are replaced or removed (recorded in /var/lib/kheadersfs/kernel-hooks/);
an image placed by hand, or a release an image package serves (/usr/lib/kheadersfs/RELEASE.img), is
left alone. Settings: ${CONFIG_FILE} (PACK, PROFILE, REMOVE_WITH_HEADERS,
THREADS, XZ_PRESET); ${ENV_SWITCH}=off turns packing off for one run. Never fails a kernel package:
a failure is one warning line on stderr, and the exit status is 0.

  --strict    exit with the failure's status instead (when run by hand or from a script)
  -h, --help  show this help`,

  async run(args, ctx) {
    const { event, release, strict } = parseArgs(args)
    try {
      for (const d of await handle(event, release, ctx, SYSTEM_PATHS)) if (d.line) say(ctx, d.line)
    } catch (e) {
      const msg = KheadersError.is(e) || e instanceof Error ? e.message : String(e)
      const what = event === 'headers-installed' || event === 'image-installed' ? 'pack' : 'remove'
      const retry = release === undefined ? event : `${event} ${release}`
      ctx.stderr.write(
        `kheadersfs: ${strict ? '' : 'warning: '}cannot ${what} the image${release ? ` for ${release}` : ''}: ${oneLine(msg)}${strict ? '' : `; the kernel's packages are not affected; retry with "kheadersfs kernel-hook ${retry}"`}\n`,
      )
      if (strict) return KheadersError.is(e) ? e.exitCode : ExitCode.failure
    }
    return 0
  },
}

function parseArgs(args: string[]): { event: Event; release?: string; strict: boolean } {
  const { values, positionals } = parseCommand('kernel-hook', args, { strict: { type: 'boolean' } })
  const [event, release, ...rest] = positionals
  const known = EVENTS.find((e) => e === event)
  if (known === undefined)
    throw new UsageError(
      `kheadersfs kernel-hook: ${event === undefined ? 'no event' : `unknown event ${JSON.stringify(event)}`}; give one of ${EVENTS.join(', ')}`,
    )
  const wantsRelease = known !== 'headers-removed'
  if (wantsRelease !== (release !== undefined) || rest.length > 0)
    throw new UsageError(
      `kheadersfs kernel-hook ${known}: ${wantsRelease ? 'give the kernel release, and nothing else' : 'takes no argument'}; see "kheadersfs kernel-hook --help"`,
    )
  return { event: known, release, strict: values.strict === true }
}

export async function handle(
  event: Event,
  release: string | undefined,
  ctx: Pick<Context, 'env'>,
  paths: HookPaths,
): Promise<Done[]> {
  switch (event) {
    case 'headers-installed':
    case 'image-installed': {
      if (switchedOff(ctx.env)) return [{ line: `${release}: not packing: ${ENV_SWITCH}=${ctx.env[ENV_SWITCH]}` }]
      const config = readConfig()
      if (!config.pack) return [{ line: `${release}: not packing: PACK=no in ${CONFIG_FILE}` }]
      const done = await packRelease(release!, config, paths, ctx.env)
      // A kernel image installed without its headers is the common case: nothing to say.
      return event === 'image-installed' && /no headers tree/.test(done.line) ? [] : [done]
    }
    case 'image-removed':
      // Debian's kernel postrm runs its hooks on "upgrade" too (a new build of the same release is
      // being unpacked): the image stays for that; it goes on "remove" and "purge".
      if (!/^(remove|purge)?$/.test((ctx.env.DEB_MAINT_PARAMS ?? '').trim().split(/\s+/)[0])) return []
      return [removeRelease(release!, paths, 'its kernel was removed')]
    case 'headers-removed':
      return sweepRemovedHeaders(readConfig(), paths)
  }
}

function say(ctx: Context, line: string): void {
  ctx.stdout.write(`kheadersfs: ${line}\n`)
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').slice(0, 600)
}
