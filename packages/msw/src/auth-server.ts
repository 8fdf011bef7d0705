import { ReauthOptionsError, type TokenSet } from '@reauth/core'
import type { RequestHandler } from 'msw'
import { HttpResponse, http } from 'msw'
import { bearerChallenge } from './bearer-challenge.js'
import { authenticateClient } from './client-auth.js'
import {
  createDpopVerifier,
  type DpopConfig,
  type DpopVerifier,
  dpopChallengeHeader,
} from './dpop.js'
import { CODE_VERIFIER, pkceChallenge, randomToken } from './pkce.js'
import { NO_STORE, oauthError, renderFault, validateOutcome } from './responses.js'
import type {
  AuthorizationCodeOptions,
  AuthServer,
  AuthServerCounters,
  AuthServerOptions,
  DpopCounters,
  ProtectedMethod,
  ProtectedResolver,
  ProtectOptions,
  RouteCounters,
  SignInOptions,
  TokenHold,
  TokenOutcome,
} from './types.js'

/** RFC 6749 §4.1.2 recommends at most ten minutes. */
const CODE_TTL_SECONDS = 600

interface Family {
  id: string
  scope: string
  accessTokenTtl: number
  revoked: boolean
  /** The resources the grant was authorized for (RFC 8707); `undefined`: any. */
  resources: ReadonlySet<string> | undefined
  /** The DPoP key thumbprint the family's tokens are bound to (`cnf.jkt`). */
  jkt: string | undefined
}

interface AccessRecord {
  familyId: string
  scope: string
  expiresAt: number
  /** The resource the token was issued for: its audience (RFC 8707). */
  audience: string | undefined
  revoked: boolean
  /** The DPoP key this access token is bound to (its family's when it was minted). */
  jkt: string | undefined
}

interface RefreshRecord {
  familyId: string
  used: boolean
  expiresAt: number | undefined
}

interface CodeRecord {
  challenge: string
  redirectUri: string
  scope: string
  resources: ReadonlySet<string> | undefined
  expiresAt: number
  used: boolean
  familyId: string | undefined
  dpopJkt: string | undefined
}

interface PendingHold {
  reach: () => void
  released: Promise<void>
  release: () => void
}

interface Config {
  issuer: string
  clientId: string
  clientSecret: string | undefined
  accessTokenTtl: number
  refreshTokenTtl: number | undefined
  rotateRefreshTokens: boolean
  reuseDetection: boolean
  realm: string
  defaultScope: string
  dpop: DpopConfig | undefined
}

type Grant = { type: 'ok'; expiresIn?: number; rotate?: boolean } | undefined

const METHODS = {
  GET: http.get,
  POST: http.post,
  PUT: http.put,
  PATCH: http.patch,
  DELETE: http.delete,
  all: http.all,
} as const

function invalid(message: string): never {
  throw new ReauthOptionsError(`createAuthServer(): ${message}`)
}

function optionalString(name: string, value: unknown, fallback: string): string {
  if (value === undefined) return fallback
  if (typeof value !== 'string') invalid(`"${name}" must be a string`)
  return value
}

function optionalSeconds(
  name: string,
  value: unknown,
  fallback: number,
  method = 'createAuthServer',
): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new ReauthOptionsError(`${method}(): "${name}" must be a non-negative number of seconds`)
  }
  return value
}

function optionalBoolean(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') invalid(`"${name}" must be a boolean`)
  return value
}

