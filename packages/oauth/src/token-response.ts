import { parseTokenResponse, RefreshError, type TokenSet } from '@reauth/core'
import * as oauth from 'oauth4webapi'
import { withoutCause } from './errors.js'

/** How to read one token response. */
export interface ReadTokenResponseOptions {
  server: oauth.AuthorizationServer
  client: oauth.Client
  /** The local clock when the request was sent (`expiresAt` counts from it). */
  sentAt: number
  /**
   * The grant the response answers: the ID token rules differ, and a `client_credentials`
   * response keeps neither a refresh token nor an ID token.
   */
  grant: 'refresh_token' | 'authorization_code' | 'client_credentials'
  /** The sign-in asked for `openid`: an ID token is required, with this nonce. */
  expectedNonce?: string | undefined
  /** The ID token of the session being refreshed: a new one must name the same `sub`. */
  previousIdToken?: string | undefined
  /** The request carried a DPoP proof; without one a `DPoP`-typed token cannot be used. */
  dpop?: boolean | undefined
}

/** The `sub` claim of a JWS compact ID token, without checking it; `undefined` if unreadable. */
function subjectOf(idToken: string | undefined): string | undefined {
  const payload = idToken?.split('.')[1]
  if (!payload) return undefined
  try {
    const claims: unknown = JSON.parse(
      new TextDecoder().decode(
        Uint8Array.from(atob(payload.replace(/-/g, '+').replace(/_/g, '/')), (c) =>
          c.charCodeAt(0),
        ),
      ),
    )
    const sub = (claims as { sub?: unknown } | null)?.sub
    return typeof sub === 'string' ? sub : undefined
  } catch {
    return undefined
  }
}

function malformed(field: string, what: string, refreshToken: string | undefined, cause?: unknown) {
  return new RefreshError(
    `Malformed token response: "${field}" ${what}`,
    { retryable: true, field },
    { refreshToken, ...(cause === undefined ? {} : { cause }) },
  )
}

/**
 * A client credentials response (RFC 6749 §4.4.3): "a refresh token SHOULD NOT be included",
 * and one that is, is not kept — not in the set, not with an error about the response (the
 * engine would store it). An ID token has no meaning here either.
 */
function withoutRefreshToken(body: unknown, sentAt: number): TokenSet {
  let tokens: TokenSet
  try {
    tokens = parseTokenResponse(body, { sentAt })
  } catch (error) {
    if (!(error instanceof RefreshError)) throw error
    const { retryable, field, status, retryAfter } = error
    throw new RefreshError(error.message, { retryable, field, status, retryAfter })
  }
  const { refreshToken: _refreshToken, idToken: _idToken, ...kept } = tokens
  return kept
}

/**
 * Read a token response. An error status goes through oauth4webapi (RFC 6749 §5.2 bodies,
 * `WWW-Authenticate` challenges), whose errors the caller maps. A 2xx is read by reauth
 * first, leniently where servers are (a numeric string `expires_in`, any case of
 * `token_type`, any JSON content type), and only its ID token is then checked by
 * oauth4webapi. Whatever fails in a 2xx is a `RefreshError` naming the field, carrying the
 * new refresh token when the response had one (the server has spent the old one), and no
 * cause that holds the response's tokens.
 */
export async function readTokenResponse(
  response: Response,
  options: ReadTokenResponseOptions,
): Promise<TokenSet> {
  const { server, client } = options
  if (!response.ok) {
    // Throws ResponseBodyError, WWWAuthenticateChallengeError or an OperationProcessingError
    // holding the response: none of them carries tokens.
    if (options.grant === 'client_credentials') {
      await oauth.processClientCredentialsResponse(server, client, response)
    } else {
      await oauth.processRefreshTokenResponse(server, client, response)
    }
    throw new RefreshError('Malformed token response: unexpected HTTP status', {
      retryable: true,
      status: response.status,
    })
  }
  // A failure to read the body (network, abort) is not a malformed response: it propagates.
  const text = await response.text()
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    throw malformed('body', 'is not JSON', undefined)
  }
  if (options.grant === 'client_credentials') return withoutRefreshToken(body, options.sentAt)
  const record = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>
  const issued =
    typeof record.refresh_token === 'string' && record.refresh_token !== ''
      ? record.refresh_token
      : undefined
  const tokens = parseTokenResponse(body, { sentAt: options.sentAt })
  if (tokens.tokenType === 'DPoP' && !options.dpop) {
    // RFC 9449 §5: a DPoP-bound token is useless without the key; the engine has none.
    throw malformed('token_type', 'is "DPoP" but the request had no DPoP proof', issued)
  }
  const openid = options.expectedNonce !== undefined
  if (tokens.idToken === undefined) {
    if (openid) {
      throw malformed('id_token', 'is missing (the sign-in asked for "openid")', issued)
    }
    return tokens
  }
  try {
    // oauth4webapi checks the ID token (iss, aud, azp, exp, iat, sub, nonce, alg) on a body
    // reauth builds: nothing else of the server's response reaches it.
    const checked = new Response(
      JSON.stringify({ access_token: 'checked', token_type: 'bearer', id_token: tokens.idToken }),
      { status: 200, headers: { 'content-type': 'application/json' } },
    )
    if (options.grant === 'refresh_token') {
      await oauth.processRefreshTokenResponse(server, client, checked)
    } else {
      await oauth.processAuthorizationCodeResponse(
        server,
        client,
        checked,
        options.expectedNonce === undefined ? {} : { expectedNonce: options.expectedNonce },
      )
    }
  } catch (error) {
    const reason = error instanceof Error ? error.message : 'unprocessable'
    throw malformed('id_token', `is invalid: ${reason}`, issued, withoutCause(error))
  }
  // OpenID Connect Core §12.2: a refreshed ID token is about the user who signed in.
  const before = subjectOf(options.previousIdToken)
  if (before !== undefined && subjectOf(tokens.idToken) !== before) {
    throw malformed('id_token', 'is invalid: its "sub" is not the signed-in user\'s', issued)
  }
  return tokens
}
