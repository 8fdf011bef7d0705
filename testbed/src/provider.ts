import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import Provider, { errors } from 'oidc-provider'

/** The public client the examples sign in with. */
export const PUBLIC_CLIENT_ID = 'reauth-app'
/** Where the provider sends the browser back; nothing listens there, the code is read off the redirect. */
export const REDIRECT_URI = 'http://127.0.0.1/callback'
/** The confidential client the protected API introspects tokens with. */
export const API_CLIENT = { id: 'reauth-api', secret: randomBytes(24).toString('base64url') }
/** The confidential client a backend service uses for the client credentials grant. */
export const SERVICE_CLIENT = {
  id: 'reauth-service',
  secret: randomBytes(24).toString('base64url'),
}
/** The scope every resource server (RFC 8707) defines. */
export const RESOURCE_SCOPE = 'api'

/** How a resource server's access tokens look. */
export type AccessTokenFormat = 'opaque' | 'jwt'

/**
 * Three protected APIs as RFC 8707 resource indicators, each with its access token format: a
 * token issued for one has that indicator as its audience (`aud`), and only its API accepts it.
 */
export const RESOURCES = {
  orders: { indicator: 'https://orders.reauth.test', format: 'opaque' },
  billing: { indicator: 'https://billing.reauth.test', format: 'jwt' },
  profile: { indicator: 'https://profile.reauth.test', format: 'jwt' },
} as const satisfies Record<string, { indicator: string; format: AccessTokenFormat }>

export interface ProviderOptions {
  /** Access token lifetime in seconds. Default 30. */
  accessTokenTtl?: number
  /** Port on 127.0.0.1; default a free one. */
  port?: number
  /**
   * DPoP (RFC 9449, `features.dPoP`) is always on: a token request with a proof gets DPoP-bound
   * tokens (`cnf.jkt`; the public client's refresh tokens bound too). `requireNonce: true`
   * demands the provider's nonce in every proof (`use_dpop_nonce` with `DPoP-Nonce` first).
   */
  dpop?: { requireNonce?: boolean }
}

export interface ProviderCounters {
  /** Successful refresh_token grants. */
  refreshGrants: number
  /** Successful authorization_code grants. */
  codeGrants: number
  /** Failed token requests, by OAuth error code. */
  grantErrors: Record<string, number>
  /** Grants revoked (a reused rotated refresh token revokes its grant). */
  grantsRevoked: number
  /** Token requests with a DPoP proof that were granted (any grant type). */
  dpopGrants: number
  /** Successful client_credentials grants. */
  clientCredentialsGrants: number
  /** Successful grants (any type) per `resource` parameter. */
  resourceGrants: Record<string, number>
}

export interface RunningProvider {
  readonly issuer: string
  readonly provider: Provider
  readonly counters: ProviderCounters
  /** Stop answering (close the listener); state is kept in memory. */
  stop(): Promise<void>
  /** Listen again on the same port after `stop()`. */
  restart(): Promise<void>
  /** Revoke a token at the provider (RFC 7009), as the user's "sign out everywhere" would. */
  revoke(token: string, hint: 'access_token' | 'refresh_token'): Promise<void>
}

function listen(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject)
      resolve((server.address() as AddressInfo).port)
    })
  })
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  })
}

/**
 * Start oidc-provider in process on 127.0.0.1: short access tokens, refresh-token rotation,
 * PKCE required, introspection and revocation on, the client credentials grant for
 * {@link SERVICE_CLIENT}, resource indicators for {@link RESOURCES} (a refresh token granted
 * for several serves each), and an interaction that signs the user in and consents at once
 * (so an authorization code flow can be driven over plain HTTP).
 */
