import { generateDpopKeyPair } from './dpop.js'
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
import type { ResourceToken, TokenSet } from './types.js'

/** One grant, run inside the lock: it reads the store, calls `refresh`, and writes the outcome. */
export interface Grants {
  /**
   * Refresh the set in the store (for `resource`, when given), unless it is no longer the one
   * sent with `basis` (another holder of the lock refreshed meanwhile: adopt it, no grant).
   * With `acquire` and an empty store, acquire. Resolves with the set as `resource` sees it.
   */
  run(basis: string | undefined, reason: RefreshReason, resource?: string): Promise<TokenSet>
  /** Signals handed to running grants: a request carrying one is the refresh's own request. */
  readonly signals: WeakSet<AbortSignal>
  /** Sign-out: abort the running grant (its outcome is discarded anyway). */
  cancel(reason: unknown): void
}

/** The fields of a token set that belong to one resource's access token. */
function resourceToken(tokens: TokenSet): ResourceToken {
  const token: ResourceToken = { accessToken: tokens.accessToken, tokenType: tokens.tokenType }
  if (tokens.expiresAt !== undefined) token.expiresAt = tokens.expiresAt
  if (tokens.issuedAt !== undefined) token.issuedAt = tokens.issuedAt
  if (tokens.scope !== undefined) token.scope = tokens.scope
  return token
}

