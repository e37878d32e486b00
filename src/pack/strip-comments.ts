// Comment stripping for C headers with a real lexer (translation phases 1-3 as GCC implements them),
// not the kernel's regex: string/character literals, raw strings and #include header names are
// respected, line splices (backslash-newline, also GCC's backslash-space-newline) are honoured
// everywhere, and SPDX comments are kept.
//
// A removed comment becomes one space plus one backslash-newline per line break it spanned. C splices
// lines before it removes comments, so a comment inside a multi-line #define keeps the directive going
// (bare newlines would end it: "stray '##' in program" in every module build), and the physical line
// count is unchanged, so __LINE__ and diagnostics match the original header. The rare comment whose
// replacement would still change what GCC does or warns about is kept (see the rules at the removal).
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
  const s = src
  const n = s.length
  let out: Buffer | undefined // allocated at the first removal
  let o = 0 // bytes written to out
  let copied = 0 // s[copied, i) is still to be copied to out
  let spdx = -2 // position of the next "SPDX" at or after the current comment (-1: none; -2: not searched)
  let bol = true // only whitespace and comments so far on this logical line
  let dir = D_NONE
  const anyCR = s.indexOf(CR) >= 0 // CR line ends are rare: only then count them
  let i = 0
  scan: while (i < n) {
    // Fast path: in ordinary text after the first token of a line only comments, literals, splices
    // and line ends matter.
    if (!bol && dir === D_NONE) {
      while (i < n && PLAIN[s[i]] === 1) i++
      if (i >= n) break
    }
    const c = s[i]
    switch (CLASS[c]) {
      case K_SPACE:
        i++
        break
      case K_NEWLINE:
        bol = true
        dir = D_NONE
        i += c === CR && s[i + 1] === LF ? 2 : 1
        break
      case K_IDENT:
      case K_DIGIT: {
        bol = false
        if (dir === D_NONE) {
          i++
          break
        }
        // In a directive: whole words decide what the line is.
        const end = wordEnd(s, i)
        const w = word(s, i, end, 18)
        if (dir === D_HASH)
          dir =
            w === 'include' || w === 'include_next' || w === 'import'
              ? D_INCLUDE
              : w === 'if' || w === 'elif'
                ? D_IF
                : D_NONE
        else if (dir === D_IF || dir === D_HAS || dir === D_HAS_PAREN)
          dir = w === '__has_include' || w === '__has_include_next' ? D_HAS : D_IF
        else dir = D_NONE // #include MACRO: GCC stops treating '<' as a header name once a macro expands
        i = end
        break
      }
      case K_BACKSLASH: {
        const l = spliceLen(s, i)
        if (l > 0) {
          i += l
          break
        }
        bol = false
        dir = afterToken(dir)
        i++
        break
      }
      case K_SLASH: {
        const j = skipSplices(s, i + 1)
        const d = s[j]
        if (d !== STAR && d !== SLASH) {
          bol = false
          dir = afterToken(dir)
          i++
          break
        }
        const end = d === STAR ? blockCommentEnd(s, j + 1) : lineCommentEnd(s, j + 1)
        if (end < 0) break scan // unterminated comment (a GCC error): leave the rest as it is
        if (spdx !== -1 && spdx < i) spdx = s.indexOf(SPDX, i)
        if (spdx >= 0 && spdx + SPDX.length <= end) {
          i = end
          break
        }
        let lines = 0
        for (let k = s.indexOf(LF, i); k >= 0 && k < end; k = s.indexOf(LF, k + 1)) lines++
        let crs = 0
        if (anyCR) for (let k = i; k < end; k++) if (s[k] === CR) crs++
        const breaks = lines + crs // upper bound (CRLF counts twice); 0 exactly when on one line
        // Keep the comment where its replacement would change what GCC does or says:
        // - "\ /* x */<newline>" would become "\  <newline>", a new splice;
        // - GCC does not warn about "*/\ <newline>" (backslash, space, newline), but would without the comment;
        // - a backslash-newline onto a last line that has no newline draws a warning (and moves the
        //   line GCC reports a directive's errors at): keep a multi-line block comment there;
        // - a lone CR as the comment's last line break would join the LF after the comment into one CRLF.
        if (
          (breaks === 0 && afterBackslash(s, i)) ||
          (s[end] === BACKSLASH && isHSpace(s[end + 1]) && spliceLen(s, end) > 0) ||
          (breaks > 0 && d === STAR && s.indexOf(LF, end) < 0 && (crs === 0 || s.indexOf(CR, end) < 0)) ||
          (crs > 0 && s[end] === LF && lastLineBreakIsCR(s, i, end))
        ) {
          i = end
          break
        }
        const need = i - copied + 1 + 3 * breaks
        if (out === undefined) out = Buffer.allocUnsafe(Math.max(n, need) + 64)
        else if (o + need > out.length) {
          const grown = Buffer.allocUnsafe(Math.max(2 * out.length, o + need))
          out.copy(grown, 0, 0, o)
          out = grown
        }
        o += s.copy(out, o, copied, i)
        out[o++] = SP
        if (crs === 0) {
          for (let k = 0; k < lines; k++) {
            out[o++] = BACKSLASH
            out[o++] = LF
          }
        } else {
          // Keep each line break as it was (CRLF or lone CR), each preceded by a backslash.
          for (let k = i; k < end;) {
            const nl = newlineLen(s, k)
            if (nl === 0) {
              k++
              continue
            }
            out[o++] = BACKSLASH
            o += s.copy(out, o, k, k + nl)
            k += nl
          }
        }
        copied = end
        i = end
        break
      }
      case K_QUOTE: {
        bol = false
        let end: number
        if (c === DQUOTE && rawPrefixBefore(s, i)) end = rawStringEnd(s, i + 1)
        else end = literalEnd(s, i + 1, c, dir !== D_INCLUDE && dir !== D_HAS && dir !== D_HAS_PAREN)
        dir = afterToken(dir)
        if (end < 0) break scan // unterminated raw string runs to EOF
        i = end
        break
      }
      case K_LT: {
        bol = false
        if (dir === D_INCLUDE || dir === D_HAS || dir === D_HAS_PAREN) {
          const end = headerNameEnd(s, i + 1)
          dir = dir === D_INCLUDE ? D_INCLUDE : D_IF
          if (end > 0) {
            i = end
            break
          }
        } else dir = afterToken(dir)
        i++
        break
      }
      case K_HASH: {
        const j = skipSplices(s, i + 1)
        if (bol && s[j] !== HASH) dir = D_HASH
        else dir = afterToken(dir)
        bol = false
        i = s[j] === HASH ? j + 1 : i + 1
        break
      }
      case K_PERCENT: {
        const j = skipSplices(s, i + 1)
        if (bol && s[j] === COLON) {
          const k = skipSplices(s, j + 1)
          // %:%: is ##, not a directive
          dir = s[k] === PERCENT && s[skipSplices(s, k + 1)] === COLON ? D_NONE : D_HASH
          bol = false
          i = j + 1
          break
        }
        bol = false
        dir = afterToken(dir)
        i++
        break
      }
      case K_LPAREN:
        bol = false
        dir = dir === D_HAS ? D_HAS_PAREN : afterToken(dir)
        i++
        break
      default: // other punctuation
        bol = false
        if (dir !== D_NONE) dir = afterToken(dir)
        i++
    }
  }
  if (out === undefined) return src
  const rest = n - copied
  if (o + rest > out.length) {
    const grown = Buffer.allocUnsafe(o + rest)
    out.copy(grown, 0, 0, o)
    out = grown
  }
  o += s.copy(out, o, copied, n)
  return out.subarray(0, o)
}
