// Kernels cross-built on this host (test/fixtures/cross-kernel.sh, cached under /var/cache), and the
// archive the kernel's own kernel/gen_kheaders.sh makes from one, as CONFIG_IKHEADERS would.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import path from 'node:path'
import { ROOT } from './cli'

export type CrossArch = 'arm64' | 'arm'

export const CROSS_PREFIX: Record<CrossArch, string> = { arm64: 'aarch64-linux-gnu-', arm: 'arm-linux-gnueabihf-' }

/** The cached cross-built tree for `arch`, built on first use (~5–20 min). Throws when the build fails. */
export function crossKernel(arch: CrossArch): string {
  const r = spawnSync('bash', [path.join(ROOT, 'test/fixtures/cross-kernel.sh'), arch], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 256 << 20,
  })
  const dir = r.stdout.trim().split('\n').pop() ?? ''
  if (r.status !== 0 || !existsSync(path.join(dir, 'Module.symvers'))) {
    throw new Error(`cross-kernel.sh ${arch} failed (${r.status}): ${r.stderr.slice(-2000)}`)
  }
  return dir
}

/**
 * kernel/kheaders_data.tar.xz of a cross-built tree, made by the tree's own gen_kheaders.sh with the
 * environment kernel/Makefile gives it (cwd = objtree, SRCARCH, XZ, KBUILD_BUILD_TIMESTAMP); once,
 * under the fixture's lock.
 */
export function kernelKheadersArchive(tree: string, srcarch: string): string {
  const out = path.join(tree, 'kernel/kheaders_data.tar.xz')
  const script =
    `exec 9>"${path.dirname(tree)}/.lock-kheaders"; flock 9; [ -f kernel/kheaders_data.tar.xz ] || ` +
    'SRCARCH="$1" XZ=xz KBUILD_BUILD_TIMESTAMP="Mon Nov 30 00:00:00 UTC 2026" sh kernel/gen_kheaders.sh kernel/kheaders_data.tar.xz'
  const r = spawnSync('sh', ['-c', script, 'sh', srcarch], { cwd: tree, encoding: 'utf8' })
  if (r.status !== 0 || !existsSync(out)) throw new Error(`gen_kheaders.sh failed (${r.status}): ${r.stderr}`)
  return out
}
