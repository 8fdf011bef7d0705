import {
  isSessionEnd,
  ReauthOptionsError,
  RefreshError,
  type SessionEnd,
  type StoredSession,
  storedSessionProblem,
  type TokenSet,
  type TokenStore,
} from '@reauth/core'
import { command, isRedisClient, type RedisClientLike, subscriberOf } from './client.js'
import { createDpopKeyReader, dpopKeyToJson } from './dpop-key.js'
import {
  type Cipher,
  createCipher,
  ENCRYPTED_PREFIX,
  type EncryptionKey,
  LEGACY_PREFIX,
} from './encryption.js'
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
   * Encrypt the stored value with AES-GCM (WebCrypto) under this key. Off by default. Every
   * process sharing the set needs the same key. The ciphertext is bound to the Redis key and
   * to the version it was written as: a value copied from another key, or an older value of
   * this key written back over a later one (a rollback to a spent refresh token), is refused.
   * A set's DPoP private key (`dpopKey`) is inside the same ciphertext; without this option
   * it is in Redis in clear, as exposed as the refresh token next to it.
   */
  encryptionKey?: EncryptionKey
}

/**
 * A {@link TokenStore} in Redis, shared by many processes. `subscribe` is always there: it
 * tells the engine, through Redis pub/sub, when another process wrote a new set — or ended
 * the session (a {@link SessionEnd}).
 */
export interface RedisTokenStore extends TokenStore {
  get(): Promise<StoredSession | undefined>
  set(value: StoredSession): Promise<void>
  clear(): Promise<void>
  subscribe(listener: (value: StoredSession | undefined) => void): () => void
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

/** The fields written as they are (`resources`: RFC 8707 tokens); `dpopKey` as JWKs (see dpop-key.ts). */
const FIELDS = [
  'accessToken',
  'tokenType',
  'refreshToken',
  'expiresAt',
  'issuedAt',
  'scope',
  'idToken',
  'resources',
] as const

const END_FIELDS = ['error', 'errorDescription', 'status', 'at'] as const

/** A copy with only the known fields: nothing else is written to, or read from, Redis. */
function pick(value: StoredSession): StoredSession {
  const out: Record<string, unknown> = {}
  if (isSessionEnd(value)) {
    for (const field of END_FIELDS) {
      if (value.ended[field] !== undefined) out[field] = value.ended[field]
    }
    return { ended: out } as unknown as SessionEnd
  }
  for (const field of FIELDS) if (value[field] !== undefined) out[field] = value[field]
  return out as unknown as TokenSet
}

/** Attempts of an unconditional encrypted write that races other writers (outside a lock hold). */
const WRITE_ATTEMPTS = 10

/**
 * A token store in Redis for engines in many Node processes, on your node-redis v5 or v6
 * client. It holds the token set, or after a terminal refresh failure the end of the session
 * (no tokens), so every engine on the key fails fast and fires `sessionExpired` once.
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
 * - **DPoP.** A set's `dpopKey` is written as JWKs (private `d` included) in the same value as
 *   the tokens — inside the ciphertext with `encryptionKey` — and read back as a
 *   `CryptoKeyPair` whose private key is not extractable (the store keeps the JWK to write it
 *   again). A clear or a session end removes it with the tokens. Its private key must be
 *   extractable to be written (`createEngine({ dpop: { extractable: true } })`); a
 *   non-extractable one makes `set` throw a `ReauthOptionsError` naming `dpopKey`.
 * - **Sealed** (with `encryptionKey`). AES-GCM bound to the key name and the version: a value
 *   that does not decrypt, or whose version is not the hash's (an older ciphertext written
 *   back), is refused with a non-retryable `RefreshError` and never returned, so an old
 *   refresh token is never presented. Rewriting both the version and the value to an older
 *   pair is not detectable from Redis alone: restrict who can write the key (Redis ACLs).
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
  const dpopKeys = createDpopKeyReader()

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

  async function decode(data: string, version: number): Promise<StoredSession> {
    let json = data
    const encrypted = data.startsWith(ENCRYPTED_PREFIX) || data.startsWith(LEGACY_PREFIX)
    if (cipher) {
      if (data.startsWith(LEGACY_PREFIX)) {
        throw corrupt(
          'uses an older encryption format that does not bind the version: sign in again',
        )
      }
      if (!encrypted) throw corrupt('is not encrypted, but "encryptionKey" is set')
      const opened = await cipher.decrypt(data, version)
      if ('problem' in opened) {
        if (opened.problem === 'rolled back') {
          throw corrupt(
            `was sealed for another version than the current one (${version}): an older value written back? Refused`,
          )
        }
        throw corrupt(
          `could not be decrypted: wrong "encryptionKey", or the value was altered`,
          opened.cause,
        )
      }
      json = opened.plain
    } else if (encrypted) {
      throw corrupt('is encrypted: pass the same "encryptionKey" to every process')
    }
    let value: unknown
    try {
      value = JSON.parse(json)
    } catch {
      throw corrupt('is not JSON')
    }
    // The key pair is JWKs here: the rest is checked first, then the key imported.
    const isSet = typeof value === 'object' && value !== null && !isSessionEnd(value)
    const { dpopKey: jwks, ...rest } = (isSet ? value : {}) as { dpopKey?: unknown }
    const problem = storedSessionProblem(isSet ? rest : value)
    if (problem) throw corrupt(`is malformed: ${problem}`)
    const session = pick(value as StoredSession)
    if (jwks === undefined || !isSet || isSessionEnd(session)) {
      // No key stored any more: this process keeps none either (it lives with the tokens).
      dpopKeys.forget()
    } else {
      try {
        session.dpopKey = await dpopKeys.read(jwks)
      } catch {
        // core's message never quotes a key; none is passed on anyway.
        throw corrupt('is malformed: "dpopKey" is not an ES256 key pair (JWK)')
      }
    }
    return session
  }

  /** The JSON to write: the known fields, and the DPoP key pair as JWKs. */
  async function encode(value: StoredSession): Promise<string> {
    const picked: Record<string, unknown> = { ...pick(value) }
    if (!isSessionEnd(value) && value.dpopKey !== undefined) {
      picked.dpopKey = await dpopKeyToJson(value.dpopKey)
    }
    return JSON.stringify(picked)
  }

