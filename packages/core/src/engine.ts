import { defaultIsAuthError } from './auth-error.js'
import {
  errorForRequest,
  isReauthError,
  isRefreshError,
  issuedRefreshToken,
  ReauthOptionsError,
  RefreshError,
  SessionExpiredError,
} from './errors.js'
import { classifyRefreshFailure, readOAuthErrorBody } from './failure.js'
import { createLocalLock } from './local-lock.js'
import { createLogger, describeUrl } from './logger.js'
import { createMemoryStore } from './memory-store.js'
import { createOriginMatcher, type OriginMatcher } from './origins.js'
import { ReplayQueue, type ReplayQueueOptions } from './replay-queue.js'
import { authorizationHeader, isSessionEnd, tokenSetProblem } from './token-set.js'
import type {
  AuthResponse,
  IsAuthError,
  Logger,
  OriginPolicy,
  RefreshFunction,
  RefreshLock,
  SessionEnd,
  StoredSession,
  TokenSet,
  TokenStore,
} from './types.js'
import { resolveRequestUrl } from './url.js'

/** Options of {@link createEngine}. */
export interface EngineOptions {
  /** Exchange the current tokens for new ones (see `@reauth/oauth`, or write your own). */
  refresh: RefreshFunction
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
  /** Limits of the queue that replays requests after a refresh. */
  replay?: ReplayQueueOptions
  /** Log sink; lines never contain token values. */
  logger?: Logger
}

/** Why a refresh started. */
export type RefreshReason = 'background' | 'proactive' | 'reactive' | 'manual'

/** Payloads of the engine's events. None carries a token value. */
export interface EngineEvents {
  /** New tokens are in the store: from a grant, or adopted from another holder (`adopted: true`, no grant). */
  refresh: {
    reason: RefreshReason
    adopted: boolean
    rotated: boolean
    expiresAt: number | undefined
    durationMs: number
  }
  /** A refresh failed without ending the session; tokens are kept. */
  refreshError: { reason: RefreshReason; error: RefreshError }
  /** The session ended; tokens were cleared. Fires once per ended session. */
  sessionExpired: { error: SessionExpiredError }
  /** A grant started: the refresh function is being called. Ends with `refresh`, `refreshError` or `sessionExpired`. */
  refreshStart: { reason: RefreshReason }
  /** A request stopped waiting for a refresh: it got new tokens, the refresh failed, or its signal aborted the wait. */
  wait: { reason: RefreshReason; outcome: 'refreshed' | 'failed' | 'aborted'; durationMs: number }
}

/** Counters readable for tests and dashboards. */
export interface EngineStats {
  /** Refresh grants started (calls of `refresh`). */
  grants: number
  /** Grants started proactively inside the expiry margin (requests waited for them). */
  proactive: number
  /** Grants started in the background inside the refresh-ahead window (no request waited). */
  background: number
  /** Callers that joined a refresh already in flight. */
  joins: number
  /** Refreshes that found newer tokens in the store and made no grant. */
  adopted: number
  /** Auth failures for a request sent with an already-replaced token: retried, no grant. */
  staleRetries: number
  /** Requests replayed after a refresh or stale retry. */
  replays: number
  /** Auth failures seen by adapters. */
  authErrors: number
  /** Requests answered with their auth failure because the body could not be replayed. */
  unreplayable: number
  /** Failed grants (terminal and transient). */
  failures: number
  /** Sessions ended by a terminal failure. */
  sessionsExpired: number
}

/** A request as the engine sees it; adapters translate their client's request to this. */
export interface EngineRequest<R> {
  /** The absolute URL, for the origin policy. */
  url: string | URL
  /** The method, for log lines. */
  method?: string
  /** The request already carries `Authorization`: it is left alone. */
  hasAuthorization?: boolean
  /** The caller opted out for this request. */
  skip?: boolean
  /** The adapter's origin policy; the engine's `origins` when absent. */
  allowed?: OriginMatcher | undefined
  /** The caller's signal: aborts the wait on a refresh or in the replay queue. */
  signal?: AbortSignal | null | undefined
  /** Send the request with this `Authorization` value (or none). Called once, or twice for a replay. */
  send(authorization: string | undefined): Promise<R>
  /** The status and headers of a result. */
  response(result: R): AuthResponse
  /** Why the request cannot be sent again, or `undefined` when it can. */
  replayable?(): string | undefined
  /** Release a result that will not reach the caller (e.g. cancel its body). */
  discard?(result: R): void
}

