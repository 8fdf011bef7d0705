import { ReauthOptionsError, type TokenSet } from '@reauth/core'
import * as oauth from 'oauth4webapi'
import { type OAuthClientOptions, resolveClient } from './client.js'
import { isOpenIdProvider } from './discovery.js'
import { dpopHandle, dpopOption, withDpopNonceRetry } from './dpop.js'
import { SignInError, withoutCause } from './errors.js'
import { toRefreshFailure } from './failure.js'
import { readTokenResponse } from './token-response.js'

/** Options of {@link beginSignIn} and {@link completeSignIn}; give both the same options. */
export interface SignInOptions extends OAuthClientOptions {
  /** The registered redirect URI the authorization server sends the user back to. */
  redirectUri: string
  /**
   * Scopes, space separated. Default: `'openid'` for an OpenID Provider (metadata from
   * `/.well-known/openid-configuration`, or with `userinfo_endpoint`,
   * `id_token_signing_alg_values_supported`, `subject_types_supported` or `openid` in
   * `scopes_supported`), none for a plain OAuth 2.0 server. With `openid` in the scope a
   * nonce is sent and the code exchange must return a valid ID token.
   */
  scope?: string
  /**
   * Add `offline_access` to the scope, so the server issues a refresh token. Default
   * `'auto'`: only when the metadata has no `scopes_supported` or lists `offline_access`
   * there (a server that does not know it answers `invalid_scope`). A scope you give that
   * already has `offline_access` keeps it.
   */
  offlineAccess?: boolean | 'auto'
  /**
   * The `prompt` parameter, or `false` for none. Default: `'consent'` when `offline_access` is
   * asked of an OpenID Provider (OpenID Connect Core §11: it is only honoured with consent),
   * else none.
   */
  prompt?: string | false
  /** RFC 8707 resource indicator(s). */
  resource?: string | string[]
  /**
   * Extra authorization request parameters (`login_hint`, `ui_locales`, `acr_values`, …). They
   * cannot set what protects the flow or has its own option: {@link PROTECTED_PARAMETERS}
   * (a `ReauthOptionsError` says which).
   */
  parameters?: Record<string, string>
  /**
   * DPoP (RFC 9449): the key pair the session's tokens are bound to (the engine's). The
   * authorization request carries its thumbprint as `dpop_jkt` (§10), so the code can only be
   * exchanged with this key; the code exchange sends a proof and accepts `token_type: DPoP`.
   * Give the same pair to both calls and to the engine.
   */
  dpop?: CryptoKeyPair
  /**
   * The `dpop_jkt` to send when the key pair is not at hand on the sign-in page (its RFC 7638
   * thumbprint, base64url). Not with `dpop`, which sends it by itself.
   */
  dpopJkt?: string
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

/** What {@link completeSignIn} needs from the callback and from {@link beginSignIn}. */
export interface SignInCallback {
  /** The URL the authorization server redirected to (`location.href` on the redirect page). */
  callbackUrl: string | URL
  /** {@link SignInRequest.state}. Required: the callback must carry exactly this state. */
  state: string
  /** {@link SignInRequest.codeVerifier}. Required (PKCE). */
  codeVerifier: string
  /** {@link SignInRequest.nonce}. Required when the sign-in asked for `openid`. */
  nonce?: string | undefined
  /** Abort discovery and the code exchange. */
  signal?: AbortSignal
}

/**
 * Authorization request parameters that `parameters` may not set: they protect the flow
 * (`state`, PKCE, `nonce`, where the code goes, which client asks), or carry a whole request
 * of their own (`request`, `request_uri`), or have their own option (`scope`, `prompt`,
 * `resource`).
 */
export const PROTECTED_PARAMETERS: readonly string[] = [
  'client_id',
  'redirect_uri',
  'response_type',
  'response_mode',
  'state',
  'nonce',
  'code_challenge',
  'code_challenge_method',
  'request',
  'request_uri',
  'scope',
  'prompt',
  'resource',
  'dpop_jkt',
]

const OWN_OPTION: Record<string, string> = {
  scope: '"scope"',
  prompt: '"prompt"',
  resource: '"resource"',
  dpop_jkt: '"dpop" (or "dpopJkt")',
}

function check(options: SignInOptions): void {
  if (typeof options !== 'object' || options === null) {
    throw new ReauthOptionsError('the sign-in options must be an object')
  }
  if (typeof options.redirectUri !== 'string' || !URL.canParse(options.redirectUri)) {
    throw new ReauthOptionsError('"redirectUri" must be an absolute URL')
  }
  if (options.scope !== undefined && typeof options.scope !== 'string') {
    throw new ReauthOptionsError('"scope" must be a string')
  }
  const offline = options.offlineAccess
  if (offline !== undefined && typeof offline !== 'boolean' && offline !== 'auto') {
    throw new ReauthOptionsError('"offlineAccess" must be true, false or "auto"')
  }
  if (
    options.prompt !== undefined &&
    options.prompt !== false &&
    (typeof options.prompt !== 'string' || options.prompt === '')
  ) {
    throw new ReauthOptionsError('"prompt" must be a non-empty string or false')
  }
  if (options.dpop !== undefined) {
    const pair = options.dpop as Partial<CryptoKeyPair> | null
    if (typeof pair !== 'object' || pair === null || !pair.privateKey || !pair.publicKey) {
      throw new ReauthOptionsError('"dpop" must be a CryptoKeyPair')
    }
    if (options.dpopJkt !== undefined) {
      throw new ReauthOptionsError('"dpopJkt" and "dpop" cannot both be given: "dpop" sends it')
    }
  }
  if (options.dpopJkt !== undefined) {
    if (typeof options.dpopJkt !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(options.dpopJkt)) {
      throw new ReauthOptionsError(
        '"dpopJkt" must be a JWK SHA-256 thumbprint (43 base64url characters)',
      )
    }
  }
  const parameters = options.parameters
  if (parameters === undefined) return
  if (typeof parameters !== 'object' || parameters === null) {
    throw new ReauthOptionsError('"parameters" must be an object of strings')
  }
  for (const [key, value] of Object.entries(parameters)) {
    if (PROTECTED_PARAMETERS.includes(key)) {
      const own = OWN_OPTION[key]
      throw new ReauthOptionsError(
        own
          ? `"parameters.${key}" is not allowed: use the ${own} option`
          : `"parameters.${key}" is not allowed: reauth sets it, it protects the sign-in`,
      )
    }
    if (typeof value !== 'string') {
      throw new ReauthOptionsError(`"parameters.${key}" must be a string`)
    }
  }
}

/** The scope to ask for, and what follows from it. */
function signInScope(
  options: SignInOptions,
  server: oauth.AuthorizationServer,
): { scope: string; openid: boolean; offline: boolean } {
  const openIdProvider = isOpenIdProvider(server)
  const scopes = new Set(
    (options.scope ?? (openIdProvider ? 'openid' : '')).split(/\s+/).filter(Boolean),
  )
  const mode = options.offlineAccess ?? 'auto'
  const supported = server.scopes_supported
  const wanted =
    mode === 'auto' ? !Array.isArray(supported) || supported.includes('offline_access') : mode
  if (wanted) scopes.add('offline_access')
  const offline = scopes.has('offline_access')
  return { scope: [...scopes].join(' '), openid: scopes.has('openid'), offline }
}

/**
 * Start the first sign-in: an authorization URL with PKCE (S256) and `state`, plus a nonce
 * when the scope has `openid`, `offline_access` when the server supports it (so it issues a
 * refresh token) and `prompt=consent` when an OpenID Provider needs it for that.
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
    throw new SignInError('The authorization server has no authorization_endpoint')
  }
  const codeVerifier = oauth.generateRandomCodeVerifier()
  const state = oauth.generateRandomState()
  const { scope, openid, offline } = signInScope(options, server)
  const nonce = openid ? oauth.generateRandomNonce() : undefined
  const prompt =
    options.prompt === undefined
      ? offline && isOpenIdProvider(server)
        ? 'consent'
        : undefined
      : options.prompt || undefined
  const url = new URL(server.authorization_endpoint)
  for (const [key, value] of Object.entries(options.parameters ?? {})) {
    url.searchParams.set(key, value)
  }
  url.searchParams.set('client_id', options.clientId)
  url.searchParams.set('redirect_uri', options.redirectUri)
  url.searchParams.set('response_type', 'code')
  if (scope) url.searchParams.set('scope', scope)
  url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(codeVerifier))
  url.searchParams.set('code_challenge_method', 'S256')
  url.searchParams.set('state', state)
  if (prompt) url.searchParams.set('prompt', prompt)
  if (nonce) url.searchParams.set('nonce', nonce)
  const resources = options.resource === undefined ? [] : [options.resource].flat()
  for (const resource of resources) url.searchParams.append('resource', resource)
  const jkt = options.dpop ? await dpopHandle(options.dpop).calculateThumbprint() : options.dpopJkt
  if (jkt) url.searchParams.set('dpop_jkt', jkt)
  return { url, state, codeVerifier, nonce }
}

function checkCallback(callback: SignInCallback): URL {
  if (typeof callback !== 'object' || callback === null) {
    throw new ReauthOptionsError('the callback must be an object')
  }
  if (typeof callback.state !== 'string' || callback.state === '') {
    throw new ReauthOptionsError(
      '"state" is required: pass the state beginSignIn returned (the callback is checked against it)',
    )
  }
  if (typeof callback.codeVerifier !== 'string' || callback.codeVerifier === '') {
    throw new ReauthOptionsError(
      '"codeVerifier" is required: pass the codeVerifier beginSignIn returned (PKCE)',
    )
  }
  if (callback.nonce !== undefined && (typeof callback.nonce !== 'string' || !callback.nonce)) {
    throw new ReauthOptionsError('"nonce" must be the nonce beginSignIn returned')
  }
  try {
    return new URL(callback.callbackUrl)
  } catch {
    throw new ReauthOptionsError('"callbackUrl" must be an absolute URL')
  }
}

/**
 * Finish the sign-in: validate the callback (`state`, `iss`, errors) and exchange the code
 * with its PKCE verifier for the first {@link TokenSet}. With `openid` in the scope the
 * response must carry an ID token with the nonce. With `dpop` the exchange carries a DPoP
 * proof (sent again once with the server's nonce after `use_dpop_nonce`).
 *
 * Throws a `ReauthOptionsError` for a missing `state`, `codeVerifier` or (with `openid`)
 * `nonce`; a {@link SignInError} when the callback carries an authorization error
 * (`error`, e.g. `access_denied`) or fails a check; an `OAuthError` for an RFC 6749 §5.2
 * error of the token endpoint (e.g. `invalid_grant`); a `RefreshError` naming the field for
 * a malformed token response; a `DiscoveryError` when discovery fails.
 *
 * @example
 * const tokens = await completeSignIn(options, { callbackUrl: location.href, ...saved })
 * await engine.setTokens(tokens)
 */
export async function completeSignIn(
  options: SignInOptions,
  callback: SignInCallback,
): Promise<TokenSet> {
  check(options)
  const callbackUrl = checkCallback(callback)
  const resolved = resolveClient(options)
  const server = await resolved.server(callback.signal)
  const { openid } = signInScope(options, server)
  if (openid && callback.nonce === undefined) {
    throw new ReauthOptionsError(
      '"nonce" is required: the sign-in asked for "openid"; pass the nonce beginSignIn returned',
    )
  }
  let parameters: URLSearchParams
  try {
    parameters = oauth.validateAuthResponse(server, resolved.client, callbackUrl, callback.state)
  } catch (error) {
    if (error instanceof oauth.AuthorizationResponseError) {
      throw new SignInError(
        `The authorization server redirected back with "${error.error}" (the user was not signed in)`,
        {
          error: error.error,
          ...(error.error_description ? { errorDescription: error.error_description } : {}),
        },
        { cause: withoutCause(error) },
      )
    }
    throw new SignInError(
      `The authorization response is invalid: ${error instanceof Error ? error.message : 'unprocessable'}`,
      {},
      { cause: withoutCause(error) },
    )
  }
  if (!parameters.get('code')) {
    throw new SignInError('The authorization response has no "code"')
  }
  const { dpop } = options
  try {
    return await withDpopNonceRetry(dpop, async () => {
      const sentAt = Date.now()
      const response = await oauth.authorizationCodeGrantRequest(
        server,
        resolved.client,
        resolved.auth,
        parameters,
        options.redirectUri,
        callback.codeVerifier,
        { ...resolved.http(callback.signal), ...dpopOption(dpop) },
      )
      return readTokenResponse(response, {
        server,
        client: resolved.client,
        sentAt,
        grant: 'authorization_code',
        expectedNonce: openid ? callback.nonce : undefined,
        dpop: dpop !== undefined,
      })
    })
  } catch (error) {
    throw toRefreshFailure(error)
  }
}
