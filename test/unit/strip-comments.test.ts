// stripComments on the tricky corners of C lexing, each with its exact output, and GCC as the oracle:
// `gcc -E -dD` (tokens, line positions, macro definitions), `gcc -E -dM` and the diagnostics must be
// the same for the original and the stripped text.
//
// Not `gcc -E -fpreprocessed`: that mode does no line splicing and processes no directives, so it
// disagrees with the compiler on `/\<nl>*`, on `// ...\<nl>` and on `#include <a//b.h>`, and sees the
// space + backslash-newline that replaces a multi-line comment as a stray backslash.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { stripComments } from '../../src/pack/strip-comments'
import { tmpDir } from '../helpers/tmp'

const L = (...lines: string[]): string => lines.join('\n') + '\n'
const bytes = (s: string | Buffer): Buffer => (Buffer.isBuffer(s) ? s : Buffer.from(s, 'latin1'))
const lineCount = (b: Buffer): number => {
  let c = 0
  for (let k = b.indexOf(10); k >= 0; k = b.indexOf(10, k + 1)) c++
  return c
}

interface Case {
  name: string
  input: string | Buffer
  output: string | Buffer // identical to input: nothing to strip, the same Buffer must come back
}

const CASES: Case[] = [
  {
    name: 'block and line comments',
    input: L('int a; /* c */ int b; // d', 'int e;'),
    output: L('int a;   int b;  ', 'int e;'),
  },
  {
    name: 'multi-line comment: one backslash-newline per line break',
    input: L('int a; /* x', ' * y', ' */ int b;'),
    output: L('int a;  \\', '\\', ' int b;'),
  },
  {
    name: 'comment markers in string and character literals',
    input: L(`s = "/* no */ // no"; c = '/'; d = '*'; /* yes */ e = "*/";`),
    output: L(`s = "/* no */ // no"; c = '/'; d = '*';   e = "*/";`),
  },
  {
    name: 'escaped quotes and backslashes',
    input: L(String.raw`a = "\"/*"; b = '\''; c = "\\"; /* x */ d = "\\\"/*"; // y`),
    output: L(String.raw`a = "\"/*"; b = '\''; c = "\\";   d = "\\\"/*";  `),
  },
  {
    name: '// inside /* */ and /* inside //',
    input: L('a /* x // y */ b // c /* d', 'e */ f;'),
    output: L('a   b  ', 'e */ f;'),
  },
  { name: '//* and /*/ and **/', input: L('a //* x */ b', 'c /*/ d */ e /** f **/g'), output: L('a  ', 'c   e  g') },
  {
    name: '/* and */ split by a splice',
    input: L('int a; /\\', '* c */ int b;', 'int c; /* d *\\', '/ int e;'),
    output: L('int a;  \\', ' int b;', 'int c;  \\', ' int e;'),
  },
  {
    name: '// comment continued by a splice',
    input: L('int a; // c \\', 'still comment', 'int b;'),
    output: L('int a;  \\', '', 'int b;'),
  },
  {
    name: 'splice with space or tab before the newline (GCC extension)',
    input: L('int a; // c \\  ', 'still comment', 'int b; /* d \\\t', '*/ int c;'),
    output: L('int a;  \\', '', 'int b;  \\', ' int c;'),
  },
  {
    name: 'NUL between backslash and newline still splices',
    input: 'int a; // c \\\0\nstill comment\nint b;\n',
    output: L('int a;  \\', '', 'int b;'),
  },
  {
    name: 'multi-line comment inside a multi-line #define (__compiletime_assert)',
    input: L(
      '# define __compiletime_assert(condition, msg, prefix, suffix)\t\t\\',
      '\tdo {\t\t\t\t\t\t\t\t\\',
      '\t\t/*\t\t\t\t\t\t\t\\',
      '\t\t * __noreturn is needed to give the compiler enough\t\\',
      '\t\t */\t\t\t\t\t\t\t\\',
      '\t\t__noreturn extern void prefix ## suffix(void);\t\t\\',
      '\t\tif (!(condition))\t\t\t\t\t\\',
      '\t\t\tprefix ## suffix();\t\t\t\t\\',
      '\t} while (0)',
      '__compiletime_assert(1, "m", p_, 1);',
    ),
    output: L(
      '# define __compiletime_assert(condition, msg, prefix, suffix)\t\t\\',
      '\tdo {\t\t\t\t\t\t\t\t\\',
      '\t\t \\',
      '\\',
      '\t\t\t\t\t\t\t\\',
      '\t\t__noreturn extern void prefix ## suffix(void);\t\t\\',
      '\t\tif (!(condition))\t\t\t\t\t\\',
      '\t\t\tprefix ## suffix();\t\t\t\t\\',
      '\t} while (0)',
      '__compiletime_assert(1, "m", p_, 1);',
    ),
  },
  {
    name: 'multi-line comment without splices inside a #define continues the directive',
    input: L('#define B 1 /* first', '   second */ + 2', 'int b = B;'),
    output: L('#define B 1  \\', ' + 2', 'int b = B;'),
  },
  {
    name: 'a directive after a multi-line comment only when the comment started the line',
    input: L('/* a', ' b */ #define X 1', 'int x = X; /* c', ' d */ #define Y 2', 'int y = Y;'),
    output: L(' \\', ' #define X 1', 'int x = X;  \\', ' #define Y 2', 'int y = Y;'),
  },
  {
    name: 'SPDX kept, block form',
    input: L('/* SPDX-License-Identifier: GPL-2.0 */', '#define A 1 /* gone */'),
    output: L('/* SPDX-License-Identifier: GPL-2.0 */', '#define A 1  '),
  },
  {
    name: 'SPDX kept, line form',
    input: L('// SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note', '/* gone */ int a;'),
    output: L('// SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note', '  int a;'),
  },
  {
    name: 'SPDX only: nothing to strip',
    input: L('/* SPDX-License-Identifier: MIT */', 'int a;'),
    output: L('/* SPDX-License-Identifier: MIT */', 'int a;'),
  },
  { name: 'line comment at EOF without newline', input: 'int a; // c', output: 'int a;  ' },
  { name: 'block comment at EOF without newline', input: 'int a; /* c */', output: 'int a;  ' },
  {
    name: 'unterminated /* is left as it is',
    input: L('int a; /* b */ int c; /* never', 'ends'),
    output: L('int a;   int c; /* never', 'ends'),
  },
  {
    name: "unterminated ' in #error runs to the end of the line",
    input: L("#error don't /* x */ stop", 'int a; /* y */'),
    output: L("#error don't /* x */ stop", 'int a;  '),
  },
  {
    name: 'unterminated string runs to the end of the line',
    input: L('char *s = "abc /* c */', 'int d; /* e */'),
    output: L('char *s = "abc /* c */', 'int d;  '),
  },
  {
    name: 'header names after #include, #include_next, __has_include; not after #define',
    input: L(
      '#include <linux//x.h> /* c */',
      '#  include_next <a/*b*/c.h>',
      '# /* c */ include <d//e.h>',
      '#include "f//g.h" // h',
      '#define H <i//j.h>',
      '#if __has_include(<k//l.h>)',
      '#endif',
      'int m = 1 <2//3>4;',
    ),
    output: L(
      '#include <linux//x.h>  ',
      '#  include_next <a/*b*/c.h>',
      '#   include <d//e.h>',
      '#include "f//g.h"  ',
      '#define H <i ',
      '#if __has_include(<k//l.h>)',
      '#endif',
      'int m = 1 <2 ',
    ),
  },
  {
    name: 'CRLF line ends are kept as they are',
    input: 'int a; /* x\r\n y */ int b;\r\n// z\r\nint c; // d \\\r\n e\r\n',
    output: 'int a;  \\\r\n int b;\r\n \r\nint c;  \\\r\n\r\n',
  },
  { name: 'a lone CR ends a line, as in GCC', input: 'int a; // x\rint b; /* c */\n', output: 'int a;  \rint b;  \n' },
  {
    name: 'non-UTF-8 bytes',
    input: Buffer.from('int \xff; /*\xfe\x80*/ char *s = "\xc3(/*";\n', 'latin1'),
    output: Buffer.from('int \xff;   char *s = "\xc3(/*";\n', 'latin1'),
  },
  {
    name: 'a comment after a stray backslash at the end of a line is kept (no new splice)',
    input: L('#define Q 1 \\ /* removing this would splice the next line */', 'int z;'),
    output: L('#define Q 1 \\ /* removing this would splice the next line */', 'int z;'),
  },
  {
    name: 'a comment right before backslash-space-newline is kept (GCC warns only without it)',
    input: L('#define R 1 /* c */\\ ', '  + 2 /* gone */'),
    output: L('#define R 1 /* c */\\ ', '  + 2  '),
  },
  {
    name: 'a multi-line block comment on a last line without newline is kept',
    input: 'int a; /* b */ int c; /* d\n */',
    output: 'int a;   int c; /* d\n */',
  },
  {
    name: "a lone CR ending a comment's last line break, then LF, is kept (would become one CRLF)",
    input: 'int a; // x \\\r y\nint b; /* c */\n',
    output: 'int a; // x \\\r y\nint b;  \n',
  },
  {
    name: 'raw strings (GNU C): no comments, no splices inside',
    input: L(
      'const char *r = R"x(/* no */ \\',
      ')x"; /* yes */ const char *u = u8R"(// no)"; int v = 1R"(/* a plain string */)";',
    ),
    output: L(
      'const char *r = R"x(/* no */ \\',
      ')x";   const char *u = u8R"(// no)"; int v = 1R"(/* a plain string */)";',
    ),
  },
  {
    name: '%: digraph directive',
    input: L('%:include <a//b.h> /* c */', '%:%: /* d */'),
    output: L('%:include <a//b.h>  ', '%:%:  '),
  },
  {
    name: 'a comment between tokens separates them',
    input: L('int a/**/b;', 'int c = d/**/+/**/+e;'),
    output: L('int a b;', 'int c = d + +e;'),
  },
  {
    name: 'nothing to strip',
    input: L('#define A "/* not a comment */"', "char c = '/';"),
    output: L('#define A "/* not a comment */"', "char c = '/';"),
  },
]

