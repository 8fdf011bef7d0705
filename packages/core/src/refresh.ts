import {
  isReauthOptionsError,
  isRefreshError,
  isSessionExpiredError,
  RefreshError,
} from './errors.js'
import type { EngineEvents, Events, RefreshReason } from './events.js'
import type { Grants } from './grant.js'
import type { EngineConfig } from './options.js'
import { LATER } from './request-types.js'
import { isPromise, type Session } from './session.js'
import { authorizationHeader } from './token-set.js'
import type { TokenSet } from './types.js'

type Signal = AbortSignal | null | undefined
/** A signal, or how to make one: called only when the request really waits. */
export type LazySignal = Signal | (() => Signal)

const signalOf = (signal: LazySignal): Signal => (typeof signal === 'function' ? signal() : signal)

/** The single-flight refresh: one grant at a time per engine (and per lock), joined by every caller. */
export interface Refresher {
  /**
   * The current set (as `resource` sees it), refreshed first (requests wait) inside the expiry
   * margin; acquired first when the store is empty and the engine has `acquire`; `undefined`
   * when signed out.
   */
  tokens(
    signal: LazySignal,
    resource?: string,
  ): TokenSet | undefined | Promise<TokenSet | undefined>
  /**
   * What {@link Refresher.tokens} gives when it needs no wait, read synchronously: the set, or
   * `undefined` (signed out); {@link LATER} when only `tokens` can tell (a wait, an asynchronous
   * store, an ended session, a first acquire).
   */
  now(resource?: string): TokenSet | undefined | typeof LATER
  /**
   * Start or join the refresh of `basis` (`undefined`: acquire); a request waiting on it is
   * reported as a `wait` event.
   */
  wait(
    basis: TokenSet | undefined,
    reason: RefreshReason,
    signal: Signal,
    resource?: string,
  ): Promise<TokenSet>
  /** Start or join a refresh, unreported (a manual `engine.refresh()`). */
  shared(
    basis: TokenSet | undefined,
    reason: RefreshReason,
    signal: Signal,
    resource?: string,
  ): Promise<TokenSet>
  /** The store learnt of newer tokens elsewhere: a refresh in flight for older ones ends with them. */
  adopt(tokens: TokenSet): void
}

const noop = () => {}

