// Comment stripping for C headers with a real lexer (translation phases 1-3 as GCC implements them),
// not the kernel's regex: string/character literals, raw strings and #include header names are
// respected, line splices (backslash-newline, also GCC's backslash-space-newline) are honoured
// everywhere, and SPDX comments are kept.
//
// A removed comment becomes one space plus one backslash-newline per line break it spanned. C splices
// lines before it removes comments, so a comment inside a multi-line #define keeps the directive going
// (bare newlines would end it: "stray '##' in program" in every module build), and the physical line
// count is unchanged, so __LINE__ and diagnostics match the original header. The rare comment whose
// replacement would still change what GCC does or warns about is kept (mustKeepComment).
//
// One pass over the bytes; unchanged runs are copied in bulk into a lazily allocated output buffer.

const NUL = 0x00
const TAB = 0x09
const LF = 0x0a
const VT = 0x0b
const FF = 0x0c
const CR = 0x0d
const SP = 0x20
const DQUOTE = 0x22
const HASH = 0x23
const PERCENT = 0x25
const SQUOTE = 0x27
const LPAREN = 0x28
const STAR = 0x2a
const SLASH = 0x2f
const COLON = 0x3a
const LT = 0x3c
const GT = 0x3e
const BACKSLASH = 0x5c

// Byte classes for the main loop (0: any other byte).
const K_SPACE = 1
const K_IDENT = 2
const K_DIGIT = 3
const K_SLASH = 4
const K_QUOTE = 5
const K_BACKSLASH = 6
const K_NEWLINE = 7
const K_HASH = 8
const K_LT = 9
const K_PERCENT = 10
const K_LPAREN = 11