t.test('exact output and line count of every case', async (t) => {
  for (const c of CASES) {
    const input = bytes(c.input)
    const out = stripComments(input)
    t.same(out.toString('latin1'), bytes(c.output).toString('latin1'), c.name)
    t.equal(lineCount(out), lineCount(input), `${c.name}: line count`)
    if (input.equals(bytes(c.output))) t.equal(out, input, `${c.name}: the same Buffer comes back`)
  }
})

t.test('a large file without comments is returned without copying', async (t) => {
  const big = Buffer.from('#define X "/* x */" \\\n  1\nint a = X;\n'.repeat(10000))
  t.equal(stripComments(big), big)
  t.equal(stripComments(Buffer.alloc(0)).length, 0)
})

const gccAvailable = spawnSync('gcc', ['--version']).status === 0

/** What gcc makes of one header: -E -dD output, -dM macros and diagnostics, normalized for comparison. */
interface GccView {
  tokens: string[]
  macros: string[]
  diagnostics: string[]
}

const normalize = (text: string): string[] => text.split('\n').map((l) => l.replace(/[ \t]+/g, ' ').trim())

function gcc(cwd: string, stubInc: string, args: string[]): { stdout: string; stderr: string } {
  const r = spawnSync('gcc', ['-x', 'c', '-nostdinc', '-I', stubInc, '-fdiagnostics-plain-output', ...args, 'x.h'], {
    cwd,
    encoding: 'latin1',
    maxBuffer: 1 << 28,
  })
  if (r.error !== undefined) throw r.error
  return { stdout: r.stdout, stderr: r.stderr }
}

