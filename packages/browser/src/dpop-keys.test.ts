import {
  dpopThumbprint,
  generateDpopKeyPair,
  isReauthError,
  type StoredSession,
  type TokenSet,
} from '@reauth/core'
import { IDBFactory } from 'fake-indexeddb'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { memoryStorage, storageEvent } from '../../../test/support/storage.js'
import { createFakeLocks } from '../test/fake-locks.js'
import { createBroadcastStore } from './broadcast-store.js'
import { isKeyStoreError, KeyStoreError } from './errors.js'
import { KEY_DATABASE, KEY_OBJECT_STORE } from './idb-keys.js'
import { createStorageStore } from './storage-store.js'

const dpopSet = (n: number, dpopKey: CryptoKeyPair): TokenSet => ({
  accessToken: `secret-at-${n}`,
  tokenType: 'DPoP',
  refreshToken: `secret-rt-${n}`,
  dpopKey,
})

/** Every record of the key database, as [key, value] pairs. */
async function records(factory: IDBFactory): Promise<Array<[IDBValidKey, unknown]>> {
  const db = await new Promise<IDBDatabase>((resolve, reject) => {
    const req = factory.open(KEY_DATABASE, 1)
    req.onupgradeneeded = () => req.result.createObjectStore(KEY_OBJECT_STORE)
    req.onsuccess = () => resolve(req.result)
    req.onerror = () => reject(req.error)
  })
  const objects = db.transaction(KEY_OBJECT_STORE).objectStore(KEY_OBJECT_STORE)
  const [keys, values] = await Promise.all(
    [objects.getAllKeys(), objects.getAll()].map(
      (req) =>
        new Promise<unknown[]>((resolve, reject) => {
          req.onsuccess = () => resolve(req.result as unknown[])
          req.onerror = () => reject(req.error)
        }),
    ),
  )
  db.close()
  return (keys as IDBValidKey[]).map((key, i) => [key, values?.[i]])
}

const opened: Array<{ close(): void }> = []
let channels = 0

afterEach(() => {
  for (const item of opened.splice(0)) item.close()
})

function withKey(value: StoredSession | undefined): CryptoKeyPair {
  const pair = (value as TokenSet | undefined)?.dpopKey
  if (!pair) throw new Error('no dpopKey')
  return pair
}

