import type { RefreshLock } from './types.js'

/**
 * The default lock: mutual exclusion inside one JavaScript realm, per key. Engines that
 * share a store in one process should share one lock too.
 *
 * @example
 * const lock = createLocalLock()
 * const a = createEngine({ refresh, store, lock })
 * const b = createEngine({ refresh, store, lock })
 */
export function createLocalLock(): RefreshLock {
  const tails = new Map<string, Promise<unknown>>()
  return {
    run(key, fn) {
      const previous = tails.get(key) ?? Promise.resolve()
      const result = previous.then(fn, fn)
      const tail = result.then(
        () => undefined,
        () => undefined,
      )
      tails.set(key, tail)
      void tail.then(() => {
        if (tails.get(key) === tail) tails.delete(key)
      })
      return result
    },
  }
}