function resolveOptions(options: AuthServerOptions): Config {
  if (typeof options !== 'object' || options === null) invalid('options must be an object')
  const issuer = optionalString('issuer', options.issuer, 'https://auth.reauth.test').replace(
    /\/+$/,
    '',
  )
  let url: URL
  try {
    url = new URL(issuer)
  } catch {
    invalid('"issuer" must be an absolute URL')
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    invalid('"issuer" must be an http(s) URL')
  if (url.search !== '' || url.hash !== '') invalid('"issuer" must not have a query or fragment')
  const clientId = optionalString('clientId', options.clientId, 'reauth-test')
  if (clientId === '') invalid('"clientId" must not be empty')
  const clientSecret =
    options.clientSecret === undefined
      ? undefined
      : optionalString('clientSecret', options.clientSecret, '')
  return {
    issuer,
    clientId,
    clientSecret,
    accessTokenTtl: optionalSeconds('accessTokenTtl', options.accessTokenTtl, 60),
    refreshTokenTtl:
      options.refreshTokenTtl === undefined
        ? undefined
        : optionalSeconds('refreshTokenTtl', options.refreshTokenTtl, 0),
    rotateRefreshTokens: optionalBoolean('rotateRefreshTokens', options.rotateRefreshTokens, true),
    reuseDetection: optionalBoolean('reuseDetection', options.reuseDetection, true),
    realm: optionalString('realm', options.realm, 'reauth-test'),
    defaultScope: optionalString('defaultScope', options.defaultScope, 'openid offline_access'),
    dpop: resolveDpop(options.dpop),
  }
}

function resolveDpop(value: AuthServerOptions['dpop']): DpopConfig | undefined {
  if (value === undefined || value === false) return undefined
  if (value === true) return { requireNonce: false, required: false, iatWindow: 60 }
  if (typeof value !== 'object' || value === null) {
    invalid('"dpop" must be a boolean or an object')
  }
  return {
    requireNonce: optionalBoolean('dpop.requireNonce', value.requireNonce, false),
    required: optionalBoolean('dpop.required', value.required, false),
    iatWindow: optionalSeconds('dpop.iatWindow', value.iatWindow, 60),
  }
}

/** A JWK SHA-256 thumbprint: 43 base64url characters. */
const JKT = /^[A-Za-z0-9_-]{43}$/

/** RFC 8707 §2: an absolute URI without a fragment. */
function isResourceIndicator(value: unknown): value is string {
  if (typeof value !== 'string' || !URL.canParse(value)) return false
  return !value.includes('#')
}

/** The `resources` option of `signIn` / `createAuthorizationCode`, checked. */
function resourceSet(method: string, value: unknown): ReadonlySet<string> | undefined {
  if (value === undefined) return undefined
  if (!Array.isArray(value) || value.length === 0 || !value.every(isResourceIndicator)) {
    throw new ReauthOptionsError(
      `${method}(): "resources" must be a non-empty array of absolute URIs without a fragment`,
    )
  }
  return new Set(value)
}

function scopes(scope: string): string[] {
  return scope.split(' ').filter((s) => s !== '')
}

function normaliseScope(scope: string): string {
  return scopes(scope).join(' ')
}

/** `application/x-www-form-urlencoded` body, or `undefined` for any other content type. */
async function readForm(request: Request): Promise<URLSearchParams | undefined> {
  const type = request.headers.get('content-type') ?? ''
  if (type.split(';')[0]?.trim().toLowerCase() !== 'application/x-www-form-urlencoded') {
    return undefined
  }
  return new URLSearchParams(await request.text())
}

/**
 * The RFC 8414 metadata URL inserts the well-known segment before the issuer's path; the
 * OpenID Connect one appends it.
 */
function metadataUrls(issuer: string): { oidc: string; oauth: string } {
  const url = new URL(issuer)
  const path = url.pathname === '/' ? '' : url.pathname
  return {
    oidc: `${issuer}/.well-known/openid-configuration`,
    oauth: `${url.origin}/.well-known/oauth-authorization-server${path}`,
  }
}

/**
 * Create a fake OAuth 2.0 authorization server and protected API for msw: discovery, a token
 * endpoint with `refresh_token` and `authorization_code` + PKCE grants, rotation with reuse
 * detection, revocation, injected faults, deterministic holds and counters. It keeps all
 * state in memory, times everything with `Date.now()` (so `vi.setSystemTime` moves it) and
 * uses only web APIs, so it runs under `msw/node` and `msw/browser`.
 *
 * @example
 * import { setupServer } from 'msw/node'
 * import { createAuthServer } from '@reauth/msw'
 *
 * const auth = createAuthServer({ accessTokenTtl: 60 })
 * const server = setupServer(...auth.handlers, auth.protect('GET', 'https://api.example.test/me'))
 * server.listen({ onUnhandledRequest: 'error' })
 *
 * const tokens = auth.signIn()            // give these to the client under test
 * auth.expireAccessTokens()               // the next API call gets a 401 and must refresh
 * // … exercise the client …
 * expect(auth.counters.grants).toBe(1)
 */
export function createAuthServer(options: AuthServerOptions = {}): AuthServer {
  const config = resolveOptions(options)
  const { issuer, realm } = config
  const tokenEndpoint = `${issuer}/oauth/token`
  const authorizationEndpoint = `${issuer}/oauth/authorize`
  const revocationEndpoint = `${issuer}/oauth/revoke`

  const families = new Map<string, Family>()
  const accessTokens = new Map<string, AccessRecord>()
  const refreshTokens = new Map<string, RefreshRecord>()
  const codes = new Map<string, CodeRecord>()
  const queue: TokenOutcome[] = []
  const holds: PendingHold[] = []
  const waiting = new Set<PendingHold>()
  const presentedRefreshTokens: string[] = []
  const counters: AuthServerCounters = {
    tokenRequests: 0,
    grants: 0,
    codeGrants: 0,
    clientCredentialsGrants: 0,
    resourceGrants: {},
    revocations: 0,
    failures: 0,
    reuseDetected: 0,
    routes: {},
    dpop: { proofsAccepted: 0, proofsRejected: 0, nonceChallenges: 0 },
  }
  const dpopCounters: DpopCounters = counters.dpop
  const verifier: DpopVerifier | undefined = config.dpop && createDpopVerifier(config.dpop)

  function newFamily(
    scope: string,
    accessTokenTtl: number,
    resources?: ReadonlySet<string>,
    jkt?: string,
  ): Family {
    const family: Family = {
      id: crypto.randomUUID(),
      scope,
      accessTokenTtl,
      revoked: false,
      resources,
      jkt,
    }
    families.set(family.id, family)
    return family
  }

  /**
   * An access token for `audience` (RFC 8707), bound to `jkt` (the request's proof key;
   * default the family's).
   */
  function mintAccess(
    family: Family,
    scope: string,
    ttl: number,
    now: number,
    audience?: string,
    jkt = family.jkt,
  ): string {
    const token = `at_${randomToken()}`
    accessTokens.set(token, {
      familyId: family.id,
      scope,
      expiresAt: now + ttl * 1000,
      audience,
      revoked: false,
      jkt,
    })
    if (audience !== undefined) {
      counters.resourceGrants[audience] = (counters.resourceGrants[audience] ?? 0) + 1
    }
    return token
  }

  /**
   * The `resource` of a token request (RFC 8707 §2): absent, or one absolute URI without a
   * fragment that the grant was authorized for. Answers `invalid_target` otherwise.
   */
  function requestedResource(
    params: URLSearchParams,
    family: Family | undefined,
  ): { resource: string | undefined } | Response {
    const values = params.getAll('resource')
    if (values.length === 0) return { resource: undefined }
    if (values.length > 1) return error('invalid_target', 'Only one resource per token request')
    const resource = values[0] as string
    if (!isResourceIndicator(resource)) {
      return error('invalid_target', 'The resource must be an absolute URI without a fragment')
    }
    if (family?.resources && !family.resources.has(resource)) {
      return error('invalid_target', 'The grant was not authorized for this resource')
    }
    return { resource }
  }

  function mintRefresh(family: Family, now: number): string {
    const token = `rt_${randomToken()}`
    const ttl = config.refreshTokenTtl
    refreshTokens.set(token, {
      familyId: family.id,
      used: false,
      expiresAt: ttl === undefined ? undefined : now + ttl * 1000,
    })
    return token
  }

  function tokenResponse(
    accessToken: string,
    expiresIn: number,
    refreshToken: string | undefined,
    scope: string,
  ): Response {
    const body: Record<string, string | number> = {
      access_token: accessToken,
      token_type: accessTokens.get(accessToken)?.jkt === undefined ? 'Bearer' : 'DPoP',
      expires_in: expiresIn,
    }
    if (refreshToken !== undefined) body.refresh_token = refreshToken
    if (scope !== '') body.scope = scope
    return HttpResponse.json(body, { headers: NO_STORE })
  }

  const error = (code: string, description: string) => oauthError(code, description, realm)

  function refreshGrant(params: URLSearchParams, grant: Grant, jkt: string | undefined): Response {
    const presented = params.get('refresh_token')
    if (!presented) return error('invalid_request', 'The refresh_token parameter is required')
    const record = refreshTokens.get(presented)
    const family = record && families.get(record.familyId)
    if (!record || !family) return error('invalid_grant', 'The refresh token is not recognised')
    // RFC 9449 §5: a bound refresh token is useless without its key; nothing else happens.
    if (family.jkt !== undefined && family.jkt !== jkt) {
      return error(
        'invalid_grant',
        jkt === undefined
          ? 'The refresh token is DPoP-bound: a DPoP proof is required'
          : 'The refresh token is bound to another DPoP key',
      )
    }
    if (record.used) {
      counters.reuseDetected++
      if (config.reuseDetection) {
        family.revoked = true
        return error(
          'invalid_grant',
          'The refresh token was already used; its token family is revoked',
        )
      }
      return error('invalid_grant', 'The refresh token was already used')
    }
    if (family.revoked) return error('invalid_grant', 'The refresh token was revoked')
    const now = Date.now()
    if (record.expiresAt !== undefined && now >= record.expiresAt) {
      return error('invalid_grant', 'The refresh token expired')
    }
    const target = requestedResource(params, family)
    if (target instanceof Response) return target
    let scope = family.scope
    const requested = params.get('scope')
    if (requested) {
      const granted = new Set(scopes(family.scope))
      // RFC 6749 §6: a refresh may narrow the scope, never widen it.
      if (!scopes(requested).every((s) => granted.has(s))) {
        return error('invalid_scope', 'The requested scope exceeds the scope originally granted')
      }
      scope = normaliseScope(requested)
    }
    const ttl = grant?.expiresIn ?? family.accessTokenTtl
    const accessToken = mintAccess(family, scope, ttl, now, target.resource, jkt)
    let refreshToken: string | undefined
    if (grant?.rotate ?? config.rotateRefreshTokens) {
      record.used = true
      refreshToken = mintRefresh(family, now)
    }
    counters.grants++
    return tokenResponse(accessToken, ttl, refreshToken, scope)
  }

  async function codeGrant(
    params: URLSearchParams,
    grant: Grant,
    jkt: string | undefined,
  ): Promise<Response> {
    const code = params.get('code')
    const redirectUri = params.get('redirect_uri')
    const verifier = params.get('code_verifier')
    if (!code) return error('invalid_request', 'The code parameter is required')
    if (!redirectUri) return error('invalid_request', 'The redirect_uri parameter is required')
    if (!verifier) return error('invalid_request', 'The code_verifier parameter is required (PKCE)')
    if (!CODE_VERIFIER.test(verifier)) {
      return error('invalid_request', 'The code_verifier must be 43 to 128 unreserved characters')
    }
    const record = codes.get(code)
    if (!record) return error('invalid_grant', 'The authorization code is not recognised')
    const challenge = await pkceChallenge(verifier)
    // Checked after the await so two concurrent exchanges of one code cannot both succeed.
    if (record.used) {
      // RFC 6749 §4.1.2: revoke what the first exchange issued.
      const family = record.familyId === undefined ? undefined : families.get(record.familyId)
      if (family) family.revoked = true
      return error('invalid_grant', 'The authorization code was already used')
    }
    const now = Date.now()
    if (now >= record.expiresAt) return error('invalid_grant', 'The authorization code expired')
    if (redirectUri !== record.redirectUri) {
      return error('invalid_grant', 'The redirect_uri does not match the authorization request')
    }
    if (challenge !== record.challenge) {
      return error('invalid_grant', 'PKCE verification failed: code_verifier does not match')
    }
    if (record.dpopJkt !== undefined && record.dpopJkt !== jkt) {
      return error(
        'invalid_grant',
        'The authorization code is bound to another DPoP key (dpop_jkt)',
      )
    }
    const target = requestedResource(params, undefined)
    if (target instanceof Response) return target
    if (
      target.resource !== undefined &&
      record.resources &&
      !record.resources.has(target.resource)
    ) {
      return error('invalid_target', 'The grant was not authorized for this resource')
    }
    record.used = true
    const family = newFamily(record.scope, config.accessTokenTtl, record.resources, jkt)
    record.familyId = family.id
    const ttl = grant?.expiresIn ?? family.accessTokenTtl
    const accessToken = mintAccess(family, record.scope, ttl, now, target.resource)
    const refreshToken = scopes(record.scope).includes('offline_access')
      ? mintRefresh(family, now)
      : undefined
    counters.codeGrants++
    return tokenResponse(accessToken, ttl, refreshToken, record.scope)
  }

  /** RFC 6749 §4.4: a token for the client itself; no refresh token. */
  function clientCredentialsGrant(
    params: URLSearchParams,
    grant: Grant,
    jkt: string | undefined,
  ): Response {
    if (config.clientSecret === undefined) {
      return error(
        'unauthorized_client',
        'The client credentials grant is for confidential clients (the client has no secret)',
      )
    }
    const target = requestedResource(params, undefined)
    if (target instanceof Response) return target
    const scope = normaliseScope(params.get('scope') ?? '')
    const now = Date.now()
    // A proof at the token endpoint binds the token to its key (RFC 9449 §5), as for the others.
    const family = newFamily(scope, config.accessTokenTtl, undefined, jkt)
    const ttl = grant?.expiresIn ?? config.accessTokenTtl
    const accessToken = mintAccess(family, scope, ttl, now, target.resource)
    counters.clientCredentialsGrants++
    return tokenResponse(accessToken, ttl, undefined, scope)
  }

  async function tokenRequest(
    request: Request,
    params: URLSearchParams | undefined,
    grant: Grant,
    jkt: string | undefined,
  ): Promise<Response> {
    if (!params) {
      return error('invalid_request', 'The token request must be application/x-www-form-urlencoded')
    }
    for (const name of new Set(params.keys())) {
      // Several resources are answered by the grant, with invalid_target (RFC 8707 §2).
      if (name !== 'resource' && params.getAll(name).length > 1) {
        return error('invalid_request', `The ${name} parameter is repeated`)
      }
    }
    const failure = authenticateClient(request.headers.get('authorization'), params, config)
    if (failure) return error(failure.error, failure.description)
    const grantType = params.get('grant_type')
    if (!grantType) return error('invalid_request', 'The grant_type parameter is required')
    if (grantType === 'refresh_token') return refreshGrant(params, grant, jkt)
    if (grantType === 'authorization_code') return codeGrant(params, grant, jkt)
    if (grantType === 'client_credentials') return clientCredentialsGrant(params, grant, jkt)
    return error('unsupported_grant_type', `The grant_type ${grantType} is not supported`)
  }

  const metadata = () => ({
    issuer,
    authorization_endpoint: authorizationEndpoint,
    token_endpoint: tokenEndpoint,
    response_types_supported: ['code'],
    grant_types_supported:
      config.clientSecret === undefined
        ? ['authorization_code', 'refresh_token']
        : ['authorization_code', 'refresh_token', 'client_credentials'],
    revocation_endpoint: revocationEndpoint,
    revocation_endpoint_auth_methods_supported:
      config.clientSecret === undefined ? ['none'] : ['client_secret_basic', 'client_secret_post'],
    code_challenge_methods_supported: ['S256'],
    token_endpoint_auth_methods_supported:
      config.clientSecret === undefined ? ['none'] : ['client_secret_basic', 'client_secret_post'],
    scopes_supported: scopes(config.defaultScope),
    ...(config.dpop ? { dpop_signing_alg_values_supported: ['ES256'] } : {}),
  })

  /** The server's nonce on a token-endpoint answer, when it requires nonces. */
  function withNonce(response: Response): Response {
    if (verifier && config.dpop?.requireNonce) response.headers.set('DPoP-Nonce', verifier.nonce())
    return response
  }

  /**
   * The DPoP proof of a token request: its key's thumbprint, `undefined` without a proof (when
   * that is allowed), or the error response that ends the request.
   */
  async function tokenProof(request: Request): Promise<string | undefined | Response> {
    if (!verifier || !config.dpop) return undefined
    if (!request.headers.has('dpop') && !config.dpop.required) return undefined
    const proof = await verifier.verify(request)
    if (proof.ok) {
      dpopCounters.proofsAccepted++
      return proof.jkt
    }
    if (proof.error === 'use_dpop_nonce') dpopCounters.nonceChallenges++
    else {
      dpopCounters.proofsRejected++
      counters.failures++
    }
    return withNonce(error(proof.error, proof.description))
  }

  const urls = metadataUrls(issuer)
  const handlers: RequestHandler[] = [
    http.get(urls.oidc, () => HttpResponse.json(metadata())),
    http.get(urls.oauth, () => HttpResponse.json(metadata())),
    http.get(authorizationEndpoint, ({ request }) => authorize(new URL(request.url).searchParams)),
    http.post(tokenEndpoint, async ({ request }) => {
      counters.tokenRequests++
      const params = await readForm(request)
      // Before anything else: a request turned away for its proof was not processed (no hold,
      // no queued outcome, no refresh token presented).
      const proof = await tokenProof(request)
      if (proof instanceof Response) return proof
      const presented = params?.get('refresh_token')
      if (presented) presentedRefreshTokens.push(presented)
      const hold = holds.shift()
      if (hold) {
        waiting.add(hold)
        hold.reach()
        await hold.released
        waiting.delete(hold)
      }
      // Taken only now, so a held request gets the outcome that is next when it is released.
      const outcome = queue.shift()
      if (outcome !== undefined && outcome.type !== 'ok') {
        counters.failures++
        return renderFault(outcome, realm)
      }
      const response = withNonce(await tokenRequest(request, params, outcome, proof))
      if (response.status >= 400) counters.failures++
      if (outcome?.body === undefined || response.status !== 200) return response
      // The grant happened (and rotated); only what the client reads is malformed.
      const body: Record<string, unknown> = { ...(await response.json()), ...outcome.body }
      for (const [key, value] of Object.entries(body)) if (value === null) delete body[key]
      return withNonce(HttpResponse.json(body, { headers: NO_STORE }))
    }),
    http.post(revocationEndpoint, async ({ request }) => revocationRequest(request)),
  ]

  /**
   * RFC 7009: a refresh token revokes its whole family (its access tokens too, §2.1); an access
   * token only itself. An unknown, spent or already revoked token is answered 200 all the same
   * (§2.2: the client cannot tell, nor learn which tokens exist).
   */
  async function revocationRequest(request: Request): Promise<Response> {
    const params = await readForm(request)
    if (!params) {
      return error(
        'invalid_request',
        'The revocation request must be application/x-www-form-urlencoded',
      )
    }
    for (const name of new Set(params.keys())) {
      if (params.getAll(name).length > 1) {
        return error('invalid_request', `The ${name} parameter is repeated`)
      }
    }
    const failure = authenticateClient(request.headers.get('authorization'), params, config)
    if (failure) return error(failure.error, failure.description)
    const token = params.get('token')
    if (!token) return error('invalid_request', 'The token parameter is required')
    const refresh = refreshTokens.get(token)
    const family = refresh && families.get(refresh.familyId)
    if (family) family.revoked = true
    const access = accessTokens.get(token)
    if (access) access.revoked = true
    counters.revocations++
    return new HttpResponse(null, { status: 200, headers: NO_STORE })
  }

  /** Auto-consent: a valid request is answered with a redirect carrying a fresh code. */
  function authorize(query: URLSearchParams): Response {
    const redirectUri = query.get('redirect_uri')
    const bad = (description: string) =>
      HttpResponse.json(
        { error: 'invalid_request', error_description: description },
        { status: 400 },
      )
    if (!redirectUri) return bad('The redirect_uri parameter is required')
    if (query.get('client_id') !== config.clientId) return bad('Unknown client_id')
    const back = new URL(redirectUri)
    const state = query.get('state')
    if (state !== null) back.searchParams.set('state', state)
    back.searchParams.set('iss', issuer)
    const challenge = query.get('code_challenge')
    if (query.get('response_type') !== 'code') {
      back.searchParams.set('error', 'unsupported_response_type')
    } else if (!challenge || query.get('code_challenge_method') !== 'S256') {
      back.searchParams.set('error', 'invalid_request')
      back.searchParams.set('error_description', 'PKCE with code_challenge_method=S256 is required')
    } else {
      const scope = query.get('scope')
      const dpopJkt = query.get('dpop_jkt')
      const resources = query.getAll('resource')
      if (dpopJkt !== null && !JKT.test(dpopJkt)) {
        back.searchParams.set('error', 'invalid_request')
        back.searchParams.set('error_description', 'dpop_jkt must be a JWK SHA-256 thumbprint')
      } else {
        back.searchParams.set(
          'code',
          createAuthorizationCode({
            codeChallenge: challenge,
            redirectUri,
            ...(scope === null ? {} : { scope }),
            ...(dpopJkt === null ? {} : { dpopJkt }),
            ...(resources.length === 0 ? {} : { resources }),
          }),
        )
      }
    }
    return new HttpResponse(null, { status: 302, headers: { Location: back.href } })
  }

  function signIn(signInOptions: SignInOptions = {}): TokenSet {
    const scope = normaliseScope(
      signInOptions.scope === undefined ? config.defaultScope : String(signInOptions.scope),
    )
    const ttl = optionalSeconds(
      'accessTokenTtl',
      signInOptions.accessTokenTtl,
      config.accessTokenTtl,
      'signIn',
    )
    const jkt = optionalJkt('signIn', signInOptions.dpopJkt)
    const now = Date.now()
    const family = newFamily(scope, ttl, resourceSet('signIn', signInOptions.resources), jkt)
    const tokens: TokenSet = {
      accessToken: mintAccess(family, scope, ttl, now),
      tokenType: jkt === undefined ? 'Bearer' : 'DPoP',
      refreshToken: mintRefresh(family, now),
      expiresAt: now + ttl * 1000,
      issuedAt: now,
    }
    if (scope !== '') tokens.scope = scope
    return tokens
  }

  function optionalJkt(method: string, value: unknown): string | undefined {
    if (value === undefined) return undefined
    if (!config.dpop)
      throw new ReauthOptionsError(`${method}(): "dpopJkt" needs a server with "dpop" on`)
    if (typeof value !== 'string' || !JKT.test(value)) {
      throw new ReauthOptionsError(
        `${method}(): "dpopJkt" must be a JWK SHA-256 thumbprint (43 base64url characters)`,
      )
    }
    return value
  }

  function protect(
    method: ProtectedMethod,
    path: string,
    resolver?: ProtectedResolver,
    protectOptions: ProtectOptions = {},
  ): RequestHandler {
    const factory = Object.hasOwn(METHODS, method) ? METHODS[method] : undefined
    if (!factory)
      throw new ReauthOptionsError(`protect(): unsupported method ${JSON.stringify(method)}`)
    if (typeof path !== 'string' || path === '')
      throw new ReauthOptionsError('protect(): "path" must be a non-empty string')
    if (resolver !== undefined && typeof resolver !== 'function') {
      throw new ReauthOptionsError('protect(): "resolver" must be a function')
    }
    const required = scopes(protectOptions.scope ?? '')
    const resource = protectOptions.resource
    if (resource !== undefined && !isResourceIndicator(resource)) {
      throw new ReauthOptionsError(
        'protect(): "resource" must be an absolute URI without a fragment',
      )
    }
    const key = `${method} ${path}`
    const zero = (): RouteCounters => ({ hits: 0, unauthorized: 0, forbidden: 0 })
    counters.routes[key] ??= zero()

    return factory(path, async (info) => {
      counters.routes[key] ??= zero()
      const route = counters.routes[key]
      route.hits++
      /** A 401: `challenge` for this scheme, with an `invalid_token`-like error when described. */
      const deny = (
        scheme: 'bearer' | 'dpop',
        description?: string,
        code = 'invalid_token',
        headers: Record<string, string> = {},
      ) => {
        route.unauthorized++
        const challenge =
          scheme === 'dpop'
            ? dpopChallengeHeader(description === undefined ? undefined : code, description)
            : description === undefined
              ? // RFC 6750 §3.1: no credentials get a bare challenge (and DPoP's, when it is on).
                [
                  bearerChallenge(undefined, undefined, { realm }),
                  ...(verifier ? [dpopChallengeHeader()] : []),
                ].join(', ')
              : bearerChallenge(code, description, { realm })
        const body =
          description === undefined
            ? { message: 'Authentication required' }
            : { error: code, error_description: description }
        return HttpResponse.json(body, {
          status: 401,
          headers: { 'WWW-Authenticate': challenge, ...headers },
        })
      }

      const authorization = info.request.headers.get('authorization')
      const match =
        authorization === null ? null : /^(Bearer|DPoP)(?: +(\S*))? *$/i.exec(authorization)
      const scheme = match?.[1]?.toLowerCase() === 'dpop' ? 'dpop' : 'bearer'
      // No credentials (or a scheme this server does not take) gets a bare challenge, no error code.
      if (!match || (scheme === 'dpop' && !verifier)) return deny('bearer')
      const accessToken = match[2]
      if (!accessToken) {
        const description = `The Authorization header must be "${scheme === 'dpop' ? 'DPoP' : 'Bearer'} <token>"`
        return HttpResponse.json(
          { error: 'invalid_request', error_description: description },
          {
            status: 400,
            headers: {
              'WWW-Authenticate':
                scheme === 'dpop'
                  ? dpopChallengeHeader('invalid_request', description)
                  : bearerChallenge('invalid_request', description, { realm }),
            },
          },
        )
      }
      let jkt: string | undefined
      if (scheme === 'dpop' && verifier) {
        // RFC 9449 §7: the proof for this send, with the hash of this token.
        const proof = await verifier.verify(info.request, { accessToken })
        if (!proof.ok) {
          if (proof.error === 'use_dpop_nonce') {
            dpopCounters.nonceChallenges++
            return deny('dpop', proof.description, proof.error, { 'DPoP-Nonce': verifier.nonce() })
          }
          dpopCounters.proofsRejected++
          return deny('dpop', proof.description, proof.error)
        }
        dpopCounters.proofsAccepted++
        jkt = proof.jkt
      }
      const record = accessTokens.get(accessToken)
      const family = record && families.get(record.familyId)
      if (!record || !family) return deny(scheme, 'The access token is not recognised')
      if (family.revoked || record.revoked) return deny(scheme, 'The access token was revoked')
      if (Date.now() >= record.expiresAt) return deny(scheme, 'The access token expired')
      if (record.jkt !== undefined && scheme !== 'dpop') {
        // RFC 9449 §7.2: a bound token sent as Bearer is refused.
        return deny(
          'bearer',
          'The access token is DPoP-bound: send it with the DPoP scheme and a proof',
        )
      }
      if (scheme === 'dpop' && record.jkt !== jkt) {
        return deny(
          'dpop',
          record.jkt === undefined
            ? 'The access token is not DPoP-bound'
            : 'The access token is bound to another DPoP key',
        )
      }
      // RFC 8707 / RFC 9068 §4: a resource server accepts only tokens of its own audience.
      if (resource !== undefined && record.audience !== resource) {
        return deny(scheme, 'The access token is not for this resource (audience)')
      }

      const granted = new Set(scopes(record.scope))
      if (!required.every((s) => granted.has(s))) {
        route.forbidden++
        const scope = required.join(' ')
        const description = `The access token lacks the required scope`
        return HttpResponse.json(
          { error: 'insufficient_scope', error_description: description, scope },
          {
            status: 403,
            headers: {
              'WWW-Authenticate':
                scheme === 'dpop'
                  ? dpopChallengeHeader('insufficient_scope', description)
                  : bearerChallenge('insufficient_scope', description, { realm, scope }),
            },
          },
        )
      }
      const token = {
        accessToken,
        scope: record.scope,
        familyId: family.id,
        audience: record.audience,
        ...(record.jkt === undefined ? {} : { jkt: record.jkt }),
      }
      if (resolver) return resolver({ ...info, token })
      return HttpResponse.json({ ok: true, path })
    })
  }

  function expireAccessTokens(): void {
    const now = Date.now()
    for (const record of accessTokens.values()) record.expiresAt = Math.min(record.expiresAt, now)
  }

  function revoke(refreshToken?: string): void {
    if (refreshToken === undefined) {
      for (const family of families.values()) family.revoked = true
      return
    }
    const record = refreshTokens.get(refreshToken)
    const family = record && families.get(record.familyId)
    if (!family)
      throw new ReauthOptionsError('revoke(): this refresh token was never issued by this server')
    family.revoked = true
  }

  function enqueue(...outcomes: TokenOutcome[]): void {
    for (const outcome of outcomes) validateOutcome(outcome)
    queue.push(...outcomes)
  }

  function hold(): TokenHold {
    let reach!: () => void
    let release!: () => void
    const reached = new Promise<void>((resolve) => {
      reach = resolve
    })
    const released = new Promise<void>((resolve) => {
      release = resolve
    })
    holds.push({ reach, release, released })
    return { reached, release }
  }

  function createAuthorizationCode(codeOptions: AuthorizationCodeOptions): string {
    if (typeof codeOptions !== 'object' || codeOptions === null) {
      throw new ReauthOptionsError('createAuthorizationCode(): options must be an object')
    }
    const {
      codeChallenge,
      redirectUri,
      scope,
      resources,
      codeChallengeMethod = 'S256',
    } = codeOptions
    if (codeChallengeMethod !== 'S256') {
      throw new ReauthOptionsError(
        'createAuthorizationCode(): "codeChallengeMethod" must be "S256"',
      )
    }
    if (typeof codeChallenge !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(codeChallenge)) {
      throw new ReauthOptionsError(
        'createAuthorizationCode(): "codeChallenge" must be a base64url SHA-256 digest (43 characters)',
      )
    }
    if (typeof redirectUri !== 'string' || redirectUri === '') {
      throw new ReauthOptionsError(
        'createAuthorizationCode(): "redirectUri" must be a non-empty string',
      )
    }
    const dpopJkt = optionalJkt('createAuthorizationCode', codeOptions.dpopJkt)
    const code = `code_${randomToken()}`
    codes.set(code, {
      challenge: codeChallenge,
      redirectUri,
      scope: normaliseScope(scope ?? config.defaultScope),
      resources: resourceSet('createAuthorizationCode', resources),
      expiresAt: Date.now() + CODE_TTL_SECONDS * 1000,
      used: false,
      familyId: undefined,
      dpopJkt,
    })
    return code
  }

  function reset(): void {
    families.clear()
    accessTokens.clear()
    refreshTokens.clear()
    codes.clear()
    queue.length = 0
    holds.length = 0
    // Requests already waiting would otherwise hang the test that reset the server.
    for (const pending of waiting) pending.release()
    waiting.clear()
    presentedRefreshTokens.length = 0
    counters.tokenRequests = 0
    counters.grants = 0
    counters.codeGrants = 0
    counters.clientCredentialsGrants = 0
    for (const key of Object.keys(counters.resourceGrants)) delete counters.resourceGrants[key]
    counters.revocations = 0
    counters.failures = 0
    counters.reuseDetected = 0
    dpopCounters.proofsAccepted = 0
    dpopCounters.proofsRejected = 0
    dpopCounters.nonceChallenges = 0
    verifier?.reset()
    for (const route of Object.values(counters.routes)) {
      route.hits = 0
      route.unauthorized = 0
      route.forbidden = 0
    }
  }

  function rotateDpopNonce(): string {
    if (!verifier || !config.dpop?.requireNonce) {
      throw new ReauthOptionsError(
        'rotateDpopNonce(): the server must have dpop: { requireNonce: true }',
      )
    }
    return verifier.rotate()
  }

  return {
    issuer,
    tokenEndpoint,
    authorizationEndpoint,
    revocationEndpoint,
    handlers,
    signIn,
    protect,
    expireAccessTokens,
    revoke,
    enqueue,
    hold,
    counters,
    presentedRefreshTokens,
    rotateDpopNonce,
    reset,
    createAuthorizationCode,
  }
}
