/**
 * `@reauth/core/adapter`: what an adapter author needs to put an engine in front of an HTTP
 * client — attach credentials to a send, and one response-side step. Users never need it.
 * See docs/request-flow.md for how a request goes through it.
 */
import { type Engine, type EngineInternals, internalsOf } from './engine.js'
import { ReauthOptionsError } from './errors.js'
import { calmNow, type Lane, readyNow } from './lane.js'
import { createOriginMatcher, type OriginMatcher } from './origins.js'
import type { RequestPath } from './request-path.js'
import {
  type AttachOptions,
  type AuthFailure,
  type Credentials,
  LATER,
  type OutgoingRequest,
  type Pass,
} from './request-types.js'
import type { AuthResponse, Logger, OriginPolicy } from './types.js'

export type { DeadlineSignal } from './deadline.js'
export { deadlineSignal } from './deadline.js'
export { unreplayableBody } from './errors.js'
export { createLogger, describeUrl } from './logger.js'
export type { OriginMatcher } from './origins.js'
export { createOriginMatcher } from './origins.js'
export type { ParkedCall, ParkedPromise, ParkingLot } from './park.js'
export { createParkingLot } from './park.js'
export type {
  AttachOptions,
  AuthFailure,
  Credentials,
  OutgoingRequest,
  Pass,
} from './request-types.js'
export { LATER } from './request-types.js'
export { baseOrigin, pageOrigin, requestBase, resolveRequestUrl } from './url.js'

/** Where an adapter may send the token (see {@link connect}). */
export interface ConnectOptions {
  /** The user's `origins` for this adapter: wins over everything else. */
  origins?: OriginPolicy | undefined
  /**
   * The origin of the client's configured base URL (axios `baseURL`, ky `prefixUrl`, the page
   * for fetch; `baseOrigin()` resolves one), used when neither the adapter nor the engine
   * names origins.
   */
  base?: string | undefined
  /** How a user gives a base, for the error when there is no origin at all. */
  baseHint: string
}

/** An engine as one adapter sees it: its origin policy fixed, its request path at hand. */
export interface Connection {
  /** The engine's logger (never give it token values). */
  readonly log: Required<Logger>
  /** The origins this adapter sends the token to. */
  readonly allowed: OriginMatcher
  /**
   * The credentials for a send (headers to set), or `undefined` when the request goes
   * untouched (opted out, has its own `Authorization`, another origin, no tokens). Waits
   * for a refresh only inside the expiry margin. Rejects with this request's own copy of a
   * refresh failure, or with `options.signal`'s reason. `options.signal` may be a function
   * that makes the signal (a deadline's timer, say): it is called only when the request
   * really waits, so a request with a valid token builds none.
   */
  attach(request: OutgoingRequest, options?: AttachOptions): Promise<Credentials | undefined>
  /**
   * The one response-side step, for every response (status and headers) to a send made with
   * `sent`. `undefined`, decided at once (no wait): hand the response to the caller as it is.
   * Otherwise a promise of the replay's outcome (refreshed once for all concurrent callers, or
   * the current token when `sent` was stale); it rejects with this request's own copy of a
   * refresh failure. `describe` is called only when reauth needs the rest (an auth failure to
   * recover from, or a DPoP send): a plain success costs no description.
   */
  respond<T>(
    sent: Credentials | undefined,
    response: AuthResponse,
    describe: () => AuthFailure<T>,
  ): Promise<T> | undefined
  /**
   * Before the client builds its per-request objects (a wrapper like `withReauth` can call
   * this; an interceptor is too late): `undefined` when the request may go now, else a promise
   * that resolves when the refresh it would wait for gave it a token (then `attach` answers at
   * once) and rejects with this request's own copy of a refresh failure. A parked request holds
   * only this promise and what the caller passed. It never attaches: `attach` still runs.
   * With a valid token (the common case) it reads only the store, never `request.url` or
   * `request.hasAuthorization`: an adapter may make them getters, worked out only when needed.
   */
  hold(request: OutgoingRequest): Promise<Pass> | undefined
  /**
   * What `attach` would resolve with, answered synchronously when the request needs no wait
   * (the common case: a valid token in a synchronous store): the credentials, or `undefined`
   * (the request goes untouched). {@link LATER} when only `attach` can tell — a wait for a
   * refresh, a store that answers asynchronously, a DPoP proof to sign, a failure to report.
   * An adapter that can go on synchronously skips a promise and a turn per request.
   */
  ready(request: OutgoingRequest, pass?: Pass): Credentials | undefined | typeof LATER
  /**
   * No request can wait now, whatever its URL (a synchronous store holds a set outside the
   * expiry margin, and one token serves every URL): a wrapper checks this before it builds
   * anything for `hold`.
   */
  calm(): boolean
}

