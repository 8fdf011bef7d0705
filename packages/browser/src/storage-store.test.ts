import { createEngine, isRefreshError, ReauthOptionsError, type TokenSet } from '@reauth/core'
import { describe, expect, it, vi } from 'vitest'
import { createFakeLocks } from '../test/fake-locks.js'
import { createStampMarks } from './stamp.js'
import { createStorageStore } from './storage-store.js'

const set = (n: number): TokenSet => ({
  accessToken: `secret-at-${n}`,
  tokenType: 'Bearer',
  refreshToken: `secret-rt-${n}`,
})

function memoryStorage() {
  const backing = new Map<string, string>()
  return {
    backing,
    storage: {
      getItem: (k: string) => backing.get(k) ?? null,
      setItem: (k: string, v: string) => void backing.set(k, v),
      removeItem: (k: string) => void backing.delete(k),
    } as Storage,
  }
}

/** What the browser fires in the other tabs when one writes localStorage. */
function storageEvent(storageArea: Storage, key: string | null, newValue: string | null): Event {
  return Object.assign(new Event('storage'), { storageArea, key, newValue })
}

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
    const seen: Array<TokenSet | undefined> = []
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
    const header = engine.recover('Bearer secret-at-1')
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
