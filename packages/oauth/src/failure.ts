import { OAuthError, RefreshError } from '@reauth/core'
import * as oauth from 'oauth4webapi'
import { isDiscoveryError, withoutCause } from './errors.js'

/**
 * Translate what a grant threw into what the engine classifies: RFC 6749 §5.2 errors (in
 * the body, or in a `WWW-Authenticate` challenge) keep their `error` and status; a
 * non-conforming HTTP status keeps the response (for 5xx, 429 and `Retry-After`); a failed
 * discovery is a `RefreshError` as retryable as the discovery error. reauth's own errors
 * and network errors pass through. Any other oauth4webapi error loses its cause, which may
 * hold what the server sent.
 */
export function toRefreshFailure(error: unknown): unknown {
  if (isDiscoveryError(error)) {
    return new RefreshError(
      error.message,
      { retryable: error.retryable, status: error.status },
      { cause: error },
    )
  }
  if (error instanceof oauth.ResponseBodyError) {
    return new OAuthError(
      {
        error: error.error,
        status: error.status,
        ...(error.error_description ? { errorDescription: error.error_description } : {}),
      },
      { response: error.response, cause: withoutCause(error) },
    )
  }
  if (error instanceof oauth.WWWAuthenticateChallengeError) {
    const code = error.cause.find((challenge) => challenge.parameters.error)?.parameters.error
    return new OAuthError(
      { error: code ?? 'invalid_client', status: error.status },
      { response: error.response, cause: withoutCause(error) },
    )
  }
  if (error instanceof oauth.OperationProcessingError) {
    const response = error.cause instanceof Response ? error.cause : undefined
    if (response && !response.ok) {
      return Object.assign(new Error(`HTTP ${response.status}`, { cause: withoutCause(error) }), {
        response,
      })
    }
    return new RefreshError(
      `The token request failed: ${error.message}`,
      { retryable: true },
      { cause: withoutCause(error) },
    )
  }
  if (error instanceof oauth.UnsupportedOperationError) {
    return new RefreshError(
      `The token request failed: ${error.message}`,
      { retryable: true },
      { cause: withoutCause(error) },
    )
  }
  return error
}
