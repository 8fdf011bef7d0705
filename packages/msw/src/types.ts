import type { TokenSet } from '@reauth/core'
import type { HttpResponseResolver, RequestHandler } from 'msw'

/**
 * Options for {@link createAuthServer}. Every option has a default, so `createAuthServer()`
 * gives a working server.
 *
 * @example
 * const auth = createAuthServer({
 *   issuer: 'https://login.example.test',
 *   clientId: 'web',
 *   clientSecret: 's3cret',
 *   accessTokenTtl: 5,
 * })
 */
export interface AuthServerOptions {
  /**
   * The issuer identifier, an absolute `http(s)` URL without query or fragment (a trailing `/`
   * is dropped). The token endpoint is `${issuer}/oauth/token`. Default
   * `'https://auth.reauth.test'`.
   */
  issuer?: string
  /**
   * The one registered client. A token request that names a client (body `client_id` or HTTP
   * Basic) must name this one, else `401 invalid_client`. Default `'reauth-test'`.
   */
  clientId?: string
  /**
   * When set, the client is confidential: every token request must present this secret with
   * `client_secret_basic` or `client_secret_post`. When unset the client is public and a
   * presented secret is ignored.
   */
  clientSecret?: string
  /** Access token lifetime in seconds, sent as `expires_in`. Default `60`. */
  accessTokenTtl?: number
  /** Refresh token lifetime in seconds, counted from when each refresh token is issued. Default: no expiry. */
  refreshTokenTtl?: number
  /**
   * Default `true`: every refresh returns a new `refresh_token` and the presented one becomes
   * "used". When `false` the response omits `refresh_token` (RFC 6749 §6: the client keeps
   * the old one).
   */
  rotateRefreshTokens?: boolean
  /**
   * Default `true`: presenting an already-rotated refresh token revokes its whole family (all
   * its access and refresh tokens) and answers `400 invalid_grant`. When `false` the reused
   * token still gets `invalid_grant`, but the family stays valid.
   */
  reuseDetection?: boolean
  /** The `realm` in `WWW-Authenticate` challenges. Default `'reauth-test'`. */
  realm?: string
  /**
   * The scope granted when {@link AuthServer.signIn} or
   * {@link AuthServer.createAuthorizationCode} names none. Default `'openid offline_access'`.
   */
  defaultScope?: string
  /**
   * DPoP (RFC 9449), off by default. `true` (or an object of {@link DpopServerOptions}): the
   * token endpoint verifies a `DPoP` proof when a request carries one and then issues
   * `token_type: DPoP` tokens bound to its key (`cnf.jkt`): a refresh with a proof from another
   * key (or none) is `invalid_grant`. A refresh of a Bearer family with a proof gets a bound access token (its refresh token stays unbound, as oidc-provider does). {@link AuthServer.protect} accepts `Authorization: DPoP`
   * with a proof for that send (`ath` included) from the bound key, and refuses a bound token
   * sent as `Bearer`. Invalid proofs get `invalid_dpop_proof`.
   */
  dpop?: boolean | DpopServerOptions
}

/**
 * The DPoP checks of a fake server (see {@link AuthServerOptions.dpop}).
 *
 * @example
 * const auth = createAuthServer({ dpop: { requireNonce: true } })
 */
export interface DpopServerOptions {
  /**
   * Every proof must carry the server's current nonce: without it (or with an old one) the token
   * endpoint answers `400 use_dpop_nonce` and a protected route `401` with
   * `WWW-Authenticate: DPoP error="use_dpop_nonce"`, both with the nonce in `DPoP-Nonce`.
   * {@link AuthServer.rotateDpopNonce} changes it. Default `false`.
   */
  requireNonce?: boolean
  /** Token requests without a proof get `400 invalid_dpop_proof` (else Bearer tokens). Default `false`. */
  required?: boolean
  /** How far a proof's `iat` may be from the server clock (`Date.now()`), in seconds. Default `60`. */
  iatWindow?: number
}

/**
 * What a protected route gives its resolver about the access token that was accepted.
 *
 * @example
 * auth.protect('GET', '/me', ({ token }) => HttpResponse.json({ family: token.familyId }))
 */
