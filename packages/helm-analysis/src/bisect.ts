/** What an attempt returns when its render failed. */
export const FAILED: unique symbol = Symbol('render failed')

/**
 * Tries `items` all at once; when the attempt fails, splits them in two (the first half the larger) and
 * tries each half the same way, until the culprits are alone and dropped. A chart that refuses one value
 * (a values schema, a `fail` in a template) so costs only that value, not every other one. The results of
 * the attempts that succeeded, in order; none for no items.
 */
export async function bisect<T, R>(items: readonly T[], attempt: (part: T[]) => Promise<R | typeof FAILED>): Promise<R[]> {
  if (items.length === 0) return []
  const result = await attempt([...items])
  if (result !== FAILED) return [result]
  if (items.length === 1) return []
  const middle = Math.ceil(items.length / 2)
  return [...(await bisect(items.slice(0, middle), attempt)), ...(await bisect(items.slice(middle), attempt))]
}