function view(cwd: string, stubInc: string): GccView {
  const e = gcc(cwd, stubInc, ['-E', '-dD'])
  const body = e.stdout.indexOf('\n# 1 "x.h"\n') // after the predefined macros
  return {
    tokens: normalize(body < 0 ? e.stdout : e.stdout.slice(body + 1)),
    macros: normalize(gcc(cwd, stubInc, ['-E', '-dM']).stdout).sort(),
    diagnostics: e.stderr
      .split('\n')
      .filter((l) => !/^In file included from/.test(l))
      .map((l) => l.replace(/^(x\.h:\d+):\d+:/, '$1:')), // columns move left when a comment goes
  }
}

let seq = 0
/** The first difference gcc sees between two versions of a header, or '' if none. */
function gccDiff(root: string, original: Buffer, stripped: Buffer, ignore?: RegExp): string {
  const dir = path.join(root, String(seq++))
  const [a, b] = [path.join(dir, 'a'), path.join(dir, 'b')]
  const stubInc = path.join(dir, 'stubs', 'inc')
  for (const d of [a, b, stubInc]) mkdirSync(d, { recursive: true })
  writeFileSync(path.join(a, 'x.h'), original)
  writeFileSync(path.join(b, 'x.h'), stripped)
  // Every included header becomes an empty stub, so gcc never stops at a missing file.
  for (const cwd of [a, b]) {
    const deps = gcc(cwd, stubInc, ['-M', '-MG']).stdout
    for (const word of deps.replace(/\\\n/g, ' ').split(/\s+/)) {
      if (word === '' || word.endsWith(':') || word === 'x.h') continue
      const stub = path.resolve(stubInc, word)
      if (existsSync(stub)) continue
      mkdirSync(path.dirname(stub), { recursive: true })
      writeFileSync(stub, '')
    }
  }
  const [va, vb] = [view(a, stubInc), view(b, stubInc)]
  if (ignore !== undefined) for (const v of [va, vb]) v.diagnostics = v.diagnostics.filter((l) => !ignore.test(l))
  for (const key of ['tokens', 'macros', 'diagnostics'] as const) {
    const [x, y] = [va[key], vb[key]]
    const i = x.findIndex((line, j) => line !== y[j])
    if (i >= 0 || x.length !== y.length) {
      const j = i >= 0 ? i : Math.min(x.length, y.length)
      return `${key} line ${j + 1}: ${JSON.stringify(x[j])} vs ${JSON.stringify(y[j])}`
    }
  }
  return ''
}

