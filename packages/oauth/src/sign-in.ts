import {
  OAuthError,
  parseTokenResponse,
  ReauthError,
  ReauthOptionsError,
  type TokenSet,
} from '@reauth/core'
import * as oauth from 'oauth4webapi'
import { type OAuthClientOptions, resolveClient } from './client.js'
import { toRefreshFailure } from './failure.js'

/** Options of {@link beginSignIn} and {@link completeSignIn}. */
export interface SignInOptions extends OAuthClientOptions {
  /** The registered redirect URI the authorization server sends the user back to. */
  redirectUri: string
  /** Scopes; `offline_access` is added so a refresh token is issued. Default `'openid'`. */
  scope?: string
  /** RFC 8707 resource indicator(s). */
  resource?: string | string[]
  /** Extra authorization request parameters (`prompt`, `login_hint`, …). */
  parameters?: Record<string, string>
}

/** What {@link beginSignIn} returns; keep `state`, `codeVerifier` and `nonce` until the callback. */
export interface SignInRequest {
  /** Send the user here. */
  url: URL
  /** The `state` to check on the callback (CSRF protection). */
  state: string
  /** The PKCE code verifier for the code exchange. */
  codeVerifier: string
  /** The OpenID Connect nonce, when `openid` is in the scope. */
  nonce: string | undefined
}

function scopeWithOfflineAccess(scope: string | undefined): string {
  const scopes = new Set((scope ?? 'openid').split(/\s+/).filter(Boolean))
  scopes.add('offline_access')
  return [...scopes].join(' ')
}

function check(options: SignInOptions): void {
  if (typeof options?.redirectUri !== 'string' || !URL.canParse(options.redirectUri)) {
    throw new ReauthOptionsError('"redirectUri" must be an absolute URL')
  }
}

/**
 * Start the first sign-in: an authorization URL with PKCE (S256), `state` and
 * `offline_access` (so the server issues a refresh token), plus a nonce for OpenID Connect.
 *
 * @example
 * const request = await beginSignIn({ issuer, clientId: 'spa', redirectUri: 'https://app.example.com/cb' })
 * sessionStorage.setItem('signin', JSON.stringify({ ...request, url: undefined }))
 * location.assign(request.url)
 */
export async function beginSignIn(options: SignInOptions): Promise<SignInRequest> {
  check(options)
  const resolved = resolveClient(options)
  const server = await resolved.server()
  if (!server.authorization_endpoint) {
    throw new ReauthError(
      'SIGN_IN_FAILED',
      'The authorization server has no authorization_endpoint',
    )
  }
  const codeVerifier = oauth.generateRandomCodeVerifier()
  const state = oauth.generateRandomState()
  const scope = scopeWithOfflineAccess(options.scope)
  const nonce = scope.split(' ').includes('openid') ? oauth.generateRandomNonce() : undefined
  const url = new URL(server.authorization_endpoint)
  url.searchParams.set('client_id', options.clientId)
  url.searchParams.set('redirect_uri', options.redirectUri)
  url.searchParams.set('response_type', 'code')
  url.searchParams.set('scope', scope)
  url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(codeVerifier))
  url.searchParams.set('code_challenge_method', 'S256')
  url.searchParams.set('state', state)
  // offline_access needs consent; OpenID Providers only honour it with prompt=consent.
  url.searchParams.set('prompt', 'consent')
  if (nonce) url.searchParams.set('nonce', nonce)
  const resources = options.resource === undefined ? [] : [options.resource].flat()
  for (const resource of resources) url.searchParams.append('resource', resource)
  for (const [key, value] of Object.entries(options.parameters ?? {})) {
    url.searchParams.set(key, value)
  }
  return { url, state, codeVerifier, nonce }
}

/**
 * Finish the sign-in: validate the callback (`state`, `iss`, errors) and exchange the code
 * with its PKCE verifier for the first {@link TokenSet}.
 *
 * @example
 * const tokens = await completeSignIn(options, { callbackUrl: location.href, ...saved })
 * await engine.setTokens(tokens)
 */
export async function completeSignIn(
  options: SignInOptions,
  callback: {
    callbackUrl: string | URL
    state: string
    codeVerifier: string
    nonce?: string | undefined
    signal?: AbortSignal
  },
): Promise<TokenSet> {
  check(options)
  const resolved = resolveClient(options)
  const server = await resolved.server(callback.signal)
  let parameters: URLSearchParams
  try {
    parameters = oauth.validateAuthResponse(
      server,
      resolved.client,
      new URL(callback.callbackUrl),
      callback.state,
    )
  } catch (error) {
    if (error instanceof oauth.AuthorizationResponseError) {
      throw new OAuthError(
        {
          error: error.error,
          ...(error.error_description ? { errorDescription: error.error_description } : {}),
        },
        { cause: error },
      )
    }
    throw new ReauthError('SIGN_IN_FAILED', 'The authorization response is invalid', {
      cause: error,
    })
  }
  try {
    const sentAt = Date.now()
    const response = await oauth.authorizationCodeGrantRequest(
      server,
      resolved.client,
      resolved.auth,
      parameters,
      options.redirectUri,
      callback.codeVerifier,
      resolved.http(callback.signal),
    )
    const raw = response.clone()
    await oauth.processAuthorizationCodeResponse(server, resolved.client, response, {
      ...(callback.nonce ? { expectedNonce: callback.nonce } : {}),
    })
    return parseTokenResponse(await raw.json(), { sentAt })
  } catch (error) {
    throw toRefreshFailure(error)
  }
}
