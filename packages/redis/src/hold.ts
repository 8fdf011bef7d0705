import { AsyncLocalStorage } from 'node:async_hooks'

/**
 * What a store learned while a Redis lock is held: the version of the set it first read in
 * this hold, by store key. A `set` in the same hold writes only on top of that version.
 */
export interface Hold {
  readonly bases: Map<string, number>
}

const holds = new AsyncLocalStorage<Hold>()

/** Run `fn` as the body of a lock hold; stores called from it see the hold. */
export function runInHold<T>(fn: () => Promise<T>): Promise<T> {
  return holds.run({ bases: new Map() }, fn)
}

/** The hold the caller runs in, if any. */
export function currentHold(): Hold | undefined {
  return holds.getStore()
}
