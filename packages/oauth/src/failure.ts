import { OAuthError, RefreshError } from '@reauth/core'
import * as oauth from 'oauth4webapi'

/**
 * Translate what oauth4webapi throws into what the engine classifies: RFC 6749 §5.2 errors
 * (in the body, or in a `WWW-Authenticate` challenge) keep their `error` and status; a
 * non-conforming HTTP status keeps the response (for 5xx, 429 and `Retry-After`); a
 * malformed success body names the field. Other errors (network) pass through.
 */
export function toRefreshFailure(error: unknown): unknown {
  if (error instanceof oauth.ResponseBodyError) {
    return new OAuthError(
      {
        error: error.error,
        status: error.status,
        ...(error.error_description ? { errorDescription: error.error_description } : {}),
      },
      { response: error.response, cause: error },
    )
  }
  if (error instanceof oauth.WWWAuthenticateChallengeError) {
    const code = error.cause.find((challenge) => challenge.parameters.error)?.parameters.error
    return new OAuthError(
      { error: code ?? 'invalid_client', status: error.status },
      { response: error.response, cause: error },
    )
  }
  if (error instanceof oauth.OperationProcessingError) {
    const response = error.cause instanceof Response ? error.cause : undefined
    if (response && !response.ok) {
      return Object.assign(new Error(`HTTP ${response.status}`, { cause: error }), { response })
    }
    const field = /"(?:response\.)?(?:body\.)?"?(\w+)"? property/.exec(error.message)?.[1]
    const name = field ?? 'body'
    return new RefreshError(
      `Malformed token response: "${name}" is invalid (${error.code ?? 'unprocessable'})`,
      { retryable: true, field: name },
      { cause: withoutBody(error) },
    )
  }
  if (error instanceof oauth.UnsupportedOperationError && /token_type/.test(error.message)) {
    return new RefreshError(
      'Malformed token response: "token_type" is not supported, only "Bearer" is',
      { retryable: true, field: 'token_type' },
      { cause: withoutBody(error) },
    )
  }
  return error
}

/**
 * oauth4webapi keeps the parsed token response as its error's `cause` (`{ body }`): the
 * tokens the server just issued, which `util.inspect` and error trackers print. Keep the
 * error's name, message and code, not its cause.
 */
function withoutBody(error: Error & { code?: unknown }): Error {
  const copy = new Error(error.message)
  copy.name = error.name
  if (typeof error.code === 'string') Object.assign(copy, { code: error.code })
  return copy
}
