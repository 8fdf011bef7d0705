import type { RefreshError, SessionExpiredError } from './errors.js'
import type { Logger } from './types.js'

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
  /**
   * `clear()` signed out: the store is cleared. With `revoke`, `revoked` tells whether the
   * server revoked the tokens; `error` is why not (typed, no token in it). The local sign-out
   * completes either way.
   */
  signOut: { revoked: boolean; error?: unknown }
  /**
   * A request stopped waiting for a refresh: it got new tokens, the refresh failed, or its
   * signal aborted the wait (reported for waits that began while a listener was subscribed).
   */
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

/** The engine's listeners and counters. */
export interface Events {
  /** The live counters (the engine's parts increment them). */
  readonly counts: EngineStats
  emit<E extends keyof EngineEvents>(event: E, payload: EngineEvents[E]): void
  /** Someone listens to `event` (else a part may skip what only the event needs). */
  listening(event: keyof EngineEvents): boolean
  on<E extends keyof EngineEvents>(
    event: E,
    listener: (payload: EngineEvents[E]) => void,
  ): () => void
}

/** Listeners that throw are logged (by error name only) and never break the engine. */
export function createEvents(log: Required<Logger>): Events {
  const counts: EngineStats = {
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
    signOut: new Set(),
  }
  return {
    counts,
    emit(event, payload) {
      for (const listener of listeners[event]) {
        try {
          listener(payload)
        } catch (error) {
          log.error(`A "${event}" listener threw`, { error: String((error as Error)?.name) })
        }
      }
    },
    listening: (event) => listeners[event].size > 0,
    on(event, listener) {
      const set = listeners[event] as Set<typeof listener>
      set.add(listener)
      return () => {
        set.delete(listener)
      }
    },
  }
}
