import {
  isRefreshError,
  issuedRefreshToken,
  RefreshError,
  type SessionExpiredError,
} from './errors.js'
import type { Events, RefreshReason } from './events.js'
import { classifyRefreshFailure, readOAuthErrorBody } from './failure.js'
import type { EngineConfig } from './options.js'
import type { Session } from './session.js'
import { authorizationHeader, isSessionEnd, tokenSetProblem } from './token-set.js'
import type { TokenSet } from './types.js'

/** One grant, run inside the lock: it reads the store, calls `refresh`, and writes the outcome. */
export interface Grants {
  /**
   * Refresh the set in the store, unless it is no longer the one sent with `basis` (another
   * holder of the lock refreshed meanwhile: adopt it, no grant).
   */
  run(basis: string | undefined, reason: RefreshReason): Promise<TokenSet>
  /** Signals handed to running grants: a request carrying one is the refresh's own request. */
  readonly signals: WeakSet<AbortSignal>
}

export function createGrants(config: EngineConfig, session: Session, events: Events): Grants {
  const { store, log, refreshTimeout } = config
  const { counts, emit } = events
  const signals = new WeakSet<AbortSignal>()

  /** `refresh` with a timeout that aborts its signal: what it resolved, or what it threw. */
  async function call(stored: TokenSet, startedAt: number): Promise<unknown> {
    const controller = new AbortController()
    signals.add(controller.signal)
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
    try {
      return await Promise.race([
        Promise.resolve().then(() =>
          config.refresh({ tokens: stored, signal: controller.signal, startedAt }),
        ),
        timeout,
      ])
    } finally {
      clearTimeout(timer)
    }
  }

  async function run(basis: string | undefined, reason: RefreshReason): Promise<TokenSet> {
    const started = Date.now()
    const startedGeneration = session.generation
    const stored = await session.require()
    if (
      basis !== undefined &&
      authorizationHeader(stored) !== basis &&
      !session.expiresSoon(stored)
    ) {
      // Another holder of the lock refreshed while we waited: adopt, no grant.
      return session.adopted(stored, reason, Date.now() - started)
    }
    const now = Date.now()
    if (session.retryNotBefore > now) throw session.deferred(session.retryNotBefore - now)
    counts.grants++
    if (reason === 'proactive') counts.proactive++
    if (reason === 'background') counts.background++
    emit('refreshStart', { reason })
    let result: unknown
    try {
      result = await call(stored, now)
    } catch (thrown) {
      return fail(thrown, stored, reason, startedGeneration)
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
    if (session.generation !== startedGeneration) return superseded(reason)
    const fresh = result as TokenSet
    // Without issuedAt the margins could not be bounded by the lifetime, and a token living
    // less than the margin would be refreshed on every call.
    const next: TokenSet = { issuedAt: now, ...fresh }
    // RFC 6749 §6: no refresh_token in the response means keep the old one.
    if (next.refreshToken === undefined && stored.refreshToken !== undefined) {
      next.refreshToken = stored.refreshToken
    }
    // Written only over the set this grant started from: a sign-in or sign-out by another
    // engine meanwhile wins, and this grant's tokens belong to the old session.
    if (!(await session.stillHolds(stored))) return superseded(reason)
    await store.set(next)
    session.retryNotBefore = 0
    session.observe(next)
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
    return session.require('Signed out during the refresh')
  }

  async function fail(
    thrown: unknown,
    sent: TokenSet,
    reason: RefreshReason,
    startedGeneration: number,
  ): Promise<TokenSet> {
    counts.failures++
    // Its failure is about the old session: it must not clear (or defer) the new one.
    const isSuperseded = () => session.generation !== startedGeneration
    if (isSuperseded()) return superseded(reason)
    const issued = issuedRefreshToken(thrown)
    if (issued !== undefined && issued !== sent.refreshToken) {
      // A 2xx response rotated the refresh token and then failed a check: the old one is
      // spent at the server. Keep the rest of the set; the next refresh presents the new one.
      if (!(await session.stillHolds(sent))) return superseded(reason)
      await store.set({ ...sent, refreshToken: issued })
      log.warn('Stored the new refresh token of a token response that failed a check', { reason })
    }
    const body = await readOAuthErrorBody(thrown)
    if (isSuperseded()) return superseded(reason)
    const failure = classifyRefreshFailure(
      thrown,
      [sent.accessToken, sent.refreshToken, sent.idToken, issued],
      Date.now(),
      body,
    )
    if (isRefreshError(failure)) {
      if (failure.retryAfter !== undefined) {
        session.retryNotBefore = Date.now() + failure.retryAfter
      }
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
    if (isSuperseded()) return superseded(reason)
    if (isSessionEnd(value)) {
      // Another holder ended it already: tell this engine's listeners once, write nothing.
      session.adoptEnd(value)
      throw session.endedError()
    }
    if (value === undefined) return superseded(reason)
    if (value.refreshToken !== sent.refreshToken || value.accessToken !== sent.accessToken) {
      // Another tab or process rotated the refresh token first (or signed in again): adopt.
      return session.adopted(value, reason, 0)
    }
    await session.end(failure as SessionExpiredError, reason)
    throw failure
  }

  return { run, signals }
}
