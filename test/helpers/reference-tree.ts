// The expected bytes of a mount, made without kheadersfs: an image's parts as the product's own
// parser reads them, and the reference tree (payloads written out, GNU tar's extraction of the
// header archive) that the reliability suite compares a mount with.
import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { parseImage, type Image } from '../../src/image/read'

/** The image's payloads and manifest, verified by the product's own parser. */
export function imageParts(image: string): Image {
  return parseImage(readFileSync(image), image)
}

/**
 * The reference tree of a mount, made without kheadersfs: the flat payloads written out and GNU tar's
 * extraction of kheaders.tar.xz under kheaders/, with the modes the mount promises (files 0444,
 * directories 0555). `dir` must not exist.
 */
export function referenceTree(image: Image, dir: string): string {
  mkdirSync(path.join(dir, 'kheaders'), { recursive: true })
  const txz = path.join(dir, 'kheaders.txz')
  writeFileSync(txz, image.headers, { mode: 0o444 })
  writeFileSync(path.join(dir, 'kheaders.tar.xz'), image.headers, { mode: 0o444 })
  writeFileSync(path.join(dir, 'config.gz'), image.config, { mode: 0o444 })
  const r = spawnSync('tar', ['-xJf', txz, '-C', path.join(dir, 'kheaders')], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`tar -xJf failed: ${r.stderr}`)
  spawnSync('chmod', ['0555', dir, path.join(dir, 'kheaders')])
  return dir
}
