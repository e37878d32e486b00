// The oldest Node.js kheadersfs runs on: 18.19, what Debian 12 (bookworm) and Ubuntu 24.04 ship as
// nodejs. Tested there (test/board: Debian's nodejs on bookworm) and on 20 (Debian 13, this project's
// development version). Older Node fails in ways that say nothing about the cause, so refuse first.
const MIN_NODE = [18, 19] as const

/** The refusal line for an older Node, or undefined when `version` ("20.19.2") is new enough. */
export function nodeTooOld(version: string): string | undefined {
  const [major, minor] = version.split('.').map(Number)
  if (major > MIN_NODE[0] || (major === MIN_NODE[0] && minor >= MIN_NODE[1])) return undefined
  return `kheadersfs: Node.js ${MIN_NODE.join('.')} or newer is required, this is ${version}; install a newer nodejs (Debian 12 and Ubuntu 24.04 ship one)`
}
