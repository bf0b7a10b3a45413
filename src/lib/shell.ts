const SAFE = /^[\w@%+=:,./-]+$/

/** Quote one word for a POSIX shell: unchanged when safe, single-quoted otherwise. */
export function shellQuote(word: string): string {
  if (word !== '' && SAFE.test(word)) return word
  return `'${word.replaceAll("'", `'"'"'`)}'`
}

/** A command line a user can paste into a POSIX shell. */
export function shellCommand(words: string[]): string {
  return words.map((word) => shellQuote(word)).join(' ')
}
