import { describe, expect, it, vi } from 'vitest'
import { createMemoryStore } from './memory-store.js'
import type { StoredSession, TokenSet } from './types.js'

const a: TokenSet = { accessToken: 'access-a', tokenType: 'Bearer', refreshToken: 'refresh-a' }
const b: TokenSet = { accessToken: 'access-b', tokenType: 'Bearer' }

describe('createMemoryStore', () => {
  it('starts empty or with the initial set', () => {
    expect(createMemoryStore().get()).toBeUndefined()
    expect(createMemoryStore(a).get()).toBe(a)
  })

  it('sets and clears', () => {
    const store = createMemoryStore()
    store.set(a)
    expect(store.get()).toBe(a)
    store.set(b)
    expect(store.get()).toBe(b)
    store.clear()
    expect(store.get()).toBeUndefined()
  })

  it('notifies subscribers of every write after the value is stored, until unsubscribed', () => {
    const store = createMemoryStore()
    const seen: Array<StoredSession | undefined> = []
    const listener = vi.fn((tokens: StoredSession | undefined) => {
      seen.push(tokens)
      // The store already holds the new value when listeners run.
      expect(store.get()).toBe(tokens)
    })
    const unsubscribe = store.subscribe!(listener)
    store.set(a)
    store.clear()
    unsubscribe()
    store.set(b)
    expect(seen).toEqual([a, undefined])
    expect(listener).toHaveBeenCalledTimes(2)
  })
})
