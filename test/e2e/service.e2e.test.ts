/**
 * The service half of issue 16 end to end against oidc-provider (in process on 127.0.0.1):
 * the client credentials grant, RFC 7009 revocation and RFC 8707 resource indicators, through
 * @reauth/oauth's functions called directly (the engine's `acquire` / `revoke` options are
 * tested where they live). Protected APIs, one per resource, check each token's audience:
 * introspection for opaque tokens, the provider's JWKS for JWT access tokens.
 */
import { isOAuthError, type TokenSet } from '@reauth/core'
import { clientCredentials, createRefreshGrant, revokeTokens } from '@reauth/oauth'
import {
  clientOptions,
  RESOURCE_SCOPE,
  RESOURCES,
  type RunningApi,
  type RunningProvider,
  SERVICE_CLIENT,
  signInOverHttp,
  startApi,
  startProvider,
} from '@reauth/testbed'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const TTL = 30
let provider: RunningProvider
/** An API that takes any valid token, and one per resource. */
let anyAudience: RunningApi
const apis = {} as Record<keyof typeof RESOURCES, RunningApi>

beforeAll(async () => {
  provider = await startProvider({ accessTokenTtl: TTL })
  anyAudience = await startApi({ issuer: provider.issuer })
  for (const [name, resource] of Object.entries(RESOURCES)) {
    apis[name as keyof typeof RESOURCES] = await startApi({
      issuer: provider.issuer,
      audience: resource.indicator,
    })
  }
})
afterAll(async () => {
  await Promise.all([anyAudience, ...Object.values(apis)].map((api) => api?.stop()))
  await provider?.stop()
})

const service = () => ({
  issuer: provider.issuer,
  clientId: SERVICE_CLIENT.id,
  clientSecret: SERVICE_CLIENT.secret,
  allowInsecureRequests: true,
})
const acquireContext = (resource?: string) => ({
  signal: AbortSignal.timeout(10_000),
  startedAt: Date.now(),
  ...(resource === undefined ? {} : { resource }),
})
const refreshContext = (tokens: TokenSet, resource?: string) => ({
  tokens,
  signal: AbortSignal.timeout(10_000),
  startedAt: Date.now(),
  ...(resource === undefined ? {} : { resource }),
})

async function status(api: RunningApi, tokens: TokenSet): Promise<number> {
  const response = await fetch(`${api.origin}/orders`, {
    headers: { authorization: `Bearer ${tokens.accessToken}` },
  })
  await response.arrayBuffer()
  return response.status
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection')
    },
    (error: unknown) => error,
  )
}

describe('client credentials against oidc-provider', () => {
  it('gets a token the API accepts; no refresh token; expiresAt from expires_in', async () => {
    const before = provider.counters.clientCredentialsGrants
    const startedAt = Date.now()
    const tokens = await clientCredentials(service())(acquireContext())
    expect(tokens.refreshToken).toBeUndefined()
    expect(tokens.tokenType).toBe('Bearer')
    expect(tokens.expiresAt).toBeGreaterThanOrEqual(startedAt + TTL * 1000)
    expect(tokens.expiresAt).toBeLessThanOrEqual(Date.now() + TTL * 1000)
    expect(await status(anyAudience, tokens)).toBe(200)
    expect(provider.counters.clientCredentialsGrants - before).toBe(1)
  })

  it('for a resource: the audience is that resource, the other APIs refuse it', async () => {
    for (const [name, resource] of Object.entries(RESOURCES)) {
      const tokens = await clientCredentials(service(), { scope: RESOURCE_SCOPE })(
        acquireContext(resource.indicator),
      )
      for (const [other, api] of Object.entries(apis)) {
        expect([name, other, await status(api, tokens)]).toEqual([
          name,
          other,
          other === name ? 200 : 401,
        ])
      }
    }
  })

  it('a wrong secret: OAuthError invalid_client (terminal for the engine)', async () => {
    const error = await rejection(
      clientCredentials({ ...service(), clientSecret: 'not-the-secret' })(acquireContext()),
    )
    expect(isOAuthError(error)).toBe(true)
    expect(error).toMatchObject({ error: 'invalid_client', status: 401 })
  })
})

