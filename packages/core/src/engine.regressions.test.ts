/** Named regression tests for engine bugs found in review. */
import { describe, expect, it, vi } from 'vitest'
import { createEngine } from './engine.js'
import { isRefreshError } from './errors.js'
import { createMemoryStore } from './memory-store.js'
import type { TokenSet } from './types.js'

function deferred<T>() {
  let resolve!: (value: T) => void
  const promise = new Promise<T>((r) => {
    resolve = r
  })
  return { promise, resolve }
}

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
})
