import {
  createEngine,
  isRefreshError,
  OAuthError,
  ReauthOptionsError,
  SessionExpiredError,
  type StoredSession,
  type TokenSet,
} from '@reauth/core'
import { describe, expect, it, vi } from 'vitest'
import { steps } from '../../../test/support/steps.js'
import { memoryStorage, storageEvent } from '../../../test/support/storage.js'
import { createFakeLocks } from '../test/fake-locks.js'
import { createStampMarks } from './stamp.js'
import { createStorageStore } from './storage-store.js'
import { createWebLock } from './web-lock.js'

const set = (n: number): TokenSet => ({
  accessToken: `secret-at-${n}`,
  tokenType: 'Bearer',
  refreshToken: `secret-rt-${n}`,
})

describe('createStorageStore', () => {
  it('keeps the set as JSON under its key; clear removes it', async () => {
    const { storage, backing } = memoryStorage()
    const store = createStorageStore(storage, {
      key: 'k',
      events: new EventTarget(),
      locks: createFakeLocks(),
    })
    expect(store.get()).toBeUndefined()
    await store.set(set(1))
    expect(JSON.parse(backing.get('k') ?? '').tokens).toEqual(set(1))
    expect(store.get()).toEqual(set(1))
    await store.clear()
    expect(store.get()).toBeUndefined()
    expect(backing.has('k')).toBe(false)
  })

  it('keeps per-resource tokens (RFC 8707) with the set', async () => {
    const { storage } = memoryStorage()
    const store = createStorageStore(storage, {
      key: 'k',
      events: new EventTarget(),
      locks: createFakeLocks(),
    })
    const withResources: TokenSet = {
      ...set(3),
      resources: { 'urn:orders': { accessToken: 'at-orders', tokenType: 'Bearer' } },
    }
    await store.set(withResources)
    expect(store.get()).toEqual(withResources)
  })

  it('reads a bare token set written by other code', () => {
    const { storage, backing } = memoryStorage()
    backing.set('reauth.tokens', JSON.stringify(set(2)))
    expect(createStorageStore(storage, { events: new EventTarget() }).get()).toEqual(set(2))
  })

  it('an invalid stored value reads as no tokens, logged once and without its content', () => {
    const { storage, backing } = memoryStorage()
    backing.set('reauth.tokens', '{"accessToken":"secret-zzz","tokenType":"MAC"}')
    const logger = { warn: vi.fn() }
    const store = createStorageStore(storage, { events: new EventTarget(), logger })
    expect(store.get()).toBeUndefined()
    expect(store.get()).toBeUndefined()
    expect(logger.warn).toHaveBeenCalledTimes(1)
    expect(String(logger.warn.mock.calls[0]?.[0])).toMatch(/Ignored an invalid token set/)
    expect(JSON.stringify(logger.warn.mock.calls)).not.toContain('secret')
  })

  it('another tab’s write arrives through the storage event; other keys and areas are ignored', () => {
    const { storage } = memoryStorage()
    const other = memoryStorage().storage
    const events = new EventTarget()
    const store = createStorageStore(storage, { events })
    const seen: Array<StoredSession | undefined> = []
    const off = store.subscribe((tokens) => seen.push(tokens))
    const value = JSON.stringify({ tokens: set(3), stamp: { time: 1, writer: 'b' } })
    events.dispatchEvent(storageEvent(other, 'reauth.tokens', value))
    events.dispatchEvent(storageEvent(storage, 'unrelated', value))
    events.dispatchEvent(storageEvent(storage, 'reauth.tokens', value))
    events.dispatchEvent(storageEvent(storage, null, null))
    expect(seen).toEqual([set(3), undefined])
    off()
    events.dispatchEvent(storageEvent(storage, 'reauth.tokens', value))
    expect(seen).toHaveLength(2)
    store.close()
  })

  it('an engine waiting for the lock adopts another tab’s write at once, with no grant', async () => {
    const { storage, backing } = memoryStorage()
    const events = new EventTarget()
    const locks = createFakeLocks()
    const store = createStorageStore(storage, { events, locks })
    await store.set(set(1))
    const refresh = vi.fn()
    const engine = createEngine({
      refresh,
      store,
      lock: { run: (_key, fn) => locks.request('elsewhere', {}, fn) },
    })
    const release = await locks.hold('elsewhere')
    const header = steps(engine).recover('Bearer secret-at-1')
    await vi.waitFor(() => expect(locks.waiting('elsewhere')).toBe(1))
    // Another tab refreshed: localStorage changes, and this tab hears of it.
    const value = JSON.stringify({ tokens: set(2), stamp: { time: Date.now() + 1, writer: 'b' } })
    backing.set('reauth.tokens', value)
    events.dispatchEvent(storageEvent(storage, 'reauth.tokens', value))
    await expect(header).resolves.toBe('Bearer secret-at-2')
    release()
    await vi.waitFor(() => expect(engine.stats().adopted).toBe(1))
    expect(refresh).not.toHaveBeenCalled()
    store.close()
  })

  it('catchUp waits for a newer write another tab published, until its storage event', async () => {
    const { storage, backing } = memoryStorage()
    const events = new EventTarget()
    const locks = createFakeLocks()
    const store = createStorageStore(storage, { events, locks })
    await store.set(set(1))
    const stamp = { time: Date.now() + 60_000, writer: 'other' }
    const marks = createStampMarks(locks, 'reauth-storage:reauth.tokens')
    await marks.publish(stamp)
    let done = false
    const waiting = store.catchUp().then(() => {
      done = true
    })
    await locks.query()
    expect(done).toBe(false)
    const value = JSON.stringify({ tokens: set(2), stamp })
    backing.set('reauth.tokens', value)
    events.dispatchEvent(storageEvent(storage, 'reauth.tokens', value))
    await waiting
    expect(store.get()).toEqual(set(2))
    marks.close()
    store.close()
  })

  it('a storage that throws fails the refresh with a retryable RefreshError; tokens kept', async () => {
    const { storage, backing } = memoryStorage()
    const store = createStorageStore(storage, { events: new EventTarget() })
    await store.set(set(1))
    const before = backing.get('reauth.tokens')
    storage.setItem = () => {
      throw new Error('QuotaExceededError')
    }
    const engine = createEngine({ refresh: async () => set(2), store })
    const error = await engine.refresh().catch((e: unknown) => e)
    expect(isRefreshError(error) && error.retryable).toBe(true)
    expect(backing.get('reauth.tokens')).toBe(before)
  })

  it('validates its arguments', () => {
    expect(() => createStorageStore({} as Storage)).toThrow('"storage"')
    const { storage } = memoryStorage()
    expect(() => createStorageStore(storage, { key: '' })).toThrow('"key"')
    expect(() => createStorageStore(storage, { events: {} as never })).toThrow('"events"')
    expect(() => createStorageStore(storage, { catchUpTimeout: -1 })).toThrow(ReauthOptionsError)
  })
})

