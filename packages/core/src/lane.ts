/**
 * The fast lane: what a request with a valid token needs, answered by module-level code.
 *
 * An engine's request path is made of closures, one set per engine; V8 gives every closure
 * made again (a second engine, a client made per request) its own type feedback and optimised
 * code, so a new engine runs its first requests unoptimised. The common case — a valid token
 * in a synchronous store, a URL decided before — is answered here instead, by functions that
 * every engine shares, reading a plain record the request path keeps up to date.
 */
import type { OriginMatcher } from './origins.js'
import { type Credentials, LATER, type OutgoingRequest, type Pass } from './request-types.js'
import type { StoredSession, TokenSet, TokenStore } from './types.js'

/** Where a request's token goes: its resource (RFC 8707), or the set's own token. */
export interface Target {
  resource: string | undefined
}

/** One engine's record for the lane; only its request path writes it. */
export class Lane {
  /** The store value last found calm (outside the margin and the refresh-ahead window). */
  set: StoredSession | undefined = undefined
  /** Its access token when it was found calm: a set changed in place is not calm any more. */
  token: string | undefined = undefined
  /** Until when `set` stays calm (ms since the epoch). */
  until = 0
  /** The Bearer credentials for `set`. */
  credentials: Credentials | undefined = undefined
  /** The last absolute URL decided under a list policy, the policy, and the decision. */
  url: unknown = undefined
  policy: unknown = undefined
  decision: Target | null = null

  constructor(
    readonly store: TokenStore,
    /** The signals of the refresh function's own requests (sent untouched). */
    readonly signals: WeakSet<AbortSignal>,
    /** The engine has `resources`: a token per URL, never answered here. */
    readonly resources: boolean,
  ) {}

  /** `set` is calm until `until`; a send with it carries `credentials`. */
  calm(set: TokenSet, until: number, credentials: Credentials): void {
    this.set = set
    this.token = set.accessToken
    this.until = until
    this.credentials = credentials
  }
}

/** The store still holds the set found calm, and it still is. */
export function calmNow(lane: Lane): boolean {
  const set = lane.set
  return (
    set !== undefined &&
    lane.store.get() === set &&
    (set as TokenSet).accessToken === lane.token &&
    Date.now() < lane.until
  )
}

/**
 * What `attach` would give `request`, when the lane knows at once: the credentials, or
 * `undefined` (the request goes untouched); {@link LATER} when the request path must answer.
 */
export function readyNow(
  lane: Lane,
  request: OutgoingRequest,
  allowed: OriginMatcher | undefined,
  pass: Pass | undefined,
): Credentials | undefined | typeof LATER {
  if (request.skip || request.hasAuthorization) return undefined
  if (pass !== undefined) return LATER
  const { signal } = request
  if (signal) {
    if (signal.aborted) return LATER
    if (lane.signals.has(signal)) return undefined
  }
  if (request.url !== lane.url || allowed !== lane.policy) return LATER
  const { decision } = lane
  if (decision === null) return undefined
  if (decision.resource !== undefined || !calmNow(lane)) return LATER
  return lane.credentials
}
