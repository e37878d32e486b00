// kheadersfs verify IMAGE: prove an image is whole and self-consistent; exit 0 only if every check holds.
import { parseCommand } from '../args'
import type { Command, Context } from '../context'
import { ImageFormatError, UsageError } from '../errors'
import { readImage, type Check } from '../image/read'
import { verifyImage } from '../image/verify'

export const verify: Command = {
  usage: `Usage: kheadersfs verify [--json] IMAGE

Check every part of an image: the container, each sha256, a full decode of kheaders.tar.xz, its tar
listing against the manifest (names, types, sizes, modes, links, offsets) and config.gz.
Exits 0 only if all hold; otherwise names what is wrong and exits 4 (3: no such file).
  --json   print the checks as JSON ({filename, verified, checks: [{name, ok, detail}]}), also when
           the file is not a readable image: checks then end with the one that failed`,

  async run(args, ctx) {
    const { values, positionals } = parseCommand('verify', args, { json: { type: 'boolean' } })
    if (positionals.length !== 1)
      throw new UsageError('kheadersfs verify: give exactly one IMAGE; see "kheadersfs verify --help"')
    const file = positionals[0]
    const checks: Check[] = []
    const print = (): void => report(ctx, file, checks, values.json === true)
    let image
    try {
      image = readImage(file, { onCheck: (c) => checks.push(c) })
    } catch (e) {
      // The report so far, ending with the check that failed; the error is the one line on stderr.
      if (!checks.some((c) => !c.ok)) checks.push({ name: 'file', ok: false, detail: (e as Error).message })
      print()
      throw e
    }
    checks.push(...(await verifyImage(image)))
    print()
    const bad = checks.find((c) => !c.ok)
    if (bad) throw new ImageFormatError(`Cannot use image ${file}: ${bad.detail}; repack it with "kheadersfs pack"`)
    if (!values.json) ctx.stdout.write(`${file}: verified\n`)
    return 0
  },
}

function report(ctx: Context, file: string, checks: Check[], json: boolean): void {
  const verified = checks.every((c) => c.ok)
  if (json) ctx.stdout.write(JSON.stringify({ filename: file, verified, checks }, null, 2) + '\n')
  else for (const c of checks) ctx.stdout.write(`${c.ok ? 'ok  ' : 'FAIL'} ${c.name.padEnd(9)} ${c.detail}\n`)
}
