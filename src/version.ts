// The tool's own name and version, from package.json (one source of truth).
import { readFileSync } from 'node:fs'
import path from 'node:path'

let cached: string | undefined

export function version(): string {
  cached ??= (JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string })
    .version
  return cached
}

export function generator(): string {
  return `kheadersfs ${version()}`
}

/** The CLI entry point, for starting the daemon with the same code that is running now. */
export const CLI_PATH = path.join(__dirname, 'cli.js')
