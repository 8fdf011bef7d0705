import { isReauthError, ReauthError, type ReauthErrorOptions } from '@reauth/core'

/** Fields of a {@link DiscoveryError}. */
export interface DiscoveryErrorFields {
  /**
   * True when trying again later may work: a network error, or a 5xx / 408 / 429 from a
   * well-known URL. False when it cannot succeed without a change of configuration (404 on
   * every well-known URL, an invalid document, an issuer mismatch, a redirect loop).
   */
  retryable: boolean
  /** The HTTP status that decided the outcome, when there was one. */
  status?: number | undefined
}

/**
 * Authorization server metadata could not be discovered for the issuer. `retryable` says
 * whether trying again can help. Through `createRefreshGrant` it reaches the engine as a
 * `RefreshError` with the same `retryable` (this error as its `cause`).
 *
 * @example
 * try { await discover(issuer) } catch (error) {
 *   if (isDiscoveryError(error) && !error.retryable) console.error('fix the issuer:', error.message)
 * }
 */
export class DiscoveryError extends ReauthError<'DISCOVERY_FAILED'> {
  override name = 'DiscoveryError'
  readonly retryable: boolean
  readonly status: number | undefined

  constructor(message: string, fields: DiscoveryErrorFields, options: ReauthErrorOptions = {}) {
    super('DISCOVERY_FAILED', message, options)
    this.retryable = fields.retryable
    this.status = fields.status
  }
}

/** Fields of a {@link SignInError}. */
export interface SignInErrorFields {
  /** The `error` of an authorization error response (RFC 6749 §4.1.2.1), e.g. `access_denied`. */
  error?: string | undefined
  /** Its `error_description`, when the server gave one. */
  errorDescription?: string | undefined
}

/**
 * The authorization step of a sign-in failed: the authorization server redirected back with
 * an error (`error` is set, e.g. `access_denied`), or the callback failed a check (wrong or
 * missing `state`, wrong `iss`, no `code`), or the server has no authorization endpoint.
 * Errors of the code exchange at the token endpoint are `OAuthError` / `RefreshError`.
 *
 * @example
 * try { await completeSignIn(options, callback) } catch (error) {
 *   if (isSignInError(error) && error.error === 'access_denied') showCancelled()
 * }
 */
export class SignInError extends ReauthError<'SIGN_IN_FAILED'> {
  override name = 'SignInError'
  readonly error: string | undefined
  readonly errorDescription: string | undefined

  constructor(message: string, fields: SignInErrorFields = {}, options: ReauthErrorOptions = {}) {
    super('SIGN_IN_FAILED', message, options)
    this.error = fields.error
    this.errorDescription = fields.errorDescription
  }
}

/** True for a {@link DiscoveryError}, also across realms. @example isDiscoveryError(error) */
export function isDiscoveryError(value: unknown): value is DiscoveryError {
  return isReauthError(value) && value.name === 'DiscoveryError'
}

/** True for a {@link SignInError}, also across realms. @example isSignInError(error) */
export function isSignInError(value: unknown): value is SignInError {
  return isReauthError(value) && value.name === 'SignInError'
}

/**
 * A copy of an error that keeps its name, message and `code`, not its `cause` or any other
 * property: oauth4webapi keeps what it checked as the cause (the token response body, the
 * whole ID token, the callback's parameters), which `util.inspect` and error trackers print.
 */
export function withoutCause(error: unknown): Error {
  const like = (typeof error === 'object' && error !== null ? error : {}) as {
    name?: unknown
    message?: unknown
    code?: unknown
  }
  const copy = new Error(typeof like.message === 'string' ? like.message : String(error))
  if (typeof like.name === 'string') copy.name = like.name
  if (typeof like.code === 'string') Object.assign(copy, { code: like.code })
  return copy
}

/** Fields of a {@link RevocationError}. */
export interface RevocationErrorFields {
  /**
   * True when trying again later may work: a network error, a timeout, a 5xx, 408 or 429.
   * False when it cannot succeed as configured (no `revocation_endpoint`, a 4xx).
   */
  retryable: boolean
  /** The HTTP status of the revocation response, when there was one. */
  status?: number | undefined
  /** The RFC 6749 §5.2 / RFC 7009 §2.2.1 `error` of the response, e.g. `invalid_client`. */
  error?: string | undefined
  /** Its `error_description`, when the server gave one (tokens redacted). */
  errorDescription?: string | undefined
  /** Which token was being revoked when it failed. */
  tokenTypeHint?: 'refresh_token' | 'access_token' | undefined
}

/**
 * Revoking tokens at the authorization server (RFC 7009) failed: the server has no
 * `revocation_endpoint`, it answered an error, or it could not be reached. Thrown by the
 * function `revokeTokens` returns; the engine's sign-out logs and reports it and clears the
 * local session regardless. Its message and `cause` never hold a token.
 *
 * @example
 * try { await revoke({ tokens, signal }) } catch (error) {
 *   if (isRevocationError(error) && error.retryable) queueForLater(error)
 * }
 */
export class RevocationError extends ReauthError<'REVOCATION_FAILED'> {
  override name = 'RevocationError'
  readonly retryable: boolean
  readonly status: number | undefined
  readonly error: string | undefined
  readonly errorDescription: string | undefined
  readonly tokenTypeHint: 'refresh_token' | 'access_token' | undefined

  constructor(message: string, fields: RevocationErrorFields, options: ReauthErrorOptions = {}) {
    super('REVOCATION_FAILED', message, options)
    this.retryable = fields.retryable
    this.status = fields.status
    this.error = fields.error
    this.errorDescription = fields.errorDescription
    this.tokenTypeHint = fields.tokenTypeHint
  }
}

/** True for a {@link RevocationError}, also across realms. @example isRevocationError(error) */
export function isRevocationError(value: unknown): value is RevocationError {
  return isReauthError(value) && value.name === 'RevocationError'
}

/** Replace every secret (of four characters or more) in a text. */
export function redact(text: string, secrets: ReadonlyArray<string | undefined>): string {
  let result = text
  for (const secret of secrets) {
    if (secret && secret.length >= 4) result = result.split(secret).join('[redacted]')
  }
  return result
}

/**
 * {@link withoutCause}, with the given secrets redacted from the message (a custom `fetch` or a
 * server may echo what it was sent).
 */
export function scrubbed(error: unknown, secrets: ReadonlyArray<string | undefined>): Error {
  const copy = withoutCause(error)
  copy.message = redact(copy.message, secrets)
  copy.stack = `${copy.name}: ${copy.message}`
  return copy
}
