// "Did you mean ...?" for a mistyped command, option, option value or mount option: the one
// candidate that the word abbreviates, else the closest by edit distance, else nothing.

/**
 * Optimal string alignment distance (Damerau-Levenshtein without repeated edits of a substring):
 * insertions, deletions, substitutions and swaps of two adjacent characters each count 1.
 */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)])
  for (let j = 1; j <= b.length; j++) d[0][j] = j
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1)
    }
  }
  return d[a.length][b.length]
}

/**
 * The candidate `word` most likely meant, or undefined when none is close. Case is ignored. A word
 * that begins exactly one candidate ("kern" → "kernel") means it; otherwise the nearest candidate
 * within one edit for words of up to five characters and two for longer ones (so "pak" → "pack",
 * "kernal" → "kernel", but "x" suggests nothing), the first listed on a tie.
 */
export function suggest(word: string, candidates: readonly string[]): string | undefined {
  const w = word.toLowerCase()
  if (w === '') return undefined
  const prefixed = candidates.filter((c) => c.toLowerCase().startsWith(w))
  if (prefixed.length === 1) return prefixed[0]
  const limit = w.length <= 5 ? 1 : 2
  let best: string | undefined
  let bestDistance = limit + 1
  for (const c of candidates) {
    const d = editDistance(w, c.toLowerCase())
    if (d < bestDistance) [best, bestDistance] = [c, d]
  }
  return best
}

/** "did you mean X?" for messages, or "" when nothing is close. */
export function didYouMean(word: string, candidates: readonly string[], quote = (s: string) => s): string {
  const s = suggest(word, candidates)
  return s === undefined ? '' : `did you mean ${quote(s)}?`
}
