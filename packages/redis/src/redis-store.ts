import {
  ReauthOptionsError,
  RefreshError,
  type TokenSet,
  type TokenStore,
  tokenSetProblem,
} from '@reauth/core'
import { command, isRedisClient, type RedisClientLike, subscriberOf } from './client.js'
import { type Cipher, createCipher, ENCRYPTED_PREFIX, type EncryptionKey } from './encryption.js'
import { currentHold } from './hold.js'
import { duration, text } from './options.js'

/** Options of {@link createRedisStore}. */
export interface RedisStoreOptions {
  /**
   * The Redis key of the token set (a hash with fields `v`, the version, and `data`).
   * Changes are published on the channel `<key>:changed`. Default `'reauth:tokens'`.
   */
  key?: string
  /** Give up on one Redis command after this many ms. Default 2 000. */
  commandTimeout?: number
  /**
   * Encrypt the stored set with AES-GCM (WebCrypto) under this key. Off by default. Every
   * process sharing the set needs the same key.
   */
  encryptionKey?: EncryptionKey
}

/**
 * A {@link TokenStore} in Redis, shared by many processes. `subscribe` is always there: it
 * tells the engine, through Redis pub/sub, when another process wrote a new set.
 */
export interface RedisTokenStore extends TokenStore {
  get(): Promise<TokenSet | undefined>
  set(tokens: TokenSet): Promise<void>
  clear(): Promise<void>
  subscribe(listener: (tokens: TokenSet | undefined) => void): () => void
  /** The Redis key of the set. */
  readonly key: string
}

/**
 * Writes `data` on top of version `ARGV[1]` (`''`: any version) and publishes
 * `"<version> <writer>"` (no token in the message); returns `{written, version}`.
 */
const SET_SCRIPT = `
local current = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if ARGV[1] ~= '' and tonumber(ARGV[1]) ~= current then return {0, current} end
local version = current + 1
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], 'data')
  redis.call('HSET', KEYS[1], 'v', version)
else
  redis.call('HSET', KEYS[1], 'v', version, 'data', ARGV[2])
end
redis.call('PUBLISH', ARGV[3], version .. ' ' .. ARGV[4])
return {1, version}
`

const FIELDS = [
  'accessToken',
  'tokenType',
  'refreshToken',
  'expiresAt',
  'issuedAt',
  'scope',
  'idToken',
] as const

function pick(tokens: TokenSet): TokenSet {
  const out: Record<string, unknown> = {}
  for (const field of FIELDS) if (tokens[field] !== undefined) out[field] = tokens[field]
  return out as unknown as TokenSet
}

/**
 * A token store in Redis for engines in many Node processes, on your node-redis v5 client.
 *
 * - **Atomic.** The set is one JSON value in one hash field, written by one Lua script
 *   together with its version: a reader never sees half a set.
 * - **Never backwards.** Each write bumps a version. While a Redis lock from
 *   {@link createRedisLock} is held, the store remembers the version the hold first read,
 *   and a `set` (or `clear`) in that hold writes only if the version is still the same;
 *   otherwise it writes nothing and throws a retryable `RefreshError`. So a process whose
 *   lease ran out cannot put an older refresh token back. Outside a hold (`setTokens` after
 *   a sign-in, sign-out) the write is unconditional: a new session replaces the old one.
 * - **Prompt.** Writes are published; `subscribe` re-reads and tells the engine at once.
 * - **Bounded.** Every command gives up after `commandTimeout`; Redis being down is a
 *   retryable `RefreshError`, never a hang.
 *
 * @example
 * import { createClient } from 'redis'
 * import { createEngine } from '@reauth/core'
 * import { createRedisLock, createRedisStore } from '@reauth/redis'
 *
 * const redis = await createClient({ url: process.env.REDIS_URL }).on('error', console.error).connect()
 * const engine = createEngine({
 *   refresh,
 *   store: createRedisStore(redis, { key: 'reauth:tokens' }),
 *   lock: createRedisLock(redis),
 * })
 */