  async function read(): Promise<{ version: number; value: StoredSession | undefined }> {
    const reply = await run(['HMGET', key, 'v', 'data'], 'read')
    const [version, data] = Array.isArray(reply) ? reply : []
    const current = Number(version ?? 0) || 0
    if (typeof data !== 'string') dpopKeys.forget()
    return {
      version: current,
      value: typeof data === 'string' ? await decode(data, current) : undefined,
    }
  }

  async function readVersion(): Promise<number> {
    return Number(await run(['HGET', key, 'v'], 'read')) || 0
  }

  /** Names this store's writes in change messages: its own need no re-read. */
  const writer = globalThis.crypto.randomUUID()

  /** One EVAL of the script on top of `base` (`undefined`: any version); `[written, version]`. */
  async function attempt(base: number | undefined, data: string): Promise<[boolean, number]> {
    const reply = await run(
      ['EVAL', SET_SCRIPT, '1', key, base === undefined ? '' : String(base), data, channel, writer],
      data === '' ? 'clear' : 'write',
    )
    const [written, version] = (Array.isArray(reply) ? reply : []).map(Number)
    return [written === 1, version ?? Number.NaN]
  }

  async function write(json: string | undefined): Promise<void> {
    const hold = currentHold()
    const base = hold?.bases.get(key)
    let result: [boolean, number]
    if (!cipher || json === undefined) {
      result = await attempt(base, json ?? '')
    } else {
      // The ciphertext is sealed for the version it becomes, so it is written on top of a known
      // version; outside a hold, a write that lost the race to another writer seals again.
      let tries = 0
      do {
        const on = base ?? (await readVersion())
        result = await attempt(on, await cipher.encrypt(json, on + 1))
      } while (!result[0] && base === undefined && ++tries < WRITE_ATTEMPTS)
    }
    const [written, version] = result
    if (!written) {
      throw new RefreshError(
        base === undefined
          ? `The token set in Redis (key "${key}") kept changing while it was written (${WRITE_ATTEMPTS} attempts): not written`
          : `The token set in Redis (key "${key}") changed during the refresh (version ${version}, read at ${base}): not overwritten`,
        { retryable: true },
      )
    }
    hold?.bases.set(key, version)
  }

  const listeners = new Set<(value: StoredSession | undefined) => void>()
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
            listener(current.value)
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
      const { version, value } = await read()
      const hold = currentHold()
      if (hold && !hold.bases.has(key)) hold.bases.set(key, version)
      return value
    },
    async set(value) {
      const problem = storedSessionProblem(value)
      if (problem) throw new ReauthOptionsError(`"tokens": ${problem}`)
      if (isSessionEnd(value) || value.dpopKey === undefined) dpopKeys.forget()
      await write(await encode(value))
    },
    async clear() {
      dpopKeys.forget()
      await write(undefined)
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
