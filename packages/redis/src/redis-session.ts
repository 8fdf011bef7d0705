import type { RedisClientLike } from './client.js'
import { createRedisLock, type RedisLock, type RedisLockOptions } from './redis-lock.js'
import { createRedisStore, type RedisStoreOptions, type RedisTokenStore } from './redis-store.js'

/** Options of {@link createRedisSession}: the store's and the lock's. */
export interface RedisSessionOptions extends RedisStoreOptions, Omit<RedisLockOptions, 'prefix'> {}

/** Engine options for a session shared through Redis: spread it into `createEngine`. */
export interface RedisSession {
  store: RedisTokenStore
  lock: RedisLock
  /** The store's key: one lock per shared token set. */
  lockKey: string
  /** The `refreshTimeout` the lock's lease was checked against. */
  refreshTimeout: number
}

/**
 * A Redis store and lock that fit together, as engine options: the lock is keyed by the
 * store's key (`reauth:lock:<key>`), and the engine gets the `refreshTimeout` the lease was
 * validated against.
 *
 * @example
 * import { createClient } from 'redis'
 * import { createEngine } from '@reauth/core'
 * import { createRedisSession } from '@reauth/redis'
 *
 * const redis = await createClient({ url: process.env.REDIS_URL }).on('error', console.error).connect()
 * const engine = createEngine({ refresh, ...createRedisSession(redis, { key: 'reauth:user-1' }) })
 */
export function createRedisSession(
  client: RedisClientLike,
  options: RedisSessionOptions = {},
): RedisSession {
  const store = createRedisStore(client, options)
  const lock = createRedisLock(client, options)
  return { store, lock, lockKey: store.key, refreshTimeout: lock.settings.refreshTimeout }
}