const skipGcc = gccAvailable ? false : 'gcc is not installed'

t.test('gcc sees the same tokens, lines, macros and diagnostics after stripping', { skip: skipGcc }, async (t) => {
  const root = tmpDir(t, 'kheadersfs-strip-')
  for (const c of CASES) {
    const input = bytes(c.input)
    t.equal(gccDiff(root, input, stripComments(input)), '', c.name)
  }
})

t.test('random snippets of C lexing corners: gcc sees no difference', { skip: skipGcc }, async (t) => {
  const root = tmpDir(t, 'kheadersfs-strip-fuzz-')
  const pieces = [
    '/',
    '*',
    '/*',
    '*/',
    '//',
    '/**/',
    '\\\n',
    '\\ \n',
    '\\\t\n',
    '\\\\\n',
    '*/\\ \n',
    '\\',
    '"',
    "'",
    '"\\""',
    "'\\''",
    '"\\\\"',
    '\n',
    '\n',
    '\r\n',
    '\r',
    ' ',
    '\t',
    '\f',
    '\0',
    'a',
    '1',
    '1e+',
    '.',
    ';',
    '(',
    ')',
    '<',
    '>',
    '#',
    '# ',
    '##',
    '%:',
    '%:%:',
    '$',
    '\xc3\xa9',
    '\xff',
    'R',
    'u8R',
    'R"(',
    ')"',
    '"(',
    "L'",
    'u"',
    '??/',
    'SPDX',
    '#include ',
    '# include_next ',
    '#import ',
    'include',
    '#define X ',
    '#define Y(a) #a\n',
    'Y(',
    '#if ',
    '#error ',
    'int q = __LINE__;',
  ]
  let seed = 20240601
  const random = (k: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    return seed % k
  }
  for (let n = 0; n < 150; n++) {
    let text = ''
    for (let k = 3 + random(25); k > 0; k--) text += pieces[random(pieces.length)]
    const input = Buffer.from(text, 'latin1')
    const out = stripComments(input)
    t.equal(lineCount(out), lineCount(input), `line count: ${JSON.stringify(text)}`)
    // Warnings about raw text that went with a comment (trigraphs) or where GCC attributes the
    // "backslash-newline at end of file" warning (start of the cleaned line) may differ.
    t.equal(gccDiff(root, input, out, /trigraph|backslash-newline at end of file/), '', JSON.stringify(text))
  }
})