export interface ProtectedToken {
  /** The access token from the `Authorization: Bearer` (or `DPoP`) header. */
  accessToken: string
  /** The scope granted to that access token, space separated (may be empty). */
  scope: string
  /**
   * The token family (one sign-in or code exchange and all its refreshes; a client
   * credentials grant is a family of its own).
   */
  familyId: string
  /** The thumbprint of the DPoP key the token is bound to (`cnf.jkt`); absent for Bearer. */
  jkt?: string
  /** The resource (RFC 8707) the token was issued for, its audience; `undefined` for none. */
  audience: string | undefined
}

/**
 * What a {@link ProtectedResolver} receives: msw's usual resolver info (`request`, `params`,
 * `cookies`, `requestId`) plus the accepted `token`.
 *
 * @example
 * const resolver: ProtectedResolver = ({ request, params, token }) =>
 *   HttpResponse.json({ url: request.url, id: params.id, scope: token.scope })
 */
export type ProtectedResolverInfo = Parameters<HttpResponseResolver>[0] & {
  token: ProtectedToken
}

/**
 * The resolver of a protected route, called only once the token (Bearer, or DPoP with its
 * proof) has been accepted.
 *
 * @example
 * const resolver: ProtectedResolver = ({ token }) => HttpResponse.json({ scope: token.scope })
 * server.use(auth.protect('GET', 'https://api.example.test/me', resolver))
 */
export type ProtectedResolver = (info: ProtectedResolverInfo) => ReturnType<HttpResponseResolver>

/**
 * The HTTP method a protected route answers; `'all'` matches any method.
 *
 * @example
 * const method: ProtectedMethod = 'GET'
 */
export type ProtectedMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'all'

/**
 * Options of {@link AuthServer.protect}.
 *
 * @example
 * auth.protect('DELETE', '/items/:id', undefined, { scope: 'items:write' })
 */
export interface ProtectOptions {
  /** Scopes (space separated) the access token must all carry, else `403 insufficient_scope`. */
  scope?: string
  /**
   * This API's resource indicator (RFC 8707): only a token issued for it (its audience) is
   * accepted; any other, or one without an audience, gets `401 invalid_token`.
   */
  resource?: string
}

/**
 * Options of {@link AuthServer.signIn}.
 *
 * @example
 * const tokens = auth.signIn({ scope: 'openid read', accessTokenTtl: 5 })
 */
export interface SignInOptions {
  /** The granted scope. Default: the server's `defaultScope`. */
  scope?: string
  /**
   * Access token lifetime in seconds for this family: the first access token and every
   * refreshed one. Default: the server's `accessTokenTtl`.
   */
  accessTokenTtl?: number
  /**
   * Bind the family to this DPoP key thumbprint (RFC 7638, e.g. core's `dpopThumbprint`): the
   * set is `tokenType: 'DPoP'`, and the server must have `dpop` on.
   */
  dpopJkt?: string
  /**
   * The resources (RFC 8707) the sign-in was authorized for: a refresh naming another one
   * gets `invalid_target`. Default: any resource.
   */
  resources?: string[]
}

/**
 * Options of {@link AuthServer.createAuthorizationCode}, as the authorization request would
 * carry them.
 *
 * @example
 * const code = auth.createAuthorizationCode({
 *   codeChallenge: await pkceChallenge(verifier),
 *   redirectUri: 'https://app.example.test/callback',
 * })
 */
export interface AuthorizationCodeOptions {
  /** `BASE64URL(SHA256(code_verifier))` (RFC 7636 §4.2). */
  codeChallenge: string
  /** The redirect URI; the token request must send the same `redirect_uri`. */
  redirectUri: string
  /** The granted scope. Default: the server's `defaultScope`. */
  scope?: string
  /** Only `'S256'` is supported (and is the default). */
  codeChallengeMethod?: 'S256'
  /** The authorization request's `dpop_jkt` (RFC 9449 §10): only a proof from that key may exchange the code. */
  dpopJkt?: string
  /**
   * The resources (RFC 8707) of the authorization request; the family's grants may name only
   * these. Default: any resource.
   */
  resources?: string[]
}

