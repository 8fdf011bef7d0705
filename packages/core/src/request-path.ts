import { errorForRequest } from './errors.js'
import type { Events } from './events.js'
import type { Grants } from './grant.js'
import { describeUrl } from './logger.js'
import type { EngineConfig } from './options.js'
import type { OriginMatcher } from './origins.js'
import type { Refresher } from './refresh.js'
import type { Session } from './session.js'
import { authorizationHeader } from './token-set.js'
import type { AuthResponse, TokenSet } from './types.js'
import { resolveRequestUrl } from './url.js'

type Signal = AbortSignal | null | undefined

/**
 * What reauth puts on one send of a request: header names (lower case) and values. Computed
 * for each send — a replay gets its own.
 */
export interface Credentials {
  readonly headers: Readonly<Record<string, string>>
}

/** A request about to be sent, as an adapter describes it. */
export interface OutgoingRequest {
  /** Where it goes: absolute, or relative to the page's base URL (resolved as fetch/XHR will). */
  url: string | URL
  /** The method, for log lines (and DPoP proofs). */
  method?: string | undefined
  /** It already carries `Authorization`: it is left alone. */
  hasAuthorization?: boolean | undefined
  /** The caller opted out for this request. */
  skip?: boolean | undefined
  /**
   * The caller's own signal: how the engine recognises its refresh function's own requests
   * (sent untouched). Not the signal the wait ends on: pass that as `options.signal`.
   */
  signal?: Signal
}

/** A response reauth may have to recover from, and how to send its request again. */
export interface AuthFailure<T> {
  /** The response's status and headers. */
  response: AuthResponse
  /** The request, for log lines. */
  method?: string | undefined
  url: string | URL
  /** Why the request cannot be sent again (a stream body), or `undefined` when it can. */
  unreplayable?: string | undefined
  /** Ends the wait on the refresh and in the replay queue (the caller's signal, a deadline). */
  signal?: Signal
  /** Attached (non-enumerable) to this request's copy of a refresh failure. */
  errorContext?: { request?: unknown; response?: unknown }
  /** Release the failed response before waiting (cancel its body): it will not reach the caller. */
  release?(): void
  /** Send the request again with these credentials. Runs in the replay queue, at most once. */
  resend(credentials: Credentials): Promise<T>
}

/** The request path over one engine, with an adapter's origin policy. */
export interface RequestPath {
  /** The credentials for a send, or `undefined` when the request must go untouched. */
  attach(
    request: OutgoingRequest,
    allowed: OriginMatcher | undefined,
    options?: { signal?: Signal },
  ): Promise<Credentials | undefined>
  /**
   * The one response-side step. `undefined`: hand the response to the caller as it is (not an
   * auth failure, not reauth's, or not replayable — logged). Otherwise the outcome of the
   * replay after a refresh (or with the current token, when the sent one was stale). Rejects
   * with this request's own copy of a refresh failure.
   */
  respond<T>(sent: Credentials | undefined, failure: AuthFailure<T>): Promise<T | undefined>
  /** The `Authorization` value for a request (attach's core), for tests and the otel package. */
  authorize(
    request: OutgoingRequest,
    allowed: OriginMatcher | undefined,
    options?: { signal?: Signal },
  ): Promise<string | undefined>
  /**
   * After an auth failure of a send made with `sent` (a token for `resource`, when the engine
   * has `resources`): the `Authorization` value to retry with.
   */
  recover(
    sent: string | undefined,
    options?: { signal?: Signal },
    resource?: string,
  ): Promise<string>
  /** Run a replay through the queue; it fails when the session ended while it waited. */
  replay<T>(send: () => Promise<T>, options?: { signal?: Signal }): Promise<T>
  /** Is this response an auth failure? (`isAuthError` that throws counts as no.) */
  isAuthError(response: AuthResponse): boolean
}

/** The resource (RFC 8707) whose token a send's credentials carry. */
const resources = new WeakMap<Credentials, string>()

