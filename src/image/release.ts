// Kernel release strings, checked in one place: pack records one in the image, the daemon compares it
// with `uname -r`, and locate joins it into /lib/modules/<release>/ — so it must be a release and
// nothing else (never "..", never a path).
import { UsageError } from '../errors'
import { RELEASE } from './format'

/** `release`, or a UsageError saying what a release looks like. */
export function checkRelease(release: string): string {
  if (RELEASE.test(release)) return release
  throw new UsageError(
    `Cannot use release ${JSON.stringify(release.slice(0, 80))}: a kernel release starts with a digit and holds only letters, digits and . _ + ~ - (at most 64), as uname -r prints it; pass --release the kernel's own`,
  )
}