describe('revocation against oidc-provider', () => {
  it('after revokeTokens the provider refuses the refresh token (invalid_grant) and the API the access token', async () => {
    const tokens = await signInOverHttp(provider.issuer)
    expect(await status(anyAudience, tokens)).toBe(200)
    const client = clientOptions(provider.issuer)
    await revokeTokens(client)({ tokens, signal: AbortSignal.timeout(10_000) })
    const before = provider.counters.grantErrors.invalid_grant ?? 0
    const error = await rejection(createRefreshGrant(client)(refreshContext(tokens)))
    expect(isOAuthError(error)).toBe(true)
    expect(error).toMatchObject({ error: 'invalid_grant' })
    expect((provider.counters.grantErrors.invalid_grant ?? 0) - before).toBe(1)
    expect(await status(anyAudience, tokens)).toBe(401)
  })

  it('revokes a client credentials token: the API refuses it at once', async () => {
    const tokens = await clientCredentials(service())(acquireContext())
    expect(await status(anyAudience, tokens)).toBe(200)
    await revokeTokens(service())({ tokens, signal: AbortSignal.timeout(10_000) })
    expect(await status(anyAudience, tokens)).toBe(401)
  })
})

describe('resource indicators against oidc-provider', () => {
  it('one rotating refresh token, a token per resource: each API accepts only its own', async () => {
    const indicators = Object.values(RESOURCES).map((r) => r.indicator)
    let tokens = await signInOverHttp(provider.issuer, {
      scope: `openid ${RESOURCE_SCOPE}`,
      resource: indicators,
    })
    const refresh = createRefreshGrant(clientOptions(provider.issuer))
    const revokedBefore = provider.counters.grantsRevoked
    const grantsBefore = { ...provider.counters.resourceGrants }
    for (const [name, resource] of Object.entries(RESOURCES)) {
      const next = await refresh(refreshContext(tokens, resource.indicator))
      expect(next.refreshToken).toBeDefined()
      expect(next.refreshToken).not.toBe(tokens.refreshToken) // rotated
      tokens = { ...tokens, ...next }
      for (const [other, api] of Object.entries(apis)) {
        expect([name, other, await status(api, next)]).toEqual([
          name,
          other,
          other === name ? 200 : 401,
        ])
      }
    }
    for (const indicator of indicators) {
      expect(
        (provider.counters.resourceGrants[indicator] ?? 0) - (grantsBefore[indicator] ?? 0),
      ).toBe(1)
    }
    for (const api of Object.values(apis)) expect(api.counters.wrongAudience).toBeGreaterThan(0)
    expect(provider.counters.grantsRevoked - revokedBefore).toBe(0)
  })

  it('a resource the sign-in was not granted: invalid_target, and oidc-provider has spent the refresh token (so the engine must only ask for configured resources)', async () => {
    const tokens = await signInOverHttp(provider.issuer, {
      scope: `openid ${RESOURCE_SCOPE}`,
      resource: RESOURCES.orders.indicator,
    })
    const refresh = createRefreshGrant(clientOptions(provider.issuer))
    const error = await rejection(refresh(refreshContext(tokens, RESOURCES.billing.indicator)))
    expect(isOAuthError(error)).toBe(true)
    expect(error).toMatchObject({ error: 'invalid_target', status: 400 })
    // oidc-provider rotates before it resolves the resource: the presented token is consumed
    // and its successor was never sent, so presenting it again is a reuse that revokes the grant.
    const revokedBefore = provider.counters.grantsRevoked
    const again = await rejection(refresh(refreshContext(tokens, RESOURCES.orders.indicator)))
    expect(again).toMatchObject({ error: 'invalid_grant' })
    expect(provider.counters.grantsRevoked - revokedBefore).toBe(1)
  })
})