describe('createStorageStore with a DPoP set', () => {
  it('keeps the pair in IndexedDB and only its thumbprint in the JSON', async () => {
    const factory = new IDBFactory()
    const { storage, backing } = memoryStorage()
    const pair = await generateDpopKeyPair()
    const store = createStorageStore(storage, { indexedDB: factory, locks: createFakeLocks() })
    await store.set(dpopSet(1, pair))
    const jkt = await dpopThumbprint(pair.publicKey)
    const text = backing.get('reauth.tokens') ?? ''
    const json = JSON.parse(text)
    expect(json.tokens).toEqual({
      accessToken: 'secret-at-1',
      tokenType: 'DPoP',
      refreshToken: 'secret-rt-1',
      dpopJkt: jkt,
    })
    expect(text).not.toContain('privateKey')
    // this context: at once, the very pair
    expect(store.get()).toEqual(dpopSet(1, pair))
    expect(withKey(await store.get()).privateKey).toBe(pair.privateKey)
    const stored = await records(factory)
    expect(stored.map(([key]) => key)).toEqual([`storage:reauth.tokens ${jkt}`])
  })

  it('after a reload, get() reads the pair from IndexedDB: same thumbprint, not extractable', async () => {
    const factory = new IDBFactory()
    const { storage } = memoryStorage()
    const pair = await generateDpopKeyPair()
    const before = createStorageStore(storage, { indexedDB: factory, locks: createFakeLocks() })
    await before.set(dpopSet(1, pair))
    before.close()

    const after = createStorageStore(storage, { indexedDB: factory, locks: createFakeLocks() })
    const read = after.get()
    expect(read).toBeInstanceOf(Promise)
    const loaded = withKey(await read)
    expect(await dpopThumbprint(loaded.publicKey)).toBe(await dpopThumbprint(pair.publicKey))
    expect(loaded.privateKey.extractable).toBe(false)
    await expect(crypto.subtle.exportKey('jwk', loaded.privateKey)).rejects.toThrow()
    // cached from then on
    expect(after.get()).not.toBeInstanceOf(Promise)
  })

  it('a refresh with the same pair writes no new record; a new pair replaces the old one', async () => {
    const factory = new IDBFactory()
    const { storage } = memoryStorage()
    const first = await generateDpopKeyPair()
    const store = createStorageStore(storage, { indexedDB: factory, locks: createFakeLocks() })
    await store.set(dpopSet(1, first))
    await store.set(dpopSet(2, first))
    expect(await records(factory)).toHaveLength(1)
    const second = await generateDpopKeyPair()
    await store.set(dpopSet(3, second))
    const stored = await records(factory)
    expect(stored.map(([key]) => key)).toEqual([
      `storage:reauth.tokens ${await dpopThumbprint(second.publicKey)}`,
    ])
  })

  it('clear(), a session end and a Bearer set delete the pair', async () => {
    const factory = new IDBFactory()
    const { storage } = memoryStorage()
    const store = createStorageStore(storage, { indexedDB: factory, locks: createFakeLocks() })
    await store.set(dpopSet(1, await generateDpopKeyPair()))
    await store.clear()
    expect(await records(factory)).toEqual([])

    await store.set(dpopSet(2, await generateDpopKeyPair()))
    await store.set({ ended: { at: Date.now(), error: 'invalid_grant' } })
    expect(await records(factory)).toEqual([])

    await store.set(dpopSet(3, await generateDpopKeyPair()))
    await store.set({ accessToken: 'secret-at-4', tokenType: 'Bearer' })
    expect(await records(factory)).toEqual([])
  })

  it('another tab’s DPoP set reaches subscribers with its pair from IndexedDB', async () => {
    const factory = new IDBFactory()
    const { storage } = memoryStorage()
    const events = new EventTarget()
    const a = createStorageStore(storage, { indexedDB: factory, locks: createFakeLocks(), events })
    const b = createStorageStore(storage, { indexedDB: factory, locks: createFakeLocks(), events })
    opened.push(a, b)
    const pair = await generateDpopKeyPair()
    const seen = new Promise<StoredSession | undefined>((resolve) => b.subscribe(resolve))
    // `a` writes; the browser fires `storage` in the other tabs (here: `b` hears it too)
    await a.set(dpopSet(1, pair))
    events.dispatchEvent(storageEvent(storage, 'reauth.tokens', storage.getItem('reauth.tokens')))
    const tokens = await seen
    expect(tokens).toMatchObject({ accessToken: 'secret-at-1', tokenType: 'DPoP' })
    expect(await dpopThumbprint(withKey(tokens).publicKey)).toBe(
      await dpopThumbprint(pair.publicKey),
    )
  })

  it('a DPoP set whose pair is gone reads as no tokens, said once (never the key)', async () => {
    const factory = new IDBFactory()
    const { storage, backing } = memoryStorage()
    const logger = { warn: vi.fn() }
    const writer = createStorageStore(storage, { indexedDB: factory, locks: createFakeLocks() })
    await writer.set(dpopSet(1, await generateDpopKeyPair()))
    const text = backing.get('reauth.tokens') as string
    await writer.clear()
    backing.set('reauth.tokens', text)
    const reader = createStorageStore(storage, {
      indexedDB: factory,
      locks: createFakeLocks(),
      logger,
    })
    await expect(reader.get()).resolves.toBeUndefined()
    expect(logger.warn).toHaveBeenCalledWith(expect.stringContaining('DPoP key pair'))
  })

  it('a `reauth` database made by someone else gets the object store in its next version', async () => {
    const factory = new IDBFactory()
    await new Promise<void>((resolve, reject) => {
      const req = factory.open(KEY_DATABASE, 3)
      req.onupgradeneeded = () => req.result.createObjectStore('other')
      req.onsuccess = () => {
        req.result.close()
        resolve()
      }
      req.onerror = () => reject(req.error)
    })
    const { storage } = memoryStorage()
    const pair = await generateDpopKeyPair()
    const writer = createStorageStore(storage, { indexedDB: factory, locks: createFakeLocks() })
    await writer.set(dpopSet(1, pair))
    const reader = createStorageStore(storage, { indexedDB: factory, locks: createFakeLocks() })
    expect(await dpopThumbprint(withKey(await reader.get()).publicKey)).toBe(
      await dpopThumbprint(pair.publicKey),
    )
  })

  it('IndexedDB failing: set rejects with a KeyStoreError, nothing is written', async () => {
    const { storage, backing } = memoryStorage()
    const broken = {
      open() {
        throw new DOMException('blocked', 'SecurityError')
      },
    } as unknown as IDBFactory
    const store = createStorageStore(storage, { indexedDB: broken, locks: createFakeLocks() })
    const pair = await generateDpopKeyPair()
    const error = (await Promise.resolve()
      .then(() => store.set(dpopSet(1, pair)))
      .catch((thrown: unknown) => thrown)) as KeyStoreError
    expect(error).toBeInstanceOf(KeyStoreError)
    expect(isKeyStoreError(error)).toBe(true)
    expect(isReauthError(error)).toBe(true)
    expect(error.code).toBe('KEY_STORE_FAILED')
    expect(error.message).not.toMatch(/"d"|privateKey/)
    expect(backing.size).toBe(0)
  })

  it('without IndexedDB the pair stays in memory only, said once', async () => {
    const { storage } = memoryStorage()
    const logger = { warn: vi.fn() }
    const pair = await generateDpopKeyPair()
    const store = createStorageStore(storage, { locks: createFakeLocks(), logger })
    await store.set(dpopSet(1, pair))
    expect(withKey(await store.get()).privateKey).toBe(pair.privateKey)
    await store.set(dpopSet(2, pair))
    expect(logger.warn).toHaveBeenCalledTimes(1)
    expect(logger.warn.mock.calls[0]?.[0]).toMatch(/IndexedDB is not available/)
    // another context (a reload) has no pair
    const other = createStorageStore(storage, { locks: createFakeLocks(), logger })
    await expect(other.get()).resolves.toBeUndefined()
  })
})

