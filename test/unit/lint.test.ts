// The lint and format gate, run by npm test like any other test so that a finding shows in the
// suite's "N passed, N failed" line: typescript-eslint (eslint.config.mjs), prettier (.prettierrc.json)
// and knip (knip.jsonc: unused files, exports and dependencies). `npm run lint` runs the same three;
// `npm run format` fixes what the first two can.
import path from 'node:path'
import t from 'tap'
import { ROOT, run } from '../helpers/cli'

const bin = (name: string): string => path.join(ROOT, 'node_modules', '.bin', name)

interface EslintFile {
  filePath: string
  errorCount: number
  warningCount: number
  messages: Array<{ line: number; ruleId: string | null; message: string }>
}

t.test('eslint: no findings, and it looked at the sources and the tests', async (t) => {
  const r = await run(bin('eslint'), ['--format', 'json', '.'], { cwd: ROOT })
  const files = JSON.parse(r.stdout) as EslintFile[]
  const findings = files.flatMap((f) =>
    f.messages.map((m) => `${path.relative(ROOT, f.filePath)}:${m.line} ${m.ruleId ?? ''} ${m.message}`),
  )
  t.same(findings, [], 'eslint findings (npm run format fixes some; see eslint.config.mjs)')
  t.equal(r.code, 0, `eslint exit code: ${r.stderr.slice(-2000)}`)
  const linted = new Set(files.map((f) => path.relative(ROOT, f.filePath)))
  for (const f of ['src/cli.ts', 'src/serve/errno.ts', 'test/unit/lint.test.ts', 'eslint.config.mjs'])
    t.ok(linted.has(f), `${f} is linted`)
  t.notOk(
    [...linted].some((f) => f.startsWith('dist/') || f.startsWith('node_modules/')),
    'build output is not',
  )
})

t.test('prettier: every source file is formatted', async (t) => {
  const r = await run(bin('prettier'), ['--list-different', '.'], { cwd: ROOT })
  t.equal(r.stdout, '', 'files prettier would change (npm run format rewrites them)')
  t.equal(r.code, 0, `prettier exit code: ${r.stderr.slice(-2000)}`)
  for (const f of ['src/cli.ts', 'test/unit/lint.test.ts', 'package.json']) {
    const info = await run(bin('prettier'), ['--file-info', f], { cwd: ROOT })
    t.match(JSON.parse(info.stdout), { ignored: false, inferredParser: /\w/ }, `${f} is checked`)
  }
})

t.test('knip: no unused files, exports or dependencies', async (t) => {
  const r = await run(bin('knip'), ['--no-progress'], { cwd: ROOT })
  t.equal(r.stdout.trim(), '', 'what knip found unused (remove it, or say in knip.jsonc why it stays)')
  t.equal(r.code, 0, `knip exit code: ${r.stderr.slice(-2000)}`)
})