export function createRedisStore(
  client: RedisClientLike,
  options: RedisStoreOptions = {},
): RedisTokenStore {
  if (!isRedisClient(client)) {
    throw new ReauthOptionsError('"client" must be a node-redis client (createClient())')
  }
  if (typeof options !== 'object' || options === null) {
    throw new ReauthOptionsError('createRedisStore() options must be an object')
  }
  const key = text(options.key, 'key', 'reauth:tokens')
  const commandTimeout = duration(options.commandTimeout, 'commandTimeout', 2_000)
  const cipher: Cipher | undefined =
    options.encryptionKey === undefined ? undefined : createCipher(options.encryptionKey, key)
  const channel = `${key}:changed`

  async function run(args: string[], doing: string): Promise<unknown> {
    try {
      return await command(client, args, commandTimeout)
    } catch (error) {
      throw new RefreshError(
        `Redis did not ${doing} the token set (key "${key}")`,
        { retryable: true },
        { cause: error },
      )
    }
  }

  function corrupt(reason: string, cause?: unknown): RefreshError {
    return new RefreshError(
      `The token set in Redis (key "${key}") ${reason}`,
      { retryable: false },
      cause === undefined ? {} : { cause },
    )
  }

  async function decode(data: string): Promise<TokenSet> {
    let json = data
    if (cipher) {
      if (!data.startsWith(ENCRYPTED_PREFIX))
        throw corrupt('is not encrypted, but "encryptionKey" is set')
      try {
        json = await cipher.decrypt(data)
      } catch (error) {
        throw corrupt('could not be decrypted: wrong "encryptionKey"?', error)
      }
    } else if (data.startsWith(ENCRYPTED_PREFIX)) {
      throw corrupt('is encrypted: pass the same "encryptionKey" to every process')
    }
    let value: unknown
    try {
      value = JSON.parse(json)
    } catch {
      throw corrupt('is not JSON')
    }
    const problem = tokenSetProblem(value)
    if (problem) throw corrupt(`is malformed: ${problem}`)
    return pick(value as TokenSet)
  }

  async function read(): Promise<{ version: number; tokens: TokenSet | undefined }> {
    const reply = await run(['HMGET', key, 'v', 'data'], 'read')
    const [version, data] = Array.isArray(reply) ? reply : []
    return {
      version: Number(version ?? 0) || 0,
      tokens: typeof data === 'string' ? await decode(data) : undefined,
    }
  }

  /** Names this store's writes in change messages: its own need no re-read. */
  const writer = globalThis.crypto.randomUUID()

  async function write(data: string): Promise<void> {
    const hold = currentHold()
    const base = hold?.bases.get(key)
    const reply = await run(
      ['EVAL', SET_SCRIPT, '1', key, base === undefined ? '' : String(base), data, channel, writer],
      data === '' ? 'clear' : 'write',
    )
    const [written, version] = (Array.isArray(reply) ? reply : []).map(Number)
    if (written !== 1 || version === undefined) {
      throw new RefreshError(
        `The token set in Redis (key "${key}") changed during the refresh (version ${version}, read at ${base}): not overwritten`,
        { retryable: true },
      )
    }
    hold?.bases.set(key, version)
  }

  const listeners = new Set<(tokens: TokenSet | undefined) => void>()
  let stopListening: (() => void) | undefined
  let notified = 0
  let reading = false
  let again = false

  async function onChange(message: string): Promise<void> {
    const [version = '0', from] = message.split(' ')
    if (from === writer || Number(version) <= notified) return
    if (reading) {
      again = true
      return
    }
    reading = true
    try {
      do {
        again = false
        const current = await read().catch(() => undefined)
        if (!current || current.version <= notified) continue
        notified = current.version
        for (const listener of [...listeners]) {
          try {
            listener(current.tokens)
          } catch {}
        }
      } while (again)
    } finally {
      reading = false
    }
  }

  return {
    key,
    async get() {
      const { version, tokens } = await read()
      const hold = currentHold()
      if (hold && !hold.bases.has(key)) hold.bases.set(key, version)
      return tokens
    },
    async set(tokens) {
      const problem = tokenSetProblem(tokens)
      if (problem) throw new ReauthOptionsError(`"tokens": ${problem}`)
      const json = JSON.stringify(pick(tokens))
      await write(cipher ? await cipher.encrypt(json) : json)
    },
    async clear() {
      await write('')
    },
    subscribe(listener) {
      listeners.add(listener)
      if (!stopListening) {
        stopListening = subscriberOf(client).listen(channel, (message) => {
          void onChange(message)
        }).stop
      }
      return () => {
        listeners.delete(listener)
        if (listeners.size === 0) {
          stopListening?.()
          stopListening = undefined
        }
      }
    },
  }
}
