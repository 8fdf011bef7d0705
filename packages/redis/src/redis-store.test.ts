import { isReauthOptionsError, isRefreshError, type TokenSet } from '@reauth/core'
import { createClient } from 'redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type RunningRedis, startRedis } from '../../../test/redis/support/redis-server.js'
import { createRedisLock } from './redis-lock.js'
import { createRedisStore } from './redis-store.js'

let redis: RunningRedis
const clients: Array<ReturnType<typeof createClient>> = []

async function connect() {
  const client = createClient({ url: redis.url })
  client.on('error', () => {})
  await client.connect()
  clients.push(client)
  return client
}

let n = 0
const uniqueKey = () => `test:store:${++n}`

const tokens = (id: string, extra: Partial<TokenSet> = {}): TokenSet => ({
  accessToken: `at-${id}`,
  tokenType: 'Bearer',
  refreshToken: `rt-${id}`,
  expiresAt: 1_900_000_000_000,
  ...extra,
})

function deferred<T>() {
  let resolve!: (value: T) => void
  const promise = new Promise<T>((r) => {
    resolve = r
  })
  return { promise, resolve }
}

beforeAll(async () => {
  redis = await startRedis()
}, 15_000)
afterAll(async () => {
  for (const client of clients) if (client.isOpen) client.destroy()
  await redis?.stop()
})

