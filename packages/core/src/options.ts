import { defaultIsAuthError } from './auth-error.js'
import { ReauthOptionsError } from './errors.js'
import { createLocalLock } from './local-lock.js'
import { createLogger } from './logger.js'
import { createMemoryStore } from './memory-store.js'
import { createOriginMatcher, isPureMatcher, markPure, type OriginMatcher } from './origins.js'
import { createReplayQueue, type ReplayQueue, type ReplayQueueOptions } from './replay-queue.js'
import { tokenSetProblem } from './token-set.js'
import type {
  AcquireFunction,
  IsAuthError,
  Logger,
  OriginPolicy,
  RefreshFunction,
  RefreshLock,
  RevokeFunction,
  TokenSet,
  TokenStore,
} from './types.js'

/** Options of {@link createEngine}. */
export interface EngineOptions {
  /**
   * Exchange the current tokens for new ones (see `@reauth/oauth`, or write your own).
   * Required unless `acquire` is given.
   */
  refresh?: RefreshFunction | undefined
  /**
   * Get tokens without a refresh token — client credentials (`@reauth/oauth`'s
   * `clientCredentials`): called on first use (concurrent first requests wait for one call)
   * and whenever the token must be renewed, when there is no `refresh`.
   */
  acquire?: AcquireFunction | undefined
  /**
   * Revoke the tokens at the server when `clear()` signs out (RFC 7009; `@reauth/oauth`'s
   * `revokeTokens`). The local sign-out happens first and always completes.
   */
  revoke?: RevokeFunction | undefined
  /**
   * Per-resource access tokens (RFC 8707): a map from an API's origin to its resource
   * indicator. A request to that origin carries a token for that resource, got with the one
   * refresh token; grants for different resources run one at a time, so a rotating refresh
   * token is never presented twice. Its origins receive tokens (they extend `origins`).
   */
  resources?: Record<string, string> | undefined
  /**
   * DPoP (RFC 9449): the engine makes an ES256 key pair (private key not extractable) when it
   * has none — the first `acquire`, or a set without `dpopKey` — and hands it to `refresh` /
   * `acquire` as `dpop`; the key is stored with the tokens. Any set whose `tokenType` is `DPoP`
   * is sent with a proof per request, whatever this option says.
   *
   * `{ extractable: true }` makes the private key extractable: needed by a store that
   * serialises the key to share it between processes (`@reauth/redis`). `true` is
   * `{ extractable: false }`.
   */
  dpop?: boolean | { extractable?: boolean | undefined } | undefined
  /** Initial tokens for the default in-memory store. Not allowed together with `store`. */
  tokens?: TokenSet
  /** Where tokens live. Default: in memory. */
  store?: TokenStore
  /** Mutual exclusion around the grant. Default: in-process. */
  lock?: RefreshLock
  /** The lock's key: engines that share a store and lock must share the key. Default `'reauth'`. */
  lockKey?: string
  /**
   * The refresh-ahead window, in ms before expiry: a request in it is sent at once with the
   * current, still-valid token while one grant runs in the background. Bounded by half the
   * token's lifetime (when `issuedAt` is known). Default 60 000.
   */
  refreshAhead?: number
  /**
   * The expiry margin, in ms (clock skew and transit): a token this close to its expiry counts
   * as expired, and a request waits for the refresh. Bounded by a quarter of the token's
   * lifetime (when `issuedAt` is known). Default 5 000.
   */
  expiryMargin?: number
  /** @deprecated The former name of {@link EngineOptions.expiryMargin}. */
  leeway?: number
  /** Give up on a grant after this many ms (a retryable `RefreshError`). Default 10 000. */
  refreshTimeout?: number
  /** Which responses are auth failures. Default: {@link defaultIsAuthError}. */
  isAuthError?: IsAuthError
  /** Origins allowed to receive the token, for every adapter on this engine (an adapter's own `origins` wins). */
  origins?: OriginPolicy
  /**
   * The queue that replays requests after a refresh: its limits (`concurrency`, `maxQueued`),
   * or `queue`, the application's own p-queue, so replays keep its rate limit.
   */
  replay?: ReplayQueueOptions
  /** Log sink; lines never contain token values. */
  logger?: Logger
}

