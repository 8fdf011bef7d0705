import {
  createEngine,
  dpopThumbprint,
  exportDpopKeyPair,
  generateDpopKeyPair,
  isReauthOptionsError,
  isRefreshError,
  isSessionEnd,
  isSessionExpiredError,
  OAuthError,
  type StoredSession,
  type TokenSet,
} from '@reauth/core'
import { connect as connectAdapter } from '@reauth/core/adapter'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { redisClients } from '../../../test/redis/support/clients.js'
import { type RunningRedis, startRedis } from '../../../test/redis/support/redis-server.js'
import { deferred } from '../../../test/support/deferred.js'
import { createRedisLock } from './redis-lock.js'
import { createRedisStore } from './redis-store.js'

let redis: RunningRedis
const clients: Array<{ isOpen: boolean; destroy(): void }> = []

let n = 0
const uniqueKey = () => `test:store:${++n}`

const tokens = (id: string, extra: Partial<TokenSet> = {}): TokenSet => ({
  accessToken: `at-${id}`,
  tokenType: 'Bearer',
  refreshToken: `rt-${id}`,
  expiresAt: 1_900_000_000_000,
  ...extra,
})

const end: StoredSession = {
  ended: {
    error: 'invalid_grant',
    errorDescription: 'revoked',
    status: 400,
    at: 1_800_000_000_000,
  },
}

function fromBase64url(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/'))
  return Uint8Array.from(binary, (c) => c.charCodeAt(0))
}

/** Verify a DPoP proof with a given public key (not the one in its header): was it signed by that key's pair? */
async function signedBy(proof: string, publicKey: CryptoKey): Promise<boolean> {
  const [header = '', claims = '', signature = ''] = proof.split('.')
  return crypto.subtle.verify(
    { name: 'ECDSA', hash: 'SHA-256' },
    publicKey,
    fromBase64url(signature),
    new TextEncoder().encode(`${header}.${claims}`),
  )
}

/** The private `d` of an extractable pair: what must never be in Redis in clear under encryption. */
async function privateD(pair: CryptoKeyPair): Promise<string> {
  return String((await exportDpopKeyPair(pair)).privateKey.d)
}

beforeAll(async () => {
  redis = await startRedis()
}, 15_000)
afterAll(async () => {
  for (const client of clients) if (client.isOpen) client.destroy()
  await redis?.stop()
})

