// The manual page as a user sees it: rendered by man(1), checked for what must never reach a reader
// (HTML entities, groff warnings such as unknown macros) and for SEE ALSO references that lead nowhere.
import { spawnSync } from 'node:child_process'

export interface ManCheck {
  /** The page as `MANWIDTH=80 man -l` prints it. */
  text: string
  /** What `man --warnings` printed on stderr (groff warnings, unknown macros). */
  warnings: string
  /** HTML entities left in the rendered text. */
  entities: string[]
  /** SEE ALSO's man page references (name(section)) and absolute paths. */
  seeAlso: { pages: string[]; paths: string[]; sourceFiles: string[] }
}

export function checkManPage(file: string): ManCheck {
  const r = spawnSync('man', ['--warnings', '-l', file], {
    encoding: 'utf8',
    env: { ...process.env, MANWIDTH: '80', MAN_DISABLE_SECCOMP: '1', PAGER: 'cat', MANPAGER: 'cat', LC_ALL: 'C' },
  })
  if (r.status !== 0) throw new Error(`man -l ${file} failed (${r.status}): ${r.stderr}`)
  const text = r.stdout
  const section = /^SEE ALSO\n([^]*?)(?=^\S|(?![^]))/m.exec(text)?.[1] ?? ''
  const joined = section.replace(/\s+/g, ' ')
  return {
    text,
    warnings: r.stderr,
    entities: [...text.matchAll(/&(#\d+|#x[\da-f]+|[a-z][a-z\d]*);/gi)].map((m) => m[0]),
    seeAlso: {
      pages: [...joined.matchAll(/([\w.-]+)\((\d)\)/g)].map((m) => `${m[1]}(${m[2]})`),
      paths: [...joined.matchAll(/(?<![\w.])(\/[\w./@-]*[\w@])/g)].map((m) => m[1]),
      // Files of the source tree (docs/design.md): no installed system has them there.
      sourceFiles: [...joined.matchAll(/(?<![\w/.-])((?:docs|src|test)\/[\w./-]*\w)/g)].map((m) => m[1]),
    },
  }
}

/** Whether man(1) on this machine finds the page NAME(SECTION) (man -w). */
export function manFinds(ref: string, env: NodeJS.ProcessEnv = process.env): boolean {
  const m = /^(.*)\((\d)\)$/.exec(ref)
  if (!m) return false
  return spawnSync('man', ['-w', m[2], m[1]], { env: { ...env, MAN_DISABLE_SECCOMP: '1' } }).status === 0
}
