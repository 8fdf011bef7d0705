import { createEngine, type RefreshLock, type StoredSession, type TokenStore } from '@reauth/core'
import { createClient } from 'redis'
import { expectTypeOf, test } from 'vitest'
import {
  createRedisLock,
  createRedisSession,
  createRedisStore,
  isRedisLockError,
  type RedisClientLike,
  type RedisLockError,
  type RedisSession,
} from './index.js'

test('a node-redis v5 client fits (v6: test/redis/support/clients.ts), and the results are a TokenStore and a RefreshLock', () => {
  const client = createClient()
  expectTypeOf(client).toMatchTypeOf<RedisClientLike>()
  const store = createRedisStore(client, { key: 'k', encryptionKey: new Uint8Array(32) })
  expectTypeOf(store).toMatchTypeOf<TokenStore>()
  expectTypeOf(store.get).returns.toEqualTypeOf<Promise<StoredSession | undefined>>()
  expectTypeOf(store.subscribe).toBeFunction()
  const lock = createRedisLock(client, { refreshTimeout: 10_000, lease: 15_000 })
  expectTypeOf(lock).toMatchTypeOf<RefreshLock>()
  expectTypeOf(lock.run('k', async () => 1)).toEqualTypeOf<Promise<number>>()
})

test('a session spreads into createEngine', () => {
  const session = createRedisSession(createClient(), { key: 'user-1' })
  expectTypeOf(session).toEqualTypeOf<RedisSession>()
  createEngine({ refresh: async ({ tokens }) => tokens, ...session })
  // @ts-expect-error: the lease must be a number
  createRedisLock(createClient(), { lease: '15s' })
})

test('isRedisLockError narrows', () => {
  const error: unknown = undefined
  if (isRedisLockError(error)) expectTypeOf(error.code).toEqualTypeOf<RedisLockError['code']>()
})
