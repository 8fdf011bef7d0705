const BRAND = Symbol.for('reauth.error')

/**
 * The stable codes of core's errors. Every package owns the codes of its own errors
 * (`@reauth/oauth`: `DISCOVERY_FAILED`, …; `@reauth/redis`: `LOCK_TIMEOUT`, …); all of them are
 * {@link ReauthError}s.
 */
export type ReauthErrorCode =
  | 'SESSION_EXPIRED'
  | 'REFRESH_FAILED'
  | 'OAUTH_ERROR'
  | 'INVALID_OPTION'
  | 'REPLAY_QUEUE_FULL'

/** What every reauth error may carry. `request` and `response` are attached non-enumerable. */
export interface ReauthErrorOptions {
  cause?: unknown
  request?: unknown
  response?: unknown
}

function attach(target: object, name: string, value: unknown): void {
  if (value !== undefined) {
    Object.defineProperty(target, name, { value, enumerable: false, writable: false })
  }
}

/**
 * The base class of every error reauth throws. `code` is stable across versions; `cause`
 * keeps the underlying failure. Messages never contain token values.
 *
 * @example
 * try { await api.get('/me') } catch (error) {
 *   if (isReauthError(error)) console.log(error.code)
 * }
 */
export class ReauthError<Code extends string = string> extends Error {
  override name = 'ReauthError'
  /** A stable, machine-readable code, owned by the package that throws the error. */
  readonly code: Code
  /** The request that failed, when there is one (non-enumerable). */
  declare readonly request?: unknown
  /** The response that failed, when there is one (non-enumerable). */
  declare readonly response?: unknown

  constructor(code: Code, message: string, options: ReauthErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    Object.defineProperty(this, BRAND, { value: true, enumerable: false })
    attach(this, 'request', options.request)
    attach(this, 'response', options.response)
  }
}

/** The RFC 6749 §5.2 fields of a token-endpoint error. */
export interface OAuthErrorFields {
  /** The OAuth `error` code, e.g. `invalid_grant`. */
  error: string
  /** The server's `error_description`, if any. */
  errorDescription?: string
  /** The HTTP status of the token response. */
  status?: number
  /** How long the server asked to wait before retrying, in ms (from `Retry-After`). */
  retryAfter?: number
}

/**
 * Thrown by a `refresh` function to report an RFC 6749 §5.2 error from the token endpoint.
 * The engine maps `invalid_grant`, `invalid_client` and `unauthorized_client` to
 * {@link SessionExpiredError} and everything else to a retryable {@link RefreshError}.
 * Any error with a string `error` property (oauth4webapi's `ResponseBodyError`) is read the same way.
 *
 * @example
 * if (body.error) throw new OAuthError({ error: body.error, status: response.status })
 */
export class OAuthError extends ReauthError<'OAUTH_ERROR'> {
  override name = 'OAuthError'
  readonly error: string
  readonly errorDescription: string | undefined
  readonly status: number | undefined
  readonly retryAfter: number | undefined

  constructor(fields: OAuthErrorFields, options: ReauthErrorOptions = {}) {
    super('OAUTH_ERROR', `The token endpoint answered "${fields.error}"`, options)
    this.error = fields.error
    this.errorDescription = fields.errorDescription
    this.status = fields.status
    this.retryAfter = fields.retryAfter
  }
}

/** Fields shared by refresh failures. */
export interface RefreshFailureFields {
  error?: string | undefined
  errorDescription?: string | undefined
  status?: number | undefined
}

/**
 * The session is over: the refresh token was rejected for good (`invalid_grant`,
 * `invalid_client`, `unauthorized_client`) or tokens were cleared. Tokens are gone from
 * the store; requests fail fast with this error until `setTokens` is called.
 *
 * @example
 * api.get('/me').catch((error) => { if (isSessionExpiredError(error)) router.push('/login') })
 */
export class SessionExpiredError extends ReauthError<'SESSION_EXPIRED'> {
  override name = 'SessionExpiredError'
  readonly error: string | undefined
  readonly errorDescription: string | undefined
  readonly status: number | undefined

  constructor(
    message: string,
    fields: RefreshFailureFields = {},
    options: ReauthErrorOptions = {},
  ) {
    super('SESSION_EXPIRED', message, options)
    this.error = fields.error
    this.errorDescription = fields.errorDescription
    this.status = fields.status
  }
}

/** Fields of a {@link RefreshError}. */
export interface RefreshErrorFields extends RefreshFailureFields {
  /** True when trying again later may work (network, timeout, 5xx, 429, malformed response). */
  retryable: boolean
  /** The token-response field that was malformed, when that is what failed. */
  field?: string | undefined
  /** How long to wait before the next attempt, in ms, when the server said (`Retry-After`). */
  retryAfter?: number | undefined
}

/** Refresh tokens issued in token responses that failed a later check; never a property. */
const issuedRefreshTokens = new WeakMap<object, string>()

/** Options of a {@link RefreshError}. */
export interface RefreshErrorOptions extends ReauthErrorOptions {
  /**
   * A new refresh token that came in the 2xx token response this error is about (the rest of
   * the response failed a check). The engine stores it before anything else, because the
   * server has already spent the old one. Kept outside the error object: never printed.
   */
  refreshToken?: string | undefined
}

