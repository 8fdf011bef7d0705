import { ReauthOptionsError, type RevokeFunction } from '@reauth/core'
import * as oauth from 'oauth4webapi'
import { type OAuthClientOptions, resolveClient } from './client.js'
import { assertSecureUrl } from './discovery.js'
import { isDiscoveryError, RevocationError, redact, scrubbed } from './errors.js'

/** Options of {@link revokeTokens}. */
export interface RevokeTokensOptions {
  /**
   * Also revoke the access token, after the refresh token. Default `true`. A server that
   * cannot revoke it (a JWT access token: RFC 7009 `unsupported_token_type`) is not a failure.
   */
  accessToken?: boolean
}

type Hint = 'refresh_token' | 'access_token'

function isTransient(status: number): boolean {
  return status >= 500 || status === 408 || status === 429
}

/** What failed, as a {@link RevocationError} whose message and cause hold no token. */
function revocationFailure(
  error: unknown,
  hint: Hint,
  secrets: ReadonlyArray<string | undefined>,
  signal: AbortSignal,
): RevocationError {
  const what = `Revoking the ${hint.replace('_', ' ')} failed`
  const cause = scrubbed(error, secrets)
  if (isDiscoveryError(error)) {
    return new RevocationError(
      `${what}: ${error.message}`,
      { retryable: error.retryable, status: error.status, tokenTypeHint: hint },
      { cause },
    )
  }
  if (error instanceof oauth.ResponseBodyError) {
    const description =
      error.error_description === undefined ? undefined : redact(error.error_description, secrets)
    const code = redact(error.error, secrets)
    return new RevocationError(
      `${what}: the revocation endpoint answered "${code}" (HTTP ${error.status})`,
      {
        retryable: isTransient(error.status),
        status: error.status,
        error: code,
        errorDescription: description,
        tokenTypeHint: hint,
      },
      { cause },
    )
  }
  if (error instanceof oauth.WWWAuthenticateChallengeError) {
    const code = error.cause.find((challenge) => challenge.parameters.error)?.parameters.error
    return new RevocationError(
      `${what}: the revocation endpoint answered HTTP ${error.status} (client authentication)`,
      {
        retryable: false,
        status: error.status,
        error: code === undefined ? 'invalid_client' : redact(code, secrets),
        tokenTypeHint: hint,
      },
      { cause },
    )
  }
  if (error instanceof oauth.OperationProcessingError) {
    const response = error.cause instanceof Response ? error.cause : undefined
    if (response && !response.ok) {
      return new RevocationError(
        `${what}: the revocation endpoint answered HTTP ${response.status}`,
        { retryable: isTransient(response.status), status: response.status, tokenTypeHint: hint },
        { cause },
      )
    }
  }
  if (signal.aborted) {
    return new RevocationError(
      `${what}: aborted (timeout or sign-out cancelled)`,
      { retryable: true, tokenTypeHint: hint },
      { cause },
    )
  }
  // A network error (fetch's TypeError) or anything a custom fetch threw.
  return new RevocationError(
    `${what}: ${cause.message || cause.name}`,
    { retryable: true, tokenTypeHint: hint },
    { cause },
  )
}

/**
 * The engine's `revoke` function: at sign-out, revoke the session's tokens at the authorization
 * server's `revocation_endpoint` (RFC 7009, from discovery or `server`), the refresh token
 * first (`token_type_hint=refresh_token`: with it gone, nothing can mint new access tokens),
 * then the access token. The client authenticates as at the token endpoint.
 *
 * Throws a {@link RevocationError} when the server has no `revocation_endpoint`
 * (`retryable: false`), answers an error (`status`, `error`; retryable for 5xx, 408, 429), or
 * cannot be reached (`retryable: true`). Both tokens are tried before it throws; it names the
 * first failure. An unknown or already revoked token is a success (the server answers 200).
 * The engine clears the local session whatever happens here.
 *
 * @example
 * import { createEngine } from '@reauth/core'
 * import { createRefreshGrant, revokeTokens } from '@reauth/oauth'
 *
 * const client = { issuer: 'https://auth.example.com', clientId: 'my-app' }
 * const engine = createEngine({ tokens, refresh: createRefreshGrant(client), revoke: revokeTokens(client) })
 * await engine.clear() // revoked at the server, cleared here
 */
export function revokeTokens(
  client: OAuthClientOptions,
  options: RevokeTokensOptions = {},
): RevokeFunction {
  const resolved = resolveClient(client)
  if (typeof options !== 'object' || options === null) {
    throw new ReauthOptionsError('the revocation options must be an object')
  }
  if (options.accessToken !== undefined && typeof options.accessToken !== 'boolean') {
    throw new ReauthOptionsError('"accessToken" must be a boolean')
  }
  const insecure = client.allowInsecureRequests === true
  return async ({ tokens, signal }) => {
    const secrets = [tokens.accessToken, tokens.refreshToken, tokens.idToken, client.clientSecret]
    const targets: Array<[Hint, string]> = []
    if (tokens.refreshToken) targets.push(['refresh_token', tokens.refreshToken])
    if (options.accessToken !== false && tokens.accessToken) {
      targets.push(['access_token', tokens.accessToken])
    }
    if (targets.length === 0) return
    const first = targets[0]?.[0] ?? 'refresh_token'
    let server: oauth.AuthorizationServer
    try {
      server = await resolved.server(signal)
    } catch (error) {
      throw revocationFailure(error, first, secrets, signal)
    }
    const endpoint = server.revocation_endpoint
    if (typeof endpoint !== 'string' || !URL.canParse(endpoint)) {
      throw new RevocationError(
        `Cannot revoke: the authorization server ${server.issuer} has no "revocation_endpoint" in its metadata`,
        { retryable: false, tokenTypeHint: first },
      )
    }
    try {
      assertSecureUrl(new URL(endpoint), '"revocation_endpoint"', insecure)
    } catch (error) {
      throw new RevocationError(`Cannot revoke: ${(error as Error).message}`, {
        retryable: false,
        tokenTypeHint: first,
      })
    }
    let failure: RevocationError | undefined
    for (const [hint, token] of targets) {
      try {
        const response = await oauth.revocationRequest(
          server,
          resolved.client,
          resolved.auth,
          token,
          { ...resolved.http(signal), additionalParameters: { token_type_hint: hint } },
        )
        await oauth.processRevocationResponse(response)
      } catch (error) {
        // RFC 7009 §2.2.1: the server cannot revoke this kind of token (a JWT access token
        // lives until it expires); there is nothing more to do for it.
        if (
          hint === 'access_token' &&
          error instanceof oauth.ResponseBodyError &&
          error.error === 'unsupported_token_type'
        ) {
          continue
        }
        failure ??= revocationFailure(error, hint, secrets, signal)
        if (signal.aborted) break
      }
    }
    if (failure) throw failure
  }
}
