// The manual page as packaging/man.mjs renders it (the one renderer: npm run build, npm's prepare,
// packaging/build.sh), read through man(1): no HTML entities, no groff warnings or unknown macros, and
// every SEE ALSO reference is a page man finds or a file the package installs. Fast: no package build;
// test/packaging/deb.test.ts checks the same on the built .deb.
import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { ROOT } from '../helpers/cli'
import { checkManPage, manFinds } from '../helpers/man-page'
import { tmpDir } from '../helpers/tmp'

const RENDER = path.join(ROOT, 'packaging', 'man.mjs')

function render(src: string, out: string): ReturnType<typeof spawnSync> {
  return spawnSync(process.execPath, [RENDER, src, out], {
    encoding: 'utf8',
    env: { ...process.env, SOURCE_DATE_EPOCH: '1700000000' },
  })
}

t.test('the page renders clean and its SEE ALSO leads somewhere', async (t) => {
  const out = path.join(tmpDir(t), 'kheadersfs.1')
  const r = render(path.join(ROOT, 'docs', 'kheadersfs.1.md'), out)
  t.equal(r.status, 0, `packaging/man.mjs renders the page: ${String(r.stderr)}`)
  const page = checkManPage(out)
  t.same(page.entities, [], 'no HTML entities')
  t.equal(page.warnings, '', 'man --warnings: nothing (no unknown macro, no groff warning)')
  t.match(page.text, /systemctl\s+enable\s+--now\s+"kheadersfs@\$\(systemd-escape\s+--path\s+\/proc-ext\)\.service"/)
  t.match(page.text, /journalctl\s+-u\s+'kheadersfs@proc\\x2dext'/)
  t.same(page.seeAlso.sourceFiles, [], 'SEE ALSO names no file of the source tree (docs/...)')
  t.same(page.text.match(/\bdocs\/[\w.-]+/g) ?? [], [], 'nor does the rest of the page')
  t.same(
    page.seeAlso.pages.filter((p) => !manFinds(p)),
    [],
    'every SEE ALSO page is one man finds',
  )
  // The documents SEE ALSO names: what packaging/build.sh installs into /usr/share/doc/kheadersfs/.
  const build = readFileSync(path.join(ROOT, 'packaging', 'build.sh'), 'utf8')
  const loop =
    /for d in ([\w -]+); do gzip -9n <"\$SRC\/docs\/\$d\.md" >"\$R\/usr\/share\/doc\/kheadersfs\/\$d\.md\.gz"/.exec(
      build,
    )
  t.ok(loop, 'build.sh installs documents into /usr/share/doc/kheadersfs/')
  const installed = loop![1].split(' ').map((d) => `/usr/share/doc/kheadersfs/${d}.md.gz`)
  t.ok(page.seeAlso.paths.length > 0, 'SEE ALSO names documents')
  t.same(
    page.seeAlso.paths.filter((p) => !installed.includes(p)),
    [],
    'every SEE ALSO path is one build.sh installs',
  )
  for (const d of loop![1].split(' ')) t.match(build, new RegExp(`git archive .* docs/${d}\\.md `), `${d}.md: archived`)
})

t.test('the render refuses an entity it would leave in the page', async (t) => {
  const dir = tmpDir(t)
  mkdirSync(path.join(dir, 'docs'))
  writeFileSync(path.join(dir, 'package.json'), '{"version": "1.0.0"}')
  writeFileSync(
    path.join(dir, 'docs', 'x.1.md'),
    '# x(1)\n\n## NAME\n\nx - y\n\n## DESCRIPTION\n\nsay &quot;hi&quot;\n',
  )
  const r = render(path.join(dir, 'docs', 'x.1.md'), path.join(dir, 'x.1'))
  t.not(r.status, 0)
  t.match(String(r.stderr), /holds the HTML entity &quot;/)
})

t.test("the check sees what marked-man alone leaves (the page before issue 21's renderer)", async (t) => {
  const out = path.join(tmpDir(t), 'old.1')
  const r = spawnSync(
    path.join(ROOT, 'node_modules', '.bin', 'marked-man'),
    [path.join(ROOT, 'docs', 'kheadersfs.1.md')],
    {
      encoding: 'utf8',
    },
  )
  writeFileSync(out, r.stdout)
  t.ok(checkManPage(out).entities.length > 0, 'entities found')
})