/** The target of {@link Engine.authorize}. */
export type AuthorizeTarget = Pick<
  EngineRequest<unknown>,
  'url' | 'hasAuthorization' | 'skip' | 'allowed' | 'signal'
>

/**
 * The engine: owns the tokens and the refresh. Adapters for axios, ky and fetch share it.
 */
export interface Engine {
  /** The current token set, refreshed first when it expires within `leeway`; `undefined` when signed out. */
  getToken(options?: { signal?: AbortSignal | null | undefined }): Promise<TokenSet | undefined>
  /** Store a new token set (after sign-in); ends a `SessionExpiredError` state. */
  setTokens(tokens: TokenSet): Promise<void>
  /** Sign out: clear the store. Later requests go without a token. */
  clear(): Promise<void>
  /** Refresh now (joins a refresh in flight). */
  refresh(options?: { signal?: AbortSignal | null | undefined }): Promise<TokenSet>
  /** Subscribe to an event; returns the unsubscribe function. */
  on<E extends keyof EngineEvents>(
    event: E,
    listener: (payload: EngineEvents[E]) => void,
  ): () => void
  /** A snapshot of the counters. */
  stats(): EngineStats
  /** Is this response an auth failure? */
  isAuthError(response: AuthResponse): boolean
  /** The `Authorization` value for a request, or `undefined` when it must go untouched. */
  authorize(
    target: AuthorizeTarget,
    options?: { signal?: AbortSignal | null | undefined },
  ): Promise<string | undefined>
  /**
   * After an auth failure of a request sent with `sent`: the `Authorization` value to retry
   * with. Stale token → the current one, no grant; otherwise starts or joins the refresh.
   */
  recover(
    sent: string | undefined,
    options?: { signal?: AbortSignal | null | undefined },
  ): Promise<string>
  /**
   * An auth failure whose request cannot be sent again (e.g. a stream body): counted, and
   * logged with the reason; the caller gets the failure as the client reports it.
   */
  notReplayable(request: { method?: string | undefined; url: string | URL }, reason: string): void
  /** Run a replay through the bounded queue. */
  replay<T>(
    send: () => Promise<T>,
    options?: { signal?: AbortSignal | null | undefined },
  ): Promise<T>
  /** The whole request path (attach, send, detect, recover, replay) for a wrapper like fetch. */
  run<R>(request: EngineRequest<R>): Promise<R>
  /** Log through the engine's logger (adapters use it; never pass token values). */
  readonly log: Required<Logger>
  /** The engine-wide origin policy, when `origins` was given. */
  readonly origins: OriginMatcher | undefined
  /** Stop listening to the store. */
  dispose(): void
}

const noop = () => {}

/** The largest delay `setTimeout` honours. */
const MAX_TIMEOUT = 2_147_483_647

function abortable<T>(promise: Promise<T>, signal: AbortSignal | null | undefined): Promise<T> {
  if (!signal) return promise
  if (signal.aborted) return Promise.reject(signal.reason)
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort)
        resolve(value)
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(error)
      },
    )
  })
}

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
  requireFunction(options.refresh, 'refresh')
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

/**
 * Create the engine that owns the tokens and the single-flight refresh.
 *
 * @example
 * import { createEngine } from '@reauth/core'
 *
 * const engine = createEngine({
 *   tokens: await signIn(),
 *   refresh: async ({ tokens, signal }) => myRefresh(tokens.refreshToken, signal),
 * })
 */
