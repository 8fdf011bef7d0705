import { OAuthError, ReauthOptionsError, type RefreshFunction } from '@reauth/core'
import * as oauth from 'oauth4webapi'
import { type OAuthClientOptions, resolveClient } from './client.js'
import { dpopOption, withDpopNonceRetry } from './dpop.js'
import { toRefreshFailure } from './failure.js'
import { grantParameters, resourceList } from './resources.js'
import { readTokenResponse } from './token-response.js'

/** Options of {@link createRefreshGrant}. */
export interface RefreshGrantOptions extends OAuthClientOptions {
  /** Ask for this (narrower) scope on refresh. */
  scope?: string
  /**
   * RFC 8707 resource indicator(s) sent with each refresh. When the engine asks for a token
   * for one resource (`context.resource`, per-resource tokens), that one is sent instead.
   */
  resource?: string | string[]
}

/**
 * The engine's `refresh` function over an authorization server's token endpoint: the
 * refresh_token grant (RFC 6749 §6) with client authentication `none`,
 * `client_secret_basic` or `client_secret_post`. Responses are validated
 * (access_token, token_type, expires_in, refresh_token, and an ID token when there is one);
 * a 2xx that fails a check is a `RefreshError` naming the field, and a new refresh token in
 * it still reaches the store. §5.2 errors reach the engine with their `error` code, so
 * `invalid_grant` ends the session and 5xx/429 don't. A discovery that cannot succeed is a
 * `RefreshError` with `retryable: false`.
 *
 * With DPoP on (the engine's key pair in `context.dpop`), each token request carries a proof
 * (RFC 9449 §5) and a `DPoP`-typed response is accepted; a `use_dpop_nonce` answer is sent
 * again once with the server's nonce, which is no failure and spends no refresh token.
 *
 * @example
 * import { createEngine } from '@reauth/core'
 * import { createRefreshGrant } from '@reauth/oauth'
 *
 * const engine = createEngine({
 *   tokens,
 *   refresh: createRefreshGrant({ issuer: 'https://accounts.example.com', clientId: 'spa' }),
 * })
 */
export function createRefreshGrant(options: RefreshGrantOptions): RefreshFunction {
  const resolved = resolveClient(options)
  if (options.scope !== undefined && typeof options.scope !== 'string') {
    throw new ReauthOptionsError('"scope" must be a string')
  }
  const resources = resourceList(options.resource)
  return async ({ tokens, signal, resource, dpop }) => {
    if (!tokens.refreshToken) {
      throw new OAuthError({ error: 'invalid_grant', errorDescription: 'no refresh token' })
    }
    const parameters = grantParameters(options.scope, resources, resource)
    const refreshToken = tokens.refreshToken
    try {
      const server = await resolved.server(signal)
      return await withDpopNonceRetry(dpop, async () => {
        const sentAt = Date.now()
        const response = await oauth.refreshTokenGrantRequest(
          server,
          resolved.client,
          resolved.auth,
          refreshToken,
          { ...resolved.http(signal), additionalParameters: parameters, ...dpopOption(dpop) },
        )
        return readTokenResponse(response, {
          server,
          client: resolved.client,
          sentAt,
          grant: 'refresh_token',
          previousIdToken: tokens.idToken,
          dpop: dpop !== undefined,
        })
      })
    } catch (error) {
      throw toRefreshFailure(error)
    }
  }
}
