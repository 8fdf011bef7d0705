import { isRefreshError, isSessionExpiredError, RefreshError } from './errors.js'
import type { EngineEvents, Events, RefreshReason } from './events.js'
import type { Grants } from './grant.js'
import type { EngineConfig } from './options.js'
import type { Session } from './session.js'
import { authorizationHeader } from './token-set.js'
import type { TokenSet } from './types.js'

type Signal = AbortSignal | null | undefined

/** The single-flight refresh: one grant at a time per engine (and per lock), joined by every caller. */
export interface Refresher {
  /** The current set, refreshed first (requests wait) inside the expiry margin; `undefined` when signed out. */
  tokens(signal: Signal): Promise<TokenSet | undefined>
  /** Start or join the refresh of `basis`; a request waiting on it is reported as a `wait` event. */
  wait(basis: TokenSet, reason: RefreshReason, signal: Signal): Promise<TokenSet>
  /** Start or join a refresh, unreported (a manual `engine.refresh()`). */
  shared(basis: TokenSet, reason: RefreshReason, signal: Signal): Promise<TokenSet>
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
  let inflight: Promise<TokenSet> | undefined
  /** Resolves the refresh in flight early when the store learns of newer tokens elsewhere. */
  let adoptInflight: ((tokens: TokenSet) => void) | undefined
  /** No background grant before this time, after a failed one (backoff). */
  let backgroundNotBefore = 0
  let backgroundFailures = 0

  function shared(basis: TokenSet, reason: RefreshReason, signal: Signal): Promise<TokenSet> {
    if (inflight) {
      counts.joins++
      return abortable(inflight, signal)
    }
    const deferredFor = session.retryNotBefore - Date.now()
    if (deferredFor > 0) {
      // Retry-After is still running: fail fast, without taking a (possibly distributed) lock.
      return Promise.reject(session.deferred(deferredFor))
    }
    const basisHeader = authorizationHeader(basis)
    const locked = lock
      .run(lockKey, () => grants.run(basisHeader, reason))
      .catch((error: unknown) => {
        // A failing lock or store is an outage, not an ended session: typed, retryable.
        if (isRefreshError(error) || isSessionExpiredError(error)) throw error
        counts.failures++
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
          if (authorizationHeader(tokens) !== basisHeader && !session.expiresSoon(tokens)) {
            resolve(tokens)
          }
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

  async function wait(basis: TokenSet, reason: RefreshReason, signal: Signal): Promise<TokenSet> {
    const started = Date.now()
    let outcome: EngineEvents['wait']['outcome'] = 'failed'
    try {
      const tokens = await shared(basis, reason, signal)
      outcome = 'refreshed'
      return tokens
    } catch (error) {
      if (signal?.aborted && error === signal.reason) outcome = 'aborted'
      throw error
    } finally {
      emit('wait', { reason, outcome, durationMs: Date.now() - started })
    }
  }

  /** Inside the refresh-ahead window: start one grant in the background, unless one runs. */
  function refreshAhead(tokens: TokenSet): void {
    const now = Date.now()
    if (inflight || now < backgroundNotBefore || now < session.retryNotBefore) return
    if (!session.inRefreshAhead(tokens, now)) return
    shared(tokens, 'background', undefined).then(
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

  async function tokens(signal: Signal): Promise<TokenSet | undefined> {
    if (signal?.aborted) throw signal.reason
    const current = await session.read()
    if (!current) {
      if (session.isEnded) throw session.endedError()
      return undefined
    }
    if (!session.expiresSoon(current)) {
      refreshAhead(current)
      return current
    }
    try {
      return await wait(current, 'proactive', signal)
    } catch (error) {
      // A transient failure before expiry: the current token still works, use it.
      if (
        isRefreshError(error) &&
        current.expiresAt !== undefined &&
        current.expiresAt > Date.now()
      ) {
        return current
      }
      throw error
    }
  }

  return {
    tokens,
    wait,
    shared,
    adopt(fresh) {
      adoptInflight?.(fresh)
    },
  }
}
