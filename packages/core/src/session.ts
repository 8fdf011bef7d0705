import { RefreshError, SessionExpiredError } from './errors.js'
import type { Events, RefreshReason } from './events.js'
import type { EngineConfig } from './options.js'
import { isSessionEnd } from './token-set.js'
import type { SessionEnd, StoredSession, TokenSet } from './types.js'

/**
 * What the store says about the session, and the engine's memory of how it ended: every part
 * of the engine reads tokens through here, so a store shared with other engines, tabs and
 * processes is always the truth.
 */
export interface Session {
  /** The token set, or `undefined` (signed out, or ended: see {@link Session.ended}). */
  read(): Promise<TokenSet | undefined>
  /** The same, without a promise when the store answers synchronously (memory, Storage). */
  readNow(): TokenSet | undefined | Promise<TokenSet | undefined>
  /** The store has answered with a promise (Redis, IndexedDB): `undefined` until it answered once. */
  readonly asyncStore: boolean | undefined
  /** The token set, or the reason there is none: the ended session's error, or "no tokens". */
  require(what?: string): Promise<TokenSet>
  /** Take in a value the store reported (its `subscribe`): a set, an end, or nothing. */
  observe(value: StoredSession | undefined): TokenSet | undefined
  /**
   * The store still holds `tokens` — or, for `undefined`, still holds nothing (nobody signed
   * in, out, acquired or rotated meanwhile).
   */
  stillHolds(tokens: TokenSet | undefined): Promise<boolean>
  /**
   * The set as a request to `resource` uses it: its access token for that resource (RFC 8707),
   * with the set's refresh token. A resource without a token yet counts as expired.
   */
  view(tokens: TokenSet, resource: string | undefined): TokenSet
  /** Inside the expiry margin (or expired): a request waits for the refresh. */
  expiresSoon(tokens: TokenSet, now?: number): boolean
  /** Inside the refresh-ahead window: a background grant may start. */
  inRefreshAhead(tokens: TokenSet, now?: number): boolean
  /** Until when (ms since the epoch) `tokens` is neither inside the expiry margin nor the refresh-ahead window. */
  calmUntil(tokens: TokenSet): number
  /** The error a request gets while the session is ended. */
  endedError(): SessionExpiredError
  /** The session is ended (a terminal failure here or on the store), until tokens are set or cleared. */
  readonly isEnded: boolean
  /** This engine's grant failed for good: write the end to the store, tell the listeners once. */
  end(failure: SessionExpiredError, reason: RefreshReason): Promise<void>
  /** Another engine on the store ended the session: fail fast too, and tell this engine's listeners once. */
  adoptEnd(value: SessionEnd): void
  /** Newer tokens found (in the store, or by the lock's holder): counted and reported, no grant. */
  adopted(tokens: TokenSet, reason: RefreshReason, durationMs: number): TokenSet
  /** `setTokens` / `clear`: a grant started before must not overwrite the new session. */
  restart(): void
  /** Bumped by {@link Session.restart}: a grant compares it to tell a superseded outcome. */
  readonly generation: number
  /** No grant before this time (ms), after a `Retry-After`. */
  retryNotBefore: number
  /** A retryable error for a refresh deferred by `Retry-After` (`ms` still to wait). */
  deferred(ms: number): RefreshError
}

/** A promise (or any thenable) rather than a value: what a store, a read or a wait gave back. */
export function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as Promise<T> | null | undefined)?.then === 'function'
}