t.test('the oracle can fail: broken strippings are caught', { skip: skipGcc }, async (t) => {
  const root = tmpDir(t, 'kheadersfs-strip-neg-')
  const input = (name: string): Buffer => bytes(CASES.find((c) => c.name.startsWith(name))!.input)
  // Bare newlines instead of backslash-newlines end the #define early (the "stray '##'" bug).
  const define = input('multi-line comment without splices inside a #define')
  t.match(
    gccDiff(root, define, Buffer.from(L('#define B 1 ', ' + 2', 'int b = B;'))),
    /^tokens line/,
    'comment replaced by a bare newline in a #define',
  )
  const assert = input('multi-line comment inside a multi-line #define')
  const broken = Buffer.from(
    assert.toString('latin1').replace(/\/\*[^]*?\*\//, (m) => ' ' + m.replace(/[^\n]/g, '')),
    'latin1',
  )
  t.match(gccDiff(root, assert, broken), /^tokens line/, 'spliced comment lines replaced by bare newlines')
  // A lost line break moves every later token up one line.
  const multi = input('multi-line comment: one')
  t.match(
    gccDiff(root, multi, Buffer.from(L('int a;  \\', ' int b;'))),
    /^tokens line/,
    'one backslash-newline too few',
  )
  t.equal(
    gccDiff(root, multi, Buffer.from(L('int a;  ', '', ' int b;'))),
    '',
    'bare newlines outside a directive are equivalent',
  )
  // A comment marker inside a literal is text.
  const literal = input('comment markers in string')
  t.match(
    gccDiff(root, literal, Buffer.from(literal.toString().replace('/* no */', '  '))),
    /^tokens line/,
    'comment removed from a string literal',
  )
  // An unterminated character constant runs to the end of the line: removing "/* x */" changes #error's text.
  const error = input("unterminated ' in #error")
  t.match(
    gccDiff(root, error, Buffer.from(L("#error don't   stop", 'int a;  '))),
    /^diagnostics line/,
    "comment removed after an unterminated '",
  )
  // #include <a//b.h> names a header; taking // for a comment changes the include.
  const include = input('header names')
  t.match(
    gccDiff(root, include, Buffer.from(include.toString().replace('<linux//x.h>', '<linux'))),
    /line/,
    '// removed from a header name',
  )
})

t.test('__LINE__ and diagnostics line numbers are unchanged', { skip: skipGcc }, async (t) => {
  const root = tmpDir(t, 'kheadersfs-strip-line-')
  const src = Buffer.from(
    L(
      '/* one',
      ' * two',
      ' */',
      '#define L __LINE__ /* three',
      'four */',
      'int x = __LINE__; // five \\',
      'six',
      'int y = L;',
      '/* a */ /* b',
      '*/ int z = __LINE__;',
      '#warning here',
    ),
  )
  const stripped = stripComments(src)
  for (const [name, text] of [
    ['original', src],
    ['stripped', stripped],
  ] as const) {
    const dir = path.join(root, name)
    mkdirSync(dir)
    writeFileSync(path.join(dir, 'x.h'), text)
    const r = spawnSync('gcc', ['-x', 'c', '-E', '-P', '-fdiagnostics-plain-output', 'x.h'], {
      cwd: dir,
      encoding: 'utf8',
    })
    t.match(r.stdout, /int x = 6;/, `${name}: __LINE__ after comments`)
    t.match(r.stdout, /int y = 8;/, `${name}: __LINE__ in a macro defined with a multi-line comment`)
    t.match(r.stdout, /int z = 10;/, `${name}: __LINE__ after a comment spanning lines`)
    t.match(r.stderr, /^x\.h:11:\d+: warning: #warning here/m, `${name}: diagnostic line`)
  }
})
