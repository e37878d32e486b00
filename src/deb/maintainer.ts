// Who the image package names as its Maintainer: --deb-maintainer, else the person the environment
// names the way dch(1) reads it (DEBFULLNAME/NAME and DEBEMAIL/EMAIL; DEBEMAIL may be "Name <email>"),
// else the kheadersfs project (package.json's author, src/project.ts).
import { UsageError } from '../errors'
import { project } from '../project'

const PERSON = /^[^<>\n]*[^<>\s][^<>\n]* <[^<>@\s]+@[^<>\s]+>$/

export function maintainer(given: string | undefined, env: NodeJS.ProcessEnv): string {
  if (given !== undefined) {
    if (!PERSON.test(given))
      throw new UsageError(
        `Cannot use --deb-maintainer ${JSON.stringify(given)}: give "Name <email>", e.g. --deb-maintainer "Jane Doe <jane@example.com>"`,
      )
    return given
  }
  const fromEnv = envMaintainer(env)
  if (fromEnv !== undefined) return fromEnv
  const own = project().maintainer
  if (own === undefined || !PERSON.test(own))
    throw new UsageError(
      'kheadersfs pack --deb: no maintainer: pass --deb-maintainer "Name <email>" or set DEBFULLNAME and DEBEMAIL',
    )
  return own
}

function envMaintainer(env: NodeJS.ProcessEnv): string | undefined {
  const debemail = env.DEBEMAIL?.trim()
  const both = debemail === undefined ? null : /^(.*\S)\s*<([^<>]+)>$/.exec(debemail)
  const name = env.DEBFULLNAME?.trim() || both?.[1] || env.NAME?.trim()
  const email = both?.[2] ?? (debemail || env.EMAIL?.trim())
  if (!name || !email) return undefined
  const person = `${name} <${email}>`
  if (!PERSON.test(person))
    throw new UsageError(
      `Cannot use DEBFULLNAME/DEBEMAIL as the maintainer "${person}": set them to a name and an e-mail address, or pass --deb-maintainer "Name <email>"`,
    )
  return person
}