/**
 * The refresh token issued with a failed token response (see {@link RefreshErrorOptions}).
 * @internal The engine reads it; it is not part of the error's data.
 */
export function issuedRefreshToken(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null ? issuedRefreshTokens.get(error) : undefined
}

/**
 * The refresh failed but the session is not over: network error, `refreshTimeout`,
 * 5xx, 429 or a malformed token response. Tokens are kept; a later request tries again
 * (not before `retryAfter`).
 *
 * @example
 * if (isRefreshError(error) && error.retryable) showOfflineBanner()
 */
export class RefreshError extends ReauthError<'REFRESH_FAILED'> {
  override name = 'RefreshError'
  readonly retryable: boolean
  readonly error: string | undefined
  readonly errorDescription: string | undefined
  readonly status: number | undefined
  readonly field: string | undefined
  readonly retryAfter: number | undefined

  constructor(message: string, fields: RefreshErrorFields, options: RefreshErrorOptions = {}) {
    const { refreshToken, ...rest } = options
    super('REFRESH_FAILED', message, rest)
    if (typeof refreshToken === 'string' && refreshToken !== '') {
      issuedRefreshTokens.set(this, refreshToken)
    }
    this.retryable = fields.retryable
    this.error = fields.error
    this.errorDescription = fields.errorDescription
    this.status = fields.status
    this.field = fields.field
    this.retryAfter = fields.retryAfter
  }
}

/**
 * A factory was given a bad option. The message quotes the option.
 *
 * @example
 * createEngine({ refresh: 'nope' }) // throws: "refresh" must be a function
 */
export class ReauthOptionsError extends ReauthError<'INVALID_OPTION'> {
  override name = 'ReauthOptionsError'
  constructor(message: string) {
    super('INVALID_OPTION', message)
  }
}

/**
 * The replay queue already holds `replay.maxQueued` requests; this one was not replayed.
 *
 * @example
 * createEngine({ refresh, replay: { maxQueued: 5_000 } })
 */
export class ReplayQueueFullError extends ReauthError<'REPLAY_QUEUE_FULL'> {
  override name = 'ReplayQueueFullError'
  constructor(limit: number) {
    super('REPLAY_QUEUE_FULL', `The replay queue is full (${limit} requests waiting)`)
  }
}

function branded(value: unknown): value is ReauthError {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value instanceof ReauthError || (value as Record<symbol, unknown>)[BRAND] === true)
  )
}

function guard<T extends ReauthError>(name: string) {
  return (value: unknown): value is T => branded(value) && value.name === name
}

/**
 * True for any error thrown by reauth, also across realms (iframes, duplicated packages).
 *
 * @example
 * if (isReauthError(error)) console.log(error.code)
 */
export function isReauthError(value: unknown): value is ReauthError {
  return branded(value)
}

/** True for a {@link SessionExpiredError}, also across realms. @example isSessionExpiredError(error) */
export const isSessionExpiredError: (value: unknown) => value is SessionExpiredError =
  guard('SessionExpiredError')
/** True for a {@link RefreshError}, also across realms. @example isRefreshError(error) */
export const isRefreshError: (value: unknown) => value is RefreshError = guard('RefreshError')
/** True for an {@link OAuthError}, also across realms. @example isOAuthError(error) */
export const isOAuthError: (value: unknown) => value is OAuthError = guard('OAuthError')
/** True for a {@link ReauthOptionsError}. @example isReauthOptionsError(error) */
export const isReauthOptionsError: (value: unknown) => value is ReauthOptionsError =
  guard('ReauthOptionsError')
/** True for a {@link ReplayQueueFullError}. @example isReplayQueueFullError(error) */
export const isReplayQueueFullError: (value: unknown) => value is ReplayQueueFullError =
  guard('ReplayQueueFullError')

/**
 * A copy of a refresh failure for one caller: waiters share the engine's error object, and
 * clients (axios, ky) decorate what they throw. The copy has the same class and fields, the
 * shared error as `cause`, and the caller's own request/response attached non-enumerable.
 * Anything else is returned as is.
 *
 * @example
 * catch (failure) { throw errorForRequest(failure, { response: axiosError }) }
 */
export function errorForRequest(
  error: unknown,
  attach: Omit<ReauthErrorOptions, 'cause'>,
): unknown {
  const options = { ...attach, cause: error }
  if (isSessionExpiredError(error)) {
    return new SessionExpiredError(
      error.message,
      { error: error.error, errorDescription: error.errorDescription, status: error.status },
      options,
    )
  }
  if (isRefreshError(error)) {
    return new RefreshError(
      error.message,
      {
        retryable: error.retryable,
        error: error.error,
        errorDescription: error.errorDescription,
        status: error.status,
        field: error.field,
        retryAfter: error.retryAfter,
      },
      options,
    )
  }
  return error
}

/**
 * Why a request body cannot be sent a second time, or `undefined` when it can: a web
 * `ReadableStream` or a Node stream is read once by the first send.
 *
 * @example
 * unreplayableBody(new ReadableStream()) // 'its body is a ReadableStream, …'
 */
export function unreplayableBody(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null) return undefined
  if (typeof ReadableStream !== 'undefined' && body instanceof ReadableStream) {
    return 'its body is a ReadableStream, which can be sent only once'
  }
  if (typeof (body as { pipe?: unknown }).pipe === 'function') {
    return 'its body is a stream, which can be sent only once'
  }
  return undefined
}
