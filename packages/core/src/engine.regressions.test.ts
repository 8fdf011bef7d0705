/** Named regression tests for engine bugs found in review. */
import { describe, expect, it, vi } from 'vitest'
import { deferred } from '../../../test/support/deferred.js'
import { steps } from '../../../test/support/steps.js'
import { createEngine } from './engine.js'
import { isRefreshError, isSessionExpiredError, OAuthError } from './errors.js'
import { createMemoryStore } from './memory-store.js'
import type { TokenSet } from './types.js'

const old: TokenSet = {
  accessToken: 'old-access',
  tokenType: 'Bearer',
  refreshToken: 'old-refresh',
}

describe('regressions', () => {
  it('setTokens during a grant: the old grant does not overwrite the new session', async () => {
    const pending = deferred<TokenSet>()
    const engine = createEngine({ tokens: old, refresh: () => pending.promise })
    const refreshing = engine.refresh()
    await vi.waitFor(() => expect(engine.stats().grants).toBe(1))
    const signedIn: TokenSet = {
      accessToken: 'second-session',
      tokenType: 'Bearer',
      refreshToken: 'r2',
    }
    await engine.setTokens(signedIn)
    pending.resolve({ accessToken: 'from-old-grant', tokenType: 'Bearer', refreshToken: 'r1' })
    await refreshing
    expect((await engine.getToken())?.accessToken).toBe('second-session')
  })

  it('a failing lock reaches waiters as a retryable RefreshError, not a raw error', async () => {
    const engine = createEngine({
      tokens: old,
      refresh: vi.fn(),
      lock: { run: () => Promise.reject(new Error('lock service down')) },
    })
    const error = await engine.refresh().catch((e: unknown) => e)
    expect(isRefreshError(error) && error.retryable).toBe(true)
    expect((error as Error).cause).toMatchObject({ message: 'lock service down' })
  })

  it('a failing store write reaches waiters as a retryable RefreshError and keeps the old set', async () => {
    const inner = createMemoryStore(old)
    const engine = createEngine({
      store: {
        ...inner,
        set: () => Promise.reject(new Error('disk full')),
      },
      refresh: async () => ({ accessToken: 'new', tokenType: 'Bearer' }),
    })
    const error = await engine.refresh().catch((e: unknown) => e)
    expect(isRefreshError(error) && error.retryable).toBe(true)
    expect((await engine.getToken())?.accessToken).toBe('old-access')
  })

  it('after a terminal failure, new tokens from another engine on the store end the expired state', async () => {
    const store = createMemoryStore(old)
    let fail = true
    const refresh = async (): Promise<TokenSet> => {
      if (fail) throw new OAuthError({ error: 'invalid_grant', status: 400 })
      return { accessToken: 'fresh', tokenType: 'Bearer', refreshToken: 'r-fresh' }
    }
    const a = createEngine({ store, refresh, origins: ['https://api.test'] })
    const b = createEngine({ store, refresh, origins: ['https://api.test'] })
    await expect(a.refresh()).rejects.toSatisfy(isSessionExpiredError)
    await b.setTokens({ accessToken: 'signed-in', tokenType: 'Bearer', refreshToken: 'r-new' })
    fail = false
    const result = await steps(a).run({
      url: 'https://api.test/x',
      send: async (authorization) => (authorization === 'Bearer fresh' ? 200 : 401),
      response: (status: number) => ({ status, headers: { get: () => null } }),
    })
    expect(result).toBe(200)
  })

  it('setTokens during the re-read that follows invalid_grant is not wiped', async () => {
    let current: TokenSet | undefined = old
    const reads: Array<ReturnType<typeof deferred<void>>> = []
    const store = {
      get: async () => {
        // the first three reads are held by the test; later ones answer at once
        if (reads.length >= 3) return current
        const gate = deferred<void>()
        reads.push(gate)
        const snapshot = current
        await gate.promise
        return snapshot
      },
      set: (tokens: TokenSet) => {
        current = tokens
      },
      clear: () => {
        current = undefined
      },
    }
    const engine = createEngine({
      store,
      refresh: async () => {
        throw new OAuthError({ error: 'invalid_grant', status: 400 })
      },
    })
    let expired = 0
    engine.on('sessionExpired', () => expired++)
    const refreshing = engine.refresh().catch((error: unknown) => error)
    // refresh() reads, the grant reads inside the lock, then the failure re-reads the store
    for (let read = 0; read < 3; read++) {
      await vi.waitFor(() => expect(reads.length).toBe(read + 1))
      if (read === 2) {
        // the user signs in while the engine re-reads after invalid_grant
        current = { accessToken: 'new-session', tokenType: 'Bearer', refreshToken: 'r-new' }
        await engine.setTokens(current)
      }
      reads[read]?.resolve()
    }
    await refreshing
    expect(current?.accessToken).toBe('new-session')
    expect(expired).toBe(0)
  })

  it('a refresh function that returns no issuedAt: short tokens are not refreshed on every call', async () => {
    let n = 0
    const make = (): TokenSet => ({
      accessToken: `a${n++}`,
      tokenType: 'Bearer',
      refreshToken: 'r',
      expiresAt: Date.now() + 5_000,
    })
    const engine = createEngine({ tokens: make(), refresh: async () => make() })
    for (let i = 0; i < 5; i++) await engine.getToken()
    expect(engine.stats().grants).toBe(1)
  })

  it('run(): each waiter gets its own copy of a shared refresh failure', async () => {
    const pending = deferred<TokenSet>()
    const engine = createEngine({
      tokens: old,
      refresh: () => pending.promise,
      origins: ['https://api.test'],
    })
    const request = () =>
      steps(engine)
        .run({
          url: 'https://api.test/x',
          send: async () => 401,
          response: (status: number) => ({ status, headers: { get: () => null } }),
        })
        .catch((error: unknown) => error)
    const first = request()
    const second = request()
    await vi.waitFor(() => expect(engine.stats().joins).toBe(1))
    pending.reject?.(new OAuthError({ error: 'invalid_grant', status: 400 }))
    const [a, b] = await Promise.all([first, second])
    expect(isSessionExpiredError(a) && isSessionExpiredError(b)).toBe(true)
    expect(a).not.toBe(b)
  })

  it('during Retry-After a refresh fails fast without taking the (possibly distributed) lock', async () => {
    let locks = 0
    const engine = createEngine({
      tokens: old,
      refresh: async () => {
        throw Object.assign(new Error('busy'), { status: 429, retryAfter: 30_000 })
      },
      lock: {
        run: (_key, fn) => {
          locks++
          return fn()
        },
      },
    })
    await expect(engine.refresh()).rejects.toSatisfy(isRefreshError)
    expect(locks).toBe(1)
    const error = await engine.refresh().catch((e: unknown) => e)
    expect(isRefreshError(error) && (error.retryAfter ?? 0) > 0).toBe(true)
    expect(locks).toBe(1)
  })
})