describe('createBroadcastStore with a DPoP set', () => {
  function pairOfStores(factory: IDBFactory) {
    const channel = `dpop-${channels++}`
    const a = createBroadcastStore({ channel, indexedDB: factory, locks: createFakeLocks() })
    const b = createBroadcastStore({ channel, indexedDB: factory, locks: createFakeLocks() })
    const raw = new BroadcastChannel(channel)
    opened.push(a, b, raw)
    return { a, b, raw, channel }
  }

  it('the other tab gets the pair from IndexedDB; the message carries only the thumbprint', async () => {
    const factory = new IDBFactory()
    const { a, b, raw } = pairOfStores(factory)
    const messages: unknown[] = []
    raw.onmessage = (event) => messages.push(event.data)
    const pair = await generateDpopKeyPair()
    const seen = new Promise<StoredSession | undefined>((resolve) => b.subscribe(resolve))
    await a.set(dpopSet(1, pair))
    const tokens = await seen
    expect(await dpopThumbprint(withKey(tokens).publicKey)).toBe(
      await dpopThumbprint(pair.publicKey),
    )
    expect(withKey(b.get()).privateKey.extractable).toBe(false)
    await vi.waitFor(() => expect(messages).toHaveLength(1))
    const message = messages[0] as { tokens: Record<string, unknown> }
    expect(message.tokens.dpopKey).toBeUndefined()
    expect(message.tokens.dpopJkt).toBe(await dpopThumbprint(pair.publicKey))
    // JSON-safe: nothing but strings, numbers and the stamp
    expect(JSON.parse(JSON.stringify(message))).toEqual(message)
  })

  it('a message carrying a dpopKey (structured clone could) is not taken', async () => {
    // Node's BroadcastChannel cannot clone a CryptoKey; Chromium's can: a channel that hands
    // the store any data.
    let deliver: (data: unknown) => void = () => {}
    class Channel {
      onmessage: ((event: { data: unknown }) => void) | null = null
      constructor() {
        deliver = (data) => this.onmessage?.({ data })
      }
      postMessage() {}
      close() {}
    }
    const b = createBroadcastStore({
      channel: `dpop-${channels++}`,
      indexedDB: new IDBFactory(),
      locks: createFakeLocks(),
      BroadcastChannel: Channel as unknown as typeof BroadcastChannel,
    })
    opened.push(b)
    const forged = await generateDpopKeyPair()
    const seen = new Promise<StoredSession | undefined>((resolve) => b.subscribe(resolve))
    deliver({
      type: 'set',
      stamp: { time: Date.now(), writer: 'x' },
      tokens: { accessToken: 'at', tokenType: 'DPoP', dpopKey: forged },
    })
    expect((await seen) as TokenSet).toEqual({ accessToken: 'at', tokenType: 'DPoP' })
  })

  it('persist: a reload gets the pair back from IndexedDB (ready waits for it)', async () => {
    const factory = new IDBFactory()
    const { storage, backing } = memoryStorage()
    const channel = `dpop-${channels++}`
    const pair = await generateDpopKeyPair()
    const before = createBroadcastStore({
      channel,
      persist: storage,
      indexedDB: factory,
      locks: createFakeLocks(),
    })
    await before.set(dpopSet(1, pair))
    before.close()
    expect(backing.get('reauth.tokens')).not.toContain('privateKey')
    const after = createBroadcastStore({
      channel,
      persist: storage,
      indexedDB: factory,
      locks: createFakeLocks(),
    })
    opened.push(after)
    const tokens = await after.ready()
    expect(tokens).toMatchObject({ accessToken: 'secret-at-1', tokenType: 'DPoP' })
    expect(await dpopThumbprint(withKey(tokens).publicKey)).toBe(
      await dpopThumbprint(pair.publicKey),
    )
  })

  it('clear() and a session end delete the pair, in every tab', async () => {
    const factory = new IDBFactory()
    const { a, b } = pairOfStores(factory)
    const seen = new Promise<StoredSession | undefined>((resolve) => b.subscribe(resolve))
    await a.set(dpopSet(1, await generateDpopKeyPair()))
    await seen
    expect(await records(factory)).toHaveLength(1)
    const cleared = new Promise<StoredSession | undefined>((resolve) => b.subscribe(resolve))
    await a.clear()
    await expect(cleared).resolves.toBeUndefined()
    expect(await records(factory)).toEqual([])

    await b.set(dpopSet(2, await generateDpopKeyPair()))
    expect(await records(factory)).toHaveLength(1)
    await b.set({ ended: { at: Date.now() } })
    expect(await records(factory)).toEqual([])
  })

  it('initial with a dpopKey is stored before it is shared', async () => {
    const factory = new IDBFactory()
    const channel = `dpop-${channels++}`
    const pair = await generateDpopKeyPair()
    const a = createBroadcastStore({
      channel,
      initial: dpopSet(1, pair),
      indexedDB: factory,
      locks: createFakeLocks(),
    })
    opened.push(a)
    expect(withKey(await a.ready()).privateKey).toBe(pair.privateKey)
    const b = createBroadcastStore({ channel, indexedDB: factory, locks: createFakeLocks() })
    opened.push(b)
    const tokens = await b.ready()
    expect(await dpopThumbprint(withKey(tokens).publicKey)).toBe(
      await dpopThumbprint(pair.publicKey),
    )
  })
})
