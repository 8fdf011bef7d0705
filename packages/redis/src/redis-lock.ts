import { ReauthOptionsError, type RefreshLock } from '@reauth/core'
import { command, isRedisClient, type RedisClientLike, subscriberOf } from './client.js'
import { RedisLockError } from './errors.js'
import { runInHold } from './hold.js'
import { duration, text } from './options.js'

/** Options of {@link createRedisLock}. */
export interface RedisLockOptions {
  /** Prefix of the lock's Redis key: the key is `prefix + lockKey`. Default `'reauth:lock:'`. */
  prefix?: string
  /** The engine's `refreshTimeout` (ms): the lease must outlast it. Default 10 000, the engine's default. */
  refreshTimeout?: number
  /**
   * How long (ms) the lock is held at most: a process that dies holding it blocks the others
   * for this long. Must be longer than `refreshTimeout`. Default `refreshTimeout + 5 000`.
   */
  lease?: number
  /** Give up waiting for the lock after this many ms (`LOCK_TIMEOUT`). Default `lease + refreshTimeout`. */
  waitTimeout?: number
  /**
   * A waiter wakes on the holder's release message (pub/sub); if that message is lost, it
   * tries again after this many ms at most (sooner when the lease ends sooner). Default 1 000.
   */
  retryInterval?: number
  /** Give up on one Redis command after this many ms. Default 2 000. */
  commandTimeout?: number
}

/** A {@link RefreshLock} in Redis, with the settings it runs with. */
export interface RedisLock extends RefreshLock {
  /** The settings after defaults, in ms. */
  readonly settings: {
    readonly prefix: string
    readonly refreshTimeout: number
    readonly lease: number
    readonly waitTimeout: number
    readonly retryInterval: number
    readonly commandTimeout: number
  }
}

/** `{1}` when the lock was taken, else `{0, pttl}`. */
const ACQUIRE_SCRIPT = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {1} end
return {0, redis.call('PTTL', KEYS[1])}
`

/** Delete the lock only if this owner still holds it, and tell the waiters. */
const RELEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], 'released')
  return 1
end
return 0
`

function bounded<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined
  return Promise.race([
    promise,
    new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), ms)
    }),
  ]).finally(() => clearTimeout(timer))
}

/**
 * A refresh lock shared by many processes: a single-instance Redis lock (`SET key owner NX
 * PX lease`), released only by its owner (compare-and-delete in Lua). A process that dies
 * holding it blocks the others for at most `lease`; the lease must be longer than the
 * engine's `refreshTimeout`, so a live holder always finishes (or times out) inside it.
 *
 * Waiters do not spin: they wait for the holder's release message (pub/sub, on a duplicate
 * connection) or, if it never comes, until the lease ends or `retryInterval` passes, and
 * give up after `waitTimeout` with a {@link RedisLockError} (`LOCK_TIMEOUT`). The engine
 * reports it as a retryable `RefreshError`.
 *
 * @example
 * import { createRedisLock, createRedisStore } from '@reauth/redis'
 *
 * const engine = createEngine({
 *   refresh,
 *   refreshTimeout: 10_000,
 *   store: createRedisStore(redis),
 *   lock: createRedisLock(redis, { refreshTimeout: 10_000, lease: 15_000 }),
 * })
 */
export function createRedisLock(
  client: RedisClientLike,
  options: RedisLockOptions = {},
): RedisLock {
  if (!isRedisClient(client)) {
    throw new ReauthOptionsError('"client" must be a node-redis client (createClient())')
  }
  if (typeof options !== 'object' || options === null) {
    throw new ReauthOptionsError('createRedisLock() options must be an object')
  }
  const prefix = options.prefix === '' ? '' : text(options.prefix, 'prefix', 'reauth:lock:')
  const refreshTimeout = duration(options.refreshTimeout, 'refreshTimeout', 10_000)
  const lease = duration(options.lease, 'lease', refreshTimeout + 5_000)
  if (lease <= refreshTimeout) {
    throw new ReauthOptionsError(
      `"lease" (${lease} ms) must be longer than "refreshTimeout" (${refreshTimeout} ms)`,
    )
  }
  const waitTimeout = duration(options.waitTimeout, 'waitTimeout', lease + refreshTimeout)
  const retryInterval = duration(options.retryInterval, 'retryInterval', 1_000)
  const commandTimeout = duration(options.commandTimeout, 'commandTimeout', 2_000)

  async function acquire(redisKey: string, channel: string): Promise<string> {
    const owner = globalThis.crypto.randomUUID()
    const deadline = Date.now() + waitTimeout
    let watch: { ready: Promise<void>; stop: () => void } | undefined
    let released = false
    let wake: (() => void) | undefined
    try {
      for (;;) {
        let reply: unknown
        try {
          reply = await command(
            client,
            ['EVAL', ACQUIRE_SCRIPT, '1', redisKey, owner, String(lease)],
            commandTimeout,
          )
        } catch (error) {
          throw new RedisLockError(
            'LOCK_UNAVAILABLE',
            redisKey,
            `Redis did not answer while taking the refresh lock "${redisKey}"`,
            { cause: error },
          )
        }
        const [taken, ttl] = (Array.isArray(reply) ? reply : []).map(Number)
        if (taken === 1) return owner
        const remaining = deadline - Date.now()
        if (remaining <= 0) {
          throw new RedisLockError(
            'LOCK_TIMEOUT',
            redisKey,
            `Gave up waiting for the refresh lock "${redisKey}" after ${waitTimeout} ms: another process holds it`,
          )
        }
        if (!watch) {
          // Subscribe before waiting, then try once more: a release between the failed SET
          // and the subscription would otherwise be missed.
          watch = subscriberOf(client).listen(channel, () => {
            released = true
            wake?.()
          })
          await bounded(
            watch.ready.catch(() => {}),
            Math.min(commandTimeout, remaining),
          )
          continue
        }
        if (released) {
          released = false
          continue
        }
        const untilLeaseEnds = ttl !== undefined && ttl > 0 ? ttl + 5 : retryInterval
        const delay = Math.max(1, Math.min(retryInterval, untilLeaseEnds, remaining))
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delay)
          wake = () => {
            clearTimeout(timer)
            resolve()
          }
        })
        wake = undefined
        released = false
      }
    } finally {
      watch?.stop()
    }
  }

  async function release(redisKey: string, channel: string, owner: string): Promise<void> {
    try {
      await command(client, ['EVAL', RELEASE_SCRIPT, '1', redisKey, owner, channel], commandTimeout)
    } catch {
      // Redis is unreachable: the lease ends the hold instead.
    }
  }

  return {
    settings: { prefix, refreshTimeout, lease, waitTimeout, retryInterval, commandTimeout },
    async run(key, fn) {
      const redisKey = `${prefix}${key}`
      const channel = `${redisKey}:released`
      const owner = await acquire(redisKey, channel)
      try {
        return await runInHold(fn)
      } finally {
        await release(redisKey, channel, owner)
      }
    },
  }
}
