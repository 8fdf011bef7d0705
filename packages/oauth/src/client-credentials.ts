import { type AcquireFunction, ReauthOptionsError } from '@reauth/core'
import * as oauth from 'oauth4webapi'
import { type OAuthClientOptions, resolveClient } from './client.js'
import { toRefreshFailure } from './failure.js'
import { grantParameters, resourceList } from './resources.js'
import { readTokenResponse } from './token-response.js'

/** Options of {@link clientCredentials}: what to ask for. */
export interface ClientCredentialsOptions {
  /** The scope to ask for, space separated. Default: none (the server's default for the client). */
  scope?: string
  /**
   * RFC 8707 resource indicator(s) sent with every grant. When the engine asks for a token for
   * one resource (`context.resource`, per-resource tokens), that one is sent instead.
   */
  resource?: string | string[]
}

/**
 * The engine's `acquire` function for a service: the client credentials grant (RFC 6749 §4.4)
 * at the token endpoint, discovered on first use. The client must be confidential (a
 * `clientSecret`, `client_secret_basic` by default or `client_secret_post`). The response is
 * read as the refresh grant's is (`expiresAt` from `expires_in`, or a JWT's `exp`); a refresh
 * token in it is dropped, since the grant itself is the way to a new token. `invalid_client`
 * and `unauthorized_client` reach the engine as an `OAuthError`, which ends the session (a
 * wrong secret does not heal by retrying); 5xx, 429 and network errors are transient.
 *
 * @example
 * import { createEngine } from '@reauth/core'
 * import { clientCredentials } from '@reauth/oauth'
 *
 * const engine = createEngine({
 *   acquire: clientCredentials(
 *     { issuer: 'https://auth.example.com', clientId: 'billing', clientSecret: process.env.SECRET },
 *     { scope: 'invoices:read' },
 *   ),
 * })
 */
export function clientCredentials(
  client: OAuthClientOptions,
  options: ClientCredentialsOptions = {},
): AcquireFunction {
  const resolved = resolveClient(client)
  if (client.clientAuth === 'none' || !client.clientSecret) {
    throw new ReauthOptionsError(
      '"clientSecret" is required: the client credentials grant is for confidential clients (RFC 6749 §4.4)',
    )
  }
  if (typeof options !== 'object' || options === null) {
    throw new ReauthOptionsError('the client credentials options must be an object')
  }
  if (options.scope !== undefined && typeof options.scope !== 'string') {
    throw new ReauthOptionsError('"scope" must be a string')
  }
  const resources = resourceList(options.resource)
  return async ({ signal, resource }) => {
    const parameters = grantParameters(options.scope, resources, resource)
    try {
      const server = await resolved.server(signal)
      const sentAt = Date.now()
      const response = await oauth.clientCredentialsGrantRequest(
        server,
        resolved.client,
        resolved.auth,
        parameters,
        resolved.http(signal),
      )
      return await readTokenResponse(response, {
        server,
        client: resolved.client,
        sentAt,
        grant: 'client_credentials',
      })
    } catch (error) {
      throw toRefreshFailure(error)
    }
  }
}
