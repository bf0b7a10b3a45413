/**
 * --htpasswd: zot reads `user:hash` lines and checks bcrypt hashes (`$2a$`, `$2b$`, `$2y$`) with Go's
 * bcrypt (pkg/api/htpasswd.go of project-zot/zot). kod accepts only those: a plain-text password, an
 * MD5 (`$apr1$`), SHA1 (`{SHA}`) or crypt hash is refused, so that no weak or clear password reaches the
 * registry host. Make one with `htpasswd -nbB user password` (apache2-utils).
 */

/** A bcrypt hash as Go's bcrypt writes and reads it: version, cost 04–31, 22 characters of salt and 31 of hash. */
const BCRYPT = /^\$2[aby]\$(?:0[4-9]|[12]\d|3[01])\$[./A-Za-z\d]{53}$/

export interface HtpasswdCheck {
  users: string[]
  /** One line per refused line: its number and why, never the line itself (it may hold a password). */
  problems: string[]
}

/** Checks an htpasswd file's text: every non-blank line `user:bcrypt-hash`, each user once. */
export function checkHtpasswd(text: string): HtpasswdCheck {
  const users: string[] = []
  const problems: string[] = []
  const lines = text.split('\n')
  lines.forEach((raw, index) => {
    const line = raw.replace(/\r$/, '')
    const at = `line ${index + 1}`
    if (line.trim() === '') return
    const colon = line.indexOf(':')
    if (colon <= 0) {
      problems.push(`${at} is not user:hash`)
      return
    }
    const user = line.slice(0, colon)
    const hash = line.slice(colon + 1)
    if (/\s/.test(user)) problems.push(`${at}: the user name has white space in it`)
    else if (users.includes(user)) problems.push(`${at}: user ${user} is listed twice`)
    else if (!BCRYPT.test(hash)) problems.push(`${at}: the password of ${user} is ${describe(hash)}, not a bcrypt hash`)
    else users.push(user)
  })
  if (users.length === 0 && problems.length === 0) problems.push('it lists no user')
  return {users, problems}
}

/** What a refused hash looks like, without showing it. */
function describe(hash: string): string {
  if (hash.startsWith('$apr1$')) return 'an MD5 hash ($apr1$)'
  if (hash.startsWith('{SHA}')) return 'a SHA-1 hash ({SHA})'
  if (/^\$[156]\$/.test(hash)) return `a crypt hash (${hash.slice(0, 3)}) kod does not accept`
  if (hash.startsWith('$2')) return 'a malformed bcrypt hash'
  return 'plain text (or a hash kod does not know)'
}