export function createSession(config: EngineConfig, events: Events): Session {
  const { store, log } = config
  /** The ended session, while the store holds no tokens after a terminal failure. */
  let ended: SessionExpiredError | undefined
  /** The `at` of the last session end this engine reported: its own, or one read from the store. */
  let endedAt: number | undefined
  /** The store has given back a session end: it keeps them, so it is the truth about the end. */
  let storeKeepsEnds = false
  let generation = 0
  let asyncStore: boolean | undefined

  function endError(value: SessionEnd): SessionExpiredError {
    const { error, errorDescription, status } = value.ended
    return new SessionExpiredError(
      `The session has expired${error ? `: the token endpoint answered "${error}"` : ''}`,
      { error, errorDescription, status },
    )
  }

  /** `ms`, bounded by a `fraction` of the token's lifetime when it is known. */
  function lead(tokens: TokenSet, expiresAt: number, ms: number, fraction: number): number {
    if (tokens.issuedAt === undefined) return ms
    return Math.min(ms, Math.max(0, (expiresAt - tokens.issuedAt) * fraction))
  }

  /** `ms` before expiry, bounded by a `fraction` of the token's lifetime when it is known. */
  function within(tokens: TokenSet, ms: number, fraction: number, now: number): boolean {
    const { expiresAt } = tokens
    if (expiresAt === undefined) return false
    return expiresAt - now <= lead(tokens, expiresAt, ms, fraction)
  }

  const session: Session = {
    retryNotBefore: 0,
    get generation() {
      return generation
    },
    get isEnded() {
      return ended !== undefined
    },

    async read() {
      const value = store.get()
      asyncStore = isPromise(value)
      return session.observe((await value) ?? undefined)
    },

    get asyncStore() {
      return asyncStore
    },

    readNow() {
      const value = store.get()
      asyncStore = isPromise(value)
      if (asyncStore) {
        return Promise.resolve(value).then((stored) => session.observe(stored ?? undefined))
      }
      return session.observe((value as StoredSession | undefined | null) ?? undefined)
    },

    async require(what = 'No tokens to refresh') {
      const tokens = await session.read()
      if (tokens) return tokens
      throw ended ? session.endedError() : new SessionExpiredError(what)
    },

    observe(value) {
      if (isSessionEnd(value)) {
        session.adoptEnd(value)
        return undefined
      }
      // A store that keeps ends is the truth: a set, or nothing at all, means no ended state.
      if (value !== undefined || storeKeepsEnds) ended = undefined
      return value
    },

    async stillHolds(tokens) {
      const value = (await store.get()) ?? undefined
      if (tokens === undefined) return value === undefined
      return (
        value !== undefined &&
        !isSessionEnd(value) &&
        value.accessToken === tokens.accessToken &&
        value.refreshToken === tokens.refreshToken
      )
    },

    view(tokens, resource) {
      if (resource === undefined) return tokens
      const token = tokens.resources?.[resource]
      const view: TokenSet = { accessToken: '', tokenType: 'Bearer', expiresAt: 0 }
      if (token) {
        view.accessToken = token.accessToken
        view.tokenType = token.tokenType
        if (token.expiresAt === undefined) delete view.expiresAt
        else view.expiresAt = token.expiresAt
        if (token.issuedAt !== undefined) view.issuedAt = token.issuedAt
        if (token.scope !== undefined) view.scope = token.scope
      }
      if (tokens.refreshToken !== undefined) view.refreshToken = tokens.refreshToken
      if (tokens.idToken !== undefined) view.idToken = tokens.idToken
      if (tokens.dpopKey !== undefined) view.dpopKey = tokens.dpopKey
      return view
    },

    expiresSoon: (tokens, now = Date.now()) => within(tokens, config.expiryMargin, 1 / 4, now),
    inRefreshAhead: (tokens, now = Date.now()) => within(tokens, config.refreshAhead, 1 / 2, now),
    calmUntil(tokens) {
      const { expiresAt } = tokens
      if (expiresAt === undefined) return Number.POSITIVE_INFINITY
      return (
        expiresAt -
        Math.max(
          lead(tokens, expiresAt, config.expiryMargin, 1 / 4),
          lead(tokens, expiresAt, config.refreshAhead, 1 / 2),
        )
      )
    },

    endedError() {
      return new SessionExpiredError(
        'The session has expired: sign in again',
        { error: ended?.error, errorDescription: ended?.errorDescription, status: ended?.status },
        { cause: ended },
      )
    },

    async end(failure, reason) {
      // The store keeps the end (no tokens): every engine on it fails fast and is told once.
      const value: SessionEnd = {
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
      endedAt = value.ended.at
      await store.set(value)
      if (told) return
      events.counts.sessionsExpired++
      log.warn('Session expired; tokens cleared', { reason, error: failure.error })
      events.emit('sessionExpired', { error: failure })
    },

    adoptEnd(value) {
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
      events.counts.sessionsExpired++
      log.warn('Session expired elsewhere; the store holds no tokens', {
        error: value.ended.error,
      })
      events.emit('sessionExpired', { error: ended })
    },

    adopted(tokens, reason, durationMs) {
      events.counts.adopted++
      log.info('Adopted newer tokens from the store; no grant', { reason })
      events.emit('refresh', {
        reason,
        adopted: true,
        rotated: false,
        expiresAt: tokens.expiresAt,
        durationMs,
      })
      return tokens
    },

    restart() {
      ended = undefined
      session.retryNotBefore = 0
      generation++
    },

    deferred(ms) {
      return new RefreshError('The refresh is deferred: the token endpoint asked to retry later', {
        retryable: true,
        retryAfter: ms,
      })
    },
  }
  return session
}