/** Is this an engine from `createEngine` (of any copy of core)? */
export function isEngine(value: unknown): value is Engine {
  return internalsOf(value) !== undefined
}

/** Throw the `ReauthOptionsError` every adapter throws for something that is not an engine. */
export function assertEngine(value: unknown): asserts value is Engine {
  if (!isEngine(value)) {
    throw new ReauthOptionsError('"engine" must be an engine from createEngine()')
  }
}

/**
 * Connect an adapter to an engine. The token goes to the adapter's own `origins`, else the
 * engine's, else the client's base origin; with none of them this throws a
 * `ReauthOptionsError` — reauth never guesses where a token may go.
 *
 * @example
 * const reauth = connect(engine, { origins: options.origins, base: baseOrigin(baseURL), baseHint: 'a baseURL' })
 * const sent = await reauth.attach({ url, method: 'GET' })
 */
export function connect(engine: Engine, options: ConnectOptions): Connection {
  assertEngine(engine)
  const internals = internalsOf(engine) as EngineInternals
  return new Connected(internals, originsFor(internals, options))
}

/**
 * A {@link Connection}: a class, so every connection shares one optimised copy of its methods
 * (a closure made per connection would start cold for every new client).
 */
class Connected implements Connection {
  readonly log: Required<Logger>
  readonly #path: RequestPath
  readonly #lane: Lane
  constructor(
    internals: EngineInternals,
    readonly allowed: OriginMatcher,
  ) {
    this.log = internals.log
    this.#path = internals.path
    this.#lane = internals.path.lane
  }
  attach(request: OutgoingRequest, options?: AttachOptions): Promise<Credentials | undefined> {
    const signal = options?.signal
    if (typeof signal !== 'function' && signal?.aborted) {
      return this.#path.attach(request, this.allowed, options)
    }
    const now = readyNow(this.#lane, request, this.allowed, options?.pass)
    if (now === LATER) return this.#path.attach(request, this.allowed, options)
    return Promise.resolve(now)
  }
  respond<T>(
    sent: Credentials | undefined,
    response: AuthResponse,
    describe: () => AuthFailure<T>,
  ): Promise<T> | undefined {
    return this.#path.respond(sent, response, describe)
  }
  hold(request: OutgoingRequest): Promise<Pass> | undefined {
    // The request path's `hold` decides anew (its own `calm` first) when the lane cannot.
    return !this.#lane.resources && calmNow(this.#lane)
      ? undefined
      : this.#path.hold(request, this.allowed)
  }
  ready(request: OutgoingRequest, pass?: Pass): Credentials | undefined | typeof LATER {
    const now = readyNow(this.#lane, request, this.allowed, pass)
    return now === LATER ? this.#path.ready(request, this.allowed, pass) : now
  }
  calm(): boolean {
    return (!this.#lane.resources && calmNow(this.#lane)) || this.#path.calm()
  }
}

function originsFor(internals: EngineInternals, options: ConnectOptions): OriginMatcher {
  if (options.origins !== undefined) return createOriginMatcher(options.origins)
  if (internals.origins) return internals.origins
  if (options.base === undefined) {
    throw new ReauthOptionsError(
      `"origins" is required: name the origins that may receive the token, set it on the engine, or give ${options.baseHint}`,
    )
  }
  return createOriginMatcher([options.base])
}

/** A request for {@link run}: how to send it, and how to read its result. */
export interface RunRequest<R> extends OutgoingRequest {
  /** Send it with these credentials (or none). Called once, or twice for a replay. */
  send(credentials: Credentials | undefined): Promise<R>
  /** The status and headers of a result. */
  response(result: R): AuthResponse
  /** Why the request cannot be sent again, or `undefined` when it can. */
  replayable?(): string | undefined
  /** Release a result that will not reach the caller (e.g. cancel its body). */
  discard?(result: R): void
}

/**
 * The whole path for a wrapper like fetch: attach, send, and the response-side step.
 *
 * @example
 * const response = await run(reauth, { url, method, send: (sent) => fetch(url, withHeaders(sent)), response: (r) => r })
 */
export async function run<R>(
  connection: Connection,
  request: RunRequest<R>,
  pass?: Pass,
): Promise<R> {
  const sent = await connection.attach(request, pass === undefined ? undefined : { pass })
  const first = await request.send(sent)
  if (sent === undefined) return first
  const response = request.response(first)
  const replayed = connection.respond<R>(sent, response, () => ({
    response,
    method: request.method,
    url: request.url,
    unreplayable: request.replayable?.(),
    signal: request.signal,
    release: () => request.discard?.(first),
    resend: (next) => request.send(next),
    inspect: (outcome) => (outcome.ok ? request.response(outcome.value) : undefined),
  }))
  return replayed === undefined ? first : await replayed
}
