// Temp directories removed in teardown, also when the test fails.
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'

interface Teardown {
  teardown(fn: () => unknown): void
}

export function tmpDir(t: Teardown, prefix = 'kheadersfs-test-'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}