/** The options with their defaults, checked once: what the engine's parts read. */
export interface EngineConfig {
  refresh: RefreshFunction
  acquire: AcquireFunction | undefined
  revoke: RevokeFunction | undefined
  /** Make a DPoP key pair (extractable or not) when a grant needs one and the set has none. */
  dpop: { extractable: boolean } | undefined
  /** The resource indicator a URL's tokens are for, when the engine has `resources`. */
  resourceFor(url: URL): string | undefined
  /** The engine has `resources`: a request's token depends on its URL. */
  hasResources: boolean
  store: TokenStore
  lock: RefreshLock
  lockKey: string
  expiryMargin: number
  refreshAhead: number
  refreshTimeout: number
  isAuthError: IsAuthError
  origins: OriginMatcher | undefined
  queue: ReplayQueue
  log: Required<Logger>
}

/** The largest delay `setTimeout` honours. */
const MAX_TIMEOUT = 2_147_483_647

function requireFunction(value: unknown, name: string): void {
  if (typeof value !== 'function') throw new ReauthOptionsError(`"${name}" must be a function`)
}

function requireNumber(value: unknown, name: string, min: number, integer = false): void {
  if (value === undefined) return
  if (
    typeof value !== 'number' ||
    Number.isNaN(value) ||
    value < min ||
    (integer && value !== Number.POSITIVE_INFINITY && !Number.isInteger(value))
  ) {
    throw new ReauthOptionsError(
      `"${name}" must be ${integer ? 'an integer' : 'a number'} ≥ ${min}`,
    )
  }
}

function validate(options: EngineOptions): void {
  if (typeof options !== 'object' || options === null) {
    throw new ReauthOptionsError('createEngine() needs an options object')
  }
  if (options.acquire !== undefined) requireFunction(options.acquire, 'acquire')
  if (options.refresh !== undefined || options.acquire === undefined) {
    requireFunction(options.refresh, 'refresh')
  }
  if (options.revoke !== undefined) requireFunction(options.revoke, 'revoke')
  if (options.dpop !== undefined && typeof options.dpop !== 'boolean') {
    const extractable = (options.dpop as { extractable?: unknown } | null)?.extractable
    if (
      typeof options.dpop !== 'object' ||
      options.dpop === null ||
      Array.isArray(options.dpop) ||
      (extractable !== undefined && typeof extractable !== 'boolean')
    ) {
      throw new ReauthOptionsError('"dpop" must be a boolean or { extractable?: boolean }')
    }
  }
  if (options.resources !== undefined) resourceMap(options.resources)
  if (options.store !== undefined) {
    for (const method of ['get', 'set', 'clear'] as const) {
      requireFunction(options.store?.[method], `store.${method}`)
    }
    if (options.tokens !== undefined) {
      throw new ReauthOptionsError(
        '"tokens" cannot be combined with "store": put them in the store',
      )
    }
  }
  if (options.lock !== undefined) requireFunction(options.lock?.run, 'lock.run')
  if (options.lockKey !== undefined && (typeof options.lockKey !== 'string' || !options.lockKey)) {
    throw new ReauthOptionsError('"lockKey" must be a non-empty string')
  }
  for (const name of ['leeway', 'expiryMargin', 'refreshAhead'] as const) {
    requireNumber(options[name], name, 0)
    if (options[name] === Number.POSITIVE_INFINITY) {
      throw new ReauthOptionsError(`"${name}" must be finite`)
    }
  }
  requireNumber(options.refreshTimeout, 'refreshTimeout', 1)
  // setTimeout turns a delay above 2^31-1 ms (or Infinity) into 1 ms: every grant would time out.
  if (options.refreshTimeout !== undefined && options.refreshTimeout > MAX_TIMEOUT) {
    throw new ReauthOptionsError(`"refreshTimeout" must be at most ${MAX_TIMEOUT} ms`)
  }
  if (options.isAuthError !== undefined) requireFunction(options.isAuthError, 'isAuthError')
  requireNumber(options.replay?.concurrency, 'replay.concurrency', 1, true)
  requireNumber(options.replay?.maxQueued, 'replay.maxQueued', 0, true)
  if (options.tokens !== undefined) {
    const problem = tokenSetProblem(options.tokens)
    if (problem) throw new ReauthOptionsError(`"tokens": ${problem}`)
  }
  if (options.logger !== undefined && (typeof options.logger !== 'object' || !options.logger)) {
    throw new ReauthOptionsError('"logger" must be an object with debug/info/warn/error methods')
  }
}