/**
 * A held token request, from {@link AuthServer.hold}.
 *
 * @example
 * const gate = auth.hold()
 * const pending = fetch(auth.tokenEndpoint, { method: 'POST', body })
 * await gate.reached
 * gate.release()
 * await pending
 */
export interface TokenHold {
  /** Let the held request go on (it then takes the next queued outcome, if any). Idempotent. */
  release(): void
  /** Resolves once a token request has arrived and is waiting on this hold. */
  reached: Promise<void>
}

/**
 * Live counters of an {@link AuthServer}: read them at any time; `reset()` zeroes them in place.
 *
 * @example
 * expect(auth.counters).toMatchObject({ tokenRequests: 1, grants: 1, failures: 0 })
 */
export interface AuthServerCounters {
  /** Every POST to the token endpoint, whatever its outcome. */
  tokenRequests: number
  /** Successful `refresh_token` grants. */
  grants: number
  /** Successful `authorization_code` grants. */
  codeGrants: number
  /** Successful `client_credentials` grants. */
  clientCredentialsGrants: number
  /**
   * Successful grants (of any type) per resource (RFC 8707), keyed by the `resource` parameter.
   * Grants without one are not counted here.
   */
  resourceGrants: Record<string, number>
  /** Revocation requests (RFC 7009) answered 200, an unknown token's included. */
  revocations: number
  /**
   * Token requests answered with an error status or an injected fault (any outcome but `ok`);
   * a `use_dpop_nonce` answer is no failure (see `dpop.nonceChallenges`).
   */
  failures: number
  /** Times an already-rotated refresh token was presented (counted even with `reuseDetection: false`). */
  reuseDetected: number
  /** Per protected route, keyed by `` `${method} ${path}` `` exactly as given to `protect()`. */
  routes: Record<string, RouteCounters>
  /** DPoP proofs, at the token endpoint and the protected routes together (all 0 without `dpop`). */
  dpop: DpopCounters
}

/**
 * DPoP counters of an {@link AuthServer}.
 *
 * @example
 * expect(auth.counters.dpop).toEqual({ proofsAccepted: 3, proofsRejected: 0, nonceChallenges: 1 })
 */
export interface DpopCounters {
  /** Proofs that passed every check (signature, claims, `jti`, nonce). */
  proofsAccepted: number
  /** Proofs answered `invalid_dpop_proof` (a missing one where a proof is required included). */
  proofsRejected: number
  /** Requests answered `use_dpop_nonce` (token endpoint and protected routes). */
  nonceChallenges: number
}

/**
 * Counters of one protected route.
 *
 * @example
 * expect(auth.counters.routes['GET /me']).toEqual({ hits: 2, unauthorized: 1, forbidden: 0 })
 */
export interface RouteCounters {
  /** Every request the route answered. */
  hits: number
  /** Requests answered `401`. */
  unauthorized: number
  /** Requests answered `403 insufficient_scope`. */
  forbidden: number
}

/**
 * One queued answer for the token endpoint (see {@link AuthServer.enqueue}).
 *
 * | type | response |
 * |---|---|
 * | `oauth-error` | RFC 6749 §5.2 JSON `{ error, error_description? }`, status 400 (401 for `invalid_client`) |
 * | `status` | bare status (e.g. 500, 502, 503, 429) with optional `Retry-After`, a small HTML body by default |
 * | `network-error` | the request fails (`fetch` rejects with a `TypeError`) |
 * | `json` | arbitrary JSON, status 200 by default |
 * | `body` | raw text, `Content-Type: application/json` and status 200 by default |
 * | `ok` | a normal grant, overriding `expires_in` and/or rotation once; `body` then changes its JSON (a field set to `null` is removed): a grant that rotated but answers malformed |
 *
 * @example
 * auth.enqueue(
 *   { type: 'status', status: 503, retryAfter: 2 },
 *   { type: 'json', json: { token_type: 'Bearer' } },
 *   { type: 'oauth-error', error: 'invalid_grant' },
 * )
 */
