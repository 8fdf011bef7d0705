import type { StoredSession, TokenSet, TokenStore } from './types.js'

/**
 * The default store: tokens in memory, gone on reload. Engines in one process may share
 * one memory store; each write notifies the others through `subscribe`.
 *
 * @example
 * const store = createMemoryStore(await signIn())
 * const engine = createEngine({ refresh, store })
 */
export function createMemoryStore(initial?: TokenSet): TokenStore {
  let current: StoredSession | undefined = initial
  const listeners = new Set<(value: StoredSession | undefined) => void>()
  const notify = () => {
    for (const listener of listeners) listener(current)
  }
  return {
    get: () => current,
    set(tokens) {
      current = tokens
      notify()
    },
    clear() {
      current = undefined
      notify()
    },
    subscribe(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
  }
}