export function createEngine(options: EngineOptions): Engine {
  validate(options)
  const refreshFn = options.refresh
  const store = options.store ?? createMemoryStore(options.tokens)
  const lock = options.lock ?? createLocalLock()
  const lockKey = options.lockKey ?? 'reauth'
  const expiryMargin = options.expiryMargin ?? options.leeway ?? 5_000
  const refreshAhead = Math.max(options.refreshAhead ?? 60_000, expiryMargin)
  const refreshTimeout = options.refreshTimeout ?? 10_000
  const isAuthErrorFn = options.isAuthError ?? defaultIsAuthError
  const engineOrigins = options.origins && createOriginMatcher(options.origins)
  const queue = new ReplayQueue(options.replay)
  const log = createLogger(options.logger)

  const stats: EngineStats = {
    grants: 0,
    proactive: 0,
    background: 0,
    joins: 0,
    adopted: 0,
    staleRetries: 0,
    replays: 0,
    authErrors: 0,
    unreplayable: 0,
    failures: 0,
    sessionsExpired: 0,
  }
  const listeners: { [E in keyof EngineEvents]: Set<(payload: EngineEvents[E]) => void> } = {
    refresh: new Set(),
    refreshError: new Set(),
    sessionExpired: new Set(),
    refreshStart: new Set(),
    wait: new Set(),
  }
  function emit<E extends keyof EngineEvents>(event: E, payload: EngineEvents[E]): void {
    for (const listener of listeners[event]) {
      try {
        listener(payload)
      } catch (error) {
        log.error(`A "${event}" listener threw`, { error: String((error as Error)?.name) })
      }
    }
  }

  /** The ended session, while the store is empty after a terminal failure. */
  let ended: SessionExpiredError | undefined
  /** No grant before this time (ms), after a `Retry-After`. */
  let retryNotBefore = 0
  /** Bumped by setTokens/clear: a grant started before must not overwrite the new session. */
  let generation = 0
  let inflight: Promise<TokenSet> | undefined
  /** Signals handed to running grants: a request carrying one is the refresh's own request. */
  const grantSignals = new WeakSet<AbortSignal>()
  /** Resolves the refresh in flight early when the store learns of newer tokens elsewhere. */
  let adoptInflight: ((tokens: TokenSet) => void) | undefined

  /** The `at` of the last session end this engine reported: its own, or one read from the store. */
  let endedAt: number | undefined
  /** The store has given back a session end: it keeps them, so it is the truth about the end. */
  let storeKeepsEnds = false

  /** The store still holds `tokens` (nobody signed in, out, or rotated meanwhile). */
  async function stillHolds(tokens: TokenSet): Promise<boolean> {
    const value = (await store.get()) ?? undefined
    return (
      value !== undefined &&
      !isSessionEnd(value) &&
      value.accessToken === tokens.accessToken &&
      value.refreshToken === tokens.refreshToken
    )
  }

  function endError(value: SessionEnd): SessionExpiredError {
    const { error, errorDescription, status } = value.ended
    return new SessionExpiredError(
      `The session has expired${error ? `: the token endpoint answered "${error}"` : ''}`,
      { error, errorDescription, status },
    )
  }

  /** Another engine on the store ended the session: fail fast too, and tell this engine's listeners once. */
  function adoptEnd(value: SessionEnd): void {
    storeKeepsEnds = true
    if (endedAt === value.ended.at || ended !== undefined) {
      // Already reported (this engine's own end, one seen before, or an end written by an
      // overlapping grant of the same session): stay ended, tell no one twice.
      endedAt = value.ended.at
      ended ??= endError(value)
      return
    }
    endedAt = value.ended.at
    ended = endError(value)
    stats.sessionsExpired++
    log.warn('Session expired elsewhere; the store holds no tokens', { error: value.ended.error })
    emit('sessionExpired', { error: ended })
  }

  /** What the store says now: a set (a session goes on), an end, or nothing (signed out). */
  function observe(value: StoredSession | undefined): TokenSet | undefined {
    if (isSessionEnd(value)) {
      adoptEnd(value)
      return undefined
    }
    // A store that keeps ends is the truth: a set, or nothing at all, means no ended state.
    if (value !== undefined || storeKeepsEnds) ended = undefined
    return value
  }

  async function read(): Promise<TokenSet | undefined> {
    return observe((await store.get()) ?? undefined)
  }

  /** `ms` before expiry, bounded by a `fraction` of the token's lifetime when it is known. */
  function within(tokens: TokenSet, ms: number, fraction: number, now: number): boolean {
    if (tokens.expiresAt === undefined) return false
    let bound = ms
    if (tokens.issuedAt !== undefined) {
      bound = Math.min(bound, Math.max(0, (tokens.expiresAt - tokens.issuedAt) * fraction))
    }
    return tokens.expiresAt - now <= bound
  }

  /** Inside the expiry margin (or expired): a request waits for the refresh. */
  function expiresSoon(tokens: TokenSet, now = Date.now()): boolean {
    return within(tokens, expiryMargin, 1 / 4, now)
  }

  /** No background grant before this time, after a failed one (backoff). */
  let backgroundNotBefore = 0
  let backgroundFailures = 0

  /** Inside the refresh-ahead window: start one grant in the background, unless one runs. */
  function refreshAheadOf(tokens: TokenSet): void {
    const now = Date.now()
    if (inflight || now < backgroundNotBefore || now < retryNotBefore) return
    if (!within(tokens, refreshAhead, 1 / 2, now)) return
    refreshShared(tokens, 'background', undefined).then(
      (fresh) => {
        backgroundFailures = 0
        backgroundNotBefore = 0
        // A grant that brought back a set still inside the window (a caching refresh
        // function, a server that hands back the same token) must not run on every request.
        if (within(fresh, refreshAhead, 1 / 2, Date.now()))
          backgroundNotBefore = Date.now() + 30_000
      },
      () => {
        // A failed background grant fails no request; the next one waits a little longer
        // (1 s, 2 s, … 30 s), and the margin still makes requests wait before expiry.
        backgroundFailures++
        backgroundNotBefore = Date.now() + Math.min(30_000, 1_000 * 2 ** (backgroundFailures - 1))
      },
    )
  }

  function deferred(retryAfter: number): RefreshError {
    return new RefreshError('The refresh is deferred: the token endpoint asked to retry later', {
      retryable: true,
      retryAfter,
    })
  }

  function endedError(): SessionExpiredError {
    return new SessionExpiredError(
      'The session has expired: sign in again',
      { error: ended?.error, errorDescription: ended?.errorDescription, status: ended?.status },
      { cause: ended },
    )
  }

  const unsubscribe = store.subscribe?.((value) => {
    const tokens = observe(value)
    if (tokens) adoptInflight?.(tokens)
  })

  async function grant(basis: string | undefined, reason: RefreshReason): Promise<TokenSet> {
    const started = Date.now()
    const startedGeneration = generation
    const stored = await read()
    if (!stored) throw ended ? endedError() : new SessionExpiredError('No tokens to refresh')
    if (basis !== undefined && authorizationHeader(stored) !== basis && !expiresSoon(stored)) {
      // Another holder of the lock refreshed while we waited: adopt, no grant.
      stats.adopted++
      log.debug('Adopted tokens refreshed elsewhere', { reason })
      emit('refresh', {
        reason,
        adopted: true,
        rotated: false,
        expiresAt: stored.expiresAt,
        durationMs: Date.now() - started,
      })
      return stored
    }
    const now = Date.now()
    if (retryNotBefore > now) throw deferred(retryNotBefore - now)
    stats.grants++
    if (reason === 'proactive') stats.proactive++
    if (reason === 'background') stats.background++
    emit('refreshStart', { reason })
    const controller = new AbortController()
    grantSignals.add(controller.signal)
    let timer: ReturnType<typeof setTimeout> | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const error = new RefreshError(`The refresh timed out after ${refreshTimeout} ms`, {
          retryable: true,
        })
        controller.abort(error)
        reject(error)
      }, refreshTimeout)
    })
    let result: unknown
    try {
      result = await Promise.race([
        Promise.resolve().then(() =>
          refreshFn({ tokens: stored, signal: controller.signal, startedAt: now }),
        ),
        timeout,
      ])
    } catch (thrown) {
      return fail(thrown, stored, reason, startedGeneration)
    } finally {
      clearTimeout(timer)
    }
    const problem = tokenSetProblem(result)
    if (problem) {
      const issued = (result as { refreshToken?: unknown } | null)?.refreshToken
      return fail(
        new RefreshError(
          `The refresh function returned an invalid token set: ${problem}`,
          { retryable: true, field: /"(\w+)"/.exec(problem)?.[1] },
          { refreshToken: typeof issued === 'string' ? issued : undefined },
        ),
        stored,
        reason,
        startedGeneration,
      )
    }
    if (generation !== startedGeneration) return superseded(reason)
    const fresh = result as TokenSet
    // Without issuedAt the leeway could not be bounded by half the lifetime, and a token
    // living less than `leeway` would be refreshed on every call.
    const next: TokenSet = { issuedAt: now, ...fresh }
    // RFC 6749 §6: no refresh_token in the response means keep the old one.
    if (next.refreshToken === undefined && stored.refreshToken !== undefined) {
      next.refreshToken = stored.refreshToken
    }
    // Written only over the set this grant started from: a sign-in or sign-out by another
    // engine meanwhile wins, and this grant's tokens belong to the old session.
    if (!(await stillHolds(stored))) return superseded(reason)
    await store.set(next)
    retryNotBefore = 0
    ended = undefined
    const rotated = fresh.refreshToken !== undefined && fresh.refreshToken !== stored.refreshToken
    log.info('Tokens refreshed', { reason, rotated, expiresAt: next.expiresAt })
    emit('refresh', {
      reason,
      adopted: false,
      rotated,
      expiresAt: next.expiresAt,
      durationMs: Date.now() - started,
    })
    return next
  }

  /**
   * setTokens or clear ran while a grant was out: whatever the grant brought back (tokens or
   * a failure) belongs to the old session, and the user's new one wins.
   */
  async function superseded(reason: RefreshReason): Promise<TokenSet> {
    log.info('Discarded a refresh outcome: tokens were set or cleared meanwhile', { reason })
    const current = await read()
    if (!current) throw new SessionExpiredError('Signed out during the refresh')
    return current
  }

  async function fail(
    thrown: unknown,
    sent: TokenSet,
    reason: RefreshReason,
    startedGeneration: number,
  ): Promise<TokenSet> {
    stats.failures++
    // Its failure is about the old session: it must not clear (or defer) the new one.
    if (generation !== startedGeneration) return superseded(reason)
    const issued = issuedRefreshToken(thrown)
    if (issued !== undefined && issued !== sent.refreshToken) {
      // A 2xx response rotated the refresh token and then failed a check: the old one is
      // spent at the server. Keep the rest of the set; the next refresh presents the new one.
      if (!(await stillHolds(sent))) return superseded(reason)
      await store.set({ ...sent, refreshToken: issued })
      log.warn('Stored the new refresh token of a token response that failed a check', { reason })
    }
    const body = await readOAuthErrorBody(thrown)
    if (generation !== startedGeneration) return superseded(reason)
    const failure = classifyRefreshFailure(
      thrown,
      [sent.accessToken, sent.refreshToken, sent.idToken, issued],
      Date.now(),
      body,
    )
    if (isRefreshError(failure)) {
      if (failure.retryAfter !== undefined) retryNotBefore = Date.now() + failure.retryAfter
      log.warn('Token refresh failed; tokens kept', {
        reason,
        retryable: failure.retryable,
        status: failure.status,
        error: failure.error,
        field: failure.field,
      })
      emit('refreshError', { reason, error: failure })
      throw failure
    }
    // Only the session this grant started from may end: what another engine, tab or process
    // wrote meanwhile wins.
    const value = (await store.get()) ?? undefined
    if (generation !== startedGeneration) return superseded(reason)
    if (isSessionEnd(value)) {
      // Another holder ended it already: tell this engine's listeners once, write nothing.
      adoptEnd(value)
      throw endedError()
    }
    if (value === undefined) return superseded(reason)
    if (value.refreshToken !== sent.refreshToken || value.accessToken !== sent.accessToken) {
      // Another tab or process rotated the refresh token first (or signed in again): adopt.
      stats.adopted++
      log.info('Refresh token was rotated elsewhere; adopted the newer tokens', { reason })
      emit('refresh', {
        reason,
        adopted: true,
        rotated: false,
        expiresAt: value.expiresAt,
        durationMs: 0,
      })
      return value
    }
    // The store keeps the end (no tokens): every engine on it fails fast and is told once.
    const end: SessionEnd = {
      ended: {
        error: failure.error,
        errorDescription: failure.errorDescription,
        status: failure.status,
        at: Date.now(),
      },
    }
    // An overlapping grant elsewhere may have ended the same session meanwhile: tell once.
    const told = ended !== undefined
    ended = failure
    endedAt = end.ended.at
    await store.set(end)
    if (!told) {
      stats.sessionsExpired++
      log.warn('Session expired; tokens cleared', { reason, error: failure.error })
      emit('sessionExpired', { error: failure })
    }
    throw failure
  }

  function refreshShared(
    basis: TokenSet,
    reason: RefreshReason,
    signal: AbortSignal | null | undefined,
  ): Promise<TokenSet> {
    if (inflight) {
      stats.joins++
      return abortable(inflight, signal)
    }
    const deferredFor = retryNotBefore - Date.now()
    if (deferredFor > 0) {
      // Retry-After is still running: fail fast, without taking a (possibly distributed) lock.
      return Promise.reject(deferred(deferredFor))
    }
    const basisHeader = authorizationHeader(basis)
    const locked = lock
      .run(lockKey, () => grant(basisHeader, reason))
      .catch((error: unknown) => {
        // A failing lock or store is an outage, not an ended session: typed, retryable.
        if (isReauthError(error)) throw error
        stats.failures++
        const failure = new RefreshError(
          'The refresh could not run: the lock or the token store failed',
          { retryable: true },
          { cause: error },
        )
        log.warn('Token refresh failed: the lock or the token store failed', { reason })
        emit('refreshError', { reason, error: failure })
        throw failure
      })
    let current: Promise<TokenSet> = locked
    if (store.subscribe) {
      current = new Promise<TokenSet>((resolve, reject) => {
        adoptInflight = (tokens) => {
          if (authorizationHeader(tokens) !== basisHeader && !expiresSoon(tokens)) resolve(tokens)
        }
        locked.then(resolve, reject)
      })
    }
    inflight = current
    const settle = () => {
      if (inflight === current) {
        inflight = undefined
        adoptInflight = undefined
      }
    }
    current.then(settle, settle)
    locked.catch(noop)
    return abortable(current, signal)
  }

  /** A request waiting for the shared refresh: reported as a `wait` event when it ends. */
  async function waitFor(
    basis: TokenSet,
    reason: RefreshReason,
    signal: AbortSignal | null | undefined,
  ): Promise<TokenSet> {
    const started = Date.now()
    let outcome: EngineEvents['wait']['outcome'] = 'failed'
    try {
      const tokens = await refreshShared(basis, reason, signal)
      outcome = 'refreshed'
      return tokens
    } catch (error) {
      if (signal?.aborted && error === signal.reason) outcome = 'aborted'
      throw error
    } finally {
      emit('wait', { reason, outcome, durationMs: Date.now() - started })
    }
  }

  async function getToken(
    options: { signal?: AbortSignal | null | undefined } = {},
  ): Promise<TokenSet | undefined> {
    const { signal } = options
    if (signal?.aborted) throw signal.reason
    const tokens = await read()
    if (!tokens) {
      if (ended) throw endedError()
      return undefined
    }
    if (!expiresSoon(tokens)) {
      refreshAheadOf(tokens)
      return tokens
    }
    try {
      return await waitFor(tokens, 'proactive', signal)
    } catch (error) {
      // A transient failure before expiry: the current token still works, use it.
      if (
        isRefreshError(error) &&
        tokens.expiresAt !== undefined &&
        tokens.expiresAt > Date.now()
      ) {
        return tokens
      }
      throw error
    }
  }

  const engine: Engine = {
    log,
    origins: engineOrigins,
    getToken,

    async setTokens(tokens) {
      const problem = tokenSetProblem(tokens)
      if (problem) throw new ReauthOptionsError(`"tokens": ${problem}`)
      ended = undefined
      retryNotBefore = 0
      generation++
      await store.set({ ...tokens })
    },

    async clear() {
      // An explicit sign-out ends the expired-session state too: later requests go anonymous.
      ended = undefined
      generation++
      await store.clear()
    },

    async refresh(opts = {}) {
      if (opts.signal?.aborted) throw opts.signal.reason
      const tokens = await read()
      if (!tokens) throw ended ? endedError() : new SessionExpiredError('No tokens to refresh')
      return refreshShared(tokens, 'manual', opts.signal)
    },

    on(event, listener) {
      const set = listeners[event] as Set<typeof listener>
      set.add(listener)
      return () => {
        set.delete(listener)
      }
    },

    stats: () => ({ ...stats }),

    isAuthError(response) {
      try {
        return isAuthErrorFn(response)
      } catch (error) {
        log.error('"isAuthError" threw; treating the response as no auth failure', {
          error: String((error as Error)?.name),
        })
        return false
      }
    },

    async authorize(target, opts = {}) {
      if (target.skip || target.hasAuthorization) return undefined
      // The refresh function's own request (it passed the context signal on): never wait on
      // the refresh it belongs to, or it would wait on itself.
      if (target.signal && grantSignals.has(target.signal)) return undefined
      const allowed = target.allowed ?? engineOrigins
      const url = resolveRequestUrl(target.url)
      if (!url || !allowed?.(url)) return undefined
      const tokens = await getToken({ signal: opts.signal ?? target.signal })
      return tokens && authorizationHeader(tokens)
    },

    async recover(sent, opts = {}) {
      stats.authErrors++
      const { signal } = opts
      if (signal?.aborted) throw signal.reason
      const current = await read()
      if (!current) throw ended ? endedError() : new SessionExpiredError('No tokens to refresh')
      const header = authorizationHeader(current)
      if (header !== sent && !expiresSoon(current)) {
        stats.staleRetries++
        return header
      }
      return authorizationHeader(await waitFor(current, 'reactive', signal))
    },

    notReplayable(request, reason) {
      stats.authErrors++
      stats.unreplayable++
      log.warn(`Not replaying ${describeUrl(request.method, request.url)}: ${reason}`)
    },

    replay(send, opts = {}) {
      stats.replays++
      const queuedGeneration = generation
      return queue.run(async () => {
        // A replay that waited in the queue while the session ended (terminal failure, or a
        // sign-out) must not go out with the token it was given before.
        if (ended || generation !== queuedGeneration) {
          const current = await read()
          if (!current && ended) throw endedError()
          if (!current) throw new SessionExpiredError('Signed out before the request was replayed')
        }
        return send()
      }, opts.signal)
    },

    async run(request) {
      const authorization = await engine.authorize(request)
      const first = await request.send(authorization)
      if (authorization === undefined || !engine.isAuthError(request.response(first))) return first
      const reason = request.replayable?.()
      if (reason !== undefined) {
        engine.notReplayable(request, reason)
        return first
      }
      let next: string
      try {
        next = await engine.recover(authorization, { signal: request.signal })
      } catch (error) {
        // Waiters share one failure object: each caller gets its own copy.
        throw errorForRequest(error, {})
      } finally {
        request.discard?.(first)
      }
      return engine.replay(() => request.send(next), { signal: request.signal })
    },

    dispose() {
      unsubscribe?.()
    },
  }
  return engine
}