function abortable<T>(promise: Promise<T>, signal: Signal): Promise<T> {
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

export function createRefresher(
  config: EngineConfig,
  session: Session,
  grants: Grants,
  events: Events,
): Refresher {
  const { lock, lockKey, log, store } = config
  const { counts, emit } = events
  /** The refresh in flight per resource (`''`: the set's own token), with its early adoption. */
  const inflight = new Map<
    string,
    { promise: Promise<TokenSet>; adopt: ((tokens: TokenSet) => void) | undefined }
  >()
  /** No background grant before this time, after a failed one (backoff). */
  let backgroundNotBefore = 0
  let backgroundFailures = 0

  function shared(
    basis: TokenSet | undefined,
    reason: RefreshReason,
    signal: Signal,
    resource?: string,
  ): Promise<TokenSet> {
    const key = resource ?? ''
    const running = inflight.get(key)
    if (running) {
      counts.joins++
      return abortable(running.promise, signal)
    }
    const deferredFor = session.retryNotBefore - Date.now()
    if (deferredFor > 0) {
      // Retry-After is still running: fail fast, without taking a (possibly distributed) lock.
      return Promise.reject(session.deferred(deferredFor))
    }
    const basisHeader = basis && authorizationHeader(basis)
    // One lock for every resource: grants on the one refresh token run one at a time.
    const locked = lock
      .run(lockKey, () => grants.run(basisHeader, reason, resource))
      .catch((error: unknown) => {
        // A failing lock or store is an outage, not an ended session: typed, retryable.
        if (isRefreshError(error) || isSessionExpiredError(error)) throw error
        counts.failures++
        const failure = new RefreshError(
          'The refresh could not run: the lock or the token store failed',
          // A store refusing what it was given (a misconfiguration) will refuse it again.
          { retryable: !isReauthOptionsError(error) },
          { cause: error },
        )
        log.warn('Token refresh failed: the lock or the token store failed', { reason })
        emit('refreshError', { reason, error: failure })
        throw failure
      })
    const entry: { promise: Promise<TokenSet>; adopt: ((tokens: TokenSet) => void) | undefined } = {
      promise: locked,
      adopt: undefined,
    }
    if (store.subscribe) {
      entry.promise = new Promise<TokenSet>((resolve, reject) => {
        entry.adopt = (tokens) => {
          const view = session.view(tokens, resource)
          if (authorizationHeader(view) !== basisHeader && !session.expiresSoon(view)) {
            resolve(view)
          }
        }
        locked.then(resolve, reject)
      })
    }
    inflight.set(key, entry)
    const settle = () => {
      if (inflight.get(key) === entry) inflight.delete(key)
    }
    entry.promise.then(settle, settle)
    locked.catch(noop)
    return abortable(entry.promise, signal)
  }

  function reportWait(
    reason: RefreshReason,
    outcome: EngineEvents['wait']['outcome'],
    started: number,
  ): void {
    emit('wait', { reason, outcome, durationMs: Date.now() - started })
  }

  function wait(
    basis: TokenSet | undefined,
    reason: RefreshReason,
    signal: Signal,
    resource?: string,
  ): Promise<TokenSet> {
    const joined = shared(basis, reason, signal, resource)
    // Nobody listens: a waiting request holds only the shared promise.
    if (!events.listening('wait')) return joined
    const started = Date.now()
    // A chain, not an async function: a waiting request holds no suspended frame.
    return joined.then(
      (tokens) => {
        reportWait(reason, 'refreshed', started)
        return tokens
      },
      (error: unknown) => {
        reportWait(
          reason,
          signal?.aborted && error === signal.reason ? 'aborted' : 'failed',
          started,
        )
        throw error
      },
    )
  }

  /** Inside the refresh-ahead window: start one grant in the background, unless one runs. */
  function refreshAhead(tokens: TokenSet, resource: string | undefined): void {
    const now = Date.now()
    if (inflight.size > 0 || now < backgroundNotBefore || now < session.retryNotBefore) return
    if (!session.inRefreshAhead(tokens, now)) return
    shared(tokens, 'background', undefined, resource).then(
      (fresh) => {
        backgroundFailures = 0
        // A grant that brought back a set still inside the window (a caching refresh
        // function, a server that hands back the same token) must not run on every request.
        backgroundNotBefore = session.inRefreshAhead(fresh) ? Date.now() + 30_000 : 0
      },
      () => {
        // A failed background grant fails no request; the next one waits a little longer
        // (1 s, 2 s, … 30 s), and the margin still makes requests wait before expiry.
        backgroundFailures++
        backgroundNotBefore = Date.now() + Math.min(30_000, 1_000 * 2 ** (backgroundFailures - 1))
      },
    )
  }

  /**
   * The set for a request once the store answered, when it needs no wait: a set outside the
   * expiry margin (starting a background grant inside the refresh-ahead window), `undefined`
   * when signed out, else {@link LATER}.
   */
  function readyFrom(
    stored: TokenSet | undefined,
    resource: string | undefined,
  ): TokenSet | undefined | typeof LATER {
    if (!stored) return session.isEnded || config.acquire ? LATER : undefined
    const current = session.view(stored, resource)
    if (session.expiresSoon(current)) return LATER
    refreshAhead(current, resource)
    return current
  }

  /** The set for a request once the store answered (see {@link Refresher.tokens}). */
  function tokensFrom(
    stored: TokenSet | undefined,
    signal: LazySignal,
    resource: string | undefined,
  ): TokenSet | undefined | Promise<TokenSet | undefined> {
    const ready = readyFrom(stored, resource)
    if (ready !== LATER) return ready
    if (!stored) {
      if (session.isEnded) throw session.endedError()
      // A service's first request (client credentials): acquire, every caller waits for one.
      return wait(undefined, 'proactive', signalOf(signal), resource)
    }
    const current = session.view(stored, resource)
    const waiting = wait(current, 'proactive', signalOf(signal), resource)
    if (current.expiresAt === undefined || current.expiresAt <= Date.now()) return waiting
    return waiting.catch((error: unknown) => {
      // A transient failure before expiry: the current token still works, use it.
      if (
        isRefreshError(error) &&
        current.expiresAt !== undefined &&
        current.expiresAt > Date.now()
      ) {
        return current
      }
      throw error
    })
  }

  /**
   * Chains, not async functions: a request waiting on a refresh holds no suspended frames,
   * and with a synchronous store (memory, Storage) a valid token costs no extra turn.
   */
  function tokens(
    signal: LazySignal,
    resource?: string,
  ): TokenSet | undefined | Promise<TokenSet | undefined> {
    if (typeof signal !== 'function' && signal?.aborted) throw signal.reason
    const stored = session.readNow()
    return isPromise(stored)
      ? stored.then((value) => tokensFrom(value, signal, resource))
      : tokensFrom(stored, signal, resource)
  }

  function now(resource?: string): TokenSet | undefined | typeof LATER {
    // Not even read when the store answers asynchronously: `tokens` reads it once.
    if (session.asyncStore) return LATER
    const stored = session.readNow()
    if (!isPromise(stored)) return readyFrom(stored, resource)
    // Learnt now, on the first call: `tokens` reads it again (and reports its failure).
    stored.catch(noop)
    return LATER
  }

  return {
    tokens,
    now,
    wait,
    shared,
    adopt(fresh) {
      for (const entry of inflight.values()) entry.adopt?.(fresh)
    },
  }
}
