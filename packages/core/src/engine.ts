import { isReauthError, ReauthOptionsError, RefreshError, SessionExpiredError } from './errors.js'
import type { EngineEvents, EngineStats } from './events.js'
import { createEvents } from './events.js'
import { scrubError } from './failure.js'
import { createGrants } from './grant.js'
import { type EngineOptions, resolveOptions } from './options.js'
import type { OriginMatcher } from './origins.js'
import { createRefresher } from './refresh.js'
import { createRequestPath, type RequestPath } from './request-path.js'
import { createSession } from './session.js'
import { tokenSetProblem } from './token-set.js'
import type { Logger, TokenSet } from './types.js'

export type { EngineEvents, EngineStats, RefreshReason } from './events.js'
export type { EngineOptions } from './options.js'

/**
 * The engine: owns the tokens and the refresh. Adapters for axios, ky and fetch share it
 * (they reach its request path through `@reauth/core/adapter`).
 */
export interface Engine {
  /** The current token set, refreshed first inside the expiry margin; `undefined` when signed out. */
  getToken(options?: { signal?: AbortSignal | null | undefined }): Promise<TokenSet | undefined>
  /** Store a new token set (after sign-in); ends a `SessionExpiredError` state. */
  setTokens(tokens: TokenSet): Promise<void>
  /**
   * Sign out: clear the store (a refresh in flight is cancelled and cannot store tokens
   * afterwards); later requests go without a token. With `revoke`, the tokens are then revoked
   * at the server; a failed revocation is logged and reported (`signOut` event), never thrown.
   */
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
  /** Stop listening to the store. */
  dispose(): void
}

/** What adapters reach through `@reauth/core/adapter`: never part of the user's `Engine` type. */
export interface EngineInternals {
  readonly path: RequestPath
  readonly log: Required<Logger>
  /** The engine-wide origin policy, when `origins` was given. */
  readonly origins: OriginMatcher | undefined
}

/** The key of an engine's internals: `Symbol.for`, so duplicated copies of core agree. */
export const INTERNALS = Symbol.for('reauth.engine.internals')

/** The internals of an engine from `createEngine`, or `undefined` for anything else. */
export function internalsOf(engine: unknown): EngineInternals | undefined {
  if (typeof engine !== 'object' || engine === null) return undefined
  const internals = (engine as { [INTERNALS]?: EngineInternals })[INTERNALS]
  return typeof internals === 'object' && internals !== null ? internals : undefined
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
  const config = resolveOptions(options)
  const { store, log } = config
  const events = createEvents(log)
  const session = createSession(config, events)
  const grants = createGrants(config, session, events)
  const refresher = createRefresher(config, session, grants, events)
  const path = createRequestPath(config, session, refresher, grants, events)

  const unsubscribe = store.subscribe?.((value) => {
    const tokens = session.observe(value)
    if (tokens) refresher.adopt(tokens)
  })

  /** RFC 7009 at sign-out, bounded by `refreshTimeout`: the outcome, never a throw. */
  async function revoke(tokens: TokenSet | undefined): Promise<EngineEvents['signOut']> {
    if (!config.revoke || !tokens) return { revoked: false }
    const controller = new AbortController()
    const timer = setTimeout(
      () => controller.abort(new RefreshError('The revocation timed out', { retryable: true })),
      config.refreshTimeout,
    )
    try {
      await config.revoke({ tokens, signal: controller.signal })
      log.info('Signed out; the tokens were revoked')
      return { revoked: true }
    } catch (thrown) {
      const secrets = [tokens.accessToken, tokens.refreshToken, tokens.idToken]
      const error = isReauthError(thrown) ? thrown : scrubError(thrown, secrets)
      log.warn('Signed out locally; revoking the tokens at the server failed', {
        error: error.name,
        code: (error as { code?: unknown }).code,
      })
      return { revoked: false, error }
    } finally {
      clearTimeout(timer)
    }
  }

  const internals: EngineInternals = { path, log, origins: config.origins }
  const engine: Engine & { [INTERNALS]: EngineInternals } = {
    getToken: async (opts = {}) => refresher.tokens(opts.signal),

    async setTokens(tokens) {
      const problem = tokenSetProblem(tokens)
      if (problem) throw new ReauthOptionsError(`"tokens": ${problem}`)
      session.restart()
      await store.set({ ...tokens })
    },

    async clear() {
      const signedIn = config.revoke ? await session.read().catch(() => undefined) : undefined
      // An explicit sign-out ends the expired-session state too: later requests go anonymous.
      session.restart()
      grants.cancel(new SessionExpiredError('Signed out during the refresh'))
      await store.clear()
      events.emit('signOut', await revoke(signedIn))
    },

    async refresh(opts = {}) {
      if (opts.signal?.aborted) throw opts.signal.reason
      return refresher.shared(await session.require(), 'manual', opts.signal)
    },

    on: events.on,
    stats: () => ({ ...events.counts }),
    dispose() {
      unsubscribe?.()
    },
    [INTERNALS]: internals,
  }
  // Not enumerable: a spread or a log of the engine shows the user's methods only.
  Object.defineProperty(engine, INTERNALS, { enumerable: false })
  return engine
}