export function createGrants(config: EngineConfig, session: Session, events: Events): Grants {
  const { store, log, refreshTimeout } = config
  const { counts, emit } = events
  const signals = new WeakSet<AbortSignal>()
  const running = new Set<AbortController>()

  /** `refresh` (or `acquire`) with a timeout that aborts its signal: what it resolved or threw. */
  async function call(
    stored: TokenSet | undefined,
    startedAt: number,
    resource: string | undefined,
    dpopKey: CryptoKeyPair | undefined,
  ): Promise<unknown> {
    const controller = new AbortController()
    signals.add(controller.signal)
    running.add(controller)
    let timer: ReturnType<typeof setTimeout> | undefined
    // Ends the grant on its timeout, or when a sign-out cancels it.
    const timeout = new Promise<never>((_, reject) => {
      controller.signal.addEventListener('abort', () => reject(controller.signal.reason), {
        once: true,
      })
      timer = setTimeout(() => {
        controller.abort(
          new RefreshError(`The refresh timed out after ${refreshTimeout} ms`, {
            retryable: true,
          }),
        )
      }, refreshTimeout)
    })
    const { signal } = controller
    const context: {
      signal: AbortSignal
      startedAt: number
      resource?: string
      dpop?: CryptoKeyPair
    } = { signal, startedAt }
    if (resource !== undefined) context.resource = resource
    if (dpopKey !== undefined) context.dpop = dpopKey
    try {
      return await Promise.race([
        Promise.resolve().then(() =>
          stored === undefined
            ? (config.acquire as NonNullable<EngineConfig['acquire']>)(context)
            : config.refresh({ ...context, tokens: stored }),
        ),
        timeout,
      ])
    } finally {
      clearTimeout(timer)
      running.delete(controller)
    }
  }

  /** The set to store after a grant for `resource` brought back `fresh`. */
  function merge(
    stored: TokenSet | undefined,
    fresh: TokenSet,
    now: number,
    resource: string | undefined,
  ): TokenSet {
    // Without issuedAt the margins could not be bounded by the lifetime, and a token living
    // less than the margin would be refreshed on every call.
    const issued: TokenSet = { issuedAt: now, ...fresh }
    // RFC 6749 §6: no refresh_token in the response means keep the old one.
    const refreshToken = fresh.refreshToken ?? stored?.refreshToken
    if (resource === undefined || stored === undefined) {
      const next = issued
      if (refreshToken !== undefined) next.refreshToken = refreshToken
      if (stored?.resources && next.resources === undefined) next.resources = stored.resources
      if (resource !== undefined) next.resources = { [resource]: resourceToken(issued) }
      return next
    }
    const next: TokenSet = {
      ...stored,
      resources: { ...stored.resources, [resource]: resourceToken(issued) },
    }
    if (refreshToken !== undefined) next.refreshToken = refreshToken
    return next
  }

  async function run(
    basis: string | undefined,
    reason: RefreshReason,
    resource?: string,
  ): Promise<TokenSet> {
    const started = Date.now()
    const startedGeneration = session.generation
    const stored = config.acquire ? await session.read() : await session.require()
    if (stored === undefined && session.isEnded) throw session.endedError()
    const view = stored && session.view(stored, resource)
    if (view && authorizationHeader(view) !== basis && !session.expiresSoon(view)) {
      // Another holder of the lock refreshed (or acquired) while we waited: adopt, no grant.
      return session.adopted(view, reason, Date.now() - started)
    }
    const now = Date.now()
    if (session.retryNotBefore > now) throw session.deferred(session.retryNotBefore - now)
    counts.grants++
    if (reason === 'proactive') counts.proactive++
    if (reason === 'background') counts.background++
    emit('refreshStart', { reason })
    // DPoP: the set's own key; a new one (stored with the tokens) when the engine makes keys.
    const dpopKey =
      stored?.dpopKey ?? (config.dpop ? await generateDpopKeyPair(config.dpop) : undefined)
    let result: unknown
    try {
      result = await call(view, now, resource, dpopKey)
    } catch (thrown) {
      return fail(thrown, stored, reason, startedGeneration, resource)
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
        resource,
      )
    }
    if (session.generation !== startedGeneration) return superseded(reason, resource)
    const fresh = result as TokenSet
    const next = merge(stored, fresh, now, resource)
    if (dpopKey !== undefined && next.dpopKey === undefined) next.dpopKey = dpopKey
    // Written only over the set this grant started from: a sign-in or sign-out by another
    // engine meanwhile wins, and this grant's tokens belong to the old session.
    if (!(await session.stillHolds(stored))) return superseded(reason, resource)
    await store.set(next)
    session.retryNotBefore = 0
    session.observe(next)
    const rotated = fresh.refreshToken !== undefined && fresh.refreshToken !== stored?.refreshToken
    const current = session.view(next, resource)
    log.info('Tokens refreshed', { reason, rotated, expiresAt: current.expiresAt })
    emit('refresh', {
      reason,
      adopted: false,
      rotated,
      expiresAt: current.expiresAt,
      durationMs: Date.now() - started,
    })
    return current
  }

  /**
   * setTokens or clear ran while a grant was out: whatever the grant brought back (tokens or
   * a failure) belongs to the old session, and the user's new one wins.
   */
  async function superseded(reason: RefreshReason, resource: string | undefined) {
    log.info('Discarded a refresh outcome: tokens were set or cleared meanwhile', { reason })
    return session.view(await session.require('Signed out during the refresh'), resource)
  }

  async function fail(
    thrown: unknown,
    sent: TokenSet | undefined,
    reason: RefreshReason,
    startedGeneration: number,
    resource: string | undefined,
  ): Promise<TokenSet> {
    counts.failures++
    // Its failure is about the old session: it must not clear (or defer) the new one.
    const isSuperseded = () => session.generation !== startedGeneration
    if (isSuperseded()) return superseded(reason, resource)
    const issued = issuedRefreshToken(thrown)
    if (sent && issued !== undefined && issued !== sent.refreshToken) {
      // A 2xx response rotated the refresh token and then failed a check: the old one is
      // spent at the server. Keep the rest of the set; the next refresh presents the new one.
      if (!(await session.stillHolds(sent))) return superseded(reason, resource)
      await store.set({ ...sent, refreshToken: issued })
      log.warn('Stored the new refresh token of a token response that failed a check', { reason })
    }
    const body = await readOAuthErrorBody(thrown)
    if (isSuperseded()) return superseded(reason, resource)
    const view = sent && session.view(sent, resource)
    const failure = classifyRefreshFailure(
      thrown,
      [sent?.accessToken, view?.accessToken, sent?.refreshToken, sent?.idToken, issued],
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
    if (isSuperseded()) return superseded(reason, resource)
    if (isSessionEnd(value)) {
      // Another holder ended it already: tell this engine's listeners once, write nothing.
      session.adoptEnd(value)
      throw session.endedError()
    }
    if (value === undefined && sent !== undefined) return superseded(reason, resource)
    if (
      value !== undefined &&
      (sent === undefined ||
        value.refreshToken !== sent.refreshToken ||
        value.accessToken !== sent.accessToken)
    ) {
      // Another tab or process rotated the refresh token first (or signed in again): adopt.
      return session.adopted(session.view(value, resource), reason, 0)
    }
    await session.end(failure as SessionExpiredError, reason)
    throw failure
  }

  return {
    run,
    signals,
    cancel(reason) {
      for (const controller of running) controller.abort(reason)
    },
  }
}
