// The tool's own name and version, from package.json (one source of truth: src/project.ts).
import path from 'node:path'
import { project } from './project'

export function version(): string {
  return project().version
}

export function generator(): string {
  return `kheadersfs ${version()}`
}

/** The CLI entry point, for starting the daemon with the same code that is running now. */
export const CLI_PATH = path.join(__dirname, 'cli.js')
