import { createEngine, isRefreshError, ReauthOptionsError, type TokenSet } from '@reauth/core'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { deferred } from '../../../test/support/deferred.js'
import { steps } from '../../../test/support/steps.js'
import { createFakeLocks } from '../test/fake-locks.js'
import { createBroadcastStore } from './broadcast-store.js'
import { createWebLock } from './web-lock.js'

const initial: TokenSet = { accessToken: 'at-0', tokenType: 'Bearer', refreshToken: 'rt-0' }

afterEach(() => {
  vi.unstubAllGlobals()
  vi.useRealTimers()
})

describe('createWebLock', () => {
  it('runs under navigator.locks with the name <prefix>:<key>, one holder at a time', async () => {
    const locks = createFakeLocks()
    const lock = createWebLock({ locks, prefix: 'app' })
    expect(lock.crossTab).toBe(true)
    const first = deferred<string>()
    const order: string[] = []
    const a = lock.run('reauth', async () => {
      order.push('a starts')
      const value = await first.promise
      order.push('a ends')
      return value
    })
    const b = lock.run('reauth', async () => {
      order.push('b runs')
      return 'b'
    })
    await vi.waitFor(() => expect(order).toEqual(['a starts']))
    expect(locks.held('app:reauth')).toBe(true)
    expect(locks.waiting('app:reauth')).toBe(1)
    first.resolve('a')
    await expect(a).resolves.toBe('a')
    await expect(b).resolves.toBe('b')
    expect(order).toEqual(['a starts', 'a ends', 'b runs'])
    expect(locks.requested).toEqual(['app:reauth', 'app:reauth'])
  })

  it('uses navigator.locks by default', async () => {
    const locks = createFakeLocks()
    vi.stubGlobal('navigator', { locks })
    const lock = createWebLock()
    await lock.run('k', async () => undefined)
    expect(locks.requested).toEqual(['reauth:k'])
  })

  it("settles with fn's rejection and releases the lock", async () => {
    const locks = createFakeLocks()
    const lock = createWebLock({ locks })
    await expect(lock.run('k', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom')
    expect(locks.held('reauth:k')).toBe(false)
    await expect(lock.run('k', async () => 2)).resolves.toBe(2)
  })

  it('gives up waiting after acquireTimeout without running fn; a granted fn is not cut short', async () => {
    vi.useFakeTimers()
    const locks = createFakeLocks()
    const release = await locks.hold('reauth:k')
    const lock = createWebLock({ locks, acquireTimeout: 1_000 })
    const fn = vi.fn(async () => 'never')
    const waiting = lock.run('k', fn)
    const outcome = expect(waiting).rejects.toThrow('Waited 1000 ms for the Web Lock')
    await vi.advanceTimersByTimeAsync(1_000)
    await outcome
    await expect(waiting).rejects.toMatchObject({ name: 'TabSyncError', code: 'LOCK_TIMEOUT' })
    expect(fn).not.toHaveBeenCalled()
    expect(locks.waiting('reauth:k')).toBe(0)
    release()

    const slow = deferred<string>()
    const granted = lock.run('k', () => slow.promise)
    await vi.advanceTimersByTimeAsync(5_000)
    slow.resolve('done')
    await expect(granted).resolves.toBe('done')
  })

  it('validates its options with messages that quote them', () => {
    expect(() => createWebLock({ prefix: '' })).toThrow(ReauthOptionsError)
    expect(() => createWebLock({ prefix: '' })).toThrow('"prefix"')
    expect(() => createWebLock({ acquireTimeout: 0 })).toThrow('"acquireTimeout"')
    expect(() => createWebLock({ acquireTimeout: Number.NaN })).toThrow('"acquireTimeout"')
    expect(() => createWebLock({ locks: {} as never })).toThrow('"locks"')
    expect(() => createWebLock(null as never)).toThrow(ReauthOptionsError)
  })
})

describe('createWebLock without the Web Locks API', () => {
  it('falls back to single flight in this tab and says so once in the log', async () => {
    vi.stubGlobal('navigator', undefined)
    const logger = { debug: vi.fn(), info: vi.fn(), warn: vi.fn(), error: vi.fn() }
    const lock = createWebLock({ logger })
    expect(lock.crossTab).toBe(false)

    const first = deferred()
    const order: string[] = []
    const a = lock.run('k', async () => {
      order.push('a')
      await first.promise
      order.push('a done')
    })
    const b = lock.run('k', async () => {
      order.push('b')
    })
    await vi.waitFor(() => expect(order).toEqual(['a']))
    first.resolve()
    await Promise.all([a, b])
    expect(order).toEqual(['a', 'a done', 'b'])
    await lock.run('k', async () => undefined)

    expect(logger.warn).toHaveBeenCalledTimes(1)
    expect(logger.warn.mock.calls[0]?.[0]).toMatch(
      /^\[reauth\] The Web Locks API is not available: the refresh is single-flight within this tab only/,
    )
    expect(logger.info).not.toHaveBeenCalled()
    expect(logger.error).not.toHaveBeenCalled()
  })

  it('also falls back when navigator has no locks, and an engine on it still makes one grant', async () => {
    vi.stubGlobal('navigator', {})
    const logger = { warn: vi.fn() }
    const lock = createWebLock({ logger })
    expect(lock.crossTab).toBe(false)
    const grant = deferred<TokenSet>()
    const refresh = vi.fn(() => grant.promise)
    const engine = createEngine({ refresh, tokens: initial, lock })
    const waiters = [engine.refresh(), engine.refresh(), steps(engine).recover('Bearer at-0')]
    await vi.waitFor(() => expect(refresh).toHaveBeenCalledTimes(1))
    grant.resolve({ accessToken: 'at-1', tokenType: 'Bearer' })
    await Promise.all(waiters)
    expect(refresh).toHaveBeenCalledTimes(1)
    expect(logger.warn).toHaveBeenCalledTimes(1)
  })
})

describe('one refresh across tabs (engines on one origin’s locks and channel)', () => {
  function tab(locks: ReturnType<typeof createFakeLocks>, channel: string, tokens?: TokenSet) {
    const store = createBroadcastStore({ channel, locks, ...(tokens ? { initial: tokens } : {}) })
    let n = 0
    const refresh = vi.fn(async ({ tokens: current }: { tokens: TokenSet }) => {
      n++
      return {
        accessToken: `${current.accessToken}+${n}`,
        tokenType: 'Bearer',
        refreshToken: `${current.refreshToken}+${n}`,
      }
    })
    const engine = createEngine({ refresh, store, lock: createWebLock({ locks, store }) })
    return { store, engine, refresh }
  }

  it('the tab that waited for the lock adopts the set the holder stored: one grant in all', async () => {
    const locks = createFakeLocks()
    const a = tab(locks, 'adopt-1', initial)
    const b = tab(locks, 'adopt-1')
    await b.store.ready()
    const release = await locks.hold('reauth:reauth')
    // Both tabs saw a 401 for at-0 and wait for the lock, which a third party holds.
    const fromA = steps(a.engine).recover('Bearer at-0')
    const fromB = steps(b.engine).recover('Bearer at-0')
    await vi.waitFor(() => expect(locks.waiting('reauth:reauth')).toBe(2))
    release()
    const [headerA, headerB] = await Promise.all([fromA, fromB])
    expect(headerA).toBe('Bearer at-0+1')
    expect(headerB).toBe('Bearer at-0+1')
    expect(a.refresh.mock.calls.length + b.refresh.mock.calls.length).toBe(1)
    expect(a.engine.stats().grants + b.engine.stats().grants).toBe(1)
    await vi.waitFor(() => expect(b.engine.stats().adopted + a.engine.stats().adopted).toBe(1))
    a.store.close()
    b.store.close()
  })

  it('a waiting tab adopts the broadcast set at once, before it gets the lock', async () => {
    const locks = createFakeLocks()
    const a = tab(locks, 'adopt-2', initial)
    const b = tab(locks, 'adopt-2')
    await b.store.ready()
    const release = await locks.hold('reauth:reauth')
    const fromB = steps(b.engine).recover('Bearer at-0')
    await vi.waitFor(() => expect(locks.waiting('reauth:reauth')).toBe(1))
    // Tab A stores a newer set (it refreshed): B's waiter resolves while the lock is still held.
    await a.store.set({ accessToken: 'at-9', tokenType: 'Bearer', refreshToken: 'rt-9' })
    await expect(fromB).resolves.toBe('Bearer at-9')
    expect(locks.held('reauth:reauth')).toBe(true)
    release()
    // B's queued turn re-reads the store and adopts: still no grant.
    await vi.waitFor(() => expect(b.engine.stats().adopted).toBe(1))
    expect(b.refresh).not.toHaveBeenCalled()
    a.store.close()
    b.store.close()
  })

  it('a failing lock is a retryable RefreshError, tokens kept', async () => {
    const failing = { request: () => Promise.reject(new Error('lock broke')) }
    const store = createBroadcastStore({ channel: 'fail-1', initial })
    const engine = createEngine({
      refresh: vi.fn(),
      store,
      lock: createWebLock({ locks: failing }),
    })
    const error = await engine.refresh().catch((e: unknown) => e)
    expect(isRefreshError(error) && error.retryable).toBe(true)
    expect(store.get()).toEqual(initial)
    store.close()
  })
})