const CLASS = new Uint8Array(256)
for (let c = 0; c < 256; c++) {
  if ((c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f || c === 0x24 || c >= 0x80) CLASS[c] = K_IDENT
  else if (c >= 0x30 && c <= 0x39) CLASS[c] = K_DIGIT
}
// GCC treats NUL as whitespace (with a warning).
for (const c of [SP, TAB, VT, FF, NUL]) CLASS[c] = K_SPACE
CLASS[SLASH] = K_SLASH
CLASS[DQUOTE] = K_QUOTE
CLASS[SQUOTE] = K_QUOTE
CLASS[BACKSLASH] = K_BACKSLASH
CLASS[LF] = K_NEWLINE
CLASS[CR] = K_NEWLINE // GCC ends a line at CRLF and at a lone CR
CLASS[HASH] = K_HASH
CLASS[LT] = K_LT
CLASS[PERCENT] = K_PERCENT // %: is the digraph for #
CLASS[LPAREN] = K_LPAREN

// Bytes that need no attention in ordinary text once a line has had its first token.
const PLAIN = new Uint8Array(256).fill(1)
for (const c of [SLASH, DQUOTE, SQUOTE, BACKSLASH, LF, CR]) PLAIN[c] = 0

// Characters GCC accepts in a raw string delimiter (basic character set minus space ( ) \ and controls).
const RAW_DELIM = new Uint8Array(256)
for (const ch of 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_{}[]#<>%:;.?*+-/^&|~!=,"\'')
  RAW_DELIM[ch.charCodeAt(0)] = 1

// Where we are in a directive: header names and escape rules depend on it (GCC's angled_headers).
const D_NONE = 0 // ordinary text
const D_HASH = 1 // after a line-initial '#': the next word names the directive
const D_INCLUDE = 2 // #include/#include_next/#import line: '<' starts a header name, '\' escapes nothing
const D_IF = 3 // #if/#elif line: watch for __has_include
const D_HAS = 4 // right after __has_include: '(' or a header name may follow
const D_HAS_PAREN = 5 // after __has_include(: a header name may follow

/** A token other than an identifier, header name or '(' moves the directive state on. */
function afterToken(dir: number): number {
  return dir === D_HASH ? D_NONE : dir === D_HAS || dir === D_HAS_PAREN ? D_IF : dir
}

const SPDX = Buffer.from('SPDX')

/** Length of a line splice at i: backslash, optional horizontal space (a GCC extension), newline. */
function spliceLen(s: Buffer, i: number): number {
  let j = i + 1
  let c = s[j]
  while (isHSpace(c)) c = s[++j]
  if (c === LF) return j + 1 - i
  if (c === CR) return (s[j + 1] === LF ? j + 2 : j + 1) - i
  return 0
}

/** First index at or after i that does not start a line splice. */
function skipSplices(s: Buffer, i: number): number {
  while (s[i] === BACKSLASH) {
    const l = spliceLen(s, i)
    if (l === 0) break
    i += l
  }
  return i
}

/** Length of the newline at i (CRLF counts as one), or 0. */
function newlineLen(s: Buffer, i: number): number {
  const c = s[i]
  return c === LF ? 1 : c === CR ? (s[i + 1] === LF ? 2 : 1) : 0
}

/** End of a block comment whose body starts at i (just after the '*' of the opening), or -1 at EOF. */
function blockCommentEnd(s: Buffer, i: number): number {
  for (let k = s.indexOf(STAR, i); k >= 0; k = s.indexOf(STAR, k + 1)) {
    const j = skipSplices(s, k + 1)
    if (s[j] === SLASH) return j + 1
  }
  return -1
}

/** End of a line comment whose body starts at i: the first newline that is not spliced, or EOF. */
function lineCommentEnd(s: Buffer, i: number): number {
  const n = s.length
  for (let k = i; k < n; k++) {
    const c = s[k]
    if (c === LF || c === CR) return k
    if (c === BACKSLASH) {
      const l = spliceLen(s, k)
      if (l > 0) k += l - 1
    }
  }
  return n
}

/**
 * End of a string or character literal whose body starts at i. Like GCC, an unterminated literal ends
 * before the newline (the rest of the line is one token). In #include-like contexts backslash escapes
 * nothing.
 */
function literalEnd(s: Buffer, i: number, quote: number, escapes: boolean): number {
  const n = s.length
  let k = i
  while (k < n) {
    const c = s[k]
    if (c === quote) return k + 1
    if (c === LF || c === CR) return k
    if (c === BACKSLASH) {
      const l = spliceLen(s, k)
      if (l > 0) {
        k += l
        continue
      }
      if (escapes) {
        k = skipSplices(s, k + 1)
        if (k < n && s[k] !== LF && s[k] !== CR) k++
        continue
      }
    }
    k++
  }
  return n
}

/** End of a header name whose body starts at i, or -1 when no '>' ends it on this logical line. */
function headerNameEnd(s: Buffer, i: number): number {
  const n = s.length
  for (let k = i; k < n; k++) {
    const c = s[k]
    if (c === GT) return k + 1
    if (c === LF || c === CR) return -1
    if (c === BACKSLASH) {
      const l = spliceLen(s, k)
      if (l > 0) k += l - 1
    }
  }
  return -1
}

/**
 * End of a raw string R"delim(...)delim" whose delimiter starts at i, or -1 if it runs to EOF. Splices
 * are not processed inside raw strings, so the closing sequence is matched on the raw bytes. With an
 * invalid delimiter GCC lexes up to the next '"'.
 */
function rawStringEnd(s: Buffer, i: number): number {
  let k = i
  while (k < s.length && k - i < 16 && RAW_DELIM[s[k]] === 1) k++
  if (s[k] === LPAREN) {
    const close = Buffer.concat([Buffer.of(0x29), s.subarray(i, k), Buffer.of(DQUOTE)])
    const e = s.indexOf(close, k + 1)
    return e < 0 ? -1 : e + close.length
  }
  const q = s.indexOf(DQUOTE, k + 1)
  return q < 0 ? -1 : q + 1
}

/** The identifier in s[start, end) with splices removed, or '' if longer than max. */
function word(s: Buffer, start: number, end: number, max: number): string {
  let w = ''
  for (let k = start; k < end; k = skipSplices(s, k + 1)) {
    if (w.length === max) return ''
    w += String.fromCharCode(s[k])
  }
  return w
}

/** End of the identifier or pp-number characters starting at i (splices included). */
function wordEnd(s: Buffer, i: number): number {
  let k = i
  for (;;) {
    const j = skipSplices(s, k)
    const c = CLASS[s[j]]
    if (j >= s.length || (c !== K_IDENT && c !== K_DIGIT)) return k
    k = j + 1
  }
}

function isHSpace(c: number): boolean {
  return c === SP || c === TAB || c === FF || c === VT || c === NUL
}

/** Index of the character before i, stepping back over line splices; -1 at the start. */
function prevChar(s: Buffer, i: number): number {
  let k = i - 1
  while (k >= 0) {
    const c = s[k]
    if (c !== LF && c !== CR) return k
    let j = c === LF && s[k - 1] === CR ? k - 2 : k - 1
    while (j >= 0 && isHSpace(s[j])) j--
    if (j < 0 || s[j] !== BACKSLASH) return k
    k = j - 1
  }
  return -1
}

/** Is the '"' at i the start of a raw string, i.e. preceded by the identifier R, LR, uR, UR or u8R? */
function rawPrefixBefore(s: Buffer, i: number): boolean {
  let k = prevChar(s, i)
  if (k < 0 || s[k] !== 0x52) return false
  let w = 'R'
  for (;;) {
    k = prevChar(s, k)
    if (k < 0 || (CLASS[s[k]] !== K_IDENT && CLASS[s[k]] !== K_DIGIT)) break
    if (w.length === 3) return false
    w = String.fromCharCode(s[k]) + w
  }
  return w === 'R' || w === 'LR' || w === 'uR' || w === 'UR' || w === 'u8R'
}

/** Does the text before i (back to the previous character that is not horizontal space) end in a backslash? */
function afterBackslash(s: Buffer, i: number): boolean {
  let k = i - 1
  while (k >= 0 && isHSpace(s[k])) k--
  return k >= 0 && s[k] === BACKSLASH
}

/** Is the last line break in s[i, end) a CR (not followed by LF)? */
function lastLineBreakIsCR(s: Buffer, i: number, end: number): boolean {
  let k = end - 1
  while (k >= i && s[k] !== LF && s[k] !== CR) k--
  return k >= i && s[k] === CR
}

/** Remove C comments, keeping SPDX comments, every line break and every token the preprocessor sees. */
export function stripComments(src: Buffer): Buffer {
  const lexer = new Lexer(src)
  lexer.run()
  return lexer.out.finish()
}

/**
 * The output: the input copied in runs, with removed comments' replacements between them. Allocated
 * at the first removal, so a file without comments to remove is returned as it is.
 */
class Output {
  private buf: Buffer | undefined
  /** Bytes written to buf. */
  private o = 0
  /** src[copied, …) is still to be copied. */
  private copied = 0

  constructor(private readonly src: Buffer) {}

  /** Copy the input up to `at`, with room for `extra` bytes after it. */
  copyTo(at: number, extra: number): void {
    this.reserve(at - this.copied + extra)
    this.o += this.src.copy(this.buf!, this.o, this.copied, at)
    this.copied = at
  }

  /** Drop the input up to `at` (a removed comment). */
  skipTo(at: number): void {
    this.copied = at
  }

  /** Write a byte into the room copyTo made. */
  byte(b: number): void {
    this.buf![this.o++] = b
  }

  /** Write the input's bytes [from, to) into the room copyTo made. */
  bytes(from: number, to: number): void {
    this.o += this.src.copy(this.buf!, this.o, from, to)
  }

  finish(): Buffer {
    if (this.buf === undefined) return this.src
    this.copyTo(this.src.length, 0)
    return this.buf.subarray(0, this.o)
  }

  private reserve(need: number): void {
    if (this.buf === undefined) this.buf = Buffer.allocUnsafe(Math.max(this.src.length, need) + 64)
    else if (this.o + need > this.buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(2 * this.buf.length, this.o + need))
      this.buf.copy(grown, 0, 0, this.o)
      this.buf = grown
    }
  }
}

/** One pass over the input: each step reads one token (or character) at `i` and moves past it. */
class Lexer {
  readonly out: Output
  private i = 0
  /** Only whitespace and comments so far on this logical line. */
  private bol = true
  private dir = D_NONE
  /** Position of the next "SPDX" at or after the current comment (-1: none; -2: not searched). */
  private spdx = -2
  /** CR line ends are rare: only then are they counted. */
  private readonly anyCR: boolean

  constructor(private readonly s: Buffer) {
    this.out = new Output(s)
    this.anyCR = s.indexOf(CR) >= 0
  }

  run(): void {
    const s = this.s
    const n = s.length
    while (this.i < n) {
      // Fast path: in ordinary text after the first token of a line only comments, literals, splices
      // and line ends matter.
      if (!this.bol && this.dir === D_NONE) {
        let i = this.i
        while (i < n && PLAIN[s[i]] === 1) i++
        this.i = i
        if (i >= n) return
      }
      if (!this.step()) return // an unterminated comment or raw string: the rest stays as it is
    }
  }

  /** Lex what starts at i; false when the rest of the input is to be left alone. */
  private step(): boolean {
    const c = this.s[this.i]
    switch (CLASS[c]) {
      case K_SPACE:
        this.i++
        return true
      case K_NEWLINE:
        this.newline(c)
        return true
      case K_IDENT:
      case K_DIGIT:
        this.word()
        return true
      case K_BACKSLASH:
        this.backslash()
        return true
      case K_SLASH:
        return this.slash()
      case K_QUOTE:
        return this.literal(c)
      case K_LT:
        this.lessThan()
        return true
      case K_HASH:
        this.hash()
        return true
      case K_PERCENT:
        this.percent()
        return true
      case K_LPAREN:
        this.bol = false
        this.dir = this.dir === D_HAS ? D_HAS_PAREN : afterToken(this.dir)
        this.i++
        return true
      default: // other punctuation
        this.punctuator(1)
        return true
    }
  }

  /** A token of `len` bytes other than those below: it ends a line's start and moves the directive on. */
  private punctuator(len: number): void {
    this.bol = false
    this.dir = afterToken(this.dir)
    this.i += len
  }

  private newline(c: number): void {
    this.bol = true
    this.dir = D_NONE
    this.i += c === CR && this.s[this.i + 1] === LF ? 2 : 1
  }

  /** An identifier or number: in a directive, whole words decide what the line is. */
  private word(): void {
    this.bol = false
    if (this.dir === D_NONE) {
      this.i++
      return
    }
    const end = wordEnd(this.s, this.i)
    const w = word(this.s, this.i, end, 18)
    const dir = this.dir
    if (dir === D_HASH)
      this.dir =
        w === 'include' || w === 'include_next' || w === 'import'
          ? D_INCLUDE
          : w === 'if' || w === 'elif'
            ? D_IF
            : D_NONE
    else if (dir === D_IF || dir === D_HAS || dir === D_HAS_PAREN)
      this.dir = w === '__has_include' || w === '__has_include_next' ? D_HAS : D_IF
    else this.dir = D_NONE // #include MACRO: GCC stops treating '<' as a header name once a macro expands
    this.i = end
  }

  private backslash(): void {
    const l = spliceLen(this.s, this.i)
    if (l > 0) this.i += l
    else this.punctuator(1)
  }

  /** '/': a comment (removed, or kept where removing it would change what GCC does), or a token. */
  private slash(): boolean {
    const s = this.s
    const start = this.i
    const j = skipSplices(s, start + 1)
    const d = s[j]
    if (d !== STAR && d !== SLASH) {
      this.punctuator(1)
      return true
    }
    const end = d === STAR ? blockCommentEnd(s, j + 1) : lineCommentEnd(s, j + 1)
    if (end < 0) return false // unterminated comment (a GCC error)
    if (!this.isSpdx(start, end)) this.removeComment(start, end, d === STAR)
    this.i = end
    return true
  }

  /** Does the comment s[start, end) hold "SPDX"? One search serves every comment before the match. */
  private isSpdx(start: number, end: number): boolean {
    if (this.spdx !== -1 && this.spdx < start) this.spdx = this.s.indexOf(SPDX, start)
    return this.spdx >= 0 && this.spdx + SPDX.length <= end
  }

  /** Replace the comment s[start, end) by a space and a backslash before each line break it spanned. */
  private removeComment(start: number, end: number, block: boolean): void {
    const s = this.s
    let lines = 0
    for (let k = s.indexOf(LF, start); k >= 0 && k < end; k = s.indexOf(LF, k + 1)) lines++
    let crs = 0
    if (this.anyCR) for (let k = start; k < end; k++) if (s[k] === CR) crs++
    if (mustKeepComment(s, start, end, block, lines, crs)) return
    // lines + crs is an upper bound of the line breaks (CRLF counts twice).
    this.out.copyTo(start, 1 + 3 * (lines + crs))
    this.out.byte(SP)
    if (crs === 0) {
      for (let k = 0; k < lines; k++) {
        this.out.byte(BACKSLASH)
        this.out.byte(LF)
      }
    } else {
      // Keep each line break as it was (CRLF or lone CR), each preceded by a backslash.
      for (let k = start; k < end;) {
        const nl = newlineLen(s, k)
        if (nl === 0) {
          k++
          continue
        }
        this.out.byte(BACKSLASH)
        this.out.bytes(k, k + nl)
        k += nl
      }
    }
    this.out.skipTo(end)
  }

  /** A string or character literal (a raw string after R, LR, uR, UR, u8R). */
  private literal(quote: number): boolean {
    const s = this.s
    this.bol = false
    const dir = this.dir
    const end =
      quote === DQUOTE && rawPrefixBefore(s, this.i)
        ? rawStringEnd(s, this.i + 1)
        : literalEnd(s, this.i + 1, quote, dir !== D_INCLUDE && dir !== D_HAS && dir !== D_HAS_PAREN)
    this.dir = afterToken(dir)
    if (end < 0) return false // unterminated raw string runs to EOF
    this.i = end
    return true
  }

  /** '<': a header name after #include or __has_include, else a token. */
  private lessThan(): void {
    const dir = this.dir
    if (dir !== D_INCLUDE && dir !== D_HAS && dir !== D_HAS_PAREN) {
      this.punctuator(1)
      return
    }
    this.bol = false
    const end = headerNameEnd(this.s, this.i + 1)
    this.dir = dir === D_INCLUDE ? D_INCLUDE : D_IF
    this.i = end > 0 ? end : this.i + 1
  }

  /** '#' at a line's start begins a directive; '##' and a later '#' are tokens. */
  private hash(): void {
    const s = this.s
    const j = skipSplices(s, this.i + 1)
    if (this.bol && s[j] !== HASH) this.dir = D_HASH
    else this.dir = afterToken(this.dir)
    this.bol = false
    this.i = s[j] === HASH ? j + 1 : this.i + 1
  }

  /** '%:' at a line's start is the digraph for '#' ('%:%:' for '##'). */
  private percent(): void {
    const s = this.s
    const j = skipSplices(s, this.i + 1)
    if (!this.bol || s[j] !== COLON) {
      this.punctuator(1)
      return
    }
    const k = skipSplices(s, j + 1)
    this.dir = s[k] === PERCENT && s[skipSplices(s, k + 1)] === COLON ? D_NONE : D_HASH
    this.bol = false
    this.i = j + 1
  }
}

/** Keep the comment s[start, end) where its replacement would change what GCC does or says. */
function mustKeepComment(s: Buffer, start: number, end: number, block: boolean, lines: number, crs: number): boolean {
  const breaks = lines + crs // 0 exactly when the comment is on one line
  // - "\ /* x */<newline>" would become "\  <newline>", a new splice;
  // - GCC does not warn about "*/\ <newline>" (backslash, space, newline), but would without the comment;
  // - a backslash-newline onto a last line that has no newline draws a warning (and moves the line GCC
  //   reports a directive's errors at): keep a multi-line block comment there;
  // - a lone CR as the comment's last line break would join the LF after the comment into one CRLF.
  return (
    (breaks === 0 && afterBackslash(s, start)) ||
    (s[end] === BACKSLASH && isHSpace(s[end + 1]) && spliceLen(s, end) > 0) ||
    (breaks > 0 && block && s.indexOf(LF, end) < 0 && (crs === 0 || s.indexOf(CR, end) < 0)) ||
    (crs > 0 && s[end] === LF && lastLineBreakIsCR(s, start, end))
  )
}
