// The real kernel tree the tests use: Debian's linux-headers-<release> (objtree) with its -common
// srctree and linux-kbuild scripts, installed by .ci/setup. Also: images packed from it once per
// build of kheadersfs (cached across test files), and a real module build against a tree.
import { createHash } from 'node:crypto'
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { ROOT, run, runCli } from './cli'

export interface DebianTree {
  objtree: string
  srctree: string
  kbuild: string
  release: string
}

/** The newest installed Debian linux-headers-*-<flavour> tree, or undefined when none is installed. */
export function debianTree(): DebianTree | undefined {
  const base = '/usr/src'
  if (!existsSync(base)) return undefined
  const candidates = readdirSync(base)
    .filter((d) => /^linux-headers-.*-(amd64|arm64|cloud-amd64)$/.test(d))
    .map((d) => path.join(base, d))
    .filter((d) => /^include \/usr\/src\/.*-common\/Makefile$/m.test(safeRead(path.join(d, 'Makefile'))))
    .sort()
  const objtree = candidates.at(-1)
  if (objtree === undefined) return undefined
  const srctree = path.dirname(/^include (\S+)$/m.exec(safeRead(path.join(objtree, 'Makefile')))![1])
  const release = /UTS_RELEASE "([^"]+)"/.exec(safeRead(path.join(objtree, 'include/generated/utsrelease.h')))![1]
  const kbuild = path.resolve(objtree, readlinkOr(path.join(objtree, 'scripts')), '..')
  return { objtree, srctree, kbuild, release }
}

export const SKIP_NO_DEBIAN = 'Debian linux-headers-amd64 is not installed (run .ci/setup as root)'

function safeRead(p: string): string {
  try {
    return readFileSync(p, 'utf8')
  } catch {
    return ''
  }
}

function readlinkOr(p: string): string {
  return readlinkSync(p)
}

/** Hash of the built tool: a cached image is reused only by the same kheadersfs. */
function toolHash(): string {
  const h = createHash('sha256')
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const p = path.join(dir, name)
      if (statSync(p).isDirectory()) walk(p)
      else if (name.endsWith('.js')) h.update(name).update(readFileSync(p))
    }
  }
  walk(path.join(ROOT, 'dist', 'src'))
  return h.digest('hex').slice(0, 16)
}

const CACHE = path.join(os.tmpdir(), 'kheadersfs-test-cache')

/** Pack the Debian tree once per tool build and profile; later callers get the cached image path. */
export async function packedImage(
  tree: DebianTree,
  profile: 'module-build' | 'headers' = 'module-build',
): Promise<string> {
  mkdirSync(CACHE, { recursive: true })
  const file = path.join(CACHE, `${profile}-${tree.release}-${toolHash()}.img`)
  if (existsSync(file)) return file
  const tmp = path.join(CACHE, `.tmp-${process.pid}-${profile}`)
  mkdirSync(tmp, { recursive: true })
  try {
    const r = await runCli(['pack', '--kernel', tree.objtree, '--profile', profile, '-o', path.join(tmp, 'img')], {
      env: { KHEADERSFS_LOG_LEVEL: 'warn' },
    })
    if (r.code !== 0) throw new Error(`pack failed (${r.code}): ${r.stderr}`)
    renameSync(path.join(tmp, 'img'), file)
  } finally {
    rmSync(tmp, { recursive: true, force: true })
  }
  return file
}

/** test/fixtures/hello: the small module the builds compile. */
export const HELLO = path.join(ROOT, 'test', 'fixtures', 'hello')
/** test/fixtures/bigmod: the larger module (≈700 headers against hello's ≈400), see test/fixtures/README.md. */
export const BIGMOD = path.join(ROOT, 'test', 'fixtures', 'bigmod')

export interface ModuleBuild {
  code: number | null
  output: string
  ko: string
  vermagic: string
}

/**
 * Build test/fixtures/hello against `tree` in a copy under `workdir`. With `isolate`, the build runs
 * in a private mount namespace where /usr/src and /usr/lib/linux-kbuild-* are hidden under empty
 * tmpfs mounts: the tree must be self-contained, with no file of the installed packages reachable.
 */
export async function buildHello(
  tree: string,
  workdir: string,
  isolate: boolean,
  extraMake: string[] = [],
): Promise<ModuleBuild> {
  const dir = path.join(workdir, 'hello')
  rmSync(dir, { recursive: true, force: true })
  cpSync(HELLO, dir, { recursive: true })
  const make = ['make', '-C', tree, `M=${dir}`, ...extraMake, 'modules']
  const hide = isolate
    ? [
        '/usr/src',
        ...readdirSync('/usr/lib')
          .filter((d) => d.startsWith('linux-kbuild-'))
          .map((d) => `/usr/lib/${d}`),
      ].filter(existsSync)
    : []
  const script = [...hide.map((d) => `mount -t tmpfs -o ro kheadersfs-hide ${d}`), 'exec "$@"'].join(' && ')
  const r = isolate
    ? await run('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', ...make])
    : await run(make[0], make.slice(1))
  const ko = path.join(dir, 'hello.ko')
  let vermagic = ''
  if (r.code === 0 && existsSync(ko)) {
    const m = await run('modinfo', ['-F', 'vermagic', ko])
    vermagic = m.stdout.trim()
  }
  return { code: r.code, output: r.stdout + r.stderr, ko, vermagic }
}
