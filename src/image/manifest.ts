// manifest.json ⇄ Manifest. Serialization is deterministic (fixed key order, one file row per line)
// so the same inputs give the same image bytes; parsing validates every field a reader relies on.
import { isUtf8 } from 'node:buffer'
import {
  FORMAT_ID,
  FORMAT_MAJOR,
  LIMITS,
  PROFILES,
  RELEASE,
  fromRow,
  toRow,
  type Manifest,
  type PayloadInfo,
} from './format'
import { resolveInArchive } from './links'

export function serializeManifest(m: Manifest): Buffer {
  const { files, ...head } = m
  const top = JSON.stringify(head, null, 2).replace(/\n}$/, '')
  const rows = files.map((f) => '    ' + JSON.stringify(toRow(f))).join(',\n')
  return Buffer.from(`${top},\n  "files": [\n${rows}\n  ]\n}\n`)
}

/** Parse and validate; throws Error with a message naming the bad field. */
export function parseManifest(json: Buffer): Manifest {
  let raw: unknown
  // toString would turn bytes that are not UTF-8 into U+FFFD: names the image does not hold.
  if (!isUtf8(json)) throw new Error('manifest.json is not valid UTF-8')
  try {
    raw = JSON.parse(json.toString('utf8'))
  } catch (e) {
    throw new Error(`manifest.json is not valid JSON (${(e as Error).message})`)
  }
  const o = raw as Record<string, unknown>
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new Error('manifest.json is not a JSON object')
  if (o.format !== FORMAT_ID)
    throw new Error(`manifest.json has format ${JSON.stringify(o.format)}, not "${FORMAT_ID}"`)
  const version = typeof o.version === 'string' ? /^(\d+)\.(\d+)$/.exec(o.version) : null
  if (!version) throw new Error(`manifest.json has a bad version ${JSON.stringify(o.version)}`)
  if (Number(version[1]) !== FORMAT_MAJOR) {
    throw new Error(
      `image format version ${version[0]} is not supported (this kheadersfs reads ${FORMAT_MAJOR}.x); upgrade kheadersfs or repack the image`,
    )
  }
  const str = (k: string, re: RegExp): string => {
    const v = o[k]
    if (typeof v !== 'string' || !re.test(v)) throw new Error(`manifest.json has a bad ${k} ${JSON.stringify(v)}`)
    return v
  }
  const int = (v: unknown, what: string, max: number = Number.MAX_SAFE_INTEGER): number => {
    if (!Number.isSafeInteger(v) || (v as number) < 0 || (v as number) > max)
      throw new Error(`manifest.json has a bad ${what} ${JSON.stringify(v)}`)
    return v as number
  }
  const payload = (name: string, maxUncompressed: number): PayloadInfo & Record<string, unknown> => {
    const p = (o.payloads as Record<string, Record<string, unknown>> | undefined)?.[name]
    if (typeof p !== 'object' || p === null) throw new Error(`manifest.json has no payloads["${name}"]`)
    if (typeof p.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(p.sha256))
      throw new Error(`manifest.json has a bad sha256 for ${name}`)
    return {
      ...p,
      size: int(p.size, `size for ${name}`, LIMITS.imageBytes),
      sha256: p.sha256,
      uncompressedSize: int(p.uncompressedSize, `uncompressedSize for ${name}`, maxUncompressed),
    }
  }
  const profile = str('profile', /^/)
  if (!(PROFILES as readonly string[]).includes(profile))
    throw new Error(`manifest.json has an unknown profile ${JSON.stringify(profile)}`)
  const headers = payload('kheaders.tar.xz', LIMITS.uncompressedBytes)
  const blockSize = int(headers.blockSize, 'xz blockSize', LIMITS.uncompressedBytes)
  if (blockSize === 0) throw new Error('manifest.json has a bad xz blockSize 0')
  if (!Array.isArray(o.files) || o.files.length > LIMITS.files) throw new Error('manifest.json has no files list')
  const files = o.files.map(fromRow)
  const counts = o.counts as Record<string, unknown> | undefined
  const bytes = o.bytes as Record<string, unknown> | undefined
  const m: Manifest = {
    format: FORMAT_ID,
    version: o.version as string,
    generator: typeof o.generator === 'string' ? o.generator : 'unknown',
    release: str('release', RELEASE),
    arch: str('arch', /^[a-z0-9_]{1,32}$/),
    profile: profile as Manifest['profile'],
    created: str('created', /^\d{4}-\d\d-\d\dT/),
    epoch: int(o.epoch, 'epoch'),
    payloads: {
      'config.gz': payload('config.gz', LIMITS.manifestBytes),
      'kheaders.tar.xz': { ...headers, blockSize, preset: int(headers.preset, 'xz preset', 9), check: 'crc64' },
    },
    counts: {
      files: int(counts?.files, 'counts.files', LIMITS.files),
      directories: int(counts?.directories, 'counts.directories', LIMITS.files),
      symlinks: int(counts?.symlinks, 'counts.symlinks', LIMITS.files),
    },
    bytes: { raw: int(bytes?.raw, 'bytes.raw'), stripped: int(bytes?.stripped, 'bytes.stripped') },
    ...optionalFields(o, int),
    files,
  }
  checkFiles(m)
  return m
}