/**
 * Two tabs on one origin's localStorage: each has its own `Storage` object over the same data,
 * and a write in one fires the `storage` event in the other (as browsers do).
 */
function twoTabs() {
  const backing = new Map<string, string>()
  const tabs = [0, 1].map(() => ({
    events: new EventTarget(),
    storage: undefined as unknown as Storage,
  }))
  for (const [i, tab] of tabs.entries()) {
    const other = () => tabs[1 - i]!
    tab.storage = {
      getItem: (k: string) => backing.get(k) ?? null,
      setItem(k: string, v: string) {
        backing.set(k, v)
        other().events.dispatchEvent(storageEvent(other().storage, k, v))
      },
      removeItem(k: string) {
        backing.delete(k)
        other().events.dispatchEvent(storageEvent(other().storage, k, null))
      },
    } as Storage
  }
  return { backing, tabs }
}

const end: StoredSession = { ended: { error: 'invalid_grant', status: 400, at: 1_700_000_000_000 } }

// Issue 12 §3: every tab's engine learns that the session ended.
describe('the end of a session in localStorage', () => {
  it('is kept (no tokens) and reaches the other tab; clear removes it', async () => {
    const { backing, tabs } = twoTabs()
    const locks = createFakeLocks()
    const a = createStorageStore(tabs[0]!.storage, { events: tabs[0]!.events, locks })
    const b = createStorageStore(tabs[1]!.storage, { events: tabs[1]!.events, locks })
    await a.set(set(1))
    const seen: Array<StoredSession | undefined> = []
    b.subscribe((value) => seen.push(value))
    await a.set(end)
    expect(seen).toEqual([end])
    expect(b.get()).toEqual(end)
    expect(backing.get('reauth.tokens')).not.toContain('secret')
    await a.clear()
    expect(b.get()).toBeUndefined()
    a.close()
    b.close()
  })

  it('two engines in two tabs: B fires sessionExpired once and fails fast until setTokens', async () => {
    const { tabs } = twoTabs()
    const locks = createFakeLocks()
    const refresh = vi.fn(async () => {
      throw new OAuthError({ error: 'invalid_grant', status: 400 })
    })
    const [a, b] = tabs.map((tab) => {
      const store = createStorageStore(tab.storage, { events: tab.events, locks })
      const engine = createEngine({ refresh, store, lock: createWebLock({ locks, store }) })
      return { store, engine }
    })
    await a!.engine.setTokens(set(1))
    const expired = vi.fn()
    b!.engine.on('sessionExpired', expired)
    await expect(a!.engine.refresh()).rejects.toBeInstanceOf(SessionExpiredError)
    expect(expired).toHaveBeenCalledTimes(1)
    await expect(b!.engine.getToken()).rejects.toBeInstanceOf(SessionExpiredError)
    await expect(b!.engine.refresh()).rejects.toBeInstanceOf(SessionExpiredError)
    expect(expired).toHaveBeenCalledTimes(1)
    expect(refresh).toHaveBeenCalledTimes(1)
    await b!.engine.setTokens(set(5))
    await expect(a!.engine.getToken()).resolves.toEqual(set(5))
    for (const tab of [a!, b!]) {
      tab.engine.dispose()
      tab.store.close()
    }
  })
})

// Issue 18 item 7, for this store: a far-future stamp (any script of the origin can write
// localStorage and hold a mark) made every later catch-up wait for a write that never comes.
it('a far-future stamp in storage or in a mark does not make the lock holder wait', async () => {
  const { tabs, backing } = twoTabs()
  const locks = createFakeLocks()
  const store = createStorageStore(tabs[0]!.storage, {
    events: tabs[0]!.events,
    locks,
    catchUpTimeout: 200,
  })
  const forged = { time: 1e300, writer: '\uffff' }
  backing.set('reauth.tokens', JSON.stringify({ tokens: set(1), stamp: forged }))
  const marks = createStampMarks(locks, 'reauth-storage:reauth.tokens')
  await marks.publish(forged)
  await store.set(set(2))
  await expect(store.catchUp()).resolves.toBeUndefined()
  expect(store.get()).toEqual(set(2))
  marks.close()
  store.close()
})