export async function startProvider(options: ProviderOptions = {}): Promise<RunningProvider> {
  const server = createServer()
  const port = await listen(server, options.port ?? 0)
  const issuer = `http://127.0.0.1:${port}`
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: PUBLIC_CLIENT_ID,
        token_endpoint_auth_method: 'none',
        redirect_uris: [REDIRECT_URI],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
      },
      {
        client_id: API_CLIENT.id,
        client_secret: API_CLIENT.secret,
        grant_types: [],
        response_types: [],
        redirect_uris: [],
      },
      {
        client_id: SERVICE_CLIENT.id,
        client_secret: SERVICE_CLIENT.secret,
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
      },
    ],
    jwks: { keys: [privateKey.export({ format: 'jwk' }) as never] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    scopes: ['openid', 'offline_access', RESOURCE_SCOPE],
    ttl: {
      AccessToken: options.accessTokenTtl ?? 30,
      ClientCredentials: options.accessTokenTtl ?? 30,
      RefreshToken: 24 * 3600,
      Grant: 24 * 3600,
      Session: 24 * 3600,
      Interaction: 600,
      AuthorizationCode: 60,
      IdToken: 3600,
    },
    pkce: { required: () => true },
    rotateRefreshToken: true,
    features: {
      devInteractions: { enabled: false },
      dPoP: {
        enabled: true,
        // Nonces are derived from this secret and rotate with time (oidc-provider's ServerChallenge).
        nonceSecret: randomBytes(32),
        requireNonce: () => options.dpop?.requireNonce === true,
      },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // A refresh token granted for several resources serves each, one per token request.
        getResourceServerInfo: async (_ctx, indicator) => {
          const known = Object.values(RESOURCES).find((r) => r.indicator === indicator)
          if (!known) throw new errors.InvalidTarget()
          return {
            scope: RESOURCE_SCOPE,
            audience: indicator,
            accessTokenTTL: options.accessTokenTtl ?? 30,
            accessTokenFormat: known.format,
            ...(known.format === 'jwt' ? { jwt: { sign: { alg: 'RS256' } } } : {}),
          }
        },
      },
      introspection: {
        enabled: true,
        allowedPolicy: async (ctx) => ctx.oidc.client?.clientId === API_CLIENT.id,
      },
      revocation: {
        enabled: true,
        allowedPolicy: async (ctx, _client, token) =>
          ctx.oidc.client?.clientId === API_CLIENT.id ||
          token.clientId === ctx.oidc.client?.clientId,
      },
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
    renderError: async (ctx, out) => {
      ctx.type = 'json'
      ctx.body = out
    },
  })
  provider.proxy = false
  const counters: ProviderCounters = {
    refreshGrants: 0,
    codeGrants: 0,
    grantErrors: {},
    grantsRevoked: 0,
    dpopGrants: 0,
    clientCredentialsGrants: 0,
    resourceGrants: {},
  }
  provider.on('grant.success', (ctx) => {
    const grantType = ctx.oidc.params?.grant_type
    if (grantType === 'refresh_token') counters.refreshGrants++
    if (grantType === 'authorization_code') counters.codeGrants++
    if (ctx.get('dpop')) counters.dpopGrants++
    if (grantType === 'client_credentials') counters.clientCredentialsGrants++
    const resource = ctx.oidc.params?.resource
    if (typeof resource === 'string') {
      counters.resourceGrants[resource] = (counters.resourceGrants[resource] ?? 0) + 1
    }
  })
  provider.on('grant.error', (_ctx, error: { error?: string }) => {
    const code = error.error ?? 'unknown'
    counters.grantErrors[code] = (counters.grantErrors[code] ?? 0) + 1
  })
  provider.on('grant.revoked', () => {
    counters.grantsRevoked++
  })

  const callback = provider.callback()
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (req.url?.startsWith('/interaction/')) {
      void interact(provider, req, res)
      return
    }
    callback(req, res)
  })

  return {
    issuer,
    provider,
    counters,
    stop: () => close(server),
    restart: async () => {
      await listen(server, port)
    },
    async revoke(token, hint) {
      const response = await fetch(`${issuer}/token/revocation`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`${API_CLIENT.id}:${API_CLIENT.secret}`).toString('base64')}`,
        },
        body: new URLSearchParams({ token, token_type_hint: hint }),
      })
      if (!response.ok) throw new Error(`revocation failed: HTTP ${response.status}`)
    },
  }
}

/** Sign in as `user-1` and consent to everything asked, with no page in between. */
async function interact(provider: Provider, req: IncomingMessage, res: ServerResponse) {
  try {
    const details = await provider.interactionDetails(req, res)
    const { prompt, params } = details
    if (prompt.name === 'login') {
      await provider.interactionFinished(
        req,
        res,
        { login: { accountId: 'user-1' } },
        {
          mergeWithLastSubmission: false,
        },
      )
      return
    }
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({
          accountId: details.session?.accountId ?? 'user-1',
          clientId: String(params.client_id),
        })
    if (!grant) throw new Error('grant not found')
    const missing = prompt.details as {
      missingOIDCScope?: string[]
      missingResourceScopes?: Record<string, string[]>
    }
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '))
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '))
    }
    const grantId = await grant.save()
    await provider.interactionFinished(
      req,
      res,
      { consent: { grantId } },
      {
        mergeWithLastSubmission: true,
      },
    )
  } catch (error) {
    res.statusCode = 500
    res.end(String(error))
  }
}