/** Fields added in format 1.1 and 1.2: absent in older images, validated when present. */
function optionalFields(
  o: Record<string, unknown>,
  int: (v: unknown, what: string, max?: number) => number,
): Pick<Manifest, 'target' | 'hostPrograms' | 'source' | 'layout'> {
  const out: Pick<Manifest, 'target' | 'hostPrograms' | 'source' | 'layout'> = {}
  const text = (v: unknown, what: string): string => {
    if (typeof v !== 'string' || v.length > 200 || /[\x00-\x1f]/.test(v))
      throw new Error(`manifest.json has a bad ${what} ${JSON.stringify(v)}`)
    return v
  }
  const paths = (v: unknown, what: string): string[] => {
    if (!Array.isArray(v) || v.length > 1000) throw new Error(`manifest.json has a bad ${what}`)
    return v.map((p, i) => text(p, `${what}[${i}]`))
  }
  if (o.target !== undefined) {
    const t = o.target as Record<string, unknown>
    if (typeof t !== 'object' || t === null) throw new Error('manifest.json has a bad target')
    if (t.bits !== 32 && t.bits !== 64) throw new Error(`manifest.json has a bad target.bits ${JSON.stringify(t.bits)}`)
    if (t.endian !== 'little' && t.endian !== 'big')
      throw new Error(`manifest.json has a bad target.endian ${JSON.stringify(t.endian)}`)
    if (t.from !== 'vmlinux' && t.from !== 'config')
      throw new Error(`manifest.json has a bad target.from ${JSON.stringify(t.from)}`)
    out.target = {
      machine: int(t.machine, 'target.machine', 0xffff),
      bits: t.bits,
      endian: t.endian,
      name: text(t.name, 'target.name'),
      from: t.from,
    }
  }
  if (o.hostPrograms !== undefined) {
    const h = o.hostPrograms as Record<string, unknown>
    if (typeof h !== 'object' || h === null) throw new Error('manifest.json has a bad hostPrograms')
    out.hostPrograms = {
      compiler: text(h.compiler, 'hostPrograms.compiler'),
      prefix: text(h.prefix, 'hostPrograms.prefix'),
      rebuilt: paths(h.rebuilt, 'hostPrograms.rebuilt'),
      dropped: paths(h.dropped, 'hostPrograms.dropped'),
    }
  }
  if (o.source !== undefined) {
    const s = o.source as Record<string, unknown>
    if (
      typeof s !== 'object' ||
      s === null ||
      s.kind !== 'kheaders-archive' ||
      typeof s.sha256 !== 'string' ||
      !/^[0-9a-f]{64}$/.test(s.sha256)
    ) {
      throw new Error(`manifest.json has a bad source ${JSON.stringify(o.source)}`)
    }
    out.source = { kind: 'kheaders-archive', sha256: s.sha256 }
  }
  if (o.layout !== undefined) {
    const l = o.layout as Record<string, unknown>
    if (typeof l !== 'object' || l === null) throw new Error('manifest.json has a bad layout')
    out.layout = { order: text(l.order, 'layout.order') }
  }
  return out
}

/**
 * The file table must describe a tar that fits in the declared size, in order, with no duplicates, no
 * name that is both a file and the parent of another, and links that stay inside the archive: all the
 * daemon could trip on later is refused here, before the mount is ready.
 */
function checkFiles(m: Manifest): void {
  const tarSize = m.payloads['kheaders.tar.xz'].uncompressedSize
  const types = new Map<string, string>()
  const links = new Map<string, string>()
  let end = 0
  const n = { file: 0, directory: 0, symlink: 0 }
  for (const f of m.files) {
    if (types.has(f.path)) throw new Error(`manifest.json lists ${f.path} twice`)
    types.set(f.path, f.type)
    if (f.offset < end || f.offset + f.size > tarSize)
      throw new Error(`manifest.json places ${f.path} outside the archive (offset ${f.offset}, size ${f.size})`)
    if (f.type !== 'file' && f.size !== 0) throw new Error(`manifest.json gives ${f.type} ${f.path} a size`)
    if (f.type === 'symlink') links.set(f.path, f.link!)
    end = f.offset + f.size
    n[f.type]++
  }
  if (n.file !== m.counts.files || n.directory !== m.counts.directories || n.symlink !== m.counts.symlinks) {
    throw new Error('manifest.json counts do not match its files list')
  }
  // Parents may come after their entries (build order): checked once every type is known.
  for (const f of m.files) {
    for (let slash = f.path.lastIndexOf('/'); slash > 0; slash = f.path.lastIndexOf('/', slash - 1)) {
      const type = types.get(f.path.slice(0, slash))
      if (type === undefined) continue
      if (type !== 'directory')
        throw new Error(`manifest.json lists ${f.path.slice(0, slash)} as a ${type} and as the parent of ${f.path}`)
      break // its own parents were checked with it
    }
  }
  for (const [from, target] of links) {
    const v = resolveInArchive(from, target, links)
    if (!v.inside)
      throw new Error(
        `manifest.json has ${from}, a link to ${target} that does not resolve inside the archive: ${v.why}`,
      )
  }
}
