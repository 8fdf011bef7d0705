/** The request path's types: what adapters hand the engine, and what it hands back. */

import type { Lane } from './lane.js'
import type { OriginMatcher } from './origins.js'
import type { LazySignal } from './refresh.js'
import type { AuthResponse } from './types.js'

export type Signal = AbortSignal | null | undefined

/**
 * What {@link RequestPath.ready} answers when it cannot tell synchronously: only `attach` can
 * (the request waits for a refresh, the store answers asynchronously, a DPoP proof is signed).
 */
export const LATER: unique symbol = Symbol('reauth.later')

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
  /** It already carries `Authorization` (or a `DPoP` proof): it is left alone. */
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
  /** Send the request again with these credentials. Runs in the replay queue. */
  resend(credentials: Credentials): Promise<T>
  /**
   * The status and headers of what a resend ended with (its result, or what it threw), when
   * the client has one. After a DPoP nonce retry, an auth failure of that resend is recovered
   * once more (a server may ask for the nonce before it looks at the token).
   */
  inspect?(
    outcome: { ok: true; value: T } | { ok: false; error: unknown },
  ): AuthResponse | undefined
}

/** How `attach` waits, when it must (the request path's and a connection's). */
export interface AttachOptions {
  /** Ends the wait: a signal, or a function that makes one only when the request really waits. */
  signal?: LazySignal
  /** What `hold` resolved with, for a call that was parked: its token, without a second wait. */
  pass?: Pass | undefined
}

/** The request path over one engine, with an adapter's origin policy. */
export interface RequestPath {
  /** What the fast lane answers from (lane.ts). */
  readonly lane: Lane
  /** The credentials for a send, or `undefined` when the request must go untouched. */
  attach(
    request: OutgoingRequest,
    allowed: OriginMatcher | undefined,
    options?: AttachOptions,
  ): Promise<Credentials | undefined>
  /**
   * What `attach` would resolve with, answered synchronously when no wait is needed (the common
   * case): the credentials, or `undefined` (the request goes untouched); {@link LATER} when only
   * `attach` can tell. Never throws: a failure is `attach`'s to report.
   */
  ready(
    request: OutgoingRequest,
    allowed: OriginMatcher | undefined,
    pass?: Pass,
  ): Credentials | undefined | typeof LATER
  /**
   * No request can wait now, whatever its URL: a synchronous store holds a set outside the
   * expiry margin, and one token serves every URL. A wrapper checks it before it builds anything.
   */
  calm(): boolean
  /**
   * The one response-side step. `undefined`, decided at once: hand the response to the caller
   * as it is (not an auth failure, not reauth's, or not replayable — logged). Otherwise the
   * outcome of the replay after a refresh (or with the current token, when the sent one was
   * stale). Rejects with this request's own copy of a refresh failure.
   */
  respond<T>(
    sent: Credentials | undefined,
    response: AuthResponse,
    describe: () => AuthFailure<T>,
  ): Promise<T> | undefined
  /**
   * Park before the client builds anything: `undefined` when `request` can be sent now (or
   * its tokens are not at hand synchronously: `attach` decides); otherwise a promise that
   * resolves when a refresh it would wait for has given it a token, and rejects with this
   * request's own copy of a refresh failure. It never sends and never attaches.
   */
  hold(request: OutgoingRequest, allowed: OriginMatcher | undefined): Promise<Pass> | undefined
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

/**
 * What `hold` resolves with: the call, once it goes, hands it to `attach` (`options.pass`),
 * which then uses the set the call waited for instead of reading (and maybe waiting) again.
 * Opaque: the set stays inside core.
 */
export type Pass = Record<string, never>
