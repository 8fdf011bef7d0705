import {
  createEngine,
  type Engine,
  isRefreshError,
  isSessionEnd,
  OAuthError,
  type RefreshFunction,
  SessionExpiredError,
  type TokenSet,
} from '@reauth/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { redisClients } from '../../../test/redis/support/clients.js'
import { type RunningRedis, startRedis } from '../../../test/redis/support/redis-server.js'
import { steps } from '../../../test/support/steps.js'
import { isRedisLockError } from './errors.js'
import { createRedisSession } from './redis-session.js'

let redis: RunningRedis
const clients: Array<{ isOpen: boolean; destroy(): void }> = []

let n = 0
const expired = (id: string): TokenSet => ({
  accessToken: `at-${id}`,
  tokenType: 'Bearer',
  refreshToken: `rt-${id}`,
  expiresAt: Date.now() - 1,
})

/** A rotating grant: counts calls, hands out rt-(n+1), and can be held open. */
function grant() {
  let count = 0
  let gate: Promise<void> | undefined
  const refresh: RefreshFunction = async ({ tokens }) => {
    count++
    await gate
    return {
      accessToken: `at-${count}`,
      tokenType: 'Bearer',
      refreshToken: `${tokens.refreshToken}+`,
      expiresAt: Date.now() + 60_000,
    }
  }
  return {
    refresh,
    count: () => count,
    hold() {
      let open!: () => void
      gate = new Promise((r) => {
        open = r
      })
      return () => open()
    },
  }
}

beforeAll(async () => {
  redis = await startRedis()
}, 15_000)
afterAll(async () => {
  for (const client of clients) if (client.isOpen) client.destroy()
  await redis?.stop()
})