describe.each(redisClients)('on $major', ({ major, version, createClient }) => {
  async function connect() {
    const client = createClient({ url: redis.url })
    client.on('error', () => {})
    await client.connect()
    clients.push(client)
    return client
  }

  /** Wait (bounded) until Redis confirms a subscriber on `channel`. */
  async function subscribed(channel: string): Promise<void> {
    const deadline = Date.now() + 5_000
    const client = await connect()
    while (Date.now() < deadline) {
      const reply = (await client.sendCommand(['PUBSUB', 'NUMSUB', channel])) as [string, number]
      if (Number(reply[1]) > 0) return
      await new Promise((r) => setTimeout(r, 10))
    }
    throw new Error(`No subscriber on ${channel} within 5 s`)
  }

  it(`runs on ${major} (installed: ${version})`, () => {
    expect(version.split('.')[0]).toBe(major.split(' ').at(-1))
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

    it('keeps per-resource tokens (RFC 8707) with the set', async () => {
      const key = uniqueKey()
      const a = createRedisStore(await connect(), { key })
      const b = createRedisStore(await connect(), { key })
      const set = {
        ...tokens('r'),
        resources: {
          'urn:orders': { accessToken: 'at-orders', tokenType: 'Bearer', expiresAt: 1 },
        },
      }
      await a.set(set)
      expect(await b.get()).toEqual(set)
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

    it('keeps the end of a session (no tokens) and gives it back; setTokens and clear replace it', async () => {
      const client = await connect()
      const key = uniqueKey()
      const store = createRedisStore(client, { key })
      await store.set(tokens('1'))
      await store.set({ ended: { ...end.ended, extra: 'dropped' } } as StoredSession)
      const value = await store.get()
      expect(isSessionEnd(value)).toBe(true)
      expect(value).toEqual(end)
      expect(await createRedisStore(await connect(), { key }).get()).toEqual(end)
      await store.set(tokens('2'))
      expect(await store.get()).toEqual(tokens('2'))
      await store.set(end)
      await store.clear()
      expect(await store.get()).toBeUndefined()
      await expect(store.set({ ended: { at: Number.NaN } })).rejects.toSatisfy(isReauthOptionsError)
    })

    it('subscribe: another process’s end of the session reaches the listener', async () => {
      const key = uniqueKey()
      const mine = createRedisStore(await connect(), { key })
      const other = createRedisStore(await connect(), { key, commandTimeout: 2_000 })
      const got = deferred<StoredSession | undefined>()
      const stop = mine.subscribe((value) => got.resolve(value))
      try {
        await subscribed(`${key}:changed`)
        await other.set(end)
        expect(await got.promise).toEqual(end)
      } finally {
        stop()
      }
    })

    it('subscribe: another process’s write reaches the listener with the new set; its own writes do not', async () => {
      const key = uniqueKey()
      const mine = createRedisStore(await connect(), { key })
      const other = createRedisStore(await connect(), { key })
      const seen: Array<StoredSession | undefined> = []
      const got = deferred<void>()
      const stop = mine.subscribe((t) => {
        seen.push(t)
        got.resolve()
      })
      try {
        await subscribed(`${key}:changed`)
        await mine.set(tokens('own'))
        await other.set(tokens('theirs'))
        await got.promise
        expect(seen).toEqual([tokens('theirs')])
        await other.clear()
        const deadline2 = Date.now() + 5_000
        while (seen.length < 2 && Date.now() < deadline2)
          await new Promise((r) => setTimeout(r, 10))
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

    describe('dpopKey', () => {
      const raw = new Uint8Array(32).fill(7)
      const dpopSet = (id: string, dpopKey: CryptoKeyPair): TokenSet => ({
        ...tokens(id),
        tokenType: 'DPoP',
        dpopKey,
      })

      it.each([
        ['in clear', undefined],
        ['encrypted', raw],
      ])(
        'round-trips a DPoP set %s: the key comes back as a pair that signs for the same public key',
        async (_, encryptionKey) => {
          const client = await connect()
          const key = uniqueKey()
          const store = createRedisStore(client, encryptionKey ? { key, encryptionKey } : { key })
          const pair = await generateDpopKeyPair({ extractable: true })
          const d = await privateD(pair)
          await store.set(dpopSet('1', pair))
          const data = (await client.hGet(key, 'data')) ?? ''
          if (encryptionKey) {
            expect(data.startsWith('aesgcm2:1:')).toBe(true)
            expect(data).not.toContain(d)
            expect(data).not.toContain('dpopKey')
          } else {
            // documented: without encryptionKey the private key is as exposed as the tokens
            expect(JSON.parse(data).dpopKey.privateKey.d).toBe(d)
          }
          const read = (await store.get()) as TokenSet
          const { dpopKey, ...rest } = read
          expect(rest).toEqual({ ...tokens('1'), tokenType: 'DPoP' })
          expect(dpopKey?.privateKey.type).toBe('private')
          // read back non-extractable: nothing holding the set can export the private key
          expect(dpopKey?.privateKey.extractable).toBe(false)
          expect(await dpopThumbprint(dpopKey!.publicKey)).toBe(
            await dpopThumbprint(pair.publicKey),
          )
          const signature = await crypto.subtle.sign(
            { name: 'ECDSA', hash: 'SHA-256' },
            dpopKey!.privateKey,
            new TextEncoder().encode('x'),
          )
          expect(
            await crypto.subtle.verify(
              { name: 'ECDSA', hash: 'SHA-256' },
              pair.publicKey,
              signature,
              new TextEncoder().encode('x'),
            ),
          ).toBe(true)
          // one import per stored key: the same pair object until the key changes
          expect(((await store.get()) as TokenSet).dpopKey).toBe(dpopKey)
          // the set as read (non-extractable key) is written again, by this store and by another
          await store.set({ ...read, accessToken: 'at-2' })
          const other = createRedisStore(
            await connect(),
            encryptionKey ? { key, encryptionKey } : { key },
          )
          const again = (await other.get()) as TokenSet
          expect(again.accessToken).toBe('at-2')
          await other.set({ ...again, accessToken: 'at-3' })
          const last = (await store.get()) as TokenSet
          expect(last.accessToken).toBe('at-3')
          expect(await dpopThumbprint(last.dpopKey!.publicKey)).toBe(
            await dpopThumbprint(pair.publicKey),
          )
          if (encryptionKey) expect((await client.hGet(key, 'data')) ?? '').not.toContain(d)
          // a sign-out drops the process's copy too: the same key stored again is imported anew
          await store.clear()
          expect(await store.get()).toBeUndefined()
          await other.set(last)
          const after = (await store.get()) as TokenSet
          expect(after.dpopKey).not.toBe(last.dpopKey)
          expect(await dpopThumbprint(after.dpopKey!.publicKey)).toBe(
            await dpopThumbprint(pair.publicKey),
          )
        },
      )

      it('refuses a non-extractable key with a ReauthOptionsError naming dpopKey, and writes nothing', async () => {
        const client = await connect()
        const key = uniqueKey()
        const store = createRedisStore(client, { key, encryptionKey: raw })
        await store.set(tokens('before'))
        const pair = await generateDpopKeyPair()
        const error = await store.set(dpopSet('1', pair)).catch((e: unknown) => e)
        expect(isReauthOptionsError(error)).toBe(true)
        expect((error as Error).message).toMatch(/"dpopKey".*not extractable/)
        expect((error as Error).message).toMatch(/dpop: \{ extractable: true \}/)
        expect(await client.hGet(key, 'v')).toBe('1')
        expect(await store.get()).toEqual(tokens('before'))
        // a mismatched pair (public key of another pair) is refused too
        const a = await generateDpopKeyPair({ extractable: true })
        const b = await generateDpopKeyPair({ extractable: true })
        await expect(
          store.set(dpopSet('2', { publicKey: b.publicKey, privateKey: a.privateKey })),
        ).rejects.toSatisfy(isReauthOptionsError)
        await expect(store.set(dpopSet('3', {} as CryptoKeyPair))).rejects.toSatisfy(
          isReauthOptionsError,
        )
        expect(await client.hGet(key, 'v')).toBe('1')
      })

      it('an engine with dpop: true (non-extractable keys) on the store: its first grant fails, caused by the ReauthOptionsError, and nothing is stored', async () => {
        const client = await connect()
        const key = uniqueKey()
        const engine = createEngine({
          store: createRedisStore(client, { key }),
          dpop: true,
          acquire: async () => ({ ...tokens('a'), tokenType: 'DPoP' }),
        })
        try {
          // the engine wraps a store failure in a RefreshError; its cause is the store's error
          const error = await engine.getToken().catch((e: unknown) => e)
          expect(isRefreshError(error)).toBe(true)
          const cause = (error as Error).cause
          expect(isReauthOptionsError(cause)).toBe(true)
          expect((cause as Error).message).toMatch(/"dpopKey".*dpop: \{ extractable: true \}/)
          expect(await client.hGet(key, 'data')).toBeNull()
        } finally {
          engine.dispose()
        }
      })

      it('a stored key that is not an ES256 pair is a non-retryable RefreshError without key material', async () => {
        const client = await connect()
        const key = uniqueKey()
        const store = createRedisStore(client, { key })
        const pair = await generateDpopKeyPair({ extractable: true })
        await store.set(dpopSet('1', pair))
        const stored = JSON.parse((await client.hGet(key, 'data')) ?? '')
        const d = stored.dpopKey.privateKey.d as string
        stored.dpopKey.publicKey.x = stored.dpopKey.publicKey.y
        await client.hSet(key, { data: JSON.stringify(stored) })
        const error = await store.get().catch((e: unknown) => e)
        expect(isRefreshError(error) && error.retryable === false).toBe(true)
        expect((error as Error).message).toMatch(/"dpopKey"/)
        expect(JSON.stringify(error)).not.toContain(d)
        expect(String((error as Error).message)).not.toContain(d)
      })

      it('two engines on two connections share one key: a proof made by engine B verifies with the public key engine A generated', async () => {
        const key = uniqueKey()
        const session = async () => ({
          store: createRedisStore(await connect(), { key, encryptionKey: raw }),
          lock: createRedisLock(await connect(), { prefix: `${key}:lock:` }),
        })
        const generated: CryptoKeyPair[] = []
        const engineA = createEngine({
          ...(await session()),
          dpop: { extractable: true },
          acquire: async ({ dpop }) => {
            if (dpop) generated.push(dpop)
            return { ...tokens('a'), tokenType: 'DPoP' }
          },
        })
        const engineB = createEngine({
          ...(await session()),
          dpop: { extractable: true },
          acquire: async () => {
            throw new Error('engine B must use the stored set')
          },
        })
        try {
          const url = 'https://api.example.com/orders'
          const attach = (engine: typeof engineA) =>
            connectAdapter(engine, {
              origins: ['https://api.example.com'],
              baseHint: 'origins',
            }).attach({
              url,
              method: 'GET',
            })
          const sentA = await attach(engineA)
          expect(generated).toHaveLength(1)
          const keyA = generated[0] as CryptoKeyPair
          expect(sentA?.headers.authorization).toBe('DPoP at-a')
          const sentB = await attach(engineB)
          expect(sentB?.headers.authorization).toBe('DPoP at-a')
          const proof = sentB?.headers.dpop ?? ''
          expect(await signedBy(proof, keyA.publicKey)).toBe(true)
          // and not merely the key in its own header: another key does not verify it
          const stranger = await generateDpopKeyPair()
          expect(await signedBy(proof, stranger.publicKey)).toBe(false)
          expect(generated).toHaveLength(1)
        } finally {
          engineA.dispose()
          engineB.dispose()
        }
      })

      it('a terminal failure and a sign-out remove the key with the tokens', async () => {
        const client = await connect()
        const key = uniqueKey()
        const store = createRedisStore(client, { key })
        const engine = createEngine({
          store,
          dpop: { extractable: true },
          refresh: async () => {
            throw new OAuthError({ error: 'invalid_grant', status: 400 })
          },
        })
        try {
          const pair = await generateDpopKeyPair({ extractable: true })
          const d = await privateD(pair)
          await engine.setTokens(dpopSet('1', pair))
          expect((await client.hGet(key, 'data')) ?? '').toContain(d)
          await expect(engine.refresh()).rejects.toSatisfy(isSessionExpiredError)
          const ended = (await client.hGet(key, 'data')) ?? ''
          expect(isSessionEnd(JSON.parse(ended))).toBe(true)
          expect(ended).not.toContain(d)
          expect(ended).not.toContain('dpopKey')
          await engine.setTokens(dpopSet('2', pair))
          expect((await client.hGet(key, 'data')) ?? '').toContain(d)
          await engine.clear()
          expect(await client.hGet(key, 'data')).toBeNull()
          expect(JSON.stringify(await client.hGetAll(key))).not.toContain(d)
        } finally {
          engine.dispose()
        }
      })
    })

    describe('encryptionKey', () => {
      const raw = new Uint8Array(32).fill(7)

      it('stores ciphertext (no token in Redis) and reads it back', async () => {
        const client = await connect()
        const key = uniqueKey()
        const store = createRedisStore(client, { key, encryptionKey: raw })
        await store.set(tokens('secret'))
        const data = (await client.hGet(key, 'data')) ?? ''
        expect(data.startsWith('aesgcm2:2:') || data.startsWith('aesgcm2:1:')).toBe(true)
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

      // Regression, issue 18 item 8: the additional data bound the key name but not the version,
      // so an older ciphertext of the same session written back was read as current.
      it('binds the ciphertext to its version: an older value written back is refused, and its refresh token never presented', async () => {
        const client = await connect()
        const key = uniqueKey()
        const store = createRedisStore(client, { key, encryptionKey: raw })
        await store.set(tokens('r1'))
        const old = (await client.hGet(key, 'data')) ?? ''
        await store.set(tokens('r2'))
        expect(await client.hGet(key, 'v')).toBe('2')
        // someone with access to Redis puts the older ciphertext back (the version stays 2)
        await client.hSet(key, { data: old })
        const error = await store.get().catch((e: unknown) => e)
        expect(isRefreshError(error) && error.retryable === false).toBe(true)
        expect((error as Error).message).toMatch(/sealed for another version/)
        expect((error as Error).message).not.toMatch(/rt-|at-/)
        // the version written in clear only names the problem: the additional data enforces it
        await client.hSet(key, { data: old.replace(/^aesgcm2:1:/, 'aesgcm2:2:') })
        await expect(store.get()).rejects.toThrow(/could not be decrypted/)
        // an engine on the store fails with the typed error; the old refresh token is never sent
        const presented: Array<string | undefined> = []
        const engine = createEngine({
          store,
          refresh: async ({ tokens: sent }) => {
            presented.push(sent.refreshToken)
            return tokens('r3')
          },
        })
        await expect(engine.refresh()).rejects.toSatisfy(
          (e: unknown) => isRefreshError(e) && e.retryable === false,
        )
        expect(presented).toEqual([])
        engine.dispose()
        // a new sign-in (an unconditional set) replaces the refused value
        await store.set(tokens('r3'))
        expect(await store.get()).toEqual(tokens('r3'))
      })

      it('refuses the format that did not bind the version (aesgcm1)', async () => {
        const client = await connect()
        const key = uniqueKey()
        await client.hSet(key, { v: '1', data: 'aesgcm1:AAAAAAAAAAAAAAAA.AAAA' })
        await expect(createRedisStore(client, { key, encryptionKey: raw }).get()).rejects.toThrow(
          /older encryption format/,
        )
      })

      it('outside a hold, concurrent encrypted writers all land, each sealed for its own version', async () => {
        const key = uniqueKey()
        const stores = await Promise.all(
          Array.from({ length: 8 }, async () =>
            createRedisStore(await connect(), { key, encryptionKey: raw }),
          ),
        )
        await Promise.all(stores.map((store, i) => store.set(tokens(`w${i}`))))
        const client = await connect()
        expect(await client.hGet(key, 'v')).toBe('8')
        const last = await stores[0]?.get()
        expect(stores.map((_, i) => tokens(`w${i}`))).toContainEqual(last)
      })

      it('encrypts the end of a session too', async () => {
        const client = await connect()
        const key = uniqueKey()
        const store = createRedisStore(client, { key, encryptionKey: raw })
        await store.set(end)
        const data = (await client.hGet(key, 'data')) ?? ''
        expect(data.startsWith('aesgcm2:1:')).toBe(true)
        expect(data).not.toContain('invalid_grant')
        expect(await store.get()).toEqual(end)
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
        // each outcome is caught at once: the three time out in any order
        const attempts = [store.get(), store.set(tokens('x')), store.clear()].map((attempt) =>
          attempt.catch((e: unknown) => e),
        )
        for (const attempt of attempts) {
          const error = await attempt
          expect(isRefreshError(error) && error.retryable).toBe(true)
          expect((error as Error).message).toMatch(/Redis did not (read|write|clear) the token set/)
        }
        expect(Date.now() - started).toBeLessThan(3_000)
        await own.start()
        const deadline = Date.now() + 5_000
        let back: StoredSession | undefined
        while (!back && Date.now() < deadline) back = await store.get().catch(() => undefined)
        expect(back).toEqual(tokens('before'))
      } finally {
        client.destroy()
        await own.stop()
      }
    }, 20_000)
  })
})
