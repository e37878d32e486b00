// The whole real Debian kernel header tree through stripComments, with GCC as the judge: every *.h
// preprocessed by gcc (original vs stripped) must give the same tokens on the same lines, the same
// macro definitions (-dD) and the same diagnostics, and keep its line count.
//
// Why not `gcc -E -fpreprocessed`: that mode does no line splicing and ignores directives, so it
// misreads `/\<nl>*`, `// ...\<nl>` and `#include <a//b.h>` and would flag the space + backslash-newline
// replacement itself. A full `gcc -E` is the real lexer; includes are satisfied by empty stubs, so each
// header is preprocessed alone (no CONFIG_*, no __KERNEL__) and gcc never stops at a missing file.
// gcc's output for the unstripped side does not depend on kheadersfs: it is kept between runs
// (helpers/reference-cache.ts), keyed by gcc's version and arguments, the batch's bytes and the stubs.
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { stripComments } from '../../src/pack/strip-comments'
import { ReferenceCache, type Output } from '../helpers/reference-cache'
import { tmpDir } from '../helpers/tmp'

const run = promisify(execFile)
const BATCH = 300
const MAX_BUFFER = 1 << 30

function commonTree(): string | undefined {
  const base = '/usr/src'
  if (!existsSync(base)) return undefined
  const dirs = readdirSync(base)
    .filter((d) => /^linux-headers-.+-common$/.test(d))
    .sort()
  return dirs.length > 0 ? path.join(base, dirs[dirs.length - 1]) : undefined
}

function headers(dir: string, rel = ''): string[] {
  const found: string[] = []
  for (const e of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel === '' ? e.name : `${rel}/${e.name}`
    if (e.isDirectory()) found.push(...headers(dir, r))
    else if (e.isFile() && e.name.endsWith('.h')) found.push(r)
  }
  return found
}

const lineCount = (b: Buffer): number => {
  let c = 0
  for (let k = b.indexOf(10); k >= 0; k = b.indexOf(10, k + 1)) c++
  return c
}

/** gcc in `cwd`; a failing exit status (#error in a header, a missing include) still gives the output. */
async function gcc(cwd: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  try {
    return await run('gcc', args, { cwd, maxBuffer: MAX_BUFFER })
  } catch (e) {
    const err = e as { stdout?: unknown; stderr?: unknown }
    if (typeof err.stdout !== 'string' || typeof err.stderr !== 'string' || err.stderr === '') throw e
    return { stdout: err.stdout, stderr: err.stderr }
  }
}

/** Run jobs with at most `limit` in flight. */
async function pool<T>(jobs: (() => Promise<T>)[], limit: number): Promise<T[]> {
  const results = new Array<T>(jobs.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < jobs.length) {
      const k = next++
      results[k] = await jobs[k]()
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker))
  return results
}

const normalize = (text: string): string[] => text.split('\n').map((l) => l.replace(/[ \t]+/g, ' ').trim())

/** gcc -E output of a batch split per input file; the builtin/command-line prologue is dropped. */
function splitOutput(stdout: string, names: string[]): Map<string, string> {
  const parts = new Map<string, string>()
  let from = 0
  const starts = names.map((name) => {
    const at = stdout.indexOf(`# 0 "${name}"\n`, from)
    if (at < 0) throw new Error(`no output for ${name}`)
    from = at + 1
    return at
  })
  names.forEach((name, k) => {
    const chunk = stdout.slice(starts[k], k + 1 < names.length ? starts[k + 1] : stdout.length)
    const body = chunk.indexOf(`\n# 1 "${name}"\n`)
    parts.set(name, body < 0 ? chunk : chunk.slice(body + 1))
  })
  return parts
}

/** Diagnostics per file, without columns (removing a comment legitimately moves later tokens left). */
function splitDiagnostics(stderr: string): Map<string, string[]> {
  const byFile = new Map<string, string[]>()
  let current = ''
  for (const line of stderr.split('\n')) {
    const m = /^(h\d+\.h):(\d+):\d+: (.*)$/.exec(line)
    if (m !== null) current = m[1]
    const list = byFile.get(current) ?? []
    list.push(m !== null ? `${m[2]}: ${m[3]}` : line)
    byFile.set(current, list)
  }
  return byFile
}

