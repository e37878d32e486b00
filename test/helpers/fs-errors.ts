// The errno of a failing filesystem call, for tables of expected errors.

/** errno code of a failing call ("ENOENT"), the error's text if it has none, or undefined if it succeeded. */
export function errnoCode(fn: () => unknown): string | undefined {
  try {
    fn()
    return undefined
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? String(e)
  }
}
