// pack --from-kheaders: the kernel's own archive (made here the way gen_kheaders.sh makes it: GNU tar
// of "." with --sort=name, owner 0, then xz) and the same archive embedded in a module, as Android
// GKI's kheaders.ko carries it. The image must list exactly the archive's files with their bytes.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { gzipSync } from 'node:zlib'
import t from 'tap'
import { findXzStream } from '../../src/pack/from-kheaders'
import { runCli } from '../helpers/cli'
import { tmpDir } from '../helpers/tmp'

const FILES: Record<string, string> = {
  'include/linux/kernel.h': '#ifndef _K\n#define _K 1\n#endif\n',
  'include/linux/kconfig.h': '#include <generated/autoconf.h>\n',
  'include/generated/autoconf.h': '#define CONFIG_ARM64 1\n',
  'include/generated/utsrelease.h': '#define UTS_RELEASE "6.6.50-android15-kh"\n',
  'include/generated/compile.h': '#define UTS_VERSION "#1 SMP PREEMPT Mon Nov 30 00:00:00 UTC 2026"\n',
  'arch/arm64/include/asm/page.h': '#define PAGE_SHIFT 12\n',
  'arch/arm64/include/generated/asm/cpucaps.h': '#define X 1\n',
}

/** The archive as gen_kheaders.sh writes it: names start with "./", root entry included. */
function kernelArchive(dir: string, files = FILES): string {
  const src = path.join(dir, 'cpio')
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(src, rel)), { recursive: true })
    writeFileSync(path.join(src, rel), text)
  }
  const out = path.join(dir, 'kheaders.tar.xz')
  const r = spawnSync('sh', [
    '-c',
    `tar --sort=name --owner=0 --group=0 --numeric-owner --mode=u=rw,go=r,a+X -C "${src}" -cf - . | xz > "${out}"`,
  ])
  if (r.status !== 0) throw new Error(r.stderr.toString())
  return out
}

function listing(tarArgs: string[]): string[] {
  const r = spawnSync('sh', ['-c', `tar ${tarArgs.join(' ')}`], { encoding: 'utf8' })
  return r.stdout
    .split('\n')
    .map((l) => l.replace(/^\.\//, '').replace(/\/$/, ''))
    .filter((l) => l !== '' && l !== '.')
    .sort()
}

t.test('the kernel archive packs to a headers image with its exact file list and bytes', async (t) => {
  const dir = tmpDir(t)
  const archive = kernelArchive(dir)
  const config = path.join(dir, 'config.gz')
  writeFileSync(config, gzipSync('CONFIG_ARM64=y\nCONFIG_IKHEADERS=m\n'))
  const img = path.join(dir, 'kh.img')
  const r = await runCli(['pack', '--from-kheaders', archive, '--config', config, '-o', img])
  t.equal(r.code, 0, r.stderr)
  const info = JSON.parse((await runCli(['info', '--json', img])).stdout) as Record<string, unknown>
  t.equal(info.release, '6.6.50-android15-kh')
  t.equal(info.arch, 'arm64')
  t.equal(info.profile, 'headers')
  t.equal(info.created, '2026-11-30T00:00:00.000Z', "mtime from the archive's compile.h")
  t.match(info.source, { kind: 'kheaders-archive', sha256: /^[0-9a-f]{64}$/ })
  const inner = path.join(dir, 'inner.tar.xz')
  writeFileSync(inner, spawnSync('tar', ['-xOf', img, 'kheaders.tar.xz']).stdout)
  t.same(listing(['-tJf', inner]), listing(['-tJf', archive]), 'same file list')
  const out = path.join(dir, 'out')
  mkdirSync(out)
  spawnSync('tar', ['-xJf', inner, '-C', out])
  for (const [rel, text] of Object.entries(FILES)) t.equal(readFileSync(path.join(out, rel), 'utf8'), text, rel)
  t.equal((await runCli(['verify', img])).code, 0, 'verifies')
})

t.test('an archive embedded in a module (kheaders.ko) is found by its checked xz footer', async (t) => {
  const dir = tmpDir(t)
  const xz = readFileSync(kernelArchive(dir))
  // ELF-ish bytes around it, with a stray "YZ" and a stray xz magic before the real stream.
  const ko = Buffer.concat([
    Buffer.from('\x7fELF....YZ....'),
    Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 1, 2, 3]),
    Buffer.alloc(7),
    xz,
    Buffer.from('.symtab kernel_headers_data_end YZ\0\0'),
  ])
  t.same(findXzStream(ko, 'kheaders.ko'), xz)
  const file = path.join(dir, 'kheaders.ko')
  writeFileSync(file, ko)
  const config = path.join(dir, '.config')
  writeFileSync(config, 'CONFIG_ARM64=y\n')
  const r = await runCli(['pack', '--from-kheaders', file, '--config', config, '-o', path.join(dir, 'ko.img')])
  t.equal(r.code, 0, r.stderr)
})

t.test('refusals: no config, not an archive, module-build profile, a tree flag', async (t) => {
  const dir = tmpDir(t)
  const archive = kernelArchive(dir)
  const img = path.join(dir, 'x.img')
  const config = path.join(dir, '.config')
  writeFileSync(config, 'CONFIG_ARM64=y\n')
  const cases: Array<[string, string[], number, RegExp]> = [
    [
      'no --config',
      ['--from-kheaders', archive],
      2,
      /--from-kheaders needs --config too .*--config \/proc\/config\.gz/,
    ],
    [
      'not xz',
      ['--from-kheaders', __filename, '--config', config],
      7,
      /no \.xz stream in it; pass --from-kheaders the kernel's kheaders\.tar\.xz/,
    ],
    [
      'missing',
      ['--from-kheaders', path.join(dir, 'nope'), '--config', config],
      7,
      /Cannot read .*nope: ENOENT.*modprobe kheaders/,
    ],
    [
      'module-build',
      ['--from-kheaders', archive, '--profile', 'module-build'],
      2,
      /holds headers only.*--profile headers/,
    ],
    ['with --kernel', ['--from-kheaders', archive, '--kernel', dir], 2, /packs an archive, not a tree: drop --kernel/],
  ]
  for (const [what, args, code, msg] of cases) {
    const r = await runCli(['pack', ...args, '-o', img])
    t.equal(r.code, code, `${what}: ${r.stderr}`)
    t.match(r.stderr, msg, what)
    t.notOk(existsSync(img), `${what}: no image`)
  }
  const noHeaders = kernelArchive(path.join(dir, 'empty'), { README: 'x\n' })
  const r = await runCli(['pack', '--from-kheaders', noHeaders, '--config', config, '-o', img])
  t.equal(r.code, 7, r.stderr)
  t.match(r.stderr, /it holds no include\/linux\/ headers/)
})