function credentials(authorization: string, resource: string | undefined): Credentials {
  const sent = { headers: { authorization } }
  if (resource !== undefined) resources.set(sent, resource)
  return sent
}

export function createRequestPath(
  config: EngineConfig,
  session: Session,
  refresher: Refresher,
  grants: Grants,
  events: Events,
): RequestPath {
  const { log, queue } = config
  const { counts } = events

  /** The resource a request's token is for, or `null` when the request goes untouched. */
  function target(request: OutgoingRequest, allowed: OriginMatcher | undefined) {
    if (request.skip || request.hasAuthorization) return null
    // The refresh function's own request (it passed the context signal on): never wait on
    // the refresh it belongs to, or it would wait on itself.
    if (request.signal && grants.signals.has(request.signal)) return null
    const policy = allowed ?? config.origins
    const url = resolveRequestUrl(request.url)
    if (!url || !policy?.(url)) return null
    return { resource: config.resourceFor(url) }
  }

  const path: RequestPath = {
    async authorize(request, allowed, options = {}) {
      const to = target(request, allowed)
      if (to === null) return undefined
      const tokens = await refresher.tokens(options.signal ?? request.signal, to.resource)
      return tokens && authorizationHeader(tokens)
    },

    async attach(request, allowed, options = {}) {
      const to = target(request, allowed)
      if (to === null) return undefined
      let tokens: TokenSet | undefined
      try {
        tokens = await refresher.tokens(options.signal ?? request.signal, to.resource)
      } catch (error) {
        // Waiters share one failure object: each caller gets its own copy.
        throw errorForRequest(error, {})
      }
      return tokens && credentials(authorizationHeader(tokens), to.resource)
    },

    isAuthError(response) {
      try {
        return config.isAuthError(response)
      } catch (error) {
        log.error('"isAuthError" threw; treating the response as no auth failure', {
          error: String((error as Error)?.name),
        })
        return false
      }
    },

    async recover(sent, options = {}, resource = undefined) {
      counts.authErrors++
      const { signal } = options
      if (signal?.aborted) throw signal.reason
      const stored = config.acquire ? await session.read() : await session.require()
      if (!stored) {
        if (session.isEnded) throw session.endedError()
        return authorizationHeader(await refresher.wait(undefined, 'reactive', signal, resource))
      }
      const current = session.view(stored, resource)
      const header = authorizationHeader(current)
      if (header !== sent && !session.expiresSoon(current)) {
        counts.staleRetries++
        return header
      }
      return authorizationHeader(await refresher.wait(current, 'reactive', signal, resource))
    },

    replay(send, options = {}) {
      counts.replays++
      const queuedGeneration = session.generation
      return queue.run(async () => {
        // A replay that waited in the queue while the session ended (terminal failure, or a
        // sign-out) must not go out with the token it was given before.
        if (session.isEnded || session.generation !== queuedGeneration) {
          await session.require('Signed out before the request was replayed')
        }
        return send()
      }, options.signal)
    },

    async respond(sent, failure) {
      const authorization = sent?.headers.authorization
      if (authorization === undefined || !path.isAuthError(failure.response)) return undefined
      if (failure.unreplayable !== undefined) {
        counts.authErrors++
        counts.unreplayable++
        log.warn(
          `Not replaying ${describeUrl(failure.method, failure.url)}: ${failure.unreplayable}`,
        )
        return undefined
      }
      const { signal } = failure
      failure.release?.()
      const resource = sent && resources.get(sent)
      let next: string
      try {
        next = await path.recover(authorization, { signal }, resource)
      } catch (error) {
        // Waiters share one failure object: each caller gets its own copy.
        throw errorForRequest(error, failure.errorContext ?? {})
      }
      log.debug(`Replaying ${describeUrl(failure.method, failure.url)}`)
      return path.replay(() => failure.resend(credentials(next, resource)), { signal })
    },
  }
  return path
}
