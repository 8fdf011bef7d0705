import { isReauthOptionsError } from '@reauth/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { redisClients } from '../../../test/redis/support/clients.js'
import { type RunningRedis, startRedis } from '../../../test/redis/support/redis-server.js'
import { deferred } from '../../../test/support/deferred.js'
import { isRedisLockError, RedisLockError } from './errors.js'
import { createRedisLock } from './redis-lock.js'

let redis: RunningRedis
const clients: Array<{ isOpen: boolean; destroy(): void }> = []

let n = 0
const prefix = () => `test:lock:${++n}:`

beforeAll(async () => {
  redis = await startRedis()
}, 15_000)
afterAll(async () => {
  for (const client of clients) if (client.isOpen) client.destroy()
  await redis?.stop()
})

describe.each(redisClients)('on $major', ({ createClient }) => {
  async function connect() {
    const client = createClient({ url: redis.url })
    client.on('error', () => {})
    await client.connect()
    clients.push(client)
    return client
  }

  describe('createRedisLock', () => {
    it('excludes a second process until the first releases; the waiter wakes on the release message, not a poll', async () => {
      const p = prefix()
      // a retry interval far above the test's bound: only the pub/sub release can wake the waiter in time
      const options = { prefix: p, retryInterval: 60_000, refreshTimeout: 1_000, lease: 30_000 }
      const a = createRedisLock(await connect(), options)
      const b = createRedisLock(await connect(), options)
      const inside = deferred()
      const finish = deferred()
      const order: string[] = []
      const first = a.run('k', async () => {
        order.push('a:start')
        inside.resolve()
        await finish.promise
        order.push('a:end')
        return 'a'
      })
      await inside.promise
      const second = b.run('k', async () => {
        order.push('b')
        return 'b'
      })
      // b is waiting: the key is held by a's owner id
      const client = await connect()
      const deadline = Date.now() + 5_000
      while (Date.now() < deadline) {
        const [, subs] = (await client.sendCommand(['PUBSUB', 'NUMSUB', `${p}k:released`])) as [
          string,
          number,
        ]
        if (Number(subs) > 0) break
        await new Promise((r) => setTimeout(r, 10))
      }
      const released = Date.now()
      finish.resolve()
      expect(await first).toBe('a')
      expect(await second).toBe('b')
      expect(Date.now() - released).toBeLessThan(2_000)
      expect(order).toEqual(['a:start', 'a:end', 'b'])
      expect(await client.exists(`${p}k`)).toBe(0)
    })

    it('sets the lease with PX and releases only its own hold (compare-and-delete)', async () => {
      const p = prefix()
      const client = await connect()
      const lock = createRedisLock(client, { prefix: p, refreshTimeout: 1_000, lease: 5_000 })
      await lock.run('k', async () => {
        const ttl = await client.pTTL(`${p}k`)
        expect(ttl).toBeGreaterThan(4_000)
        expect(ttl).toBeLessThanOrEqual(5_000)
        // the lease ran out and another process took the key meanwhile
        await client.set(`${p}k`, 'someone-else')
      })
      expect(await client.get(`${p}k`)).toBe('someone-else')
    })

    it('a holder that died (never releases) blocks the others only until its lease ends', async () => {
      const p = prefix()
      const client = await connect()
      await client.set(`${p}k`, 'dead-process', { PX: 400 })
      const lock = createRedisLock(client, {
        prefix: p,
        refreshTimeout: 100,
        lease: 1_000,
        retryInterval: 5_000,
      })
      const started = Date.now()
      expect(await lock.run('k', async () => 'mine')).toBe('mine')
      const waited = Date.now() - started
      expect(waited).toBeGreaterThanOrEqual(300)
      // woke at the lease's end (PTTL), not after retryInterval
      expect(waited).toBeLessThan(3_000)
    })

    it('gives up after waitTimeout with RedisLockError LOCK_TIMEOUT', async () => {
      const p = prefix()
      const client = await connect()
      await client.set(`${p}k`, 'busy', { PX: 30_000 })
      const lock = createRedisLock(client, {
        prefix: p,
        refreshTimeout: 100,
        lease: 1_000,
        waitTimeout: 300,
        retryInterval: 100,
      })
      let ran = false
      const error = await lock
        .run('k', async () => {
          ran = true
        })
        .catch((e: unknown) => e)
      expect(ran).toBe(false)
      expect(isRedisLockError(error) && error.code).toBe('LOCK_TIMEOUT')
      expect(error).toBeInstanceOf(RedisLockError)
      expect((error as Error).message).toContain(`${p}k`)
    })

    it('releases when fn throws, and rethrows its error', async () => {
      const p = prefix()
      const client = await connect()
      const lock = createRedisLock(client, { prefix: p, refreshTimeout: 100, lease: 1_000 })
      const boom = new Error('boom')
      await expect(lock.run('k', () => Promise.reject(boom))).rejects.toBe(boom)
      expect(await client.exists(`${p}k`)).toBe(0)
    })

    it('validates: the lease must be longer than refreshTimeout', async () => {
      const client = await connect()
      const message = (fn: () => unknown) => {
        try {
          fn()
        } catch (error) {
          return isReauthOptionsError(error) ? error.message : 'wrong error'
        }
        return 'no error'
      }
      expect(message(() => createRedisLock(client, { refreshTimeout: 5_000, lease: 5_000 }))).toBe(
        '"lease" (5000 ms) must be longer than "refreshTimeout" (5000 ms)',
      )
      expect(message(() => createRedisLock(client, { refreshTimeout: 20_000 }))).toBe('no error')
      expect(createRedisLock(client, { refreshTimeout: 20_000 }).settings).toMatchObject({
        lease: 25_000,
        waitTimeout: 45_000,
      })
      expect(message(() => createRedisLock(client, { waitTimeout: -1 }))).toMatch(/"waitTimeout"/)
      expect(message(() => createRedisLock(client, { retryInterval: Number.NaN }))).toMatch(
        /"retryInterval"/,
      )
      expect(message(() => createRedisLock(null as never))).toMatch(/"client"/)
    })

    it('Redis down: RedisLockError LOCK_UNAVAILABLE, fast, fn never runs', async () => {
      const own = await startRedis()
      const client = createClient({ url: own.url, socket: { reconnectStrategy: () => 50 } })
      client.on('error', () => {})
      await client.connect()
      await own.stop()
      try {
        const lock = createRedisLock(client, {
          refreshTimeout: 100,
          lease: 1_000,
          commandTimeout: 200,
        })
        let ran = false
        const started = Date.now()
        const error = await lock
          .run('k', async () => {
            ran = true
          })
          .catch((e: unknown) => e)
        expect(isRedisLockError(error) && error.code).toBe('LOCK_UNAVAILABLE')
        expect(ran).toBe(false)
        expect(Date.now() - started).toBeLessThan(2_000)
      } finally {
        client.destroy()
      }
    }, 15_000)
  })
})