describe('createRedisStore', () => {
  it('round-trips a set, as one hash with a version, and clears it', async () => {
    const client = await connect()
    const key = uniqueKey()
    const store = createRedisStore(client, { key })
    expect(await store.get()).toBeUndefined()
    await store.set({ ...tokens('1'), scope: 'api' })
    expect(await store.get()).toEqual({ ...tokens('1'), scope: 'api' })
    expect(await client.hGet(key, 'v')).toBe('1')
    await store.set(tokens('2'))
    expect(await client.hGet(key, 'v')).toBe('2')
    await store.clear()
    expect(await store.get()).toBeUndefined()
    // the version survives a clear: it never goes back
    expect(await client.hGet(key, 'v')).toBe('3')
  })

  it('two processes share the set', async () => {
    const key = uniqueKey()
    const a = createRedisStore(await connect(), { key })
    const b = createRedisStore(await connect(), { key })
    await a.set(tokens('shared'))
    expect(await b.get()).toEqual(tokens('shared'))
  })

  it('in a lock hold, a set on top of a stale version writes nothing and throws a retryable RefreshError', async () => {
    const key = uniqueKey()
    const mine = createRedisStore(await connect(), { key })
    const other = createRedisStore(await connect(), { key })
    const lock = createRedisLock(await connect(), { prefix: `${key}:lock:` })
    await other.set(tokens('r1'))
    const readDone = deferred<void>()
    const otherWrote = deferred<void>()
    const held = lock.run('k', async () => {
      await mine.get() // base version 1
      readDone.resolve()
      await otherWrote.promise
      await mine.set(tokens('stale'))
    })
    await readDone.promise
    // another process (whose lease view differs) writes version 2 meanwhile
    await other.set(tokens('r2'))
    otherWrote.resolve()
    const error = await held.then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(isRefreshError(error) && error.retryable).toBe(true)
    expect(String((error as Error).message)).not.toContain('rt-')
    expect(await other.get()).toEqual(tokens('r2'))
  })

  it('in a lock hold, a set on top of the version read writes, and a second set in the same hold too', async () => {
    const key = uniqueKey()
    const store = createRedisStore(await connect(), { key })
    const lock = createRedisLock(await connect(), { prefix: `${key}:lock:` })
    await store.set(tokens('r1'))
    await lock.run('k', async () => {
      await store.get()
      await store.set(tokens('r2'))
      await store.set(tokens('r3'))
    })
    expect(await store.get()).toEqual(tokens('r3'))
  })

  it('outside a hold, set is unconditional (a new sign-in replaces any session)', async () => {
    const key = uniqueKey()
    const a = createRedisStore(await connect(), { key })
    const b = createRedisStore(await connect(), { key })
    await a.get()
    await b.set(tokens('b'))
    await a.set(tokens('a'))
    expect(await b.get()).toEqual(tokens('a'))
  })

  it('subscribe: another process’s write reaches the listener with the new set; its own writes do not', async () => {
    const key = uniqueKey()
    const mine = createRedisStore(await connect(), { key })
    const other = createRedisStore(await connect(), { key })
    const seen: Array<TokenSet | undefined> = []
    const got = deferred<void>()
    const stop = mine.subscribe((t) => {
      seen.push(t)
      got.resolve()
    })
    try {
      // wait (bounded) until the subscription is live
      const deadline = Date.now() + 5_000
      const client = await connect()
      while (Date.now() < deadline) {
        const subscribers = (await client.sendCommand(['PUBSUB', 'NUMSUB', `${key}:changed`])) as [
          string,
          number,
        ]
        if (Number(subscribers[1]) > 0) break
        await new Promise((r) => setTimeout(r, 10))
      }
      await mine.set(tokens('own'))
      await other.set(tokens('theirs'))
      await got.promise
      expect(seen).toEqual([tokens('theirs')])
      await other.clear()
      const deadline2 = Date.now() + 5_000
      while (seen.length < 2 && Date.now() < deadline2) await new Promise((r) => setTimeout(r, 10))
      expect(seen).toEqual([tokens('theirs'), undefined])
    } finally {
      stop()
    }
  })

  it('a half-written or foreign value is reported, never returned', async () => {
    const client = await connect()
    const key = uniqueKey()
    const store = createRedisStore(client, { key })
    await client.hSet(key, { v: '1', data: '{"accessToken":' })
    await expect(store.get()).rejects.toSatisfy(
      (e: unknown) => isRefreshError(e) && /is not JSON/.test(e.message),
    )
    await client.hSet(key, { v: '2', data: '{"tokenType":"Bearer"}' })
    await expect(store.get()).rejects.toSatisfy(
      (e: unknown) => isRefreshError(e) && /"accessToken"/.test(e.message),
    )
  })

  describe('encryptionKey', () => {
    const raw = new Uint8Array(32).fill(7)

    it('stores ciphertext (no token in Redis) and reads it back', async () => {
      const client = await connect()
      const key = uniqueKey()
      const store = createRedisStore(client, { key, encryptionKey: raw })
      await store.set(tokens('secret'))
      const data = (await client.hGet(key, 'data')) ?? ''
      expect(data.startsWith('aesgcm1:')).toBe(true)
      expect(data).not.toContain('at-secret')
      expect(data).not.toContain('rt-secret')
      expect(await store.get()).toEqual(tokens('secret'))
      // a CryptoKey works too, and reads what raw bytes wrote
      const cryptoKey = await crypto.subtle.importKey('raw', raw, 'AES-GCM', false, [
        'encrypt',
        'decrypt',
      ])
      expect(await createRedisStore(client, { key, encryptionKey: cryptoKey }).get()).toEqual(
        tokens('secret'),
      )
    })

    it('a wrong key, a missing key or plaintext under a key: a typed error without token values', async () => {
      const client = await connect()
      const key = uniqueKey()
      await createRedisStore(client, { key, encryptionKey: raw }).set(tokens('secret'))
      const wrong = createRedisStore(client, { key, encryptionKey: new Uint8Array(32).fill(8) })
      const error = await wrong.get().catch((e: unknown) => e)
      expect(isRefreshError(error) && /could not be decrypted/.test(error.message)).toBe(true)
      await expect(createRedisStore(client, { key }).get()).rejects.toThrow(/is encrypted/)
      const plainKey = uniqueKey()
      await createRedisStore(client, { key: plainKey }).set(tokens('plain'))
      await expect(
        createRedisStore(client, { key: plainKey, encryptionKey: raw }).get(),
      ).rejects.toThrow(/is not encrypted/)
    })

    it('binds the ciphertext to its key: a set copied to another key does not decrypt', async () => {
      const client = await connect()
      const key = uniqueKey()
      await createRedisStore(client, { key, encryptionKey: raw }).set(tokens('secret'))
      const copy = uniqueKey()
      await client.hSet(copy, { v: '1', data: (await client.hGet(key, 'data')) ?? '' })
      await expect(
        createRedisStore(client, { key: copy, encryptionKey: raw }).get(),
      ).rejects.toThrow(/could not be decrypted/)
    })
  })

  it('validates its options at the factory, quoting the option', async () => {
    const client = await connect()
    const bad = (fn: () => unknown) => {
      try {
        fn()
      } catch (error) {
        return isReauthOptionsError(error) ? error.message : 'wrong error'
      }
      return 'no error'
    }
    expect(bad(() => createRedisStore({} as never))).toMatch(/"client"/)
    expect(bad(() => createRedisStore(client, { key: '' }))).toMatch(/"key"/)
    expect(bad(() => createRedisStore(client, { commandTimeout: 0 }))).toMatch(/"commandTimeout"/)
    expect(bad(() => createRedisStore(client, { encryptionKey: new Uint8Array(5) }))).toMatch(
      /"encryptionKey"/,
    )
  })
})

describe('createRedisStore with Redis down', () => {
  it('get, set and clear fail fast with a retryable RefreshError, and work again when it is back', async () => {
    const own = await startRedis()
    const client = createClient({
      url: own.url,
      socket: { reconnectStrategy: () => 50, connectTimeout: 500 },
    })
    client.on('error', () => {})
    await client.connect()
    const store = createRedisStore(client, { key: 'down', commandTimeout: 300 })
    await store.set(tokens('before'))
    await own.stop({ keepData: true })
    try {
      const started = Date.now()
      for (const attempt of [store.get(), store.set(tokens('x')), store.clear()]) {
        const error = await attempt.catch((e: unknown) => e)
        expect(isRefreshError(error) && error.retryable).toBe(true)
        expect((error as Error).message).toMatch(/Redis did not (read|write|clear) the token set/)
      }
      expect(Date.now() - started).toBeLessThan(3_000)
      await own.start()
      const deadline = Date.now() + 5_000
      let back: TokenSet | undefined
      while (!back && Date.now() < deadline) back = await store.get().catch(() => undefined)
      expect(back).toEqual(tokens('before'))
    } finally {
      client.destroy()
      await own.stop()
    }
  }, 20_000)
})