/** `resources` checked: exact origins mapped to absolute resource indicators without a fragment. */
function resourceMap(resources: Record<string, string>): Map<string, string> {
  if (typeof resources !== 'object' || resources === null || Array.isArray(resources)) {
    throw new ReauthOptionsError('"resources" must map origins to resource indicators')
  }
  const map = new Map<string, string>()
  for (const [origin, resource] of Object.entries(resources)) {
    let parsed: URL
    try {
      parsed = new URL(origin)
    } catch {
      throw new ReauthOptionsError(`"resources" key "${origin}" is not an absolute URL`)
    }
    if (parsed.origin === 'null') {
      throw new ReauthOptionsError(`"resources" key "${origin}" has no origin`)
    }
    let indicator: URL | undefined
    try {
      indicator = typeof resource === 'string' ? new URL(resource) : undefined
    } catch {
      indicator = undefined
    }
    if (indicator?.hash !== '') {
      throw new ReauthOptionsError(
        `"resources" value for "${origin}" must be an absolute URI without a fragment`,
      )
    }
    map.set(parsed.origin, resource)
  }
  return map
}

/** Check the options (a typed `ReauthOptionsError` naming the option) and fill in the defaults. */
export function resolveOptions(options: EngineOptions): EngineConfig {
  validate(options)
  const expiryMargin = options.expiryMargin ?? options.leeway ?? 5_000
  const { acquire } = options
  const resources = options.resources && resourceMap(options.resources)
  const listed = options.origins && createOriginMatcher(options.origins)
  // A resource's origin receives that resource's token: it extends the engine's origins.
  let origins: OriginMatcher | undefined = listed
  if (resources && resources.size > 0) {
    origins = (url) => resources.has(url.origin) || listed?.(url) === true
    if (!listed || isPureMatcher(listed)) markPure(origins)
  }
  return {
    // Without `refresh`, renewing a token is acquiring a new one.
    refresh:
      options.refresh ??
      (({ signal, startedAt, resource, dpop }) =>
        (acquire as AcquireFunction)({ signal, startedAt, resource, dpop })),
    acquire,
    revoke: options.revoke,
    dpop:
      options.dpop === true
        ? { extractable: false }
        : typeof options.dpop === 'object'
          ? { extractable: options.dpop.extractable === true }
          : undefined,
    resourceFor: (url) => resources?.get(url.origin),
    hasResources: resources !== undefined,
    store: options.store ?? createMemoryStore(options.tokens),
    lock: options.lock ?? createLocalLock(),
    lockKey: options.lockKey ?? 'reauth',
    expiryMargin,
    refreshAhead: Math.max(options.refreshAhead ?? 60_000, expiryMargin),
    refreshTimeout: options.refreshTimeout ?? 10_000,
    isAuthError: options.isAuthError ?? defaultIsAuthError,
    origins,
    queue: createReplayQueue(options.replay),
    log: createLogger(options.logger),
  }
}
