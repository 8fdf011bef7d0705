import { createMemoryStore, isSessionEnd, type TokenStore } from '@reauth/core'

/**
 * A memory store that forgets `expiresAt` (and `issuedAt`), of the set and of each per-resource
 * token (RFC 8707 `resources`), as with a server that sends no `expires_in`: the engine cannot
 * refresh ahead and meets real 401s. Used by the demo's second phase, the e2e suite and the
 * interop suite.
 */
export function storeWithoutExpiry(): TokenStore {
  const inner = createMemoryStore()
  return {
    get: inner.get,
    clear: inner.clear,
    set: (value) => {
      if (isSessionEnd(value)) return inner.set(value)
      const { expiresAt: _expiresAt, issuedAt: _issuedAt, resources, ...rest } = value
      if (resources === undefined) return inner.set(rest)
      const withoutExpiry = Object.fromEntries(
        Object.entries(resources).map(([indicator, token]) => {
          const { expiresAt: _e, issuedAt: _i, ...kept } = token
          return [indicator, kept]
        }),
      )
      return inner.set({ ...rest, resources: withoutExpiry })
    },
  }
}