export type TokenOutcome =
  | { type: 'oauth-error'; error: string; description?: string; status?: number }
  | { type: 'status'; status: number; retryAfter?: number; body?: string; contentType?: string }
  | { type: 'network-error' }
  | { type: 'json'; json: unknown; status?: number }
  | { type: 'body'; body: string; contentType?: string; status?: number }
  | {
      type: 'ok'
      expiresIn?: number
      rotate?: boolean
      /** Fields that replace the real response's (`null` removes one); the grant itself happens. */
      body?: Record<string, unknown>
    }

/**
 * A fake OAuth 2.0 authorization server and protected API, as msw handlers. Create it with
 * {@link createAuthServer}.
 *
 * @example
 * const auth = createAuthServer({ accessTokenTtl: 5 })
 * const server = setupServer(...auth.handlers, auth.protect('GET', 'https://api.example.test/me'))
 * const tokens = auth.signIn()
 * auth.expireAccessTokens()
 */
export interface AuthServer {
  /** The issuer identifier (no trailing `/`). */
  readonly issuer: string
  /** `${issuer}/oauth/token`. */
  readonly tokenEndpoint: string
  /** `${issuer}/oauth/authorize`: answers a valid authorization request with a redirect carrying a code (no login page). */
  readonly authorizationEndpoint: string
  /**
   * `${issuer}/oauth/revoke` (RFC 7009), in the metadata as `revocation_endpoint`: a refresh
   * token revokes its family (later refreshes get `invalid_grant`, its access tokens `401`), an
   * access token only itself; an unknown token is answered 200. Clients authenticate as at the
   * token endpoint.
   */
  readonly revocationEndpoint: string
  /**
   * Discovery (`GET /.well-known/openid-configuration` and
   * `/.well-known/oauth-authorization-server`), the authorization endpoint, the token
   * endpoint and the revocation endpoint (`POST`).
   */
  readonly handlers: RequestHandler[]
  /**
   * Mint a new token family directly, as if a user had just signed in. Always includes a
   * refresh token. Does not count as a grant.
   */
  signIn(options?: SignInOptions): TokenSet
  /**
   * A handler for a protected route. `path` is a full URL or an msw path pattern. Without a
   * valid Bearer token (or, with `dpop` on, a DPoP-bound token and a valid proof for this send
   * from its key) it answers 401; with `options.scope` and a token lacking it, 403
   * `insufficient_scope`. Otherwise it calls `resolver` (default: 200 JSON `{ ok: true, path }`).
   */
  protect(
    method: ProtectedMethod,
    path: string,
    resolver?: ProtectedResolver,
    options?: ProtectOptions,
  ): RequestHandler
  /** Every access token issued so far is expired as of now (its holder still thinks it valid). */
  expireAccessTokens(): void
  /**
   * Revoke the family of `refreshToken` (current or an already-rotated one), or every family
   * when called without an argument. Throws a `ReauthOptionsError` for a refresh token it never issued.
   */
  revoke(refreshToken?: string): void
  /** Queue outcomes for the next token-endpoint requests, FIFO, one per request. */
  enqueue(...outcomes: TokenOutcome[]): void
  /**
   * Make the next token-endpoint request (not yet held) wait until `release()`. Several holds
   * apply to successive requests in order. A released request takes the next queued outcome.
   */
  hold(): TokenHold
  /** Live counters. */
  readonly counters: AuthServerCounters
  /**
   * A new DPoP nonce (the server must have `dpop: { requireNonce: true }`); proofs with the
   * previous one now get `use_dpop_nonce`. Returns the new nonce.
   */
  rotateDpopNonce(): string
  /**
   * Every `refresh_token` parameter the token endpoint received, in arrival order; a request
   * turned away for its DPoP proof or nonce is not in it (the server processed nothing).
   */
  readonly presentedRefreshTokens: readonly string[]
  /** Forget all tokens, codes, queued outcomes and holds (waiting requests are released); zero the counters. */
  reset(): void
  /**
   * Create an authorization code as the authorization step would. Exchanging it with
   * `grant_type=authorization_code`, the matching `code_verifier` and the same `redirect_uri`
   * starts a new family; the response carries a `refresh_token` only when the scope includes
   * `offline_access` (as OpenID Providers do).
   */
  createAuthorizationCode(options: AuthorizationCodeOptions): string
}