const tree = commonTree()
if (tree === undefined) {
  t.test(
    'whole Debian header tree',
    { skip: 'no /usr/src/linux-headers-*-common directory (install a Debian linux-headers package)' },
    async () => undefined,
  )
} else {
  t.test(`every *.h of ${tree}: gcc sees the same tokens on the same lines after stripping`, async (t) => {
    const files = headers(tree).sort()
    t.ok(files.length > 1000, `${files.length} headers found`)
    const raw = files.map((f) => readFileSync(path.join(tree, f)))

    const t0 = process.hrtime.bigint()
    const stripped = raw.map((b) => stripComments(b))
    const stripMs = Number(process.hrtime.bigint() - t0) / 1e6

    const rawBytes = raw.reduce((a, b) => a + b.length, 0)
    const strippedBytes = stripped.reduce((a, b) => a + b.length, 0)
    t.comment(
      `${files.length} files, raw ${rawBytes} bytes, stripped ${strippedBytes} bytes (${((100 * strippedBytes) / rawBytes).toFixed(1)}%), strip time ${stripMs.toFixed(0)} ms`,
    )
    t.ok(strippedBytes < rawBytes, 'stripped tree is smaller')
    const unchanged = stripped.filter((b, k) => b === raw[k]).length
    t.comment(`${unchanged} files had nothing to strip (returned as the same Buffer)`)

    const lineDiffs = files.filter((_, k) => lineCount(raw[k]) !== lineCount(stripped[k]))
    t.same(lineDiffs, [], 'every file keeps its line count')

    // Flat copies with neutral names: line markers and __FILE__ are identical on both sides, and no
    // #include "..." can find a sibling, only a stub.
    const w = tmpDir(t, 'kheadersfs-strip-tree-')
    const origDir = path.join(w, 'orig')
    const stripDir = path.join(w, 'strip')
    const stubInc = path.join(w, 'stubs', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'inc') // deep: "../../x.h" stays inside
    for (const d of [origDir, stripDir, stubInc]) mkdirSync(d, { recursive: true })
    const names = files.map((_, k) => `h${k}.h`)
    names.forEach((name, k) => {
      writeFileSync(path.join(origDir, name), raw[k])
      writeFileSync(path.join(stripDir, name), stripped[k])
    })
    // Files with nothing stripped are the same bytes: gcc has nothing to compare there.
    const checked = names.filter((_, k) => stripped[k] !== raw[k])
    const batches: string[][] = []
    for (let k = 0; k < checked.length; k += BATCH) batches.push(checked.slice(k, k + BATCH))
    const gccArgs = ['-x', 'c', '-nostdinc', '-I', stubInc, '-fdiagnostics-plain-output']

    // 1. Include stubs: every name in an #include line or __has_include (a plain regex over the
    // originals; a stub too many is harmless), then gcc -M -MG for computed includes (#include MACRO).
    const stubRoot = path.join(w, 'stubs')
    let stubGen = 0
    const stubs = new Set<string>()
    const addStub = (name: string): void => {
      const stub = path.resolve(stubInc, name)
      if (path.isAbsolute(name) || !stub.startsWith(stubRoot + path.sep) || existsSync(stub)) return
      mkdirSync(path.dirname(stub), { recursive: true })
      writeFileSync(stub, '')
      stubs.add(path.relative(stubRoot, stub))
      stubGen++
    }
    const INCLUDE =
      /^[ \t]*#[ \t]*(?:include|include_next|import)[ \t]*[<"]([^>"\r\n]+)[>"]|__has_include(?:_next)?[ \t]*\([ \t]*[<"]([^>"\r\n]+)[>"]/gm
    const computed: string[] = []
    raw.forEach((b, k) => {
      const text = b.toString('latin1')
      for (const m of text.matchAll(INCLUDE)) addStub(m[1] ?? m[2])
      if (/^[ \t]*#[ \t]*(?:include|include_next|import)[ \t]*[^<"\s]/m.test(text)) computed.push(names[k])
    })
    const stubsFromDeps = async (files: string[]): Promise<void> => {
      const deps = (await gcc(origDir, [...gccArgs, '-M', '-MG', ...files])).stdout
      for (const word of deps.replace(/\\\n/g, ' ').split(/\s+/))
        if (word !== '' && !word.endsWith(':') && !/^h\d+\.h$/.test(word)) addStub(word)
    }
    if (computed.length > 0) await stubsFromDeps(computed)
    t.comment(`${stubGen} include stubs (${computed.length} files with computed includes)`)

    // 2. gcc -E -dD on both sides of each batch. A missing include (gcc stops there) gets its stub from
    // gcc -M -MG and the pair runs again; so does a pair that ran while stubs were being added.
    const t2 = Date.now()
    const preprocess = (cwd: string, b: string[]) => gcc(cwd, [...gccArgs, '-E', '-dD', ...b])
    const cache = new ReferenceCache('strip-whole-tree', w)
    const gccVersion = (await run('gcc', ['--version'])).stdout
    /** The unstripped side: from the cache when gcc already saw these bytes with these stubs. */
    const reference = async (b: string[]): Promise<Output> => {
      const gen = stubGen
      const key = cache.key([
        gccVersion,
        ...gccArgs,
        [...stubs].sort().join('\n'),
        ...b.flatMap((name) => [name, raw[Number(name.slice(1, -2))]]),
      ])
      const hit = cache.get(key)
      if (hit !== undefined) return hit
      const o = await preprocess(origDir, b)
      // A stub added while gcc ran may or may not have been seen: such an output is not stored.
      if (gen === stubGen) cache.put(key, o)
      return o
    }
    const fatal = (r: { stderr: string }): boolean => /fatal error/.test(r.stderr)
    const results = await pool(
      batches.map((b) => async () => {
        for (let round = 0; ; round++) {
          const gen = stubGen
          const o = await reference(b)
          const s = await preprocess(stripDir, b)
          if (fatal(o) || fatal(s)) {
            if (round === 5) throw new Error(`gcc stopped with a fatal error:\n${o.stderr}\n${s.stderr}`)
            await stubsFromDeps(b)
            continue
          }
          if (gen === stubGen) return [o, s]
        }
      }),
      os.availableParallelism(),
    )
    const pruned = cache.prune()
    t.comment(
      `gcc -E -dD on ${checked.length} files x 2: ${Date.now() - t2} ms; unstripped side from the cache for ` +
        `${cache.hits} of ${cache.hits + cache.misses} batches (${pruned} old entries removed)`,
    )

    const differing: string[] = []
    const diagDiffering: string[] = []
    let errorFiles = 0
    batches.forEach((b, k) => {
      const [o, s] = results[k]
      const [oOut, sOut] = [splitOutput(o.stdout, b), splitOutput(s.stdout, b)]
      const [oDiag, sDiag] = [splitDiagnostics(o.stderr), splitDiagnostics(s.stderr)]
      for (const name of b) {
        const a = normalize(oOut.get(name)!)
        const c = normalize(sOut.get(name)!)
        const i = a.findIndex((line, j) => line !== c[j])
        if (i >= 0 || a.length !== c.length) {
          const j = i >= 0 ? i : Math.min(a.length, c.length)
          differing.push(
            `${files[Number(name.slice(1, -2))]} (output line ${j + 1}: ${JSON.stringify(a[j])} vs ${JSON.stringify(c[j])})`,
          )
        }
        const da = (oDiag.get(name) ?? []).join('\n')
        if (da !== (sDiag.get(name) ?? []).join('\n')) diagDiffering.push(files[Number(name.slice(1, -2))])
        if (/: error: /.test(da)) errorFiles++
      }
    })
    t.comment(`${errorFiles} headers hit #error or other errors when preprocessed alone (same on both sides)`)
    t.same(
      differing.slice(0, 10),
      [],
      `gcc -E -dD output identical for all ${checked.length} stripped files (${differing.length} differ)`,
    )
    t.same(diagDiffering.slice(0, 10), [], `gcc diagnostics identical for all files (${diagDiffering.length} differ)`)
  })
}