describe.each(redisClients)('on $major', ({ createClient }) => {
  async function connect(url = redis.url) {
    const client = createClient({ url, socket: { reconnectStrategy: () => 50 } })
    client.on('error', () => {})
    await client.connect()
    clients.push(client)
    return client
  }

  describe('createRedisSession with the engine', () => {
    it('engines on separate connections make one grant; the others adopt it without a grant', async () => {
      const key = `session:${++n}`
      const g = grant()
      const engines = await Promise.all(
        [1, 2, 3].map(async () =>
          createEngine({ refresh: g.refresh, ...createRedisSession(await connect(), { key }) }),
        ),
      )
      await engines[0]!.setTokens(expired('0'))
      const results = await Promise.all(engines.flatMap((e) => [e.getToken(), e.getToken()]))
      expect(g.count()).toBe(1)
      expect(new Set(results.map((t) => t?.accessToken))).toEqual(new Set(['at-1']))
      expect(engines.reduce((sum, e) => sum + e.stats().grants, 0)).toBe(1)
      for (const e of engines) e.dispose()
    })

    it('a waiter learns of the new set through pub/sub before the lock is free', async () => {
      const key = `session:${++n}`
      const g = grant()
      const a = createEngine({
        refresh: g.refresh,
        ...createRedisSession(await connect(), { key }),
      })
      const b = createEngine({
        refresh: g.refresh,
        // a long poll interval: only the change message can resolve b in time
        ...createRedisSession(await connect(), { key, retryInterval: 60_000 }),
      })
      await a.setTokens(expired('0'))
      const open = g.hold()
      const first = a.getToken()
      const deadline = Date.now() + 5_000
      while (g.count() === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5))
      let adopted = 0
      b.on('refresh', () => adopted++)
      const second = b.getToken()
      open()
      expect((await first)?.accessToken).toBe('at-1')
      expect((await second)?.accessToken).toBe('at-1')
      expect(g.count()).toBe(1)
      expect(b.stats().grants).toBe(0)
      a.dispose()
      b.dispose()
      void adopted
    })

    it('Redis down: the engine answers with retryable RefreshErrors, never hangs, and recovers', async () => {
      const own = await startRedis()
      const g = grant()
      const session = createRedisSession(await connect(own.url), {
        key: 'down',
        commandTimeout: 300,
        refreshTimeout: 1_000,
        lease: 2_000,
      })
      const engine = createEngine({ refresh: g.refresh, ...session })
      await engine.setTokens(expired('0'))
      await own.stop({ keepData: true })
      try {
        const started = Date.now()
        // reading the store fails: a RefreshError from the store
        const read = await engine.getToken().catch((e: unknown) => e)
        expect(isRefreshError(read) && read.retryable).toBe(true)
        // the lock fails: the engine wraps the lock's typed error into its RefreshError
        const refreshed = await engine.refresh().catch((e: unknown) => e)
        expect(isRefreshError(refreshed) && refreshed.retryable).toBe(true)
        expect(Date.now() - started).toBeLessThan(3_000)
        expect(g.count()).toBe(0)
        await own.start()
        const deadline = Date.now() + 5_000
        let token: TokenSet | undefined
        while (!token && Date.now() < deadline)
          token = await engine.getToken().catch(() => undefined)
        expect(token?.accessToken).toBe('at-1')
        expect(g.count()).toBe(1)
      } finally {
        engine.dispose()
        await own.stop()
      }
    }, 20_000)

    it('a lock held past waitTimeout: RefreshError whose cause is RedisLockError LOCK_TIMEOUT', async () => {
      const key = `session:${++n}`
      const client = await connect()
      const g = grant()
      const engine = createEngine({
        refresh: g.refresh,
        ...createRedisSession(client, { key, refreshTimeout: 100, lease: 500, waitTimeout: 200 }),
      })
      await engine.setTokens(expired('0'))
      await client.set(`reauth:lock:${key}`, 'other-process', { PX: 10_000 })
      const error = await engine.refresh().catch((e: unknown) => e)
      expect(isRefreshError(error) && error.retryable).toBe(true)
      expect(
        isRedisLockError((error as Error).cause) &&
          (error as { cause: { code: string } }).cause.code,
      ).toBe('LOCK_TIMEOUT')
      expect(g.count()).toBe(0)
    })

    // Issue 12 §3: B used to go on without Authorization and never fire sessionExpired.
    it.each([
      ['plain', undefined],
      ['encrypted', new Uint8Array(32).fill(3)],
    ])(
      'a terminal failure in one engine ends the session for an engine in another connection (%s)',
      async (_, encryptionKey) => {
        const key = `session:${++n}`
        const api = 'https://api.example.com'
        let grants = 0
        const refresh: RefreshFunction = async () => {
          grants++
          throw new OAuthError({ error: 'invalid_grant', status: 400 })
        }
        const options = encryptionKey ? { key, encryptionKey } : { key }
        const a = createEngine({
          refresh,
          origins: [api],
          ...createRedisSession(await connect(), options),
        })
        const sessionB = createRedisSession(await connect(), options)
        const b = createEngine({ refresh, origins: [api], ...sessionB })
        const told = { a: 0, b: 0 }
        let toldB!: () => void
        const bTold = new Promise<void>((resolve) => {
          toldB = resolve
        })
        a.on('sessionExpired', () => told.a++)
        b.on('sessionExpired', () => {
          told.b++
          toldB()
        })
        try {
          await a.setTokens(expired('0'))
          await expect(a.refresh()).rejects.toBeInstanceOf(SessionExpiredError)
          // the store holds the end, not nothing (and, with a key, sealed like tokens)
          expect(isSessionEnd(await sessionB.store.get())).toBe(true)
          // B hears of it through pub/sub, before any request of its own
          await bTold
          const failsFast = async (engine: Engine) => {
            await expect(engine.getToken()).rejects.toBeInstanceOf(SessionExpiredError)
            await expect(steps(engine).authorize({ url: `${api}/me` })).rejects.toMatchObject({
              error: 'invalid_grant',
            })
            await expect(engine.refresh()).rejects.toBeInstanceOf(SessionExpiredError)
          }
          await failsFast(b)
          await failsFast(a)
          expect(told).toEqual({ a: 1, b: 1 })
          expect(grants).toBe(1)
          // a new sign-in in B ends it for A too
          await b.setTokens({ ...expired('9'), expiresAt: Date.now() + 60_000 })
          await expect(steps(a).authorize({ url: `${api}/me` })).resolves.toBe('Bearer at-9')
        } finally {
          a.dispose()
          b.dispose()
        }
      },
    )
  })
})
